"""Benchmark (not a test): what do the bar continuous aggregates cost?

Loads >= 1M ticks synthesized from the real MES 5m bars into a scratch database, then measures
side by side in one run:
  1. refreshing the 1m cagg vs a plain GROUP BY time_bucket over the same ticks (written to a table);
  2. refreshing the whole hierarchical chain 1m -> 5m -> ... -> 1d, in TimescaleDB's default batches
     of 10 buckets, in the policies' batches (a week of 1m/5m buckets, 1000 coarser ones) and in one pass, each in a fresh
     database, checking that all three give identical bars;
  3. the hierarchy vs building each coarser level straight from ticks (flat caggs), checking that
     both give identical bars.

Usage: DATABASE_URL=postgresql://... python bench/bars.py [--ticks-per-bar 90]
Without DATABASE_URL, as root, it starts a throw-away server like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from datetime import timedelta

import asyncpg
from scratch import scratch_database

from bar_data import CONTRACT, read_bars

LEVELS = [("1m", "1 minute"), ("5m", "5 minutes"), ("15m", "15 minutes"), ("1h", "1 hour"), ("4h", "4 hours"),
          ("1d", "1 day")]
REFRESH = "CALL refresh_continuous_aggregate($1::regclass, $2::timestamptz, $3::timestamptz, options => $4::jsonb)"
ORIGIN = "'2000-01-02 23:00:00+00'::timestamptz"


def bucket(width: str) -> str:
    """The bucket expression of migration 0091: UTC below 4h, the Chicago session for 4h and 1d."""
    zone = "'America/Chicago', " if width in ("4 hours", "1 day") else ""
    return f"time_bucket('{width}', ts, {zone}{ORIGIN})"
TICK_AGGREGATES = """first(price, ts) AS open, max(price) AS high, min(price) AS low, last(price, ts) AS close,
    sum(size)::bigint AS volume, count(*) AS trade_count"""


def synth_ticks(ticks_per_bar: int, seed: int = 7) -> list[tuple]:
    """A random walk inside every real 5m bar: open first, close last, touching high and low."""
    rng = random.Random(seed)
    rows = []
    for bar in read_bars("5m"):
        step = timedelta(minutes=5) / ticks_per_bar
        lo, hi = float(bar.low), float(bar.high)
        inner = [round(rng.uniform(lo, hi) * 4) / 4 for _ in range(ticks_per_bar - 4)]
        prices = [float(bar.open), hi, lo, *inner, float(bar.close)]
        for i, price in enumerate(prices):
            rows.append((CONTRACT, bar.ts + step * i, price, 1 + rng.randrange(5), rng.randrange(2)))
    return rows


async def timed(conn: asyncpg.Connection, sql: str, *args: object) -> float:
    start = time.perf_counter()
    await conn.execute(sql, *args)
    return time.perf_counter() - start


BATCHING = {
    "TimescaleDB default (10 buckets per batch)": None,
    "policy batches (as market.refresh_bars)": "policy",
    "single pass (buckets_per_batch 0)": 0,
}


async def batch_options(conn: asyncpg.Connection, tf: str, batching: str | int | None) -> str | None:
    """The ``options`` of refresh_continuous_aggregate for one level under one batching mode."""
    if batching is None:
        return None
    if batching == "policy":
        batching = await conn.fetchval(
            "SELECT (config ->> 'buckets_per_batch')::int FROM timescaledb_information.jobs "
            "WHERE hypertable_schema = 'market' AND hypertable_name = $1", f"bars_{tf}")
    return json.dumps({"buckets_per_batch": batching})


async def load(conn: asyncpg.Connection, rows: list[tuple]) -> float:
    start = time.perf_counter()
    await conn.copy_records_to_table("ticks", schema_name="market", records=rows,
                                     columns=["contract_id", "ts", "price", "size", "side"])
    await conn.execute("ANALYZE market.ticks")
    return time.perf_counter() - start


async def refresh_chain(conn: asyncpg.Connection, first: object, last: object,
                        batching: str | int | None) -> dict[str, float]:
    return {tf: await timed(conn, REFRESH, f"market.bars_{tf}", first, last,
                            await batch_options(conn, tf, batching))
            for tf, _ in LEVELS}


async def compare_flat(conn: asyncpg.Connection, first: object, last: object) -> dict[str, float]:
    """Build each coarser level straight from ticks and check it equals the hierarchy."""
    flat = {}
    for tf, width in LEVELS[1:]:
        await conn.execute(
            f"CREATE MATERIALIZED VIEW flat_{tf} WITH (timescaledb.continuous) AS SELECT contract_id, "
            f"{bucket(width)} AS bucket, {TICK_AGGREGATES} "
            "FROM market.ticks GROUP BY 1, 2 WITH NO DATA"
        )
        flat[tf] = await timed(conn, REFRESH, f"flat_{tf}", first, last, json.dumps({"buckets_per_batch": 0}))
        differing = await conn.fetchval(
            f"SELECT count(*) FROM ((SELECT contract_id, bucket, open, high, low, close, volume FROM flat_{tf} "
            f"EXCEPT SELECT contract_id, bucket, open, high, low, close, volume FROM market.bars_{tf}) UNION ALL "
            f"(SELECT contract_id, bucket, open, high, low, close, volume FROM market.bars_{tf} "
            f"EXCEPT SELECT contract_id, bucket, open, high, low, close, volume FROM flat_{tf})) d"
        )
        assert differing == 0, f"{tf}: hierarchy and flat differ in {differing} rows"
    return flat


BAR_ROWS = "SELECT contract_id, bucket, open, high, low, close, volume, trade_count FROM market.bars_{tf}"


async def main(ticks_per_bar: int) -> None:
    rows = synth_ticks(ticks_per_bar)
    first, last = min(r[1] for r in rows), max(r[1] for r in rows) + timedelta(days=1)
    chains: dict[str, dict[str, float]] = {}
    bars: dict[str, list] = {}
    for label, batching in BATCHING.items():
        async with scratch_database() as dsn:  # a fresh database per mode: every refresh starts empty
            conn = await asyncpg.connect(dsn)
            load_s = await load(conn, rows)
            if not chains:
                print(f"ticks: {len(rows):,} loaded in {load_s:.1f} s ({len(rows) / load_s:,.0f} rows/s, COPY)")
                plain_1m = await timed(conn, f"CREATE UNLOGGED TABLE plain_1m AS SELECT contract_id, "
                                             f"{bucket('1 minute')} AS bucket, {TICK_AGGREGATES} "
                                             "FROM market.ticks GROUP BY 1, 2")
            chains[label] = await refresh_chain(conn, first, last, batching)
            bars[label] = [await conn.fetch(BAR_ROWS.format(tf=tf) + " ORDER BY 1, 2") for tf, _ in LEVELS]
            if batching == "policy":
                flat = await compare_flat(conn, first, last)
                chain = chains[label]
            await conn.close()
    assert all(b == bars[next(iter(bars))] for b in bars.values()), "batching modes gave different bars"

    print(f"\nplain GROUP BY time_bucket into a table, 1m: {plain_1m:.2f} s")
    print("batching                                                   1m refresh  ratio   chain 1m..1d  ratio")
    for label, times in chains.items():
        total = sum(times.values())
        print(f"{label:<58} {times['1m']:>8.2f} s {times['1m'] / plain_1m:>6.2f}x {total:>10.2f} s "
              f"{total / plain_1m:>6.2f}x")
    print("(ratios against the plain 1m GROUP BY; identical bars in every mode)")
    print("\nlevel  hierarchical(s)  flat-from-ticks(s)  ratio hier/flat   (policy batches vs single pass)")
    for tf, _ in LEVELS[1:]:
        print(f"{tf:>4}   {chain[tf]:>14.3f}  {flat[tf]:>18.3f}  {chain[tf] / flat[tf]:>15.3f}")
    hier, flat_total = sum(chain[tf] for tf, _ in LEVELS[1:]), sum(flat.values())
    print(f"5m..1d {hier:>14.3f}  {flat_total:>18.3f}  {hier / flat_total:>15.3f}   (identical bars at every level)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ticks-per-bar", type=int, default=90,
                        help="ticks per real 5m bar (default 90: ~1.02M ticks)")
    args = parser.parse_args()
    if args.ticks_per_bar < 4:
        parser.error("--ticks-per-bar: at least 4 (open, high, low, close)")
    asyncio.run(main(args.ticks_per_bar))
