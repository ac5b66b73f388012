"""Test harness: a real PostgreSQL + TimescaleDB (TSL) server, one fresh migrated database per test.

Where the server comes from, in order:
1. ``MECHTRADE_TEST_DSN`` names an existing server (any database on it; we create our own);
2. as root: a throw-away server started as the ``postgres`` user (``pg_server.RootServer``);
3. otherwise pytest-postgresql's ``postgresql_proc`` starts one with timescaledb preloaded.

Without TimescaleDB's TSL features the database tests skip with one line saying why; under
``CI=true`` that ends the run as a failure instead.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest
from pytest_postgresql import factories
from pytest_postgresql.janitor import DatabaseJanitor

from ingest import migrate, timescale
from pg_server import RootServer, Server, is_root

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"

postgresql_proc = factories.postgresql_proc(
    port=None, postgres_options="-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
)


def skip_or_fail(reason: str) -> None:
    """Skip a test this machine cannot run; under CI=true, fail it instead: CI never skips silently."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def _unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.exit(f"CI=true and TimescaleDB with TSL is unavailable: {reason}", returncode=1)
    pytest.skip(f"database tests need PostgreSQL with TimescaleDB (TSL): {reason}")


def _server_from_dsn(dsn: str) -> Server:
    parts = urlsplit(dsn)
    return Server(parts.hostname or "127.0.0.1", parts.port or 5432, parts.username or "postgres", parts.password)


async def _probe(server: Server) -> None:
    """Create the extension in a scratch database and check its licence."""
    name = f"mechtrade_probe_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            conn = await asyncpg.connect(server.dsn(name))
            try:
                await timescale.check(conn)
                await conn.execute("CREATE EXTENSION timescaledb")
                await timescale.check(conn)
            finally:
                await conn.close()
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
def pg_server(request: pytest.FixtureRequest) -> Server:
    """A running server with TimescaleDB (TSL) preloaded."""
    if dsn := os.environ.get("MECHTRADE_TEST_DSN"):
        server = _server_from_dsn(dsn)
    elif is_root():
        root_server = RootServer()
        try:
            server = root_server.start()
        except (OSError, RuntimeError) as exc:
            root_server.stop()
            _unavailable(f"could not start a local server: {exc}")
        request.addfinalizer(root_server.stop)
    else:
        proc = request.getfixturevalue("postgresql_proc")
        server = Server(proc.host, int(proc.port), proc.user, proc.password)
    try:
        asyncio.run(_probe(server))
    except (timescale.TimescaleUnavailable, OSError, asyncpg.PostgresError) as exc:
        _unavailable(str(exc))
    return server


def _janitor(server: Server, dbname: str, **kwargs: object) -> DatabaseJanitor:
    return DatabaseJanitor(
        user=server.user, host=server.host, port=server.port, password=server.password, dbname=dbname, **kwargs
    )


async def _migrate(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn, SQL_DIR)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def migrated_template(pg_server: Server) -> Iterator[str]:
    """A template database with every migration and repeatable file applied (this checkout's sql/ as it is now).

    TimescaleDB starts no job scheduler in template databases, so cloning never finds it busy.
    """
    name = f"mechtrade_tmpl_{uuid.uuid4().hex[:8]}"
    janitor = _janitor(pg_server, name, as_template=True)
    janitor.init()
    try:
        asyncio.run(_migrate(pg_server.dsn(name)))
        # Nobody may connect to it any more: CREATE DATABASE ... TEMPLATE needs it idle.
        with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        yield name
    finally:
        janitor.drop()


@contextmanager
def fresh_database(server: Server, template: str | None = None) -> Iterator[str]:
    """A new database (a clone of ``template`` if given), dropped afterwards; yields its DSN."""
    name = f"mechtrade_test_{uuid.uuid4().hex[:10]}"
    janitor = _janitor(server, name, template_dbname=template)
    janitor.init()
    try:
        yield server.dsn(name)
    finally:
        janitor.drop()


@pytest.fixture
def db_dsn(pg_server: Server, migrated_template: str) -> Iterator[str]:
    """DSN of a fresh, fully migrated database of this test's own."""
    with fresh_database(pg_server, migrated_template) as dsn:
        yield dsn


@pytest.fixture
def empty_db_dsn(pg_server: Server) -> Iterator[str]:
    """DSN of a fresh database with nothing applied (for migration tests)."""
    with fresh_database(pg_server) as dsn:
        yield dsn


@pytest.fixture
def sql(db_dsn: str) -> Iterator[psycopg.Connection]:
    """An autocommit psycopg connection to this test's database, for setup and assertions."""
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        yield conn


@pytest.fixture
def own_server() -> Iterator[RootServer]:
    """A database server of this test's own, to stop and restart (root only)."""
    if not is_root():
        skip_or_fail("restarting a server needs our own throw-away server (root only)")
    server = RootServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()
