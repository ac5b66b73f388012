"""``mechtrade backtest``: signals.backtest_summary as a table, the trades, and an equity-curve PNG."""

from __future__ import annotations

import argparse
import logging
from decimal import Decimal
from pathlib import Path

import asyncpg

from ingest import config, db
from ingest.cli.shared import TIMEFRAMES, utc_time

log = logging.getLogger(__name__)

ARGS = ("$1, $2, $3, $4, profile => $5, rule => $6, consumer => $7, commission => $8, slippage_ticks => $9,"
        " max_delay => $10")
SUMMARY_SQL = f"SELECT * FROM signals.backtest_summary({ARGS})"
TRADES_SQL = f"SELECT * FROM signals.backtest({ARGS}) ORDER BY trade_no"
BARS_SQL = """
SELECT bucket, closes_at, open, high, low, close FROM market.bars
WHERE contract_id = $1 AND timeframe = $2 AND is_closed
    AND bucket >= coalesce($3::timestamptz, '-infinity') AND bucket < coalesce($4::timestamptz, 'infinity')
ORDER BY bucket"""

SUMMARY_ROWS = [
    ("bars", "bars", "{}"),
    ("first bar", "first_bar", "{:%Y-%m-%d %H:%M}"),
    ("last bar", "last_bar", "{:%Y-%m-%d %H:%M}"),
    ("trades", "trades", "{}"),
    ("win rate", "win_rate", "{:.1%}"),
    ("net P&L", "net_pnl", "usd"),
    ("profit factor", "profit_factor", "{}"),
    ("max drawdown", "max_drawdown", "usd"),
    ("average trade", "avg_trade", "usd"),
    ("time in market", "time_in_market", "{:.1%}"),
    ("buy and hold", "buy_and_hold", "usd"),
]


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "backtest", help="what trading a rule's decisions or a profile's starts would have made",
        description="Runs signals.backtest_summary (and signals.backtest) on one contract and timeframe: the "
        "decisions of a coordinator rule (--rule), or else the actionable trend starts of a profile (up = long, "
        "down = short; not forced, confirmed within --max-delay bars), each filled at the open of the first bar "
        "after it became known. Prints the summary; --trades lists the trades; --png draws the price with the "
        "trades and the equity curve. Money is USD per contract, from market.contract_specs.",
    )
    p.add_argument("--contract", required=True, help="contract id, e.g. CON.F.US.MES.M25")
    p.add_argument("--timeframe", required=True, choices=TIMEFRAMES, help="bars the trades are filled on")
    p.add_argument("--from", dest="start", type=utc_time, metavar="WHEN", help="ISO date or time (UTC if no offset)")
    p.add_argument("--to", dest="end", type=utc_time, metavar="WHEN", help="ISO date or time, exclusive")
    p.add_argument("--profile", default=config.DEFAULT_PROFILE, help="detector profile traded (default %(default)s)")
    p.add_argument("--rule", help="trade the decisions of this coordinator rule instead")
    p.add_argument("--consumer", help="whose decisions, if several coordinators decided for the rule")
    p.add_argument("--commission", type=Decimal, default=Decimal(0), help="USD per contract and side (default 0)")
    p.add_argument("--slippage-ticks", type=Decimal, default=Decimal(0), help="ticks lost per fill (default 0)")
    p.add_argument("--max-delay", type=int, default=3, metavar="BARS",
                   help="a profile's start counts if confirmed at most this many bars after it (default 3)")
    p.add_argument("--trades", action="store_true", help="also list the trades")
    p.add_argument("--png", type=Path, help="write price, trades and equity curve to this PNG (needs matplotlib)")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    if args.start and args.end and args.end <= args.start:
        log.error("--to (%s) must be after --from (%s)", args.end, args.start)
        return 2
    params = (args.contract, args.timeframe, args.start, args.end, args.profile, args.rule, args.consumer,
              args.commission, args.slippage_ticks, args.max_delay)
    conn = await db.connect()
    try:
        try:
            summary = await conn.fetchrow(SUMMARY_SQL, *params)
            trades = await conn.fetch(TRADES_SQL, *params)
        except (asyncpg.InvalidParameterValueError, asyncpg.UndefinedFunctionError) as exc:
            log.error("%s", exc)
            return 2
        bars = await conn.fetch(BARS_SQL, args.contract, args.timeframe, args.start, args.end) if args.png else []
    finally:
        await conn.close()
    if summary is None:
        log.error("no closed %s bars of %s in the range", args.timeframe, args.contract)
        return 1
    what = f"rule {args.rule}" if args.rule else f"profile {args.profile} (actionable starts)"
    print(f"backtest of {what} on {args.contract} {args.timeframe}, "
          f"commission ${args.commission} a side, slippage {args.slippage_ticks} ticks")
    print(format_summary(summary))
    if args.trades:
        print()
        print(format_trades(trades))
    if args.png:
        try:
            from ingest import plot
        except ImportError:
            log.error("--png needs matplotlib: pip install 'mechtrade[plot]'")
            return 2
        plot.render_backtest(f"{args.contract} {args.timeframe}: {what}", bars, trades, args.png)
        log.info("wrote %s", args.png)
    if not trades:
        log.warning("nothing was traded: no %s in the range", "decisions" if args.rule else "actionable starts")
        return 1
    return 0


def format_summary(summary: asyncpg.Record) -> str:
    rows = [(label, "-" if summary[key] is None else usd(summary[key]) if fmt == "usd" else fmt.format(summary[key]))
            for label, key, fmt in SUMMARY_ROWS]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value:>16}" for label, value in rows)


def format_trades(trades: list[asyncpg.Record]) -> str:
    lines = [f"{'#':>3} {'side':<5} {'entry (UTC)':<16} {'price':>10} {'exit (UTC)':<16} {'price':>10} "
             f"{'points':>9} {'P&L':>10}"]
    for t in trades:
        lines.append(f"{t['trade_no']:>3} {t['side']:<5} {t['entry_ts']:%Y-%m-%d %H:%M} {t['entry_price']:>10} "
                     f"{t['exit_ts']:%Y-%m-%d %H:%M} {t['exit_price']:>10} {t['points']:>9} "
                     f"{t['pnl']:>10,.2f}{'  (open)' if t['is_open'] else ''}")
    return "\n".join(lines)


def usd(amount: Decimal) -> str:
    return f"{'-' if amount < 0 else ''}${abs(amount):,.2f}"
