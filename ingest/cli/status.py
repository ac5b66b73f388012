"""``mechtrade status``: ticks, bars, feed gaps, trend jobs, worker slots and tick storage at a glance."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ingest import config, db, status

DESCRIPTION = f"""\
Print, for each configured contract and each contract with a trend job: the last stored tick and
its age, the last closed 1m bar and the open feed gaps; for each trend job: its last run, its last
success (as the job recorded it), the failed runs since, its next start and how far it has
analysed; then the background-worker slots the jobs need against those available, and the tick
storage (chunks, compression, retention). Times are UTC.

exit status: 0 healthy; 1 when a problem is listed under "health" (a subscribed contract without
a tick for {status.STALE_TICKS_S:.0f} s in session, a trend job with {status.MAX_JOB_FAILURES} failed runs in a row or
more than {status.MAX_BARS_BEHIND} closed bars behind, too few worker slots)."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("status", help="data freshness, trend jobs and worker slots at a glance",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help=config.FILE_HELP)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    path = config.config_file(args.config)
    cfg = config.load(path)
    conn = await db.connect(db.database_url())
    try:
        contracts = await status.streamed(conn, cfg.contracts, cfg.roots)
        snap = await status.read(conn, contracts)
    finally:
        await conn.close()
    found = status.problems(snap, contracts)
    sys.stdout.write(status.render(snap, found, str(path)))
    return 1 if found else 0
