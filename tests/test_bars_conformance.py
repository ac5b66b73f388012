"""Bars built from ticks reproduce ProjectX's own bars, field by field, on real MES data."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest
from bar_data import CONTRACT, Bar, read_bars, ticks_for_bar
from helpers import fresh_database
from pg_server import Server

FIVE_MINUTES = timedelta(minutes=5)
FIELDS = ("open", "high", "low", "close", "volume")
# Where ProjectX's own 4h/1d bars disagree with its own 5m bars, field by field: (ours, theirs).
# Documented in tests/data/mes/README.md ("Known source defects").
SOURCE_DEFECTS = {
    # 2025-05-01: the 5m bars reach 5682.25 at 15:15 UTC; the 4h 14:00 and 1d highs say 5675.50,
    # and their volume lacks 163,650 contracts (a broken hourly bar in the source database).
    ("4h", datetime(2025, 5, 1, 14, tzinfo=UTC)): {
        "high": (Decimal("5682.25"), Decimal("5675.50")),
        "volume": (633099, 469449),
    },
    ("1d", datetime(2025, 5, 1, tzinfo=UTC)): {
        "high": (Decimal("5682.25"), Decimal("5675.50")),
        "volume": (1334681, 1171031),
    },
    # 2025-04-04: the 5m bars of 10:00-14:00 UTC hold 181,725 more contracts than the 4h bar.
    ("4h", datetime(2025, 4, 4, 10, tzinfo=UTC)): {"volume": (643626, 461901)},
    ("1d", datetime(2025, 4, 4, tzinfo=UTC)): {"volume": (2589273, 2407548)},
}


def load_ticks(sql: psycopg.Connection, rows: list[tuple]) -> None:
    with sql.cursor().copy("COPY market.ticks (contract_id, ts, price, size, side) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def bars(sql: psycopg.Connection, timeframe: str) -> dict[datetime, tuple]:
    rows = sql.execute(
        "SELECT bucket, open, high, low, close, volume FROM market.bars"
        " WHERE contract_id = %s AND timeframe = %s ORDER BY bucket",
        (CONTRACT, timeframe),
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


@pytest.fixture(scope="module")
def mes_from_ticks(pg_server: Server, migrated_template: str) -> Iterator[psycopg.Connection]:
    """A database after loading ticks synthesized from every real 5m bar and refreshing."""
    five = read_bars("5m")
    with fresh_database(pg_server, migrated_template) as dsn, psycopg.connect(dsn, autocommit=True) as sql:
        load_ticks(sql, [t for bar in five for t in ticks_for_bar(bar, FIVE_MINUTES)])
        sql.execute("CALL market.refresh_bars(%s, %s)", (five[0].ts, five[-1].ts))
        yield sql


def materialized_rows(sql: psycopg.Connection, cagg: str) -> int:
    """Rows stored in a continuous aggregate's materialization hypertable (no real-time part)."""
    (table,) = sql.execute(
        "SELECT format('%%I.%%I', materialization_hypertable_schema, materialization_hypertable_name)"
        " FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'market' AND view_name = %s",
        (cagg,),
    ).fetchone()
    return sql.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def covered(bars_file: list[Bar], first: datetime, last_end: datetime, timeframe: str) -> list[Bar]:
    """The bars of a coarser file whose whole session span the 5m data covers."""
    def span(bar: Bar) -> tuple[datetime, datetime]:
        if timeframe == "1d":  # labelled at 00:00 UTC of the trading date; opened 22:00 UTC before
            return bar.ts - timedelta(hours=2), bar.ts + timedelta(hours=22)
        return bar.ts, bar.ts + timedelta(hours=4)

    return [b for b in bars_file if span(b)[0] >= first and span(b)[1] <= last_end]


def test_every_5m_bar_equals_projectx(mes_from_ticks: psycopg.Connection) -> None:
    expected = {b.ts: b.ohlcv for b in read_bars("5m")}
    assert bars(mes_from_ticks, "5m") == expected
    counts = mes_from_ticks.execute(
        "SELECT min(trade_count), max(trade_count), bool_and(buy_volume + sell_volume = volume)"
        " FROM market.bars WHERE timeframe = '5m'"
    ).fetchone()
    assert counts == (4, 4, True)


@pytest.mark.parametrize("timeframe", ["4h", "1d"])
def test_session_bars_equal_projectx_except_documented_defect(
    mes_from_ticks: psycopg.Connection, timeframe: str
) -> None:
    five = read_bars("5m")
    expected = covered(read_bars(timeframe), five[0].ts, five[-1].ts, timeframe)
    assert len(expected) > (40 if timeframe == "1d" else 240)
    ours = bars(mes_from_ticks, timeframe)

    mismatches = {}
    for bar in expected:
        assert bar.ts in ours, f"no {timeframe} bar at {bar.ts}"
        diff = {f: (o, t) for f, o, t in zip(FIELDS, ours[bar.ts], bar.ohlcv, strict=True) if o != t}
        if diff:
            mismatches[(timeframe, bar.ts)] = diff

    assert mismatches == {k: v for k, v in SOURCE_DEFECTS.items() if k[0] == timeframe}


def test_hourly_and_quarter_hour_bars_aggregate_the_5m_bars(mes_from_ticks: psycopg.Connection) -> None:
    """No ProjectX file for 15m and 1h here: check them against the 5m file directly."""
    five = read_bars("5m")
    for timeframe, width in (("15m", timedelta(minutes=15)), ("1h", timedelta(hours=1))):
        groups: dict[datetime, list[Bar]] = {}
        for bar in five:
            start = datetime.fromtimestamp(bar.ts.timestamp() // width.total_seconds() * width.total_seconds(), UTC)
            groups.setdefault(start, []).append(bar)
        expected = {
            start: (g[0].open, max(b.high for b in g), min(b.low for b in g), g[-1].close, sum(b.volume for b in g))
            for start, g in groups.items()
        }
        assert bars(mes_from_ticks, timeframe) == expected, timeframe


def test_realtime_hierarchy_matches_materialized(sql: psycopg.Connection) -> None:
    """Before any refresh, every level is computed on the fly through the hierarchy (real-time
    aggregation): a week of data must give the same 4h and 1d bars as ProjectX."""
    start, end = datetime(2025, 4, 6, 22, tzinfo=UTC), datetime(2025, 4, 11, 22, tzinfo=UTC)
    week = [b for b in read_bars("5m") if start <= b.ts < end]
    load_ticks(sql, [t for bar in week for t in ticks_for_bar(bar, FIVE_MINUTES)])
    for level in ("1m", "4h", "1d"):
        assert materialized_rows(sql, f"bars_{level}") == 0, "nothing may be materialized yet"
    assert bars(sql, "1d") == {
        b.ts: b.ohlcv for b in covered(read_bars("1d"), start, end, "1d")
    }
    assert bars(sql, "4h") == {
        b.ts: b.ohlcv for b in covered(read_bars("4h"), start, end, "4h")
    }
