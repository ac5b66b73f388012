"""How ticks become bars: session alignment in winter and summer, late and duplicate ticks, the
forming bar, and imported history filling in where there are no ticks."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import psycopg
import pytest

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
