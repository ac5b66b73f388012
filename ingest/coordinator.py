"""The coordinator: trend starts in, trading decisions out, each signal decided exactly once.

One connection LISTENs on ``trend_signals_v1``, but a notification is only a wake-up: the source
of truth is ``signals.detected_signals`` past a durable watermark, read by ``signals.coordinate``
at start, after every reconnect, on every notification and every ``poll_s``. Each batch is one
transaction that writes the decisions and advances the watermark (see that function for why no
signal is read twice or skipped), so a connection lost before COMMIT loses nothing but the batch,
which the next connection does again. Rules the database rejects (an unknown timeframe or profile,
a bad window) end ``run`` with a ConfigError instead of being retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from ingest import db
from ingest.config import ConfigError
from ingest.config import Coordinator as Settings
from ingest.metrics import Metrics
from ingest.retry import Backoff
from ingest.waiting import first_set

log = logging.getLogger(__name__)

CHANNEL = "trend_signals_v1"
BATCH_SQL = "SELECT signals.coordinate($1, $2::jsonb, $3)"


class Coordinator:
    """Runs batches until ``stop`` is set; reconnects with backoff whenever the connection goes."""

    def __init__(self, settings: Settings, dsn: str | None = None, metrics: Metrics | None = None) -> None:
        self.settings = settings
        self.dsn = dsn
        self.metrics = metrics or Metrics()
        self.rules = json.dumps([r.as_json() for r in settings.rules])
        self.through = 0  # the watermark as of the last committed batch
        self.batches = 0  # committed batches, empty ones included
        self.signals_read = 0
        self.connected = False
        self.last_batch_at = 0.0
        self._progress = asyncio.Condition()
        self._wake = asyncio.Event()
        for name, kind, text in (
            ("coordinator_batches_total", "counter", "committed batches"),
            ("coordinator_signals_total", "counter", "signals read past the watermark"),
            ("coordinator_decisions_total", "counter", "decisions written"),
            ("coordinator_reconnects_total", "counter", "connections lost or refused"),
            ("coordinator_watermark", "gauge", "last processed signal_id"),
        ):
            self.metrics.describe(name, kind, text)

    def status(self) -> tuple[bool, dict[str, Any]]:
        """Healthy when connected; the details serve ``/healthz``."""
        age = round(time.monotonic() - self.last_batch_at, 1) if self.last_batch_at else None
        return self.connected, {"connected": self.connected, "watermark": self.through,
                                "consumer": self.settings.consumer, "last_batch_age_s": age}

    async def wait_until(self, predicate: Callable[[Coordinator], bool], timeout: float = 10.0) -> None:
        """Wait until ``predicate(self)`` holds after a committed batch or a change of connection (or already does)."""
        async with self._progress:
            await asyncio.wait_for(self._progress.wait_for(lambda: predicate(self)), timeout)

    async def wait_through(self, signal_id: int, timeout: float = 10.0) -> None:
        """Wait until a committed batch has moved the watermark to ``signal_id`` or beyond."""
        await self.wait_until(lambda c: c.through >= signal_id, timeout)

    async def run(self, stop: asyncio.Event) -> None:
        """Connect, serve, and on any failure back off (doubling, with jitter) and start again."""
        backoff = Backoff(self.settings.reconnect_initial_s, self.settings.reconnect_max_s)
        while not stop.is_set():
            batches = self.batches
            try:
                conn = await asyncio.wait_for(db.connect(self.dsn), self.settings.query_timeout_s)
            except db.UNAVAILABLE as exc:
                failure = f"database unavailable ({exc}); retrying"
            else:
                try:
                    await self._serve(conn, stop)
                except db.UNAVAILABLE as exc:
                    failure = f"connection lost or batch failed ({exc}); reconnecting"
                finally:
                    conn.terminate()
                    await self._set_connected(False)
            if stop.is_set():
                break
            self.metrics.inc("coordinator_reconnects_total")
            if self.batches > batches:  # that connection did work: the failure is new, start small
                backoff.reset()
            delay = backoff.next()
            log.warning("%s in %.1f s", failure, delay)
            await first_set(stop, timeout=delay)

    async def _serve(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        self._wake.set()  # read the table first: notifications sent while away are gone
        conn.add_termination_listener(lambda _conn: self._wake.set())
        await conn.add_listener(CHANNEL, lambda *_args: self._wake.set())
        await self._set_connected(True)
        log.info("listening on %s as coordinator %r, %d rule(s)", CHANNEL, self.settings.consumer,
                 len(self.settings.rules))
        while not stop.is_set():
            await first_set(stop, self._wake, timeout=self.settings.poll_s)
            self._wake.clear()
            if conn.is_closed():
                raise ConnectionError("connection closed")
            while not stop.is_set() and await self._batch(conn) >= self.settings.batch_size:
                pass

    async def _set_connected(self, connected: bool) -> None:
        async with self._progress:
            self.connected = connected
            self._progress.notify_all()

    async def _batch(self, conn: asyncpg.Connection) -> int:
        """One transaction: decisions written, watermark advanced. Returns the signals read."""
        timeout = self.settings.query_timeout_s
        try:
            async with conn.transaction():
                raw = await conn.fetchval(BATCH_SQL, self.settings.consumer, self.rules, self.settings.batch_size,
                                          timeout=timeout)
        except (asyncpg.InvalidParameterValueError, asyncpg.InvalidDatetimeFormatError) as exc:
            raise ConfigError(f"coordinator settings rejected by the database: {exc}") from exc
        result = json.loads(raw)
        self.last_batch_at = time.monotonic()
        if result["signals"]:
            self.metrics.inc("coordinator_batches_total")
            self.metrics.inc("coordinator_signals_total", result["signals"])
            self.metrics.inc("coordinator_decisions_total", result["decisions"])
            log.info("signals %d..%d: %d decision(s)", result["from"] + 1, result["through"], result["decisions"],
                     extra={"action": "batch", **result})
        self.metrics.set("coordinator_watermark", result["through"])
        async with self._progress:
            self.through = max(self.through, result["through"])
            self.batches += 1
            self.signals_read += int(result["signals"])
            self._progress.notify_all()
        return int(result["signals"])
