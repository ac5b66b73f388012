"""Database connections: from DATABASE_URL, else the standard libpq PG* variables."""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlsplit

import asyncpg

log = logging.getLogger(__name__)


def database_url(explicit: str | None = None) -> str | None:
    """The connection string to use; None lets asyncpg read PGHOST, PGUSER, PGPASSWORD, ..."""
    return explicit or os.environ.get("DATABASE_URL") or None


def describe(dsn: str | None) -> str:
    """Where a DSN points, without user or password, for logs and messages."""
    if dsn is None:
        host = os.environ.get("PGHOST", "localhost")
        return f"{host}:{os.environ.get('PGPORT', '5432')}/{os.environ.get('PGDATABASE', '')}"
    parts = urlsplit(dsn)
    host = parts.hostname or "localhost"
    return f"{host}:{parts.port or 5432}{parts.path}"


async def connect(dsn: str | None = None, **kwargs: object) -> asyncpg.Connection:
    """A connection to ``dsn``, else to what :func:`database_url` finds; ``kwargs`` go to ``asyncpg.connect``."""
    return await asyncpg.connect(database_url(dsn), **kwargs)


async def create_pool(dsn: str | None = None, **kwargs: object) -> asyncpg.Pool:
    """A connection pool, found like :func:`connect`; ``kwargs`` go to ``asyncpg.create_pool``."""
    return await asyncpg.create_pool(database_url(dsn), **kwargs)


# The database is unavailable for now: what a long-running task logs, counts and retries later. Any
# server error counts (the server may be starting, failing over, or refusing a password being fixed),
# and so do a lost connection, a timeout and a broken protocol state that asyncpg reports as its own.
UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
# Narrower, for a one-shot command waiting at start-up (``migrate --wait``): only what a server that is
# still starting (or not reachable yet) answers; anything else, a wrong password included, is final.
NOT_READY = (OSError, TimeoutError, asyncpg.CannotConnectNowError, asyncpg.ConnectionDoesNotExistError)


async def connect_when_ready(dsn: str | None, wait_s: float, retry_s: float = 1.0) -> asyncpg.Connection:
    """Connect, retrying for up to ``wait_s`` seconds while the server is not accepting connections yet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        try:
            return await connect(dsn, **({"timeout": 10.0} if wait_s > 0 else {}))
        except NOT_READY as exc:
            if loop.time() + retry_s > deadline:
                raise
            log.info("database %s not ready (%s); retrying for up to %.0f s more",
                     describe(dsn), exc, deadline - loop.time())
            await asyncio.sleep(retry_s)
