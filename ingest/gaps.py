"""Feed gaps: record every outage of the live feed, then repair it from the gateway's REST bars.

A gap runs from the last trade seen before an outage to the first trade after it (exchange time).
Its repair fetches, for every configured timeframe, the bars the gap touches into
``market.history_bars``; ``market.bars`` prefers those over the incomplete tick-built bars once
they were fetched after the bar closed (a history bar fetched earlier changes nothing). So within
the history budget (30 requests per 30 s, paced by the REST client):

- a gap overlapping an open gap of the same contract, or touching the same 1m bar, is recorded
  into it (``outages`` counts them);
- a timeframe of a gap is fetched once, on the first round after the gap's last bar of it has
  closed, and is then complete (``repaired_timeframes``): 1m minutes after the outage, 1d after
  the daily close;
- within a round, the bars due of a contract and timeframe are fetched as few ranges as possible:
  the ranges of all its gaps that overlap or are adjacent make one request (a flapping feed's
  gaps in consecutive minutes cost one 1d request, not one each);
- the first gap of each range is charged the requests it cost (``requests``); when all timeframes
  of a gap are complete it is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from ingest.metrics import Metrics

log = logging.getLogger(__name__)

# (conn, contract_id, timeframe, start, end) -> bars written; ingest.backfill.fetch_into_history.
FetchBars = Callable[[asyncpg.Connection, str, str, datetime, datetime], Awaitable[int]]

OPEN_GAPS_SQL = """
SELECT g.gap_id, g.contract_id, g.gap_start, g.gap_end, g.repaired_timeframes
FROM market.feed_gaps AS g
WHERE g.finalized_at IS NULL AND g.contract_id = any($1::text[])
ORDER BY g.gap_start
"""
# A new gap joins an open gap of its contract that it overlaps or whose 1m bars it touches (the
# union then touches exactly the bars the two touch); that span is fetched again from scratch.
RECORD_GAP_SQL = """
WITH touching AS (
    SELECT g.gap_id FROM market.feed_gaps AS g
    WHERE g.contract_id = $1 AND g.finalized_at IS NULL
        AND date_trunc('minute', g.gap_start) <= date_trunc('minute', $3::timestamptz)
        AND date_trunc('minute', g.gap_end) >= date_trunc('minute', $2::timestamptz)
    ORDER BY g.gap_start LIMIT 1 FOR UPDATE
), merged AS (
    UPDATE market.feed_gaps AS g
    SET gap_start = least(g.gap_start, $2), gap_end = greatest(g.gap_end, $3), outages = g.outages + 1,
        reason = CASE WHEN position($4 IN g.reason) > 0 THEN g.reason ELSE g.reason || '; ' || $4 END,
        repaired_timeframes = '{}'
    FROM touching AS t WHERE g.gap_id = t.gap_id
    RETURNING g.gap_id
)
INSERT INTO market.feed_gaps (contract_id, gap_start, gap_end, reason)
SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM merged)
"""
# Per timeframe: the labels (history_bars.bucket) of the bars holding the span's start and end, and
# when the last of them closes. A label is the bar's start, but 1d bars are labelled 00:00 UTC of
# their trading date, which begins at 17:00 Chicago the evening before.
SPAN_BARS_SQL = """
SELECT t.timeframe, t.bucket_width, first_bar.label, last_bar.label,
    market.session_bar_end(t.timeframe, last_bar.label)
FROM market.timeframes AS t,
    LATERAL (SELECT time_bucket(t.bucket_width, $2::timestamptz, 'America/Chicago', '2000-01-02 23:00:00+00')
             AS start, time_bucket(t.bucket_width, $3::timestamptz, 'America/Chicago', '2000-01-02 23:00:00+00')
             AS stop) AS b,
    LATERAL (SELECT CASE WHEN t.timeframe = '1d' THEN ((b.start AT TIME ZONE 'America/Chicago')::date + 1)::timestamp
             AT TIME ZONE 'UTC' ELSE b.start END AS label) AS first_bar,
    LATERAL (SELECT CASE WHEN t.timeframe = '1d' THEN ((b.stop AT TIME ZONE 'America/Chicago')::date + 1)::timestamp
             AT TIME ZONE 'UTC' ELSE b.stop END AS label) AS last_bar
