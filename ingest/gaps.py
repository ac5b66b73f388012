"""Feed gaps: record every outage of the live feed, then repair it from the gateway's REST bars.

A gap runs from the last trade seen before an outage to the first trade after it (exchange time).
It is recorded the moment it begins, open (``gap_end`` NULL), and closed by the first trade after
it: first in a local journal (``gaps.jsonl`` in the spill directory, fsynced per entry), then in
``market.feed_gaps`` as soon as the database takes it. A journal left by a killed process is
synced at the next start, and the first trade of a contract closes every gap of it still open, so
no outage goes unrecorded, whatever kills the process. A start opens a ``restart`` gap from the
latest trade stored before it (resolved by the database, ``market.latest_tick_before``).
Its repair fetches, for every configured timeframe, the bars the gap touches into
``market.history_bars``; ``market.bars`` prefers those over the incomplete tick-built bars once
they were fetched after the bar closed (a history bar fetched earlier changes nothing). So within
the history budget (30 requests per 30 s, paced by the REST client):

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
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from ingest import db
from ingest.errors import MechtradeError
from ingest.metrics import Metrics
from ingest.waiting import first_set

log = logging.getLogger(__name__)

# (conn, contract_id, timeframe, start, end) -> bars written; ingest.backfill.fetch_into_history.
FetchBars = Callable[[asyncpg.Connection, str, str, datetime, datetime], Awaitable[int]]

OPEN_GAPS_SQL = """
SELECT g.gap_id, g.contract_id, g.gap_start, g.gap_end, g.repaired_timeframes
FROM market.feed_gaps AS g
WHERE g.finalized_at IS NULL AND g.gap_end IS NOT NULL AND g.contract_id = any($1::text[])
ORDER BY g.gap_start
"""
# Per timeframe: the labels (history_bars.bucket) of the bars holding the span's start and end, and
# when the last of them closes (a daily bar's label is its trading date: market.session_bar_label).
SPAN_BARS_SQL = """
SELECT t.timeframe, t.bucket_width, l.first_bar, l.last_bar, market.session_bar_end(t.timeframe, l.last_bar)
FROM market.timeframes AS t,
    LATERAL (SELECT time_bucket(t.bucket_width, $2::timestamptz, 'America/Chicago', '2000-01-02 23:00:00+00')
             AS start, time_bucket(t.bucket_width, $3::timestamptz, 'America/Chicago', '2000-01-02 23:00:00+00')
             AS stop) AS b,
    LATERAL (SELECT market.session_bar_label(t.timeframe, b.start) AS first_bar,
             market.session_bar_label(t.timeframe, b.stop) AS last_bar) AS l
