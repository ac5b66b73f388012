"""``mechtrade plot``: a PNG candlestick chart with trend starts and decisions, for analysts."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ingest import config, db
from ingest.cli.shared import TIMEFRAMES, utc_time

log = logging.getLogger(__name__)


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "plot", help="draw a candlestick chart with trend starts and decisions (PNG)",
        description="Candles from market.bars (from <= bucket < to); the profile's current trend starts "
        "from signals.detected_signals, or recomputed with signals.trend_starts() when no job stored any "
        "(triangles under/over the start bar); decisions of signals.decisions, if any (stars on the bar in "
        "which they became known).",
    )
    p.add_argument("--contract", required=True, help="contract id, e.g. CON.F.US.MES.M25")
    p.add_argument("--timeframe", required=True, choices=TIMEFRAMES, help="bar timeframe")
    p.add_argument("--from", dest="start", required=True, type=utc_time, metavar="WHEN",
                   help="ISO date or time (UTC if no offset)")
    p.add_argument("--to", dest="end", required=True, type=utc_time, metavar="WHEN", help="ISO date or time, exclusive")
    p.add_argument("--profile", default=config.DEFAULT_PROFILE, help="detector profile (default %(default)s)")
    p.add_argument("--out", type=Path, help="PNG file (default <contract>_<timeframe>_<from>_<to>.png)")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401

        from ingest import plot
    except ImportError:
        log.error("mechtrade plot needs matplotlib: pip install 'mechtrade[plot]'")
        return 2
    if args.end <= args.start:
        log.error("--to (%s) must be after --from (%s)", args.end, args.start)
        return 2
    out = args.out or Path(f"{args.contract}_{args.timeframe}_{args.start:%Y%m%d%H%M}_{args.end:%Y%m%d%H%M}.png")
    conn = await db.connect()
    try:
        chart = await plot.load(conn, args.contract, args.timeframe, args.start, args.end, args.profile)
    finally:
        await conn.close()
    if not chart.ohlc:
        log.error("no %s bars of %s in [%s, %s)", args.timeframe, args.contract, args.start, args.end)
        return 1
    plot.render(chart, out)
    log.info("wrote %s: %d bars, %d trend starts (%s), %d decisions", out, len(chart.ohlc), len(chart.starts),
             chart.starts_source, len(chart.decisions))
    return 0
