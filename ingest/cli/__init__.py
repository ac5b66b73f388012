"""The ``mechtrade`` command line: one module per command, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import asyncio
import logging

from ingest import __version__, db, envfile, logs
from ingest.cli import (
    backfill,
    backtest,
    contracts,
    coordinate,
    demo,
    fake_gateway,
    ingest,
    labels,
    load,
    migrate,
    plot,
    serve,
    status,
)
from ingest.config import InvalidConfig
from ingest.errors import MechtradeError
from ingest.supervise import Fatal

log = logging.getLogger(__name__)

# In the order ``mechtrade --help`` lists them.
COMMANDS = (migrate, fake_gateway, ingest, backfill, load, contracts, coordinate, demo, plot, labels, serve,
            status, backtest)
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
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


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
    except MechtradeError as exc:
        log.error("%s", exc)
        return 2
    except db.UNAVAILABLE as exc:
        log.error("database error: %s", exc)
        return 2
    except KeyboardInterrupt:
        return 130

