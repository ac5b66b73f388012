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
from urllib.parse import urlsplit

import asyncpg
import psycopg
import pytest
from pytest_postgresql import factories

from helpers import SQL_DIR, fresh_database, janitor, skip_or_fail
from ingest import migrate, timescale
from pg_server import RootServer, Server, is_root

# Fixtures that reach a database server (a fixture starting a server of its own belongs here): a
# test using any of them, directly or through another fixture, is marked ``db``, so
# ``pytest -m "not db"`` runs the rest on a machine without PostgreSQL.
DB_FIXTURES = frozenset({"pg_server", "postgresql_proc", "migrated_template", "db_dsn", "empty_db_dsn", "sql",
                         "own_server", "plain_postgres", "starved_server"})
# MECHTRADE_* variables that tell the tests where their tools are; every other one is cleared per test.
HARNESS_VARIABLES = frozenset({"MECHTRADE_TEST_DSN", "MECHTRADE_PROJECTX_PY", "MECHTRADE_SCREENSHOT", "MECHTRADE_CHART_JS"})

postgresql_proc = factories.postgresql_proc(
    port=None, postgres_options="-c shared_preload_libraries=timescaledb -c timescaledb.telemetry_level=off"
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if DB_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.db)


@pytest.fixture(autouse=True)
def _no_mechtrade_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's shell (or an exported .env) changes no result: no MECHTRADE_* settings in a test."""
    for name in list(os.environ):
        if name.startswith("MECHTRADE_") and name not in HARNESS_VARIABLES:
            monkeypatch.delenv(name)


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
    template = janitor(pg_server, name, as_template=True)
    template.init()
    try:
        asyncio.run(_migrate(pg_server.dsn(name)))
        # Nobody may connect to it any more: CREATE DATABASE ... TEMPLATE needs it idle.
        with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
        yield name
    finally:
        template.drop()


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
