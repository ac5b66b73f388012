"""``mechtrade backfill``: import gateway history bars for contracts and timeframes, then a summary."""

from __future__ import annotations

import argparse
import itertools
import logging
from datetime import UTC, datetime
from pathlib import Path

from ingest import config, db
from ingest.backfill import BackfillResult, backfill, utc_text
from ingest.cli.shared import utc_time
from ingest.config import ConfigError
from ingest.errors import MechtradeError
from ingest.projectx import LOGIN, MAX_BARS, GatewayError, ProjectXClient
from ingest.rolls import RollSettings, resolve_fronts
from ingest.text_table import table

log = logging.getLogger(__name__)

DESCRIPTION = """\
Fetch OHLCV bars from the gateway's REST history (retrieveBars) into market.history_bars,
newest page first, from --until (default: now) back to --since. Re-running stores nothing twice;
an interrupted run continues where it stopped when started again with the same --since.
Requests stay within gateway.history_requests_per_30s; HTTP 429 waits as told and goes on.
One progress line per page on stderr (JSON with --log-format json), a summary on stdout.

credentials: PROJECTX_USERNAME and PROJECTX_API_KEY (environment only).

example:
  mechtrade backfill --contract CON.F.US.MES.M25 --timeframe 5m --timeframe 1d --since 2025-03-16"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("backfill", help="import gateway history bars into market.history_bars",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--contract", action="append", metavar="ID",
                   help="contract id, e.g. CON.F.US.MES.M25 (repeatable; default: the configured contracts and "
                   "the front month of each configured root)")
    p.add_argument("--timeframe", action="append", metavar="TF",
                   help="1m, 5m, 15m, 1h, 4h or 1d (repeatable; default: backfill.timeframes of the config)")
    p.add_argument("--since", type=utc_time, required=True, metavar="TIME",
                   help="oldest bar start to fetch, e.g. 2025-03-16 or 2025-03-16T22:00Z (UTC unless an offset)")
    p.add_argument("--until", type=utc_time, metavar="TIME", help="newest bar start to fetch (default: now)")
    p.add_argument("--page-limit", type=int, metavar="N",
                   help=f"bars per request, 1..{MAX_BARS} (default: backfill.page_limit of the config)")
    p.add_argument("--config", type=Path, help=config.FILE_HELP)
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    cfg.credentials.require()
    if not (args.contract or cfg.contracts or cfg.roots):
        raise ConfigError("no contract: give --contract or configure roots or contracts")
    timeframes = args.timeframe or list(cfg.backfill.timeframes)
    until = args.until or datetime.now(UTC)
    if args.since > until:
        raise ConfigError(f"--since {args.since.isoformat()} is after --until {until.isoformat()}")
    page_limit = args.page_limit or cfg.backfill.page_limit
    if not 1 <= page_limit <= MAX_BARS:
        raise ConfigError(f"the page limit must be 1..{MAX_BARS}, not {page_limit}")

    results: list[BackfillResult] = []
    failures: list[tuple[str, str, str]] = []
    conn = await db.connect()
    try:
        known = {row[0] for row in await conn.fetch("SELECT timeframe FROM market.timeframes")}
        if unknown := [tf for tf in timeframes if tf not in known]:
            raise ConfigError(f"unknown timeframe(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        async with ProjectXClient(cfg.gateway.rest_url, cfg.credentials, live=cfg.gateway.live,
                                  history_per_30s=cfg.gateway.history_requests_per_30s,
                                  token_refresh_s=cfg.gateway.token_refresh_s) as client:
            contracts = args.contract or [*cfg.contracts, *await resolve_fronts(
                client.search_contracts, cfg.roots, RollSettings(cfg.ingest.roll_rule, cfg.ingest.roll_days))]
            for contract_id, timeframe in itertools.product(contracts, timeframes):
                try:
                    results.append(await backfill(conn, client, contract_id, timeframe, args.since, until,
                                                  page_limit=page_limit))
                except MechtradeError as exc:
                    log.error("backfill of %s %s failed: %s (run it again to resume)", contract_id, timeframe, exc)
                    failures.append((contract_id, timeframe, str(exc)))
                    if isinstance(exc, GatewayError) and exc.endpoint == LOGIN:
                        break  # no session: every other backfill would fail the same way
    finally:
        await conn.close()
    print(summary(results, failures))
    return 1 if failures else 0


def summary(results: list[BackfillResult], failures: list[tuple[str, str, str]]) -> str:
    """The closing table: one line per contract and timeframe, failures last."""
    rows = [("contract", "tf", "stored from", "to", "pages", "bars", "written", "run", "seconds")]
    for r in results:
        rows.append((r.contract_id, r.timeframe, utc_text(r.oldest), utc_text(r.until), str(r.pages),
                     str(r.bars_received), str(r.bars_written), f"#{r.run_id}" + (" resumed" if r.resumed else ""),
                     f"{r.seconds:.1f}"))
    lines = table(rows)
    lines += [f"FAILED {c} {tf}: {why}" for c, tf, why in failures]
    written = sum(r.bars_written for r in results)
    lines.append(f"{len(results)} done, {len(failures)} failed; {written} bars written "
                 f"(bars already stored unchanged are not counted)")
    return "\n".join(lines)
