"""``mechtrade demo`` on the test database: what its summary says is what the database holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from ingest.cli import main
from ingest.fake_gateway import load_bars
from ingest.fake_gateway.bars import aggregate
from ingest.replay_harness import DAY_START


def test_a_short_demo_summary_matches_the_database(db_dsn: str, sql: psycopg.Connection,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    assert main(["demo", "--hours", "4", "--speed", "0"]) == 0
    out = capsys.readouterr().out
    summary = {k: (int(n), int(live or 0)) for k, n, live in re.findall(
        r"^(ticks|signals|decisions) +(\d+)(?: \((\d+) .*\))?$", out, re.MULTILINE)}
    bars = dict(re.findall(r"(\w+) (\d+)", re.search(r"^bars +(.*)$", out, re.MULTILINE).group(1)))
    end = datetime(2025, 5, 12, 2, tzinfo=UTC)
    assert re.search(r"^replayed +2025-05-11 22:00 to 2025-05-12 02:00 UTC$", out, re.MULTILINE)

    assert summary["ticks"][0] == sql.execute("SELECT count(*) FROM market.ticks").fetchone()[0] > 0
    five = [(b.t, b.o, b.h, b.l, b.c, b.v) for b in load_bars() if DAY_START.timestamp() <= b.t < end.timestamp()]
    assert int(bars["5m"]) == len(five) == 48
    assert int(bars["15m"]) == len(aggregate(five, 2, 15)) == 16
    assert int(bars["1h"]) == len(aggregate(five, 3, 1)) == 4
    assert (bars["4h"], bars["1d"]) == ("1", "0")  # 22:00-02:00 closed; the day has not
    signals = sql.execute("SELECT count(*), count(*) FILTER (WHERE confirmed_at >= %s) FROM signals.detected_signals",
                          (DAY_START,)).fetchone()
    assert summary["signals"] == signals
    assert signals[1] > 0, "the replayed hours themselves confirm signals"
    decisions = sql.execute(
        "SELECT count(*), count(*) FILTER (WHERE s.confirmed_at >= %s) FROM signals.decisions AS d"
        " JOIN signals.detected_signals AS s ON s.signal_id = d.trigger_signal_id", (DAY_START,)).fetchone()
    assert summary["decisions"] == decisions
    # the line log (not a TTY) showed each signal and decision of the replayed hours
    assert len(re.findall(r"  signal   #", out)) == signals[1]
    assert len(re.findall(r"  DECISION ", out)) == decisions[1]
    assert sql.execute("SELECT count(DISTINCT contract_id) FROM market.ticks").fetchone() == (1,)
    # the README's queries of the continuous series: MES resolved to M25 through the gateway's contract search
    assert sql.execute("SELECT contract_id FROM market.contracts WHERE root = 'MES' AND active").fetchall() == \
        [("CON.F.US.MES.M25",)]
    latest = sql.execute("SELECT bucket, contract_id, open, high, low, close, volume FROM market.continuous_bars"
                         " WHERE root = 'MES' AND timeframe = '1h' ORDER BY bucket DESC LIMIT 5").fetchall()
    assert len(latest) == 5 and {r[1] for r in latest} == {"CON.F.US.MES.M25"}
    starts = sql.execute("SELECT * FROM signals.trend_starts('MES', '15m', NULL, NULL) ORDER BY start_ts DESC"
                         " LIMIT 5").fetchall()
    assert len(starts) == 5

    # It ends with the backtest of its own decisions, as signals.backtest_summary says.
    trades, net = sql.execute(
        "SELECT trades, net_pnl FROM signals.backtest_summary('CON.F.US.MES.M25', '15m', NULL, %s,"
        " rule => 'confluence_1h_15m', consumer => 'demo')", (end,)).fetchone()
    assert trades > 0
    assert re.search(rf"^trades +{trades}$", out, re.MULTILINE)
    assert re.search(rf"^net P&L +{'-' if net < 0 else ''}\${abs(net):,.2f}$", out, re.MULTILINE)

    # README's worked backtest example returns rows after the demo.
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = re.search(r"```sql\n(.*?)```", readme.split("## Backtest (for analysts)", 1)[1], re.S).group(1)
    trades_sql, summary_sql = [q.strip() for q in block.split(";") if q.strip()]
    assert len(sql.execute(trades_sql).fetchall()) == trades
    assert sql.execute(summary_sql).fetchall()
