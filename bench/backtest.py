"""What each trend profile is worth: label scores and the backtest of its actionable starts, in one table.

    .venv/bin/python bench/backtest.py [--dsn postgresql://.../postgres] [--scorer PATH]
                                       [--commission 0.37] [--slippage-ticks 1]

Loads the test data (MES June 2025: 5m, and 15m and 1h aggregated from it, 4h, 1d; MNQ 2019 1d) into a
fresh migrated database. For each series and profile it prints: hindsight and actionable F1 against
the hand labels where the series has labels (see bench/trend_scores.py), the median confirmation delay
of all its starts (bars), and signals.backtest_summary of its actionable starts over the whole series
(up = long, down = short, filled at the next bar's open, commission per side and slippage as given):
trades, net P&L, profit factor, max drawdown, with buy-and-hold for comparison.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import trend_scores as ts
from scratch import scratch_database_sync

# (row name, contract, timeframe, bars file or the 5m file to aggregate, minutes to aggregate to, label set)
SERIES = [
    ("MES 5m", ts.MES_ID, "5m", ts.MES / "mes_m25_5m.csv", None, None),
    ("MES 15m", ts.MES_ID, "15m", ts.MES / "mes_m25_5m.csv", 15, None),
    ("MES 1h", ts.MES_ID, "1h", ts.MES / "mes_m25_5m.csv", 60, None),
    ("MES 4h", ts.MES_ID, "4h", ts.MES / "mes_m25_4h.csv", None, "4h"),
    ("MES 1d", ts.MES_ID, "1d", ts.MES / "mes_m25_1d.csv", None, "1d"),
    ("MNQ 1d", ts.MNQ_ID, "1d", ts.MNQ / "mnq_2019_1d.csv", None, "MNQ 1d"),
]
DELAY_SQL = """
WITH n AS (
    SELECT bucket, row_number() OVER (ORDER BY bucket) AS no FROM market.bars
    WHERE contract_id = %(c)s AND timeframe = %(tf)s AND is_closed
)
SELECT c.no - b.no FROM signals.trend_starts(%(c)s, %(tf)s, NULL, NULL, %(p)s) AS s
JOIN n AS b ON b.bucket = s.start_ts JOIN n AS c ON c.bucket = s.confirmed_at"""
SUMMARY_SQL = """
SELECT trades, net_pnl, profit_factor, max_drawdown, buy_and_hold
FROM signals.backtest_summary(%s, %s, NULL, NULL, profile => %s, commission => %s, slippage_ticks => %s)"""


def aggregate(rows: list[dict[str, str]], minutes: int) -> list[dict[str, str]]:
    """Clock-aligned bars of ``minutes`` from finer ones (15m and 1h buckets are aligned to the hour)."""
    groups: dict[datetime, list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        t = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        groups[t.replace(minute=t.minute - t.minute % minutes) if minutes < 60 else t.replace(minute=0)].append(r)
    return [{"timestamp": t.isoformat(), "open": g[0]["open"], "high": str(max(Decimal(r["high"]) for r in g)),
             "low": str(min(Decimal(r["low"]) for r in g)), "close": g[-1]["close"],
             "volume": str(sum(round(float(r["volume"])) for r in g))} for t, g in sorted(groups.items())]


def run(server_dsn: str | None, scorer: Path, commission: Decimal, slippage: Decimal) -> None:
    with scratch_database_sync(server_dsn, prefix="mechtrade_backtest") as dsn, \
            psycopg.connect(dsn, autocommit=True) as conn:
        for _, contract, timeframe, path, minutes, _ in SERIES:
            rows = ts.read_rows(path)
            ts.load_bars(conn, contract, timeframe, aggregate(rows, minutes) if minutes else rows)
        sets = {s.name: s for s in ts.SETS}
        out = Path(ts.tempfile.mkdtemp(prefix="trend-backtest-"))
        lines = []
        for series, contract, timeframe, _, _, label_set in SERIES:
            for profile in ts.profiles(conn):
                f1 = ts.score_set(conn, scorer, out, profile, sets[label_set]) if label_set else None
                delays = [d for (d,) in conn.execute(DELAY_SQL, {"c": contract, "tf": timeframe, "p": profile})]
                trades, net, pf, dd, hold = conn.execute(
                    SUMMARY_SQL, (contract, timeframe, profile, commission, slippage)).fetchone()
                lines.append(
                    f"| {series} | `{profile}` | {f'{f1.hindsight:.3f}' if f1 else '-'} | "
                    f"{f'{f1.actionable:.3f}' if f1 else '-'} | {statistics.median(delays):g} | {trades} | "
                    f"{net:,.2f} | {'-' if pf is None else f'{pf:.2f}'} | {dd:,.2f} | {hold:,.2f} |")
    print(f"actionable starts traded one contract, up = long, down = short, filled at the next open; "
          f"commission ${commission} a side, slippage {slippage} tick(s) a fill; money in USD\n")
    print("| series | profile | hindsight F1 | actionable F1 | median delay (bars) | trades | net P&L | "
          "profit factor | max drawdown | buy and hold |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=os.environ.get("MECHTRADE_TEST_DSN"))
    ap.add_argument("--scorer", type=Path, default=Path(os.environ.get("MECHTRADE_SCORER", ts.DEFAULT_SCORER)),
                    help="score_trend_starts.py (default: tests/tools/)")
    ap.add_argument("--commission", type=Decimal, default=Decimal("0.37"), help="USD per contract and side")
    ap.add_argument("--slippage-ticks", type=Decimal, default=Decimal("1"), help="ticks lost per fill")
    args = ap.parse_args(argv)
    if not args.scorer.is_file():
        ap.error(f"scoring tool not found: {args.scorer} (give --scorer)")
    run(args.dsn, args.scorer, args.commission, args.slippage_ticks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
