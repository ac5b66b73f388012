"""Feed gaps: record every outage of the live feed, then repair it from the gateway's REST bars.

A gap runs from the last trade seen before an outage to the first trade after it (exchange time).
It is recorded the moment it begins, open (``gap_end`` NULL), and closed by the first trade after
it: first in a local journal (``gaps.jsonl`` in the spill directory, fsynced per entry), then in
``market.feed_gaps`` as soon as the database takes it. A journal left by a killed process is
synced at the next start, and the first trade of a contract closes every gap of it still open, so
no outage goes unrecorded, whatever kills the process. A start opens a ``restart`` gap from the
latest trade stored before it (resolved by the database, ``market.latest_tick_before``).
Its repair fetches, for every configured timeframe, the bars the gap touches into
``market.history_bars``; ``market.bars`` then prefers those over the incomplete tick-built bars,
once they were fetched after the bar closed. So a gap is repaired right after reconnecting, and
again on each later round until the daily bar containing its end has closed and been fetched:
then it is final.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from ingest.metrics import Metrics
from ingest.session import daily_close_after
from ingest.supervise import first_set

log = logging.getLogger(__name__)

# (conn, contract_id, timeframe, start, end) -> bars written; ingest.backfill.fetch_into_history.
FetchBars = Callable[[asyncpg.Connection, str, str, datetime, datetime], Awaitable[int]]

OPEN_GAPS_SQL = """
SELECT g.gap_id, g.contract_id, g.gap_start, g.gap_end
FROM market.feed_gaps AS g
WHERE g.finalized_at IS NULL AND g.gap_end IS NOT NULL AND g.contract_id = any($1::text[])
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
                 metrics: Metrics, *, interval_s: float = 300.0, book: GapBook | None = None) -> None:
        self.dsn, self.fetch, self.contracts, self.timeframes = dsn, fetch, list(contracts), list(timeframes)
        self.metrics, self.interval_s = metrics, interval_s
        self.book = book or GapBook(None, metrics)
        self.rounds = 0
        self.round_done = asyncio.Event()  # set after every round (tests wait on it)
        for name, text in (("gaps_recorded_total", "feed gaps recorded"),
                           ("gap_bars_repaired_total", "history bars written by gap repairs"),
                           ("gap_repair_errors_total", "failed gap repair attempts")):
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_set(self.book.changed, stop), delay)
        if self.book.pending:
            await asyncio.wait_for(self._connected(self._sync), 5)

    async def _connected(self, work: Callable[[asyncpg.Connection], Awaitable[None]]) -> None:
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10)
            try:
                await work(conn)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                TimeoutError) as exc:
            self.metrics.inc("gap_repair_errors_total")
            log.warning("gap round failed (%s: %s); %d gap entries wait, will retry", type(exc).__name__, exc,
                        len(self.book.pending))

    async def _sync(self, conn: asyncpg.Connection) -> None:
        self.metrics.inc("gaps_recorded_total", await self.book.sync(conn))

    async def _round(self, conn: asyncpg.Connection) -> None:
        await self._sync(conn)
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
