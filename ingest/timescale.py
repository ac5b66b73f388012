"""Does this server have what mechtrade needs: TimescaleDB, preloaded, with its TSL features?"""

from __future__ import annotations

import asyncpg

from ingest.errors import MechtradeError


class TimescaleUnavailable(MechtradeError):
    """The server lacks TimescaleDB or its Community (TSL) features; the message says which."""


async def check(conn: asyncpg.Connection) -> None:
    """Raise TimescaleUnavailable with a one-line reason, or return if all is there.

    The licence can only be read once the extension is loaded in this database; migration 0001
    checks it again right after CREATE EXTENSION.
    """
    available = await conn.fetchval(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    )
    if available is None:
        raise TimescaleUnavailable(
            "TimescaleDB is not installed on this PostgreSQL server "
            "(no 'timescaledb' in pg_available_extensions); install the Community build"
        )
    preload = await conn.fetchval("SELECT current_setting('shared_preload_libraries')")
    if "timescaledb" not in preload:
        raise TimescaleUnavailable(
            "TimescaleDB is installed but not preloaded: set "
            "shared_preload_libraries = 'timescaledb' and restart PostgreSQL"
        )
    licence = await conn.fetchval("SELECT current_setting('timescaledb.license', true)")
    if licence is not None and licence != "timescale":
        raise TimescaleUnavailable(
            f"TimescaleDB here is the Apache-2 edition (timescaledb.license = {licence}); "
            "continuous aggregates and jobs need the Community (TSL) build"
        )
