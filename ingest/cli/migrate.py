"""``mechtrade migrate``: apply the numbered migrations once each, then the repeatable SQL."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ingest import db, migrate

log = logging.getLogger(__name__)

DESCRIPTION = ("Apply pending sql/migrations in order (each once, checksummed), then re-apply sql/functions. "
               "Safe to run again: a second run applies nothing new.")


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("migrate", help="apply database migrations and repeatable SQL", description=DESCRIPTION)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="list what would run, change nothing")
    mode.add_argument("--sql", action="store_true", help="print the exact SQL script for review or psql")
    p.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for another running migrate (default 60)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="retry for this long while the database does not accept connections yet (default 0)")
    p.add_argument("--sql-dir", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
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
