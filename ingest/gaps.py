"""Feed gaps: record every outage of the live feed, then repair it from the gateway's REST bars.

A gap runs from the last trade seen before an outage to the first trade after it (exchange time).
Its repair fetches, for every configured timeframe, the bars the gap touches into
``market.history_bars``; ``market.bars`` then prefers those over the incomplete tick-built bars,
once they were fetched after the bar closed. So a gap is repaired right after reconnecting, and
again on each later round until the daily bar containing its end has closed and been fetched:
then it is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from ingest.metrics import Metrics
from ingest.session import daily_close_after

log = logging.getLogger(__name__)

# (conn, contract_id, timeframe, start, end) -> bars written; ingest.backfill.fetch_into_history.
FetchBars = Callable[[asyncpg.Connection, str, str, datetime, datetime], Awaitable[int]]

OPEN_GAPS_SQL = """
SELECT g.gap_id, g.contract_id, g.gap_start, g.gap_end
FROM market.feed_gaps AS g
WHERE g.finalized_at IS NULL AND g.contract_id = any($1::text[])
ORDER BY g.gap_start
"""
# The label (history_bars.bucket) of the bar holding a time: its start, but 1d bars are labelled
# 00:00 UTC of their trading date, which begins at 17:00 Chicago the evening before.
BAR_LABEL_SQL = """
SELECT CASE WHEN t.timeframe = '1d'
    THEN ((b.start AT TIME ZONE 'America/Chicago')::date + 1)::timestamp AT TIME ZONE 'UTC' ELSE b.start END
FROM market.timeframes AS t,
    LATERAL (SELECT time_bucket(t.bucket_width, $2::timestamptz, 'America/Chicago', '2000-01-02 23:00:00+00')
             AS start) AS b
WHERE t.timeframe = $1
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
                 metrics: Metrics, *, interval_s: float = 300.0) -> None:
        self.dsn, self.fetch, self.contracts, self.timeframes = dsn, fetch, list(contracts), list(timeframes)
        self.metrics, self.interval_s = metrics, interval_s
        self._unrecorded: list[Gap] = []
        self._wake = asyncio.Event()
        self.rounds = 0
        self.round_done = asyncio.Event()  # set after every round (tests wait on it)
        for name, text in (("gaps_recorded_total", "feed gaps recorded"),
                           ("gap_bars_repaired_total", "history bars written by gap repairs"),
                           ("gap_repair_errors_total", "failed gap repair attempts")):
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
                await asyncio.wait_for(_first(self._wake.wait(), stop.wait()), self.interval_s)

    async def _round(self, conn: asyncpg.Connection) -> None:
        while self._unrecorded:
            gap = self._unrecorded[0]
            await conn.execute(
                "INSERT INTO market.feed_gaps (contract_id, gap_start, gap_end, reason) VALUES ($1, $2, $3, $4)",
                gap.contract_id, gap.start, gap.end, gap.reason,
            )
            self._unrecorded.pop(0)
            self.metrics.inc("gaps_recorded_total")
        for gap_id, contract_id, start, end in await conn.fetch(OPEN_GAPS_SQL, self.contracts):
            try:
                await self._repair(conn, gap_id, contract_id, start, end)
            except (RuntimeError, ValueError) as exc:  # the gateway failed (GatewayError) or sent nonsense
                self.metrics.inc("gap_repair_errors_total")
                log.warning("repair of gap %d on %s failed (%s); will retry next round", gap_id, contract_id, exc)

    async def _repair(self, conn: asyncpg.Connection, gap_id: int, contract_id: str, start: datetime,
                      end: datetime) -> None:
        fetched_at = datetime.now(UTC)
        written = 0
        for timeframe in self.timeframes:
            first = await conn.fetchval(BAR_LABEL_SQL, timeframe, start)
            last = await conn.fetchval(BAR_LABEL_SQL, timeframe, end)
            written += await self.fetch(conn, contract_id, timeframe, first, last)
        final = fetched_at >= daily_close_after(end)
        await conn.execute(
            "UPDATE market.feed_gaps SET repaired_at = $2::timestamptz, bars_repaired = bars_repaired + $3,"
            " finalized_at = CASE WHEN $4::boolean THEN $2::timestamptz END WHERE gap_id = $1",
            gap_id, fetched_at, written, final,
        )
        self.metrics.inc("gap_bars_repaired_total", written)
        log.info("repaired gap %d on %s: %d history bars%s", gap_id, contract_id, written, " (final)" if final else "")


async def _first(*aws: Awaitable[object]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