WHERE t.timeframe = any($1::text[])
"""


@dataclass(frozen=True)
class Gap:
    contract_id: str
    start: datetime
    end: datetime
    reason: str


OPEN_SQL = """
INSERT INTO market.feed_gaps (contract_id, gap_start, gap_end, reason, gap_key)
SELECT $1, s.gap_start, $3::timestamptz, $4, $5::uuid
FROM (SELECT coalesce($2::timestamptz, market.latest_tick_before($1, $6::timestamptz)) AS gap_start) AS s
WHERE s.gap_start IS NOT NULL
ON CONFLICT (gap_key) DO NOTHING
"""
# The first trade after a gap closes every gap of the contract still open: one a killed process left, too.
CLOSE_SQL = """
UPDATE market.feed_gaps SET gap_end = greatest(gap_start, $2::timestamptz)
WHERE contract_id = $1 AND gap_end IS NULL
"""


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


class GapBook:
    """Gap openings and closings not yet in the database, kept in an fsynced journal until they are.

    ``path`` None keeps them in memory only. A journal line that cannot be read (cut short by a
    crash) is skipped and counted: the restart gap of the next start covers what it described.
    """

    def __init__(self, path: Path | None, metrics: Metrics) -> None:
        self.path, self.metrics = path, metrics
        self.pending: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self._journal_error_logged = False
        metrics.describe("gap_journal_errors_total", "counter", "gap journal lines unreadable or unwritable")
        if path is not None and path.exists():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                    if entry.get("op") not in ("open", "close"):
                        raise ValueError(entry)
                    self.pending.append(entry)
                except (ValueError, AttributeError):
                    self.metrics.inc("gap_journal_errors_total")
            if self.pending:
                log.info("%d feed gap entries left by a previous run will be recorded", len(self.pending))

    def open(self, contract_id: str, start: datetime | None, reason: str, *, end: datetime | None = None,
             stored_before: datetime | None = None) -> None:
        """A gap from ``start`` (None: from the latest trade stored before ``stored_before``), open unless ``end``."""
        self._add({"op": "open", "key": str(uuid.uuid4()), "contract": contract_id, "start": _iso(start),
                   "end": _iso(end), "reason": reason, "stored_before": _iso(stored_before)})

    def close(self, contract_id: str, end: datetime) -> None:
        """Every open gap of the contract ends at ``end`` (the first trade after it)."""
        self._add({"op": "close", "contract": contract_id, "end": _iso(end)})

    def _add(self, entry: dict[str, Any]) -> None:
        self.pending.append(entry)
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a") as f:
                    f.write(json.dumps(entry) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:  # still in memory: recorded once the database is reachable
                self.metrics.inc("gap_journal_errors_total")
                if not self._journal_error_logged:
                    self._journal_error_logged = True
                    log.error("cannot write the gap journal %s (%s); gaps are kept in memory", self.path, exc)
        self.changed.set()

    async def sync(self, conn: asyncpg.Connection) -> int:
        """Write pending entries in order; returns gaps opened. Stops at the first failure (kept for later)."""
        opened = 0
        while self.pending:
            entry = self.pending[0]
            contract = entry["contract"]
            if entry["op"] == "open":
                status = await conn.execute(OPEN_SQL, contract, _ts(entry["start"]), _ts(entry["end"]),
                                            entry["reason"], entry["key"], _ts(entry.get("stored_before")))
                if status.endswith(" 1"):
                    opened += 1
                    log.info("feed gap on %s recorded (%s)", contract, entry["reason"])
            else:
                await conn.execute(CLOSE_SQL, contract, _ts(entry["end"]))
            self.pending.pop(0)
        self._rewrite()
        return opened

    def _rewrite(self) -> None:
        """The journal shrinks to what is still pending (atomically: a crash leaves old or new)."""
        if self.path is None or not self.path.exists():
            return
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(e) + "\n" for e in self.pending))
            os.replace(tmp, self.path)
        except OSError as exc:
            self.metrics.inc("gap_journal_errors_total")
            log.warning("cannot rewrite the gap journal %s (%s)", self.path, exc)


class GapRepairer:
    """Writes recorded gaps to ``market.feed_gaps`` and repairs the closed ones, round after round."""

    def __init__(self, dsn: str | None, fetch: FetchBars, contracts: Sequence[str], timeframes: Sequence[str],
                 metrics: Metrics, *, interval_s: float = 300.0, book: GapBook | None = None,
                 requests_made: Callable[[], int] | None = None) -> None:
        """``requests_made()``: history requests so far (the REST client's count), to charge each gap exactly;
        without it every fetch counts as one."""
        self.dsn, self.fetch, self.contracts, self.timeframes = dsn, fetch, list(contracts), list(timeframes)
        self.metrics, self.interval_s, self.requests_made = metrics, interval_s, requests_made
        self.book = book or GapBook(None, metrics)
        self.rounds = 0
        self.round_done = asyncio.Event()  # set after every round (tests wait on it)
        for name, text in (("gaps_recorded_total", "feed gaps recorded"),
                           ("gap_bars_repaired_total", "history bars written by gap repairs"),
                           ("gap_repair_errors_total", "failed gap repair attempts"),
                           ("gap_repair_requests_total", "history requests made by gap repairs")):
            metrics.describe(name, "counter", text)

    def record(self, gap: Gap) -> None:
        """A gap whose end is known already."""
        log.info("feed gap on %s from %s to %s (%s)", gap.contract_id, gap.start.isoformat(), gap.end.isoformat(),
                 gap.reason)
        self.book.open(gap.contract_id, gap.start, gap.reason, end=gap.end)

    async def run(self, stop: asyncio.Event) -> None:
        """Rounds until ``stop``: one whenever a gap opens or closes, else every ``interval_s``; then a last sync."""
        while not stop.is_set():
            self.book.changed.clear()
            await self._connected(self._round)
            self.rounds += 1
            self.round_done.set()
            delay = self.interval_s if not self.book.pending else min(self.interval_s, 1.0)
            await first_set(self.book.changed, stop, timeout=delay)
        if self.book.pending:
            await asyncio.wait_for(self._connected(self._sync), 5)

    async def _connected(self, work: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        try:
            conn = await db.connect(self.dsn, timeout=10)
            try:
                await work(conn)
            finally:
                await conn.close()
        except db.UNAVAILABLE as exc:
            self.metrics.inc("gap_repair_errors_total")
            log.warning("gap round failed (%s: %s); %d gap entries wait, will retry", type(exc).__name__, exc,
                        len(self.book.pending))

    async def _sync(self, conn: asyncpg.Connection) -> None:
        self.metrics.inc("gaps_recorded_total", await self.book.sync(conn))

    async def _round(self, conn: asyncpg.Connection) -> None:
        await self._sync(conn)
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
                except MechtradeError as exc:  # the gateway failed or sent nonsense (GatewayError)
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

