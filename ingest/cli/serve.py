"""``mechtrade serve``: the live chart page (candles, volume, trend starts, decisions, labelling)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import signal
from pathlib import Path

from ingest import config, db
from ingest.web.server import ServeError, Settings, serve

log = logging.getLogger(__name__)

DESCRIPTION = """\
Serve an interactive chart of market.bars in the browser: candlesticks and volume of any contract
and timeframe, trend starts (actionable and forced told apart; hover for rule and confirmation
time), the coordinator's decisions, zoom, pan and a choice of exchange time, UTC or local time.
New bars (the forming one too), signals and decisions appear as the database announces them
(NOTIFY; needs a direct session connection, not a transaction pooler). Label mode (key L): a
click on a bar's upper half adds or removes a down start, on its lower half an up start, in
signals.labels; the page shows the profile's hindsight and actionable F1 against them.

Every connection acts as --role (default mechtrade_web: reads market and signals, writes only
labels); the connecting user must be a member of it (GRANT mechtrade_web TO <user>)."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("serve", help="serve the live chart page with labelling (browser)",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=8090, help="port (default 8090; 0 picks a free one)")
    p.add_argument("--role", default="mechtrade_web", help="database role the page acts as (default mechtrade_web)")
    p.add_argument("--author", default=None, help="default author of labels made on the page (default: your user name)")
    p.add_argument("--contract", help="contract shown first (default: the first one with bars)")
    p.add_argument("--timeframe", default="4h", help="timeframe shown first (default 4h)")
    p.add_argument("--profile", default=config.DEFAULT_PROFILE, help="profile shown first (default %(default)s)")
    p.add_argument("--chart-js", type=Path, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password database
        return "analyst"


async def run(args: argparse.Namespace) -> int:
    settings = Settings(dsn=db.database_url(), role=args.role, author=args.author or _user_name(),
                        profile=args.profile, contract=args.contract, timeframe=args.timeframe,
                        chart_js=args.chart_js)
    try:
        runner, port = await serve(settings, args.host, args.port)
    except ServeError as exc:
        log.error("%s", exc)
        return 2
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"serving http://{host}:{port}/ from {db.describe(settings.dsn)}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0
