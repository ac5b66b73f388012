"""Benchmark (not a test): what the columnstore does to market.ticks.

Loads the last ``--days`` sessions of the real MES 5m bars as ticks (about one print per four
contracts of each bar's volume, at random times inside the bar, prices on the 0.25 grid within
its range, arrival 5-80 ms after the trade), then prints side by side, before and after compressing every chunk:
  - bytes per tick, table + indexes + TOAST (hypertable_detailed_size), and the ratio;
  - the time to read one session's ticks of the contract in time order (median of 7);
  - the time to refresh that session's 1m bars, and whether the bars are identical.

Usage: DATABASE_URL=postgresql://... python bench/compression.py [--days 2]
Without DATABASE_URL, as root, it starts a throw-away server like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from datetime import timedelta

import asyncpg
from scratch import scratch_database

from bar_data import CONTRACT, read_bars

SIZE = "SELECT total_bytes, table_bytes, index_bytes FROM hypertable_detailed_size('market.ticks')"
READ_DAY = ("SELECT ts, price, size, side FROM market.ticks WHERE contract_id = $1 AND ts >= $2 AND ts < $3"
            " ORDER BY ts")
BARS_1M = ("SELECT bucket, open, high, low, close, volume, trade_count FROM market.bars_1m"
           " WHERE contract_id = $1 AND bucket >= $2 AND bucket < $3 ORDER BY bucket")


def synth_ticks(days: int, seed: int = 11) -> list[tuple]:
    """Random prints inside each real 5m bar of the last ``days`` sessions (open first, close last),
    each received a few milliseconds after it traded, as the live ingester stores them."""
    rng = random.Random(seed)
    bars = read_bars("5m")
    since = bars[-1].ts - timedelta(days=days)
    rows = []
    for bar in (b for b in bars if b.ts >= since):
        n = max(4, bar.volume // 4)
        lo, hi = float(bar.low), float(bar.high)
        prices = [float(bar.open), hi, lo, *(round(rng.uniform(lo, hi) * 4) / 4 for _ in range(n - 4)),
                  float(bar.close)]
        offsets = sorted(rng.randrange(1, 300_000_000) for _ in range(n - 2))
        times = [0, *offsets, 299_999_999]
        for price, micros in zip(prices, times, strict=True):
            ts = bar.ts + timedelta(microseconds=micros)
            rows.append((CONTRACT, ts, price, min(1 + int(rng.expovariate(0.5)), 50), rng.randrange(2),
                         ts + timedelta(microseconds=rng.randrange(5_000, 80_000))))  # received 5-80 ms later
    return rows


async def read_time(conn: asyncpg.Connection, start: object, end: object) -> tuple[float, int]:
    runs, n = [], 0
    for _ in range(7):
        t = time.perf_counter()
        n = len(await conn.fetch(READ_DAY, CONTRACT, start, end))
        runs.append(time.perf_counter() - t)
    return statistics.median(runs), n


async def fresh_1m_bars(conn: asyncpg.Connection, name: str, start: object, end: object) -> tuple[float, list]:
    """A new copy of the bars_1m cagg, refreshed over [start, end): the time it took and its bars."""
    definition = await conn.fetchval("SELECT view_definition FROM timescaledb_information.continuous_aggregates"
                                     " WHERE view_name = 'bars_1m'")
    await conn.execute(f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous) AS "
                       f"{definition.rstrip().rstrip(';')} WITH NO DATA")
    t = time.perf_counter()
    await conn.execute(f"CALL refresh_continuous_aggregate('{name}', $1::timestamptz, $2::timestamptz)", start, end)
    took = time.perf_counter() - t
    return took, await conn.fetch(BARS_1M.replace("market.bars_1m", name), CONTRACT, start, end)


async def main(days: int) -> None:
    rows = synth_ticks(days)
    async with scratch_database() as dsn:
        conn = await asyncpg.connect(dsn)
        t = time.perf_counter()
        await conn.copy_records_to_table("ticks", schema_name="market", records=rows,
                                         columns=["contract_id", "ts", "price", "size", "side", "received_at"])
        print(f"ticks: {len(rows):,} over {days} session(s), loaded in {time.perf_counter() - t:.1f} s")
        await conn.execute("VACUUM ANALYZE market.ticks")
        last = max(r[1] for r in rows)
        day_end = (last - timedelta(hours=21)).replace(hour=21, minute=0, second=0, microsecond=0)
        day_start = day_end - timedelta(hours=23)
        window = (day_start, day_end + timedelta(hours=1))

        before = await conn.fetchrow(SIZE)
        read_before, n_day = await read_time(conn, day_start, day_end)
        refresh_before, bars_before = await fresh_1m_bars(conn, "bench_1m_rows", *window)

        t = time.perf_counter()
        chunks = await conn.fetchval("SELECT count(compress_chunk(c)) FROM show_chunks('market.ticks') AS c")
        compress_s = time.perf_counter() - t
        await conn.execute("VACUUM ANALYZE market.ticks")
        after = await conn.fetchrow(SIZE)
        read_after, n_after = await read_time(conn, day_start, day_end)
        refresh_after, bars_after = await fresh_1m_bars(conn, "bench_1m_columns", *window)
        await conn.close()

    per_before, per_after = before["total_bytes"] / len(rows), after["total_bytes"] / len(rows)
    print(f"compressed {chunks} chunk(s) in {compress_s:.1f} s")
    print(f"{'':34}{'row store':>14}{'columnstore':>14}{'ratio':>9}")
    print(f"{'bytes per tick (table+indexes)':34}{per_before:>14.1f}{per_after:>14.1f}{per_before / per_after:>8.1f}x")
    print(f"{'total size':34}{before['total_bytes'] / 2**20:>11.1f} MB{after['total_bytes'] / 2**20:>11.1f} MB")
    print(f"{f'read one session ({n_day:,} ticks)':34}{read_before * 1000:>11.1f} ms{read_after * 1000:>11.1f} ms"
          f"{read_before / read_after:>8.2f}x")
    print(f"{'refresh that session of 1m bars':34}{refresh_before * 1000:>11.1f} ms{refresh_after * 1000:>11.1f} ms")
    print(f"same ticks read back: {n_day == n_after}; identical 1m bars: {bars_before == bars_after} "
          f"({len(bars_before)} bars)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=2, help="sessions of ticks to load (default 2)")
    asyncio.run(main(parser.parse_args().days))
