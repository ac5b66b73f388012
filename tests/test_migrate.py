"""``mechtrade migrate``: once-only checksummed migrations, repeatables, locking, psql scripts,
and clear refusals."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import psycopg
import pytest

from ingest import migrate
from helpers import skip_or_fail
from pg_server import RootServer, Server, free_port, is_root
from tcp_proxy import TcpProxy

REPO_SQL = Path(__file__).resolve().parents[1] / "sql"


@pytest.fixture
def sql_dir(tmp_path: Path) -> Path:
    """A private copy of sql/, free to edit."""
    return Path(shutil.copytree(REPO_SQL, tmp_path / "sql"))


def run_migrate(dsn: str, sql_dir: Path, **kwargs: float) -> migrate.Plan:
    async def go() -> migrate.Plan:
        conn = await asyncpg.connect(dsn)
        try:
            return await migrate.migrate(conn, sql_dir, **kwargs)
        finally:
            await conn.close()

    return asyncio.run(go())


def cli(dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "MECHTRADE_LOG_FORMAT": "text"}
    return subprocess.run(
        [sys.executable, "-m", "ingest.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


def applied(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT filename, checksum FROM internal.schema_migrations ORDER BY 1").fetchall()


def test_second_run_applies_nothing(empty_db_dsn: str, sql_dir: Path) -> None:
    first = run_migrate(empty_db_dsn, sql_dir)
    assert [m.name for m in first.pending] == sorted(p.name for p in (sql_dir / "migrations").glob("*.sql"))
    recorded = applied(empty_db_dsn)
    second = run_migrate(empty_db_dsn, sql_dir)
    assert second.pending == [] and second.applied_count == len(first.pending)
    assert applied(empty_db_dsn) == recorded
    assert recorded == [(m.name, m.checksum) for m in first.pending]


def test_edited_migration_is_refused_naming_the_file(empty_db_dsn: str, sql_dir: Path) -> None:
    run_migrate(empty_db_dsn, sql_dir)
    edited = sql_dir / "migrations" / "0003_ticks.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(migrate.MigrationError, match="0003_ticks.sql was edited after it was applied"):
        run_migrate(empty_db_dsn, sql_dir)
    result = cli(empty_db_dsn, "migrate", "--sql-dir", str(sql_dir))
    assert result.returncode == 2
    assert "0003_ticks.sql was edited" in result.stderr and "Traceback" not in result.stderr


def test_a_database_migrated_before_a_listed_comment_correction_still_matches(empty_db_dsn: str,
                                                                            sql_dir: Path) -> None:
    run_migrate(empty_db_dsn, sql_dir)
    (name, (earlier,)), = migrate.load_amendments(sql_dir).items()
    with psycopg.connect(empty_db_dsn) as conn:  # as recorded by the file before its correction
        conn.execute("UPDATE internal.schema_migrations SET checksum = %s WHERE filename = %s", (earlier, name))
    assert run_migrate(empty_db_dsn, sql_dir).pending == []
    with psycopg.connect(empty_db_dsn) as conn:  # any other checksum is still an edit
        conn.execute("UPDATE internal.schema_migrations SET checksum = %s WHERE filename = %s", ("0" * 64, name))
    with pytest.raises(migrate.MigrationError, match=f"{name} was edited after it was applied"):
        run_migrate(empty_db_dsn, sql_dir)


def test_each_listed_earlier_version_differs_from_the_file_in_comments_only() -> None:
    def code(text: str) -> list[str]:
        return [line for line in text.splitlines() if not line.lstrip().startswith("--")]

    for name, checksums in migrate.load_amendments(REPO_SQL).items():
        path = f"sql/migrations/{name}"
        commits = subprocess.run(["git", "log", "--format=%H", "--", path], cwd=REPO_SQL.parent, check=True,
                                 capture_output=True, text=True).stdout.split()
        versions = {}
        for commit in commits:
            body = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO_SQL.parent, check=True,
                                  capture_output=True, text=True).stdout
            versions[hashlib.sha256(body.encode()).hexdigest()] = body
        current = (REPO_SQL / "migrations" / name).read_text()
        for checksum in checksums:
            assert checksum in versions, f"{name}: no commit holds the version with checksum {checksum}"
            assert code(versions[checksum]) == code(current), f"{name}: {checksum} differs in more than comments"


def test_new_migration_and_changed_repeatable_are_picked_up(empty_db_dsn: str, sql_dir: Path) -> None:
    run_migrate(empty_db_dsn, sql_dir)
    (sql_dir / "migrations" / "0999_extra.sql").write_text("CREATE TABLE market.extra (id int);\n")
    view = sql_dir / "functions" / "market.session_bar_end.sql"
    view.write_text(view.read_text().replace("'Close time of", "'(v2) Close time of"))
    plan = run_migrate(empty_db_dsn, sql_dir)
    assert [m.name for m in plan.pending] == ["0999_extra.sql"]
    with psycopg.connect(empty_db_dsn) as conn:
        comment = conn.execute(
            "SELECT obj_description('market.session_bar_end(text, timestamptz)'::regprocedure)"
        ).fetchone()[0]
    assert comment.startswith("(v2)")


def test_failed_migration_leaves_nothing_behind(empty_db_dsn: str, sql_dir: Path) -> None:
    run_migrate(empty_db_dsn, sql_dir)
    (sql_dir / "migrations" / "0999_broken.sql").write_text(
        "CREATE TABLE market.half (id int);\nSELECT 1 / 0;\n"
    )
    with pytest.raises(migrate.MigrationError, match="0999_broken.sql failed: division by zero"):
        run_migrate(empty_db_dsn, sql_dir)
    with psycopg.connect(empty_db_dsn) as conn:
        assert conn.execute("SELECT to_regclass('market.half')").fetchone() == (None,)
    assert "0999_broken.sql" not in dict(applied(empty_db_dsn))


def test_no_transaction_migration_can_refresh_a_continuous_aggregate(empty_db_dsn: str, sql_dir: Path) -> None:
    run_migrate(empty_db_dsn, sql_dir)
    body = (
        "INSERT INTO market.ticks (contract_id, ts, price, size, side)\n"
        "VALUES ('X', '2025-06-02 14:00Z', 6000, 3, 0);\n"
        "CALL refresh_continuous_aggregate('market.bars_1m', '2025-06-02', '2025-06-03');\n"
    )
    (sql_dir / "migrations" / "0998_in_txn.sql").write_text(body)
    with pytest.raises(migrate.MigrationError, match="0998_in_txn.sql failed: .*transaction block"):
        run_migrate(empty_db_dsn, sql_dir)
    (sql_dir / "migrations" / "0998_in_txn.sql").unlink()
    (sql_dir / "migrations" / "0998_refresh.sql").write_text("-- migrate: no-transaction\n" + body)
    run_migrate(empty_db_dsn, sql_dir)
    with psycopg.connect(empty_db_dsn) as conn:
        assert conn.execute("SELECT volume FROM market.bars_1m").fetchall() == [(3,)]


def test_dry_run_lists_and_changes_nothing(empty_db_dsn: str, sql_dir: Path) -> None:
    result = cli(empty_db_dsn, "migrate", "--dry-run", "--sql-dir", str(sql_dir))
    assert result.returncode == 0, result.stderr
    assert "apply     0001_timescaledb_and_schemas.sql" in result.stdout
    assert "re-apply  functions/market.bars.sql" in result.stdout
    with psycopg.connect(empty_db_dsn) as conn:
        assert conn.execute("SELECT to_regclass('internal.schema_migrations')").fetchone() == (None,)


def test_sql_script_applied_with_psql_equals_migrate(empty_db_dsn: str, pg_server: Server, sql_dir: Path) -> None:
    script = cli(empty_db_dsn, "migrate", "--sql", "--sql-dir", str(sql_dir))
    assert script.returncode == 0, script.stderr
    psql = subprocess.run(
        ["psql", "-X", "-q", "-d", empty_db_dsn], input=script.stdout, capture_output=True, text=True, timeout=120
    )
    assert psql.returncode == 0, psql.stderr
    assert [name for name, _ in applied(empty_db_dsn)] == sorted(p.name for p in (sql_dir / "migrations").glob("*.sql"))
    assert run_migrate(empty_db_dsn, sql_dir).pending == [], "migrate agrees the psql run applied everything"


def test_concurrent_migrators_apply_each_migration_once(empty_db_dsn: str, sql_dir: Path) -> None:
    async def both() -> list[migrate.Plan]:
        conns = [await asyncpg.connect(empty_db_dsn) for _ in range(2)]
        try:
            return await asyncio.gather(*(migrate.migrate(c, sql_dir) for c in conns))
        finally:
            for c in conns:
                await c.close()

    plans = asyncio.run(both())
    assert sorted(len(p.pending) for p in plans) == [0, len(list((sql_dir / "migrations").glob("*.sql")))]


def test_busy_lock_times_out_cleanly(empty_db_dsn: str, sql_dir: Path) -> None:
    with psycopg.connect(empty_db_dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (migrate.LOCK_KEY,))
        with pytest.raises(migrate.MigrationError, match="another migrate still holds the migration lock"):
            run_migrate(empty_db_dsn, sql_dir, lock_timeout_s=0.3)
    with psycopg.connect(empty_db_dsn) as conn:
        assert conn.execute("SELECT to_regclass('internal.schema_migrations')").fetchone() == (None,)


@pytest.fixture(scope="module")
def plain_postgres() -> Iterator[Server]:
    """A server without TimescaleDB preloaded."""
    if not is_root():
        skip_or_fail("starting an extra server without timescaledb needs root here")
    server = RootServer(without=("shared_preload_libraries",))
    try:
        yield server.start()
    finally:
        server.stop()


def test_without_preloaded_timescaledb_migrate_says_so(plain_postgres: Server) -> None:
    result = cli(plain_postgres.dsn("postgres"), "migrate")
    assert result.returncode == 2
    assert "not preloaded" in result.stderr and "shared_preload_libraries" in result.stderr
    assert "Traceback" not in result.stderr


def test_apache_only_timescaledb_is_refused(empty_db_dsn: str, sql_dir: Path) -> None:
    dbname = empty_db_dsn.rsplit("/", 1)[1]
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        conn.execute(f"ALTER DATABASE \"{dbname}\" SET timescaledb.license = 'apache'")
    result = cli(empty_db_dsn, "migrate", "--sql-dir", str(sql_dir))
    assert result.returncode == 2
    assert "Apache-2 edition" in result.stderr and "Community" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_waits_for_a_database_that_is_not_listening_yet(empty_db_dsn: str, pg_server: Server) -> None:
    """As in compose on a fresh volume: the server accepts TCP only after its init phase."""
    port = free_port()
    dsn = empty_db_dsn.replace(f":{pg_server.port}/", f":{port}/")

    async def go() -> tuple[int, str]:
        env = {**os.environ, "DATABASE_URL": dsn, "MECHTRADE_LOG_FORMAT": "text"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ingest.cli", "migrate", "--wait", "60", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        first = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        assert "not ready" in first, first
        proxy = TcpProxy(pg_server.host, pg_server.port)
        proxy.port = port
        await proxy.up()
        try:
            _, err = await asyncio.wait_for(proc.communicate(), 120)
        finally:
            await proxy.down()
        return proc.returncode, first + err.decode()

    returncode, stderr = asyncio.run(go())
    assert returncode == 0, stderr
    assert "is up to date" in stderr
    assert len(applied(empty_db_dsn)) == len(list((REPO_SQL / "migrations").glob("*.sql")))
