"""Ticks in the columnstore: late ticks still deduplicate into compressed chunks, bars refreshed over
compressed chunks are identical, and retention drops raw ticks but never their bars."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
import pytest

from bar_data import CONTRACT, read_bars, ticks_for_bar

FROM, TO = datetime(2025, 5, 11, 22, tzinfo=UTC), datetime(2025, 5, 13, 21, tzinfo=UTC)  # two sessions
BARS = ("SELECT timeframe, bucket, open, high, low, close, volume, trade_count, buy_volume, sell_volume"
        " FROM market.bars WHERE contract_id = %s ORDER BY timeframe, bucket")
INSERT_TICKS = ("SELECT market.insert_ticks(array_agg(c), array_agg(t), array_agg(p), array_agg(s), array_agg(d),"
                " array_agg(q)) FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::int[],"
                " %s::smallint[], %s::smallint[]) AS x (c, t, p, s, d, q)")


def real_ticks(start: datetime = FROM, end: datetime = TO) -> list[tuple]:
    """Four prints per real MES 5m bar in [start, end), with seq 0: (contract, ts, price, size, side, seq)."""
    return [(*t, 0) for b in read_bars("5m") if start <= b.ts < end for t in ticks_for_bar(b, timedelta(minutes=5))]


def insert_ticks(sql: psycopg.Connection, ticks: list[tuple]) -> int:
    """Through the ingester's write path, market.insert_ticks: how many rows were new."""
    return sql.execute(INSERT_TICKS, [list(col) for col in zip(*ticks, strict=True)]).fetchone()[0]


def compress_all(sql: psycopg.Connection) -> int:
    sql.execute("SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks('market.ticks') AS c")
    return sql.execute("SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = 'ticks'"
                       " AND is_compressed").fetchone()[0]


def test_compression_follows_the_unique_key_in_force(sql: psycopg.Connection) -> None:
    key = sql.execute(
        "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index AS i"
        " CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, ord)"
        " JOIN pg_attribute AS a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
        " WHERE i.indrelid = 'market.ticks'::regclass AND i.indisunique GROUP BY i.indexrelid").fetchall()
    assert len(key) == 1, "one unique key on market.ticks"
    settings = dict(sql.execute(
        "SELECT attname, coalesce(segmentby_column_index, -orderby_column_index) FROM"
        " timescaledb_information.compression_settings WHERE hypertable_name = 'ticks'").fetchall())
    assert settings["contract_id"] == 1, "segmented by contract"
    assert settings["ts"] == -1, "ordered by time first"
    assert set(key[0][0]) <= set(settings), "every key column is segmented or ordered on"
    policies = sql.execute("SELECT proc_name, config ->> 'compress_after' FROM timescaledb_information.jobs"
                           " WHERE hypertable_name = 'ticks' ORDER BY 1").fetchall()
    assert policies == [("policy_compression", "2 days")]


def test_late_ticks_into_compressed_chunks_deduplicate_and_bars_stay_identical(sql: psycopg.Connection) -> None:
    ticks = real_ticks()
    assert insert_ticks(sql, ticks) == len(ticks)
    from_rows = sql.execute(BARS, (CONTRACT,)).fetchall()  # real-time: straight from the row store
    assert compress_all(sql) >= 2

    sql.execute("CALL market.refresh_bars(%s, %s)", (FROM, TO))
    assert sql.execute(BARS, (CONTRACT,)).fetchall() == from_rows, "bars refreshed over compressed chunks"

    # The same trades again (a replay after a reconnect, a second load): nothing new, through both paths.
    assert insert_ticks(sql, ticks[::7]) == 0
    cur = sql.execute("INSERT INTO market.ticks (contract_id, ts, price, size, side, seq)"
                      " SELECT * FROM unnest(%s::text[], %s::timestamptz[], %s::numeric[], %s::int[],"
                      " %s::smallint[], %s::smallint[]) ON CONFLICT DO NOTHING",
                      [list(col) for col in zip(*ticks[::5], strict=True)])
    assert cur.rowcount == 0
    with pytest.raises(psycopg.errors.UniqueViolation):
        sql.execute("INSERT INTO market.ticks (contract_id, ts, price, size, side, seq)"
                    " VALUES (%s, %s, %s, %s, %s, %s)", ticks[100])
    assert sql.execute("SELECT count(*) FROM market.ticks").fetchone()[0] == len(ticks)
    sql.execute("CALL market.refresh_bars(%s, %s)", (FROM, TO))
    assert sql.execute(BARS, (CONTRACT,)).fetchall() == from_rows

    # A genuinely new late print (a repeat of a stored one, told apart by seq) lands and moves its bars.
    contract, ts, price, size, side, _ = ticks[100]
    assert insert_ticks(sql, [(contract, ts, price, size, side, 1)]) == 1
    sql.execute("CALL market.refresh_bars(%s, %s)", (FROM, TO))
    after = {(r[0], r[1]): r for r in sql.execute(BARS, (CONTRACT,)).fetchall()}
    changed = [r for r in from_rows if after[(r[0], r[1])] != r]
    assert sorted(r[0] for r in changed) == ["15m", "1d", "1h", "1m", "4h", "5m"]
    assert all(after[(r[0], r[1])][6] == r[6] + size for r in changed)


def test_set_tick_storage_sets_age_and_a_retention_that_bars_survive(sql: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.RaiseException, match="p_drop_after must be longer than 03:00:00"):
        sql.execute("SELECT * FROM market.set_tick_storage('1 day', '2 hours')")
    policies = sql.execute("SELECT * FROM market.set_tick_storage('1 day', '30 days')").fetchall()
    assert [(p, after) for p, _, after in policies] == [("policy_compression", timedelta(days=1)),
                                                       ("policy_retention", timedelta(days=30))]
    old = real_ticks()
    now = datetime.now(UTC).replace(microsecond=0)
    recent = [(CONTRACT, now - timedelta(hours=2), Decimal("5800.25"), 3, 0, 0)]
    assert insert_ticks(sql, old + recent) == len(old) + 1
    sql.execute("CALL market.refresh_bars(%s, %s)", (FROM, TO))
    old_bars = sql.execute(BARS + " LIMIT 5000", (CONTRACT,)).fetchall()
    old_bars = [r for r in old_bars if r[1] < TO]

    retention = next(job for p, job, _ in policies if p == "policy_retention")
    sql.execute("CALL run_job(%s)", (retention,))
    assert sql.execute("SELECT count(*) FROM market.ticks").fetchone() == (1,), "old raw ticks dropped"
    # A refresh reaching back over the dropped ticks keeps their bars instead of deleting them.
    sql.execute("CALL market.refresh_bars(%s, %s)", (FROM, TO))
    assert [r for r in sql.execute(BARS, (CONTRACT,)).fetchall() if r[1] < TO] == old_bars

    assert sql.execute("SELECT * FROM market.set_tick_storage('2 days')").fetchall()[0][0] == "policy_compression"
    assert sql.execute("SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'ticks'"
                       " AND proc_name = 'policy_retention'").fetchone() == (0,)
