"""signals.backtest and signals.backtest_summary: a hand-computed series to the cent, a profile's
actionable starts on real bars, and the ``mechtrade backtest`` command."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from ingest import cli

C = "CON.F.US.MES.M25"
T0 = datetime(2025, 5, 6, 13, tzinfo=UTC)  # 08:00 Chicago: eight 1h bars end at the 16:00 halt
DATA = Path(__file__).parent / "data" / "mes"

# open, high, low, close of the 1h bars from T0
BARS = [
    ("5000.00", "5005.00", "4995.00", "5002.00"),
    ("5002.00", "5011.00", "5000.00", "5010.00"),
    ("5010.25", "5021.00", "5009.00", "5020.00"),
    ("5019.75", "5022.00", "5014.00", "5015.00"),
    ("5015.50", "5016.00", "5007.00", "5008.00"),
    ("5007.75", "5009.00", "5000.00", "5001.00"),
    ("5001.25", "5002.00", "4995.00", "4996.00"),
    ("4996.50", "4998.00", "4989.00", "4990.25"),
]


def h(n: float) -> datetime:
    return T0 + timedelta(hours=n)


@pytest.fixture
def hand(sql: psycopg.Connection) -> psycopg.Connection:
    """The bars, and four decisions of rule 'hand': long, reverse to short, exit, long again."""
    with sql.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, '1h', %s, %s, %s, %s, %s, 1)", [(C, h(i), *b) for i, b in enumerate(BARS)])
    trigger = sql.execute(
        "INSERT INTO signals.detected_signals (contract_id, timeframe, profile, signal_type, timestamp, signal_price,"
        " confirmed_at, details) VALUES (%s, '1h', 'realtime', 'uptrend_start', %s, 4995, %s, '{}')"
        " RETURNING signal_id", (C, T0, T0)).fetchone()[0]
    for known_at, direction, action in [
        (h(1), "long", "enter"),  # filled at the open of bar 2
        (h(3), "short", "reverse"),  # bar 4
        (h(4.5), "flat", "exit"),  # known mid-bar (a 15m signal): the next bar to open is bar 6
        (h(6), "long", "enter"),  # bar 7, still open at the end
    ]:
        sql.execute(
            "INSERT INTO signals.decisions (rule, contract_id, profile, direction, action, timeframes, starts, inputs,"
            " trigger_signal_id, price, known_at, reason, consumer)"
            " VALUES ('hand', %s, 'realtime', %s, %s, '{1h}', ARRAY[%s]::timestamptz[], ARRAY[%s]::bigint[], %s, 0,"
            " %s, 'by hand', 'test')", (C, direction, action, known_at, trigger, trigger, known_at))
    return sql


def test_hand_computed_trades_to_the_cent(hand: psycopg.Connection) -> None:
    # MES: tick 0.25 = $1.25 ($5 a point); one tick of slippage against each fill, $0.37 a side.
    trades = hand.execute(
        "SELECT trade_no, side, entry_ts, entry_price, exit_ts, exit_price, bars_held, points, pnl, is_open"
        " FROM signals.backtest(%s, '1h', %s, %s, rule => 'hand', commission => 0.37, slippage_ticks => 1)",
        (C, T0, h(8))).fetchall()
    assert trades == [
        # 5002.00 + 0.25 -> 5019.75 - 0.25: +17.25 points = $86.25 - $0.74
        (1, "long", h(1), Decimal("5002.25"), h(3), Decimal("5019.50"), 2, Decimal("17.25"), Decimal("85.51"), False),
        # 5019.75 - 0.25 -> 5007.75 + 0.25: +11.50 points = $57.50 - $0.74
        (2, "short", h(3), Decimal("5019.50"), h(5), Decimal("5008.00"), 2, Decimal("11.50"), Decimal("56.76"), False),
        # 5001.25 + 0.25 -> marked at the last close 4990.25 - 0.25: -11.50 points = -$57.50 - $0.74
        (3, "long", h(6), Decimal("5001.50"), h(8), Decimal("4990.00"), 2, Decimal("-11.50"), Decimal("-58.24"), True),
    ]
    summary = hand.execute(
        "SELECT bars, trades, wins, win_rate, net_pnl, gross_profit, gross_loss, profit_factor, max_drawdown,"
        " avg_trade, time_in_market, buy_and_hold"
        " FROM signals.backtest_summary(%s, '1h', %s, %s, rule => 'hand', commission => 0.37, slippage_ticks => 1)",
        (C, T0, h(8))).fetchone()
    assert summary == (
        8, 3, 2, Decimal("0.6667"), Decimal("84.03"), Decimal("142.27"), Decimal("58.24"),
        Decimal("2.4428"),  # 142.27 / 58.24
        Decimal("58.24"),  # equity 85.51, 142.27, 84.03: down 58.24 from the peak
        Decimal("28.01"), Decimal("0.7500"),  # 6 of 8 bars in a position
        Decimal("-51.99"),  # 5000.00 + 0.25 -> 4990.25 - 0.25: -10.25 points = -$51.25 - $0.74
    )


def test_changes_landing_on_one_bar_and_ranges(hand: psycopg.Connection) -> None:
    # An exit and then a reverse known before bar 4 opens: only the last (the reverse) is filled there.
    trigger = hand.execute("SELECT min(signal_id) FROM signals.detected_signals").fetchone()[0]
    hand.execute(
        "INSERT INTO signals.decisions (rule, contract_id, profile, direction, action, timeframes, starts, inputs,"
        " trigger_signal_id, price, known_at, reason, consumer)"
        " VALUES ('hand', %s, 'realtime', 'flat', 'exit', '{1h}', ARRAY[%s]::timestamptz[], ARRAY[%s]::bigint[], %s,"
        " 0, %s, 'by hand', 'test')", (C, h(2.5), trigger, trigger, h(2.5)))
    sides = hand.execute("SELECT side, entry_ts, exit_ts FROM signals.backtest(%s, '1h', %s, %s, rule => 'hand')",
                         (C, T0, h(8))).fetchall()
    assert sides == [("long", h(1), h(3)), ("short", h(3), h(5)), ("long", h(6), h(8))]
    # A range that ends early leaves the position open at its last bar; no bars, no summary row.
    assert hand.execute("SELECT exit_ts, exit_price, is_open FROM signals.backtest(%s, '1h', %s, %s, rule => 'hand')",
                        (C, T0, h(2))).fetchall() == [(h(2), Decimal("5010.00"), True)]
    assert hand.execute("SELECT count(*) FROM signals.backtest_summary(%s, '1h', %s, %s, rule => 'hand')",
                        (C, h(20), h(30))).fetchone() == (0,)
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="no tick size"):
        hand.execute("SELECT * FROM signals.backtest('CON.F.US.XYZ.M25', '1h', NULL, NULL)")


def test_a_profile_trades_its_actionable_starts(sql: psycopg.Connection) -> None:
    with (DATA / "mes_m25_1d.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with sql.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, '1d', %s, %s, %s, %s, %s, %s)",
            [(C, r["timestamp"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows])
    starts = sql.execute("SELECT known_at, direction FROM signals.actionable_starts(%s, '1d', NULL, NULL)",
                         (C,)).fetchall()
    trades = sql.execute("SELECT side, entry_known_at, entry_ts, entry_price, exit_ts, is_open"
                         " FROM signals.backtest(%s, '1d', NULL, NULL)", (C,)).fetchall()
    # Always in the market after the first start: a trade per change of direction (a start delayed more
    # than 3 bars is not actionable, so two of one direction can follow each other), each exit is the
    # next entry, each entry is the open of the bar after the confirming bar.
    changes = [s for s, before in zip(starts, [None, *starts]) if before is None or s[1] != before[1]]
    assert len(changes) < len(starts)
    assert [(k, "up" if s == "long" else "down") for s, k, *_ in trades] == changes
    assert all(a[4] == b[2] for a, b in zip(trades, trades[1:]))
    opens = {datetime.fromisoformat(r["timestamp"]): Decimal(r["open"]) for r in rows}
    buckets = sorted(opens)
    for _, known_at, entry_ts, price, _, _ in trades:
        assert entry_ts == min(b for b in buckets if b >= known_at) and price == opens[entry_ts]
    assert [t[5] for t in trades] == [False] * (len(trades) - 1) + [True]


def test_command_prints_the_summary_and_draws_the_png(hand: psycopg.Connection, db_dsn: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    out = tmp_path / "bt.png"
    args = ["backtest", "--contract", C, "--timeframe", "1h", "--from", T0.isoformat(), "--to", h(8).isoformat(),
            "--rule", "hand", "--commission", "0.37", "--slippage-ticks", "1", "--trades", "--png", str(out)]
    assert cli.main(args) == 0
    text = capsys.readouterr().out
    assert "net P&L" in text and "$84.03" in text and "-$51.99" in text and "2.4428" in text
    assert text.count("long") >= 2 and "short" in text
    assert out.stat().st_size > 10_000 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert cli.main([*args[:-3], "--rule", "nope"]) == 1  # nothing to trade: says so