WHERE t.timeframe = any($1::text[])
"""


@dataclass(frozen=True)
class Gap:
    contract_id: str
    start: datetime
    end: datetime
    reason: str


class GapRepairer:
    """Writes recorded gaps to ``market.feed_gaps`` and repairs the open ones, round after round."""

    def __init__(self, dsn: str | None, fetch: FetchBars, contracts: Sequence[str], timeframes: Sequence[str],
                 metrics: Metrics, *, interval_s: float = 300.0, requests_made: Callable[[], int] | None = None,
                 ) -> None:
        """``requests_made()``: history requests so far (the REST client's count), to charge each gap exactly;
        without it every fetch counts as one."""
        self.dsn, self.fetch, self.contracts, self.timeframes = dsn, fetch, list(contracts), list(timeframes)
        self.metrics, self.interval_s, self.requests_made = metrics, interval_s, requests_made
        self._unrecorded: list[Gap] = []
        self._wake = asyncio.Event()
        self.rounds = 0
        self.round_done = asyncio.Event()  # set after every round (tests wait on it)
        for name, text in (("gaps_recorded_total", "feed gaps recorded"),
                           ("gap_bars_repaired_total", "history bars written by gap repairs"),
                           ("gap_repair_errors_total", "failed gap repair attempts"),
                           ("gap_repair_requests_total", "history requests made by gap repairs")):
            metrics.describe(name, "counter", text)

    def record(self, gap: Gap) -> None:
        log.info("feed gap on %s from %s to %s (%s)", gap.contract_id, gap.start.isoformat(), gap.end.isoformat(),
                 gap.reason)
        self._unrecorded.append(gap)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(self.dsn, timeout=10)
                try:
                    await self._round(conn)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                self.metrics.inc("gap_repair_errors_total")
                log.warning("gap repair round failed (%s); will retry", exc)
            self.rounds += 1
            self.round_done.set()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_done(self._wake.wait(), stop.wait()), self.interval_s)

    async def _round(self, conn: asyncpg.Connection) -> None:
        while self._unrecorded:
            gap = self._unrecorded[0]
            await conn.execute(RECORD_GAP_SQL, gap.contract_id, gap.start, gap.end, gap.reason)
            self._unrecorded.pop(0)
            self.metrics.inc("gaps_recorded_total")
        fetched_at = datetime.now(UTC)
        due: dict[tuple[str, str], list[tuple[datetime, datetime, int]]] = {}
        width: dict[str, timedelta] = {}
        for gap_id, contract_id, start, end, complete in await conn.fetch(OPEN_GAPS_SQL, self.contracts):
            for timeframe, bucket_width, first, last, closes in await conn.fetch(
                    SPAN_BARS_SQL, self.timeframes, start, end):
                width[timeframe] = bucket_width
                if timeframe not in complete and fetched_at >= closes:
                    due.setdefault((contract_id, timeframe), []).append((first, last, gap_id))
        for (contract_id, timeframe), ranges in sorted(due.items(), key=lambda d: self.timeframes.index(d[0][1])):
            for first, last, gap_ids in coalesce(ranges, width[timeframe]):
                try:
                    await self._repair(conn, contract_id, timeframe, first, last, gap_ids, fetched_at)
                except (RuntimeError, ValueError) as exc:  # the gateway failed (GatewayError) or sent nonsense
                    self.metrics.inc("gap_repair_errors_total")
                    log.warning("repair of gaps %s on %s, %s failed (%s); will retry next round",
                                gap_ids, contract_id, timeframe, exc)

    async def _repair(self, conn: asyncpg.Connection, contract_id: str, timeframe: str, first: datetime,
                      last: datetime, gap_ids: list[int], fetched_at: datetime) -> None:
        """Fetch one range of closed bars for the gaps ``gap_ids``; the timeframe is then complete for them."""
        before = self.requests_made() if self.requests_made else 0
        written = await self.fetch(conn, contract_id, timeframe, first, last)
        requests = self.requests_made() - before if self.requests_made else 1
        finals = await conn.fetchval(
            "WITH done AS (UPDATE market.feed_gaps SET repaired_at = $3::timestamptz,"
            " repaired_timeframes = array_append(repaired_timeframes, $2),"
            " bars_repaired = bars_repaired + CASE WHEN gap_id = $1[1] THEN $4 ELSE 0 END,"
            " requests = requests + CASE WHEN gap_id = $1[1] THEN $5 ELSE 0 END,"
            " finalized_at = CASE WHEN $6::text[] <@ array_append(repaired_timeframes, $2) THEN $3::timestamptz END"
            " WHERE gap_id = any($1::bigint[]) AND NOT $2 = any(repaired_timeframes) RETURNING finalized_at)"
            " SELECT count(finalized_at) FROM done",
            gap_ids, timeframe, fetched_at, written, requests, self.timeframes)
        self.metrics.inc("gap_bars_repaired_total", written)
        self.metrics.inc("gap_repair_requests_total", requests)
        log.info("repaired %d gap(s) on %s, %s %s..%s: %d history bars, %d requests%s", len(gap_ids), contract_id,
                 timeframe, first.isoformat(), last.isoformat(), written, requests,
                 f"; {finals} final" if finals else "")


def coalesce(ranges: list[tuple[datetime, datetime, int]], width: timedelta,
             ) -> list[tuple[datetime, datetime, list[int]]]:
    """Bar ranges ``(first, last, gap_id)`` merged where they overlap or are adjacent: ``(first, last, gap_ids)``."""
    out: list[tuple[datetime, datetime, list[int]]] = []
    for first, last, gap_id in sorted(ranges):
        if out and first <= out[-1][1] + width:
            out[-1] = (out[-1][0], max(out[-1][1], last), [*out[-1][2], gap_id])
        else:
            out.append((first, last, [gap_id]))
    return out


async def first_done(*aws: Awaitable[object]) -> None:
    """Wait until the first of ``aws`` is done; cancel the others."""
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
