"""A root's continuous series in the database: market.continuous_bars stitches the front months at the roll,
and a trend job on the root (signals.trend_jobs.contract_id = 'MES') carries on across the roll: nothing it
found before is recomputed or superseded, and its signals equal a full recompute of the continuous series."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg

from ingest.fake_gateway import MES_M25, MES_U25

DATA = Path(__file__).parent / "data" / "mes" / "mes_m25_4h.csv"
SPREAD = Decimal("56.25")  # U25 trades this far above M25 in the fake's catalogue
U25_FROM = datetime(2025, 4, 1, tzinfo=UTC)  # the back month's history starts here
ROLL_AT = datetime(2025, 4, 21, 12, tzinfo=UTC)  # inside the 10:00 4h bar: that bar is M25's, 14:00 U25's


def rows(before: bool) -> list[tuple]:
    """The real MES 4h bars as M25, and shifted by SPREAD as U25 from U25_FROM, before or from ROLL_AT."""
    with DATA.open(newline="") as fh:
        bars = [(datetime.fromisoformat(r["timestamp"]), *(Decimal(r[k]) for k in ("open", "high", "low", "close")),
                 int(r["volume"])) for r in csv.DictReader(fh)]
    out = []
    for t, o, h, low, c, v in bars:
        if (t < ROLL_AT) == before:
            out.append((MES_M25, t, o, h, low, c, v))
            if t >= U25_FROM:
                out.append((MES_U25, t, o + SPREAD, h + SPREAD, low + SPREAD, c + SPREAD, v // 10))
    return out


def insert(sql: psycopg.Connection, bars: list[tuple]) -> None:
    with sql.cursor() as cur:
        cur.executemany("INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close,"
                        " volume) VALUES (%s, '4h', %s, %s, %s, %s, %s, %s)", bars)


def signals(sql: psycopg.Connection) -> list[tuple]:
    return sql.execute(
        """SELECT signal_id, "timestamp", signal_type, signal_price, confirmed_at FROM signals.detected_signals
           WHERE contract_id = 'MES' AND superseded_at IS NULL ORDER BY "timestamp", signal_type""").fetchall()


def recomputed(sql: psycopg.Connection) -> list[tuple]:
    return sql.execute(
        """SELECT start_ts, CASE direction WHEN 'up' THEN 'uptrend_start' ELSE 'downtrend_start' END, price,
                  confirmed_at FROM signals.trend_starts('MES', '4h', NULL, NULL, 'swing') ORDER BY 1, 2""").fetchall()


def test_a_trend_job_on_a_root_carries_on_across_the_roll(sql: psycopg.Connection) -> None:
    sql.execute("INSERT INTO market.contracts (contract_id, root, tick_size, tick_value, active) VALUES"
                " (%s, 'MES', 0.25, 1.25, true), (%s, 'MES', 0.25, 1.25, false)", (MES_M25, MES_U25))
    insert(sql, rows(before=True))
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, scheduled)"
                " VALUES ('MES', '4h', 'swing', false)")
    job = sql.execute("SELECT job_id FROM signals.trend_job_status WHERE contract_id = 'MES'").fetchone()[0]
    sql.execute("CALL run_job(%s)", (job,))
    before = signals(sql)
    assert [s[1:] for s in before] == recomputed(sql) and len(before) > 10
    m25 = sql.execute("""SELECT start_ts, direction FROM signals.trend_starts(%s, '4h', NULL, NULL, 'swing')""",
                      (MES_M25,)).fetchall()
    assert [(s[1], s[2].split("trend")[0]) for s in before] == m25, "before any roll the root is its front month"

    # the roll: U25 becomes the front at ROLL_AT; both contracts trade on
    sql.execute("UPDATE market.contracts SET active = (contract_id = %s)", (MES_U25,))
    sql.execute("INSERT INTO market.contract_rolls (root, from_contract, to_contract, rolled_at, reason)"
                " VALUES ('MES', %s, %s, %s, 'gateway')", (MES_M25, MES_U25, ROLL_AT))
    insert(sql, rows(before=False))
    sql.execute("CALL run_job(%s)", (job,))
    after = signals(sql)
    assert after[:len(before)] == before, "nothing found before the roll was recomputed or superseded"
    assert [s[1:] for s in after] == recomputed(sql), "incremental = a full recompute of the continuous series"
    assert any(s[4] > ROLL_AT for s in after[len(before):]), "signals continue after the roll"

    series = sql.execute("SELECT bucket, contract_id, close FROM market.continuous_bars"
                         " WHERE root = 'MES' AND timeframe = '4h' ORDER BY bucket").fetchall()
    m25_buckets = [r[0] for r in sql.execute(
        "SELECT bucket FROM market.bars WHERE contract_id = %s AND timeframe = '4h' ORDER BY bucket", (MES_M25,))]
    assert [r[0] for r in series] == m25_buckets, "one bar per bucket, no hole at the roll"
    assert {r[1] for r in series if r[0] < ROLL_AT} == {MES_M25} and {r[1] for r in series if r[0] >= ROLL_AT} \
        == {MES_U25}
    adjusted = dict(sql.execute("SELECT bucket, close FROM market.continuous_bars_adjusted"
                                " WHERE root = 'MES' AND timeframe = '4h'").fetchall())
    assert all(adjusted[t] == c + (SPREAD if t < ROLL_AT else 0) for t, _, c in series), \
        "back-adjusted: older bars shifted by the gap at the roll"
