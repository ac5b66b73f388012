"""Bar maintenance from Python: re-materializing bars after loading or repairing older ticks."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg

from ingest.retry import Backoff

log = logging.getLogger(__name__)


async def refresh_bars(conn: asyncpg.Connection, start: datetime, end: datetime, *, deadline_s: float = 60.0) -> int:
    """``CALL market.refresh_bars(start, end)``, retried while a policy refreshes an overlapping window.

    TimescaleDB refuses (SQLSTATE 55P03) rather than waits when another refresh of the same
    continuous aggregate covers an overlapping window; policies run every minute, so a caller
    refreshing recent bars meets them. Returns the number of attempts it took.
    """
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline_s
    backoff = Backoff(0.05, 1.0)
    while True:
        try:
            await conn.execute("CALL market.refresh_bars($1, $2)", start, end)
            return backoff.failures + 1
        except asyncpg.LockNotAvailableError as exc:
            delay = backoff.next()
            if loop.time() + delay > give_up:
                raise
            log.debug("refresh of [%s, %s) waits for a concurrent refresh: %s", start, end, exc)
            await asyncio.sleep(delay)
