"""``mechtrade load``: CSV bars and ticks, idempotent, bad rows counted, bars refreshed; and the worked
example of docs/trend-starts.md reproduced on the bars it loads."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from bar_data import CONTRACT, read_bars, ticks_for_bar
from ingest.cli import main

ROOT = Path(__file__).resolve().parents[1]
DAILY = ROOT / "tests" / "data" / "mes" / "mes_m25_1d.csv"


def load(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], dsn: str, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("DATABASE_URL", dsn)
    code = main(["load", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_bars_load_once_and_reproduce_the_worked_example(db_dsn: str, sql: psycopg.Connection,
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    args = ("bars", str(DAILY), "--contract", CONTRACT, "--timeframe", "1d")
    code, out = load(monkeypatch, capsys, db_dsn, *args)
    assert code == 0 and re.search(r": 51 rows, 51 written, 0 rejected, 2025-03-17 00:00 to 2025-05-28 00:00 UTC", out)
    assert load(monkeypatch, capsys, db_dsn, *args)[1].count(": 51 rows, 0 written, 0 rejected") == 1
    assert sql.execute("SELECT count(*) FROM market.bars WHERE timeframe = '1d' AND source = 'history'"
                       ).fetchone() == (51,)

    doc = (ROOT / "docs" / "trend-starts.md").read_text()
    query = re.search(r"```sql\n(.*?)```", doc[doc.index("## 10."):], re.DOTALL).group(1)
    table = re.findall(r"^\| (\d{4}-\d\d-\d\d) \| (up|down) \| ([\d.]+) \| (\d{4}-\d\d-\d\d) \| (\w+) \|$",
                       doc, re.MULTILINE)
    assert len(table) == 3
    rows = sql.execute(query).fetchall()
    assert [(str(a), b, c, str(d), e) for a, b, c, d, e in rows] == \
        [(a, b, Decimal(c), d, e) for a, b, c, d, e in table]


def test_ticks_load_idempotently_count_bad_rows_and_refresh_bars(db_dsn: str, sql: psycopg.Connection,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    bars = [b for b in read_bars("5m") if b.ts.date().isoformat() == "2025-05-12"][:24]  # two hours
    ticks = [t for b in bars for t in ticks_for_bar(b, timedelta(minutes=5))]
    lines = ["t,price,volume,type"]  # the gateway's names
    lines += [f"{ts.isoformat()},{price},{size},{side}" for _, ts, price, size, side in ticks]
    lines.insert(5, lines[4])  # a second, identical print at the same time: a trade of its own (seq 1)
    lines.insert(9, f"{ticks[7][1].isoformat()},abc,1,0")
    lines.insert(12, f"{ticks[9][1].isoformat()},5800.25,2,sideways")
    path = tmp_path / "trades.csv"
    path.write_text("\n".join(lines) + "\n")

    code, out = load(monkeypatch, capsys, db_dsn, "ticks", str(path), "--contract", CONTRACT)
    assert code == 1
    assert f"{path}: {len(ticks) + 3} rows, {len(ticks) + 1} new, 2 rejected" in out
    assert f"rejected {path}:10: price: not a number: 'abc'" in out
    assert f"rejected {path}:13: side: not 0/1/buy/sell: 'sideways'" in out
    assert sql.execute("SELECT count(*), max(seq) FROM market.ticks").fetchone() == (len(ticks) + 1, 1)

    # The bars were refreshed (materialized), and are the real bars (the repeated print adds its size).
    watermark = sql.execute("SELECT _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark("
                            "mat_hypertable_id)) FROM _timescaledb_catalog.continuous_agg"
                            " WHERE user_view_name = 'bars_5m'").fetchone()[0]
    assert watermark >= bars[-1].ts
    got = sql.execute("SELECT bucket, open, high, low, close, volume FROM market.bars WHERE timeframe = '5m'"
                      " ORDER BY bucket").fetchall()
    extra = ticks[3][3]
    assert got == [(b.ts, b.open, b.high, b.low, b.close, b.volume + (extra if i == 0 else 0))
                   for i, b in enumerate(bars)]

    code, out = load(monkeypatch, capsys, db_dsn, "ticks", str(path), "--contract", CONTRACT)
    assert f"{path}: {len(ticks) + 3} rows, 0 new, 2 rejected" in out
    assert sql.execute("SELECT count(*) FROM market.ticks").fetchone() == (len(ticks) + 1,)


def test_unusable_files_are_refused_in_one_line(db_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "x.csv"
    path.write_text("when,price\n2025-05-12T00:00:00Z,1\n")
    for args, message in (
        (("ticks", str(path), "--contract", CONTRACT), "no timestamp, size, side column in the header"),
        (("bars", str(DAILY), "--contract", CONTRACT), "load bars needs --timeframe"),
        (("bars", str(DAILY), "--timeframe", "1d"), "no contract_id column; name the contract with --contract"),
        (("bars", str(DAILY), "--contract", CONTRACT, "--timeframe", "2h"), "--timeframe 2h: not one of 1m, 5m"),
    ):
        code, out = load(monkeypatch, capsys, db_dsn, *args)
        assert code == 2 and message in out and "Traceback" not in out, out
