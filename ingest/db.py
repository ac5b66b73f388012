"""Database connections: from DATABASE_URL, else the standard libpq PG* variables."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import asyncpg


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
    return await asyncpg.connect(database_url(dsn), **kwargs)
