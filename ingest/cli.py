"""The ``mechtrade`` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ingest import (
    __version__,
    backfill_command,
    backtest_command,
    contracts_command,
    coordinate_command,
    db,
    demo_command,
    envfile,
    ingest_command,
    labels_command,
    load_command,
    logs,
    migrate,
    plot_command,
    serve_command,
    status_command,
    timescale,
)
from ingest.config import ConfigError, InvalidConfig
from ingest.fake_gateway import cli as fake_gateway_cli
from ingest.supervise import Fatal

log = logging.getLogger("mechtrade")

EPILOG = """\
connection: DATABASE_URL, or the standard PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE.
logs: readable text; JSON lines with --log-format json or MECHTRADE_LOG_FORMAT=json
(the default on Railway)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mechtrade",
        description="Mechanical trading on the ProjectX Gateway: ticks in, bars and signals out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mechtrade {__version__}")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--log-format", choices=["text", "json"], help="log format (default: text, json on Railway)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = commands.add_parser(
        "migrate",
        help="apply database migrations and repeatable SQL",
        description="Apply pending sql/migrations in order (each once, checksummed), then re-apply "
        "sql/functions. Safe to run again: a second run applies nothing new.",
    )
    mode = m.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list what would run, change nothing")
    mode.add_argument("--sql", action="store_true", help="print the exact SQL script for review or psql")
    m.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for another running migrate (default 60)")
    m.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="retry for this long while the database does not accept connections yet (default 0)")
    m.add_argument("--sql-dir", type=Path, help=argparse.SUPPRESS)
    m.set_defaults(run=run_migrate)
    fake_gateway_cli.add_parser(commands)
    ingest_command.add_parser(commands)
    backfill_command.add_parser(commands)
    load_command.add_parser(commands)
    contracts_command.add_parser(commands)
    coordinate_command.add_parser(commands)
    demo_command.add_parser(commands)
    plot_command.add_parser(commands)
    labels_command.add_parser(commands)
    serve_command.add_parser(commands)
    status_command.add_parser(commands)
    backtest_command.add_parser(commands)
    return parser


async def run_migrate(args: argparse.Namespace) -> int:
    dsn = db.database_url()
    conn = await db.connect_when_ready(dsn, args.wait)
    try:
        if args.dry_run or args.sql:
            plan = await migrate.plan_only(conn, args.sql_dir)
            if args.sql:
                sys.stdout.write(migrate.render_script(plan))
            else:
                for m in plan.pending:
                    print(f"apply     {m.name}{'' if m.transactional else '  (outside a transaction)'}")
                for r in plan.repeatable:
                    print(f"re-apply  functions/{r.name}")
                print(f"{len(plan.pending)} pending, {plan.applied_count} already applied")
            return 0
        plan = await migrate.migrate(conn, args.sql_dir, lock_timeout_s=args.lock_timeout)
    finally:
        await conn.close()
    log.info("database %s is up to date: %d migration(s) applied now, %d before, %d repeatable file(s) re-applied",
             db.describe(dsn), len(plan.pending), plan.applied_count, len(plan.repeatable))
    return 0


def main(argv: list[str] | None = None) -> int:
    envfile.load()
    args = build_parser().parse_args(argv)
    logs.configure(args.log_level, args.log_format)
    envfile.warn_unknown()
    try:
        return asyncio.run(args.run(args))
    except InvalidConfig as exc:  # one line per problem
        for problem in exc.problems:
            log.error("%s", problem)
        return 1
    except Fatal as exc:
        log.error("stopped: %s", exc)
        return 1
    except (migrate.MigrationError, timescale.TimescaleUnavailable, ConfigError) as exc:
        log.error("%s", exc)
        return 2
    except (OSError, db.asyncpg.PostgresError) as exc:
        log.error("database error: %s", exc)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
