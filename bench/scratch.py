"""A scratch database for a benchmark: on DATABASE_URL's server, or a throw-away local one (as root)."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from ingest import db, migrate  # noqa: E402


@asynccontextmanager
async def scratch_database() -> AsyncIterator[str]:
    """Yields the DSN of a new, fully migrated database with its policies paused; drops it after."""
    admin_dsn = db.database_url()
    server = None
    if admin_dsn is None:
        from pg_server import RootServer

        server = RootServer()
        admin_dsn = server.start().dsn("postgres")
    name = f"mechtrade_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await asyncpg.connect(dsn)
        await migrate.migrate(conn)
        # No policy may refresh behind our back while we time things.
        await conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs")
        await conn.close()
        yield dsn
    finally:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
        if server:
            server.stop()
