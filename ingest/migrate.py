"""The migration runner behind ``mechtrade migrate``.

``sql/migrations/NNNN_description.sql`` run once each, in order, recorded with a SHA-256 checksum
in ``internal.schema_migrations``; an applied file that was edited since is refused, unless
``sql/migrations/amendments.txt`` lists its recorded checksum as an earlier version (a correction
of comments only, which a test checks against the git history). Then every
repeatable file of ``sql/functions/`` is re-applied in the order ``sql/functions/order.txt``
declares. A migration whose first line is ``-- migrate: no-transaction`` runs statement by
statement outside a transaction (for TimescaleDB's refresh procedures); all others run in one
transaction together with their bookkeeping row.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from ingest import resources, timescale
from ingest.errors import MechtradeError
from ingest.sqlsplit import split_statements
from ingest.status import slot_problems, worker_budget

log = logging.getLogger(__name__)

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
NO_TRANSACTION_MARKER = "-- migrate: no-transaction"
ORDER_FILE = "order.txt"
AMENDMENTS_FILE = "amendments.txt"
# pg_advisory_lock key shared by every migrator ("mech" in ASCII).
LOCK_KEY = 0x6D656368


class MigrationError(MechtradeError):
    """A migration cannot proceed; the message names the file and what to do."""


@dataclass(frozen=True)
class SqlFile:
    path: Path
    body: str
    earlier_checksums: frozenset[str] = frozenset()  # of versions that differ in comments only

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.body.encode()).hexdigest()

    @property
    def transactional(self) -> bool:
        return not self.body.lstrip().startswith(NO_TRANSACTION_MARKER)


@dataclass(frozen=True)
class Plan:
    pending: list[SqlFile]
    repeatable: list[SqlFile]
    applied_count: int


def default_sql_dir() -> Path:
    """``sql/`` shipped inside the package (wheel), else the repository's own ``sql/``."""
    return resources.sql_dir()


def load_migrations(sql_dir: Path) -> list[SqlFile]:
    files = sorted((sql_dir / "migrations").glob("*.sql"))
    seen: dict[str, str] = {}
    for path in files:
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_description.sql")
        if match.group(1) in seen:
            raise MigrationError(f"{path.name}: number {match.group(1)} is already used by {seen[match.group(1)]}")
        seen[match.group(1)] = path.name
    amended = load_amendments(sql_dir)
    return [SqlFile(path, path.read_text(), amended.get(path.name, frozenset())) for path in files]


def load_amendments(sql_dir: Path) -> dict[str, frozenset[str]]:
    """``amendments.txt``: per migration file, the checksums of its earlier versions (``FILE SHA256``
    lines; ``#`` starts a comment)."""
    path = sql_dir / "migrations" / AMENDMENTS_FILE
    earlier: dict[str, set[str]] = {}
    for line in path.read_text().splitlines() if path.is_file() else []:
        if fields := line.split("#", 1)[0].split():
            if len(fields) != 2:
                raise MigrationError(f"{AMENDMENTS_FILE}: expected 'FILE SHA256', got {line.strip()!r}")
            earlier.setdefault(fields[0], set()).add(fields[1])
    return {name: frozenset(checksums) for name, checksums in earlier.items()}


def load_repeatables(sql_dir: Path) -> list[SqlFile]:
    directory = sql_dir / "functions"
    lines = (directory / ORDER_FILE).read_text().splitlines()
    names = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    on_disk = {p.name for p in directory.glob("*.sql")}
    if missing := [n for n in names if n not in on_disk]:
        raise MigrationError(f"{ORDER_FILE} lists files that do not exist: {', '.join(missing)}")
    if unlisted := sorted(on_disk - set(names)):
        raise MigrationError(f"{', '.join(unlisted)}: not listed in sql/functions/{ORDER_FILE}")
    return [SqlFile(directory / n, (directory / n).read_text()) for n in names]


async def applied_checksums(conn: asyncpg.Connection) -> dict[str, str]:
    exists = await conn.fetchval("SELECT to_regclass('internal.schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT filename, checksum FROM internal.schema_migrations")
    return {r["filename"]: r["checksum"] for r in rows}


