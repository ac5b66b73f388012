"""How ticks become bars: session alignment in winter and summer, late and duplicate ticks, the
forming bar, and imported history filling in where there are no ticks."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import psycopg
import pytest

from ingest import migrate
from ingest.bars import refresh_bars

C = "CON.F.US.MES.Z25"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def insert_ticks(sql: psycopg.Connection, *ticks: tuple) -> None:
    """(ts, price, size[, side[, seq]]) for contract C, ignoring trades already stored."""
    for ts, price, size, *rest in ticks:
        side, seq = (*rest, 0, 0)[:2]
        sql.execute(
            "INSERT INTO market.ticks (contract_id, ts, price, size, side, seq) VALUES (%s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            (C, ts, Decimal(str(price)), size, side, seq),
        )


def bar_rows(sql: psycopg.Connection, timeframe: str) -> list[tuple]:
    return sql.execute(
        "SELECT bucket, open, high, low, close, volume, source FROM market.bars"
        " WHERE contract_id = %s AND timeframe = %s ORDER BY bucket",
        (C, timeframe),
    ).fetchall()


def refresh(sql: psycopg.Connection, start: datetime, end: datetime) -> None:
    sql.execute("CALL market.refresh_bars(%s, %s)", (start, end))


@pytest.mark.parametrize("materialize", [False, True], ids=["real-time", "materialized"])
def test_winter_session_opens_at_23_utc(sql: psycopg.Connection, materialize: bool) -> None:
    # Sunday 2025-11-30 17:00 CST = 23:00 UTC opens the session of trading date 2025-12-01.
    insert_ticks(
        sql,
        (utc(2025, 11, 30, 23, 0), 6800, 1),
        (utc(2025, 12, 1, 2, 59), 6810, 2),
        (utc(2025, 12, 1, 3, 0), 6790, 3),
        (utc(2025, 12, 1, 21, 59), 6805, 4),
        (utc(2025, 12, 1, 23, 0), 6820, 5),  # next session: trading date 2025-12-02
    )
    if materialize:
        refresh(sql, utc(2025, 11, 30), utc(2025, 12, 3))
    assert [r[0] for r in bar_rows(sql, "4h")] == [
        utc(2025, 11, 30, 23), utc(2025, 12, 1, 3), utc(2025, 12, 1, 19), utc(2025, 12, 1, 23)
    ]
    assert bar_rows(sql, "1d") == [
        (utc(2025, 12, 1), 6800, 6810, 6790, 6805, 10, "ticks"),
        (utc(2025, 12, 2), 6820, 6820, 6820, 6820, 5, "ticks"),
    ]
    closes = sql.execute(
        "SELECT timeframe, closes_at FROM market.bars WHERE bucket IN ('2025-12-01 00:00Z', '2025-12-01 19:00Z')"
        " ORDER BY timeframe"
    ).fetchall()
    # The day and its last 4h bar close at the 16:00 CST halt (22:00 UTC), not at the 17:00 reopen.
    assert closes == [("1d", utc(2025, 12, 1, 22)), ("4h", utc(2025, 12, 1, 22))]


def test_summer_session_opens_at_22_utc(sql: psycopg.Connection) -> None:
    insert_ticks(sql, (utc(2025, 7, 13, 22, 0), 6300, 1), (utc(2025, 7, 14, 20, 59), 6310, 1))
    assert [r[0] for r in bar_rows(sql, "4h")] == [utc(2025, 7, 13, 22), utc(2025, 7, 14, 18)]
    assert [r[0] for r in bar_rows(sql, "1d")] == [utc(2025, 7, 14)]


def test_late_tick_in_a_materialized_bucket_changes_every_level_after_refresh(sql: psycopg.Connection) -> None:
    insert_ticks(sql, (utc(2025, 6, 2, 14, 0, 10), 6000, 1), (utc(2025, 6, 2, 14, 3), 6001, 1))
    refresh(sql, utc(2025, 6, 1), utc(2025, 6, 3))
    before = {tf: bar_rows(sql, tf) for tf in ("1m", "5m", "15m", "1h", "4h", "1d")}
    assert all(len(rows) >= 1 for rows in before.values())

    insert_ticks(sql, (utc(2025, 6, 2, 14, 1, 30), 6050.25, 9))  # late: a new high inside 14:00-14:05
    assert bar_rows(sql, "5m") == before["5m"], "materialized buckets change only on refresh"
    refresh(sql, utc(2025, 6, 2), utc(2025, 6, 2, 15))
    for tf in ("5m", "15m", "1h", "4h", "1d"):
        (bucket, o, h, lo, c, v, source) = bar_rows(sql, tf)[0]
        assert (o, h, lo, c, v) == (6000, Decimal("6050.25"), 6000, 6001, 11), tf


def test_duplicate_tick_is_stored_once_and_identical_prints_both_survive(sql: psycopg.Connection) -> None:
    tick = (utc(2025, 6, 2, 14, 0, 0, 123456), 6000.25, 2, 1, 0)
    insert_ticks(sql, tick, tick)
    insert_ticks(sql, tick[:4] + (1,))  # the same print again in the same message: seq 1
    assert sql.execute("SELECT count(*), sum(size) FROM market.ticks").fetchone() == (2, 4)
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute(
            "INSERT INTO market.ticks (contract_id, ts, price, size, side) VALUES (%s, %s, %s, %s, %s)",
            (C, tick[0], Decimal("6000.25"), 2, 1),
        )
    assert bar_rows(sql, "1m")[0][5] == 4


def test_five_column_insert_fills_the_rest_and_bad_values_are_refused(sql: psycopg.Connection) -> None:
    sql.execute(
        "INSERT INTO market.ticks (contract_id, ts, price, size, side) VALUES (%s, now(), 6000, 1, 0)", (C,)
    )
    assert sql.execute("SELECT seq, received_at IS NOT NULL FROM market.ticks").fetchone() == (0, True)
    for column, value in (("price", -1), ("size", 0), ("side", 2)):
        values = {"price": 6000, "size": 1, "side": 0, column: value}
        with pytest.raises(psycopg.errors.CheckViolation, match=f"ticks_{column}"):
            sql.execute(
                "INSERT INTO market.ticks (contract_id, ts, price, size, side) VALUES (%s, now(), %s, %s, %s)",
                (C, values["price"], values["size"], values["side"]),
            )


async def refresh_with_retry(dsn: str, start: datetime, end: datetime) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await refresh_bars(conn, start, end)
    finally:
        await conn.close()


def test_forming_bar_is_visible_at_every_level(sql: psycopg.Connection, db_dsn: str) -> None:
    """Real-time aggregation through the whole hierarchy, on top of materialized history."""
    sql.execute(
        "INSERT INTO market.ticks (contract_id, ts, price, size, side)"
        " VALUES (%s, now() - interval '90 minutes', 6000, 1, 0)",
        (C,),
    )
    # Policies refresh this recent window too: the helper retries while one is running.
    now = sql.execute("SELECT now()").fetchone()[0]
    asyncio.run(refresh_with_retry(db_dsn, now - timedelta(days=1), now))
    sql.execute("INSERT INTO market.ticks (contract_id, ts, price, size, side) VALUES (%s, now(), 6123.25, 7, 1)", (C,))
    latest = sql.execute(
        "SELECT DISTINCT ON (timeframe) timeframe, close, volume >= 7, is_closed, sell_volume >= 7"
        " FROM market.bars WHERE contract_id = %s ORDER BY timeframe, bucket DESC",
        (C,),
    ).fetchall()
    assert sorted(latest) == sorted(
        (tf, Decimal("6123.25"), True, False, True) for tf in ("1m", "5m", "15m", "1h", "4h", "1d")
    )


def test_history_fills_buckets_without_ticks_and_ticks_win(sql: psycopg.Connection) -> None:
    history = [
        ("5m", utc(2025, 6, 2, 14, 0), 1, 9, 1, 2, 100),
        ("5m", utc(2025, 6, 2, 14, 5), 2, 8, 2, 3, 200),
        ("1d", utc(2025, 6, 2), 1, 9, 1, 2, 300),
    ]
    for tf, bucket, o, h, lo, c, v in history:
        sql.execute(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (C, tf, bucket, o, h, lo, c, v),
        )
    insert_ticks(sql, (utc(2025, 6, 2, 14, 6), 6000, 5))
    assert bar_rows(sql, "5m") == [
        (utc(2025, 6, 2, 14, 0), 1, 9, 1, 2, 100, "history"),
        (utc(2025, 6, 2, 14, 5), 6000, 6000, 6000, 6000, 5, "ticks"),
    ]
    assert bar_rows(sql, "1d") == [(utc(2025, 6, 2), 6000, 6000, 6000, 6000, 5, "ticks")]
    with pytest.raises(psycopg.errors.CheckViolation, match="history_bars_ohlc_consistent"):
        sql.execute(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, '5m', now(), 5, 4, 3, 4, 1)",
            (C,),
        )


def test_refresh_policies_and_refresh_bars_work_in_large_batches(sql: psycopg.Connection) -> None:
    """Large batches (not TimescaleDB's 10 buckets), and a refresh spanning several
    batches materializes every bar at every level."""
    batches = dict(sql.execute(
        "SELECT t.timeframe, (j.config ->> 'buckets_per_batch')::int FROM market.timeframes t"
        " JOIN timescaledb_information.jobs j ON j.hypertable_schema = 'market'"
        " AND j.hypertable_name = 'bars_' || t.timeframe").fetchall())
    assert batches == {"1m": 10080, "5m": 2016, "15m": 1000, "1h": 1000, "4h": 1000, "1d": 1000}

    days = [utc(2025, 6, 2, 14) + timedelta(days=d) for d in range(26) if d % 7 < 5]  # weekdays
    insert_ticks(sql, *[(ts, 6000 + i, 1) for i, ts in enumerate(days)])
    refresh(sql, days[0], days[-1])
    materialized = {}
    for tf, schema, table in sql.execute(
        "SELECT t.timeframe, c.materialization_hypertable_schema, c.materialization_hypertable_name"
        " FROM market.timeframes t JOIN timescaledb_information.continuous_aggregates c"
        " ON c.view_schema = 'market' AND c.view_name = 'bars_' || t.timeframe"
    ).fetchall():
        materialized[tf] = sql.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
    assert materialized == dict.fromkeys(batches, len(days))


def test_rebuild_to_utc_intraday_buckets_keeps_every_bar(empty_db_dsn: str, tmp_path: Path) -> None:
    """Migrations 0090-0092 on a database with bars built the old way (Chicago buckets at every
    level): the rebuilt hierarchy re-derives identical bars, across both DST changes, with
    history kept and everything materialized again."""
    old_sql = Path(shutil.copytree(REPO_SQL, tmp_path / "sql"))
    for name in ("0090_bars_pause_policies.sql", "0091_bars_utc_intraday.sql", "0092_bars_rematerialize.sql"):
        (old_sql / "migrations" / name).unlink()
    asyncio.run(apply_migrations(empty_db_dsn, old_sql))
    spans = [(utc(2025, 3, 7, 12), utc(2025, 3, 11, 12)), (utc(2025, 10, 31, 12), utc(2025, 11, 4, 12))]
    with psycopg.connect(empty_db_dsn, autocommit=True) as conn:
        for start, end in spans:
            n = int((end - start) / timedelta(minutes=7))
            conn.cursor().executemany(
                "INSERT INTO market.ticks (contract_id, ts, price, size, side) VALUES (%s, %s, %s, %s, %s)",
                [(C, start + timedelta(minutes=7 * i, seconds=i % 60), 6000 + (i * 37) % 101 / 4, 1 + i % 3, i % 2)
                 for i in range(n)])
        conn.execute("INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
                     " VALUES (%s, '1d', '2025-01-02', 1, 2, 0.5, 1.5, 10)", (C,))
        conn.execute("CALL market.refresh_bars(%s, %s)", (spans[0][0], spans[-1][1]))
        before = conn.execute(ALL_BARS).fetchall()

        asyncio.run(apply_migrations(empty_db_dsn, REPO_SQL))
        assert conn.execute(ALL_BARS).fetchall() == before
        assert conn.execute("SELECT bool_and(materialized_only = false) FROM timescaledb_information"
                            ".continuous_aggregates WHERE view_schema = 'market'").fetchone() == (True,)
        for (table,) in conn.execute(
            "SELECT format('%I.%I', materialization_hypertable_schema, materialization_hypertable_name)"
            " FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'market'"
        ).fetchall():
            assert conn.execute(f"SELECT count(*) > 0 FROM {table}").fetchone() == (True,), table


ALL_BARS = ("SELECT timeframe, bucket, open, high, low, close, volume, trade_count, buy_volume, sell_volume, source,"
            " closes_at FROM market.bars ORDER BY 1, 2")
REPO_SQL = Path(__file__).resolve().parents[1] / "sql"


async def apply_migrations(dsn: str, sql_dir: Path) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn, sql_dir)
    finally:
        await conn.close()
