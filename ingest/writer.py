"""Write ticks to ``market.ticks`` in batches, and lose none while the database is away.

Ticks wait in a bounded in-memory buffer. A batch is written when it is full (``batch_rows``) or
its oldest tick has waited ``batch_ms``. While the database is unreachable the writer keeps
retrying with backoff; past ``max_buffered`` ticks it spills the oldest batches to JSON-lines files
in ``spill_dir`` and replays them, oldest first, once the database is back. Every write is
idempotent (``ON CONFLICT DO NOTHING``), so a replay after a crash never duplicates a tick. A batch
the database rejects for its data is retried row by row: good rows are stored, bad ones are
counted and kept in ``spill_dir/rejected.jsonl``.

Spill lines are flushed and fsynced one batch at a time; a line that cannot be read back (cut short
by a power loss or a full disk) is moved to ``spill_dir/quarantine.jsonl`` and counted, never fatal.
If the spill directory itself cannot be written, the oldest batch is dropped, counted, and handed
to ``on_dropped`` (the ingester records its span as a feed gap): lost, but never silently.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import asyncpg

from ingest import db
from ingest.metrics import Metrics
from ingest.retry import Backoff
from ingest.trades import Tick
from ingest.waiting import first_set

log = logging.getLogger(__name__)

INSERT_SQL = "SELECT market.insert_ticks($1, $2, $3, $4, $5, $6)"
TICK_COLUMNS = ["contract_id", "ts", "price", "size", "side", "seq"]


async def _insert(conn: asyncpg.Connection, ticks: Sequence[Tick]) -> int:
    """Store a batch; returns how many ticks were new.

    A batch of new trades (the usual case) goes in by COPY, at COPY's speed. One that repeats stored
    trades (a replay after a reconnect) fails as a whole, and ``market.insert_ticks`` skips the repeats.
    """
    try:
        await conn.copy_records_to_table("ticks", schema_name="market", columns=TICK_COLUMNS,
                                         records=ticks, timeout=30)
        return len(ticks)
    except asyncpg.UniqueViolationError:
        return await conn.fetchval(INSERT_SQL, *_columns(ticks), timeout=30)


def _columns(ticks: Sequence[Tick]) -> list[list]:
    """The ticks as parallel arrays, the arguments of ``market.insert_ticks``."""
    return [list(column) for column in zip(*ticks, strict=True)]


def _to_json(tick: Tick) -> list:
    return [tick.contract_id, tick.ts.isoformat(), str(tick.price), tick.size, tick.side, tick.seq]


def _from_json(row: list) -> Tick:
    cid, ts, price, size, side, seq = row
    return Tick(cid, datetime.fromisoformat(ts), Decimal(price), size, side, seq)


class SpillFiles:
    """Batches parked on disk, one JSON array of ticks per line, one file per outage."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._current: Path | None = None
        self._seq = 0

    def pending(self) -> list[Path]:
        return sorted(self.directory.glob("ticks-*.jsonl")) if self.directory.exists() else []

    def write(self, batch: Sequence[Tick]) -> None:
        if self._current is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            self._current = self.directory / f"ticks-{time.time_ns():020d}-{self._seq:04d}.jsonl"
        _append_durably(self._current, json.dumps([_to_json(t) for t in batch]) + "\n")

    def close_current(self) -> None:
        """The next spill starts a new file (the current one may now be replayed)."""
        self._current = None

    def read(self, path: Path) -> tuple[list[list[Tick]], int]:
        """The batches of a spill file, and how many unreadable lines went to quarantine.jsonl."""
        batches, bad = [], 0
        for line in path.read_text(errors="replace").splitlines():
            if not line.strip():
                continue
            try:
                batches.append([_from_json(r) for r in json.loads(line)])
            except (ValueError, TypeError, ArithmeticError) as exc:
                bad += 1
                _append_durably(self.directory / "quarantine.jsonl",
                                json.dumps({"file": path.name, "error": str(exc)[:200], "line": line}) + "\n")
        return batches, bad

    def reject(self, ticks: Sequence[Tick], reason: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        _append_durably(self.directory / "rejected.jsonl",
                        "".join(json.dumps({"tick": _to_json(t), "reason": reason}) + "\n" for t in ticks))


def _append_durably(path: Path, text: str) -> None:
    """Append and fsync: once this returns, the text survives a power loss."""
    with path.open("a") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


class TickQueue:
    """Ticks in arrival order, held in the chunks they came in, each with its arrival time: queueing
    and batching cost per chunk, not per tick."""

    def __init__(self) -> None:
        self._chunks: deque[tuple[float, list[Tick]]] = deque()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def append(self, ticks: list[Tick], arrived: float) -> None:
        self._chunks.append((arrived, ticks))
        self.size += len(ticks)

    def put_back(self, ticks: list[Tick], arrived: float) -> None:
        """Return what :meth:`take` gave, to the front."""
        self._chunks.appendleft((arrived, ticks))
        self.size += len(ticks)

    @property
    def oldest_arrival(self) -> float:
        return self._chunks[0][0]

    def take(self, n: int) -> tuple[float, list[Tick]]:
        """The oldest ``n`` ticks (all, if fewer) and when the first of them arrived."""
        first = self._chunks[0][0] if self._chunks else 0.0
        batch: list[Tick] = []
        while self._chunks and len(batch) < n:
            arrived, chunk = self._chunks.popleft()
            room = n - len(batch)
            if len(chunk) > room:
                self._chunks.appendleft((arrived, chunk[room:]))
                chunk = chunk[:room]
            batch += chunk
        self.size -= len(batch)
        return first, batch


class TickWriter:
    """A bounded buffer drained into the database by :meth:`run`."""

    def __init__(
        self,
        dsn: str | None,
        metrics: Metrics,
        *,
        batch_rows: int = 500,
        batch_ms: int = 200,
        max_buffered: int = 200_000,
        spill_dir: Path = Path("spill"),
        retry_initial_s: float = 0.2,
        retry_max_s: float = 10.0,
        on_committed: Callable[[Sequence[Tick], float], None] | None = None,
        on_dropped: Callable[[Sequence[Tick], str], None] | None = None,
    ) -> None:
        self.dsn, self.metrics = dsn, metrics
        self.batch_rows, self.batch_s, self.max_buffered = batch_rows, batch_ms / 1000, max_buffered
        self.retry_initial_s, self.retry_max_s = retry_initial_s, retry_max_s
        self.spill = SpillFiles(spill_dir)
        self.on_committed, self.on_dropped = on_committed, on_dropped
        self.database_error = "not connected yet"
        self._spill_error_logged = 0.0
        self._buffer = TickQueue()
        self._wake = asyncio.Event()
        self._closing = False
        self._conn: asyncpg.Connection | None = None
        self.database_up = False
        self.idle = asyncio.Event()  # set whenever nothing is buffered, spilled or being written
        self.idle.set()
        for name, kind, text in (
            ("ticks_written_total", "counter", "ticks newly stored"),
            ("ticks_duplicate_total", "counter", "ticks already stored (replays, overlaps)"),
            ("ticks_rejected_total", "counter", "ticks the database refused (kept in rejected.jsonl)"),
            ("ticks_spilled_total", "counter", "ticks parked on disk while the database was away"),
            ("ticks_replayed_total", "counter", "spilled ticks written back"),
            ("ticks_dropped_total", "counter", "ticks lost because the spill directory failed (inside a gap)"),
            ("spill_lines_quarantined_total", "counter", "unreadable spill lines moved to quarantine.jsonl"),
            ("db_errors_total", "counter", "failed database writes (connection problems)"),
            ("queue_depth", "gauge", "ticks waiting in memory"),
        ):
            metrics.describe(name, kind, text)
        self.metrics.set("queue_depth", 0)

    # --- producer side (never blocks, never drops) ---

    def put(self, ticks: Sequence[Tick]) -> None:
        if not ticks:
            return
        was_empty = not self._buffer
        self._buffer.append(list(ticks), time.monotonic())
        self.idle.clear()
        while len(self._buffer) > self.max_buffered:
            self._spill(self._buffer.take(self.batch_rows)[1])
        self.metrics.set("queue_depth", len(self._buffer))
        if was_empty or len(self._buffer) >= self.batch_rows:
            self._wake.set()

    def _spill(self, batch: list[Tick]) -> None:
        """Park a batch on disk; if the disk fails, drop it loudly (counted, handed to ``on_dropped``)."""
        try:
            self.spill.write(batch)
        except OSError as exc:
            self.spill.close_current()
            self.metrics.inc("ticks_dropped_total", len(batch))
            if time.monotonic() - self._spill_error_logged > 60:
                self._spill_error_logged = time.monotonic()
                log.error("cannot spill to %s (%s): dropping the oldest ticks, recorded as a feed gap",
                          self.spill.directory, exc)
            if self.on_dropped:
                self.on_dropped(batch, "spill failed")
            return
        self.metrics.inc("ticks_spilled_total", len(batch))

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    # --- consumer side ---

    async def run(self) -> None:
        """Write until :meth:`close` is called and everything is stored (or the deadline hits)."""
        backoff = Backoff(self.retry_initial_s, self.retry_max_s)
        await self._drop_connection()  # a restarted run starts afresh
        while True:
            try:
                if await self._step():
                    backoff.reset()
            except db.UNAVAILABLE as exc:  # retried with backoff
                await self._drop_connection()
                self.database_error = f"{type(exc).__name__}: {exc}"[:300]
                if self.database_up or not backoff.failures:
                    log.warning("database unavailable (%s); %d ticks buffered, retrying", self.database_error,
                                self.buffered)
                self.database_up = False
                self.metrics.inc("db_errors_total")
                self.spill.close_current()
                await asyncio.sleep(backoff.next())
            if self._closing and not self._buffer and not self.spill.pending():
                break
        await self._drop_connection()

    async def _step(self) -> bool:
        """One unit of work; True if something was written."""
        if not self._closing:
            await self._connection()  # connected before the first tick, so an outage shows at once
        if self.spill.pending() and not self._buffer_is_urgent():
            await self._replay_one_file()
            return True
        arrived, batch = await self._next_batch()
        if not batch:
            return False
        try:
            await self._write(batch)
        except BaseException:
            self._buffer.put_back(batch, arrived)  # keep order; nothing lost
            raise
        self.metrics.set("queue_depth", len(self._buffer))
        return True

    def _buffer_is_urgent(self) -> bool:
        return len(self._buffer) >= self.max_buffered // 2

    async def _next_batch(self) -> tuple[float, list[Tick]]:
        """The next batch and when its oldest tick arrived."""
        if not self._buffer:
            if not self.spill.pending():
                self.idle.set()
            if self._closing:
                return 0.0, []
            self._wake.clear()
            await first_set(self._wake)
        if self._buffer and len(self._buffer) < self.batch_rows and not self._closing:
            wait = self._buffer.oldest_arrival + self.batch_s - time.monotonic()
            if wait > 0:
                self._wake.clear()
                await first_set(self._wake, timeout=wait)
        return self._buffer.take(self.batch_rows)

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await db.connect(self.dsn, timeout=10)
            if not self.database_up:
                log.info("database connected (%d ticks waiting to be written)", self.buffered)
            self.database_up, self.database_error = True, ""
        return self._conn

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None

    async def _write(self, ticks: Sequence[Tick]) -> None:
        conn = await self._connection()
        try:
            inserted = await _insert(conn, ticks)
        except asyncpg.DataError as exc:
            inserted = await self._write_one_by_one(conn, ticks, exc)
        except asyncpg.IntegrityConstraintViolationError as exc:
            inserted = await self._write_one_by_one(conn, ticks, exc)
        self.metrics.inc("ticks_written_total", inserted)
        self.metrics.inc("ticks_duplicate_total", len(ticks) - inserted)
        if self.on_committed:
            self.on_committed(ticks, time.time())

    async def _write_one_by_one(self, conn: asyncpg.Connection, ticks: Sequence[Tick], first: Exception) -> int:
        log.warning("database refused a batch of %d ticks (%s); isolating the bad rows", len(ticks), first)
        inserted = 0
        for tick in ticks:
            try:
                inserted += await conn.fetchval(INSERT_SQL, *_columns([tick]), timeout=30)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                self.spill.reject([tick], str(exc))
                self.metrics.inc("ticks_rejected_total")
                log.error("rejected tick %s %s: %s", tick.contract_id, tick.ts.isoformat(), exc)
        return inserted

    async def _replay_one_file(self) -> None:
        path = self.spill.pending()[0]
        if self.spill._current == path:
            self.spill.close_current()
        batches, bad = self.spill.read(path)
        for batch in batches:
            await self._write(batch)
            self.metrics.inc("ticks_replayed_total", len(batch))
        path.unlink()
        if bad:
            self.metrics.inc("spill_lines_quarantined_total", bad)
            log.error("%s: %d unreadable line(s) moved to quarantine.jsonl", path.name, bad)
        log.info("replayed %d spilled ticks from %s", sum(map(len, batches)), path.name)

    def close(self) -> None:
        """Stop waiting for more: ``run`` writes what is buffered, then returns."""
        self._closing = True
        self._wake.set()

    def spill_remaining(self) -> int:
        """Park everything still in memory on disk (a shutdown whose deadline passed); returns ticks."""
        ticks = self._buffer.take(len(self._buffer))[1]
        for i in range(0, len(ticks), self.batch_rows):
            self._spill(ticks[i : i + self.batch_rows])
        self.spill.close_current()
        self.metrics.set("queue_depth", 0)
        return len(ticks)
