"""The benchmarks' one scratch-database helper: a fresh migrated database on a given server, on
DATABASE_URL's, or on a throw-away local one (as root, as the tests start it).

Importing it also puts the repository and ``tests/`` on ``sys.path`` (``pg_server``, ``bar_data``
and the trend oracle ``trend_reference`` live there).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ingest import db, migrate  # noqa: E402


@contextmanager
def scratch_server(server_dsn: str | None = None) -> Iterator[str]:
    """A DSN of a database to create others from: ``server_dsn``, else DATABASE_URL, else the ``postgres``
    database of a throw-away server started for the block (root only)."""
    if server_dsn := server_dsn or db.database_url():
        yield server_dsn
        return
    from pg_server import RootServer

    server = RootServer()
    try:
        yield server.start().dsn("postgres")
    finally:
        server.stop()


async def _migrate(dsn: str, pause_jobs: bool) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn)
        if pause_jobs:  # no policy may refresh behind our back while we time things
            await conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs")
    finally:
        await conn.close()


@contextmanager
def scratch_database_sync(server_dsn: str | None = None, *, prefix: str = "mechtrade_bench",
                          pause_jobs: bool = True) -> Iterator[str]:
    """Yields the DSN of a new, fully migrated database (its jobs paused unless ``pause_jobs`` is false) on
    :func:`scratch_server`'s server; drops it after."""
    with ExitStack() as stack:
        admin_dsn = stack.enter_context(scratch_server(server_dsn))
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
            asyncio.run(_migrate(dsn, pause_jobs))
            yield dsn
        finally:
            with psycopg.connect(admin_dsn, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def scratch_database(server_dsn: str | None = None, *, prefix: str = "mechtrade_bench",
                           pause_jobs: bool = True) -> AsyncIterator[str]:
    """:func:`scratch_database_sync` for a coroutine (set up and dropped off the event loop)."""
    scratch = scratch_database_sync(server_dsn, prefix=prefix, pause_jobs=pause_jobs)
    dsn = await asyncio.to_thread(scratch.__enter__)
    try:
        yield dsn
    finally:
        await asyncio.to_thread(scratch.__exit__, None, None, None)