def make_plan(migrations: list[SqlFile], repeatable: list[SqlFile], applied: dict[str, str]) -> Plan:
    known = {m.name for m in migrations}
    if vanished := sorted(set(applied) - known):
        raise MigrationError(f"applied migrations are missing from sql/migrations: {', '.join(vanished)}")
    for m in migrations:
        if m.name in applied and applied[m.name] not in {m.checksum, *m.earlier_checksums}:
            raise MigrationError(
                f"{m.name} was edited after it was applied (checksum differs). Applied migrations "
                "are immutable: restore the file and put the change in a new migration."
            )
    pending = [m for m in migrations if m.name not in applied]
    return Plan(pending=pending, repeatable=repeatable, applied_count=len(applied))


RECORD_SQL = "INSERT INTO internal.schema_migrations (filename, checksum) VALUES ($1, $2)"


def render_script(plan: Plan) -> str:
    """The exact SQL ``migrate`` would run, as a psql script a DBA can review and apply."""
    out = ["-- mechtrade migrate: review, then apply with  psql -v ON_ERROR_STOP=1 -f FILE",
           r"\set ON_ERROR_STOP on", ""]
    for m in plan.pending:
        record = f"INSERT INTO internal.schema_migrations (filename, checksum) VALUES ('{m.name}', '{m.checksum}');"
        out.append(f"-- ==== migration {m.name}")
        if m.transactional:
            out += ["BEGIN;", m.body.rstrip(), record, "COMMIT;", ""]
        else:
            out += [m.body.rstrip(), record, ""]
    for r in plan.repeatable:
        out += [f"-- ==== repeatable {r.name}", "BEGIN;", r.body.rstrip(), "COMMIT;", ""]
    return "\n".join(out)


async def _take_lock(conn: asyncpg.Connection, lock_timeout_s: float) -> None:
    if await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
        return
    log.info("another migrate is running; waiting up to %.0f s for it to finish", lock_timeout_s)
    await conn.execute(f"SET lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    except asyncpg.LockNotAvailableError:
        raise MigrationError(
            f"another migrate still holds the migration lock after {lock_timeout_s:.0f} s; nothing was applied"
        ) from None
    finally:
        await conn.execute("RESET lock_timeout")


async def _apply_file(conn: asyncpg.Connection, sql_file: SqlFile, record: bool) -> None:
    try:
        if sql_file.transactional:
            async with conn.transaction():
                await conn.execute(sql_file.body)
                if record:
                    await conn.execute(RECORD_SQL, sql_file.name, sql_file.checksum)
        else:
            for statement in split_statements(sql_file.body):
                await conn.execute(statement)
            await conn.execute(RECORD_SQL, sql_file.name, sql_file.checksum)
    except asyncpg.PostgresError as exc:
        hint = f" (hint: {exc.hint})" if getattr(exc, "hint", None) else ""
        raise MigrationError(f"{sql_file.name} failed: {exc}{hint}") from exc


async def migrate(
    conn: asyncpg.Connection,
    sql_dir: Path | None = None,
    *,
    lock_timeout_s: float = 60.0,
) -> Plan:
    """Apply pending migrations and all repeatable files; return what was planned."""
    sql_dir = sql_dir or default_sql_dir()
    migrations, repeatable = load_migrations(sql_dir), load_repeatables(sql_dir)
    await timescale.check(conn)
    await _take_lock(conn, lock_timeout_s)
    try:
        plan = make_plan(migrations, repeatable, await applied_checksums(conn))
        for m in plan.pending:
            log.info("applying migration %s", m.name, extra={"migration": m.name})
            await _apply_file(conn, m, record=True)
        for r in plan.repeatable:
            log.debug("re-applying %s", r.name)
            await _apply_file(conn, r, record=False)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    await warn_worker_slots(conn)
    return plan


async def warn_worker_slots(conn: asyncpg.Connection) -> None:
    """Log the worker budget of this database's jobs, and a warning when the server's settings cannot run them."""
    slots = await conn.fetchrow("SELECT * FROM internal.worker_slots()")
    log.info("%s", worker_budget(slots))
    for problem in slot_problems(slots):
        log.warning("%s", problem.message)


async def plan_only(conn: asyncpg.Connection, sql_dir: Path | None = None) -> Plan:
    """What ``migrate`` would do, without doing it."""
    sql_dir = sql_dir or default_sql_dir()
    return make_plan(load_migrations(sql_dir), load_repeatables(sql_dir), await applied_checksums(conn))
