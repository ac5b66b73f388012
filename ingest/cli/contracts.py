"""``mechtrade contracts SEARCH``: find contract ids through the gateway's contract search."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ingest import config, text_table
from ingest.projectx import Contract, GatewayError, ProjectXClient

log = logging.getLogger(__name__)

DESCRIPTION = """\
Search the gateway's contracts by id, name or description (at most 20 results) and print
their ids, names, descriptions and tick size/value. Active contracts are marked with *.

credentials: PROJECTX_USERNAME and PROJECTX_API_KEY (environment only).

example:
  mechtrade contracts MES"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("contracts", help="search contract ids (e.g. 'mechtrade contracts MES')",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("search", metavar="SEARCH", help="text to look for, e.g. MES or 'E-mini'")
    p.add_argument("--live", action="store_true", help="search the live market-data catalogue (default: sim)")
    p.add_argument("--config", type=Path, help=config.FILE_HELP)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    cfg.credentials.require()
    async with ProjectXClient(cfg.gateway.rest_url, cfg.credentials, live=args.live,
                              token_refresh_s=cfg.gateway.token_refresh_s) as client:
        try:
            found = await client.search_contracts(args.search)
        except GatewayError as exc:
            log.error("contract search failed: %s", exc)
            return 1
    print(table(found) if found else f"no contract matches {args.search!r}")
    return 0


def table(contracts: list[Contract]) -> str:
    """Contracts as an aligned text table."""
    rows = [("", "id", "name", "description", "tick size", "tick value")]
    rows += [("*" if c.active else "", c.id, c.name, c.description, f"{c.tick_size.normalize():f}",
              f"{c.tick_value.normalize():f}") for c in contracts]
    return "\n".join(text_table.table(rows))
