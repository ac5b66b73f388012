"""Benchmark of the trend-start detector (not a test): SQL full recompute, one incremental job run,
and the same series through the plain Python implementation (the tests' oracle, tests/trend_reference.py).

    .venv/bin/python bench/trend.py [--bars 300000] [--dsn postgresql://.../postgres]

Without --dsn (or MECHTRADE_TEST_DSN, or DATABASE_URL) it starts a throw-away PostgreSQL + TimescaleDB server as
the test harness does (tests/pg_server.py; needs root). Everything is measured in one run on a
synthetic 1m random walk on the 0.25 tick, loaded into market.history_bars of a fresh migrated
database, and printed as one table.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from scratch import scratch_database_sync

import trend_reference

CONTRACT = "BENCH.TREND"
TICK = Decimal("0.25")


def synthetic_bars(n: int, seed: int = 7) -> list[trend_reference.Bar]:
    """A 1m random walk in ticks, with bar ranges of a few ticks; all bars closed long ago."""
    rng = random.Random(seed)
    start = datetime(2020, 1, 6, tzinfo=UTC)
    price = 4000 * 4  # in ticks
    out = []
    for k in range(n):
        o = price
        c = o + rng.choice((-3, -2, -1, -1, 0, 1, 1, 2, 3))
        h = max(o, c) + rng.randint(0, 3)
        low = min(o, c) - rng.randint(0, 3)
        price = c
        out.append(trend_reference.Bar(
            (start + timedelta(minutes=k)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            o * TICK, h * TICK, low * TICK, c * TICK,
        ))
    return out


def load(conn: psycopg.Connection, bars: list[trend_reference.Bar]) -> None:
    buf = io.StringIO()
    for b in bars:
        buf.write(f"{CONTRACT}\t1m\t{b.ts}\t{b.o}\t{b.h}\t{b.l}\t{b.c}\t1\n")
    with conn.cursor() as cur, cur.copy(
        "COPY market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume) FROM STDIN"
    ) as copy:
        copy.write(buf.getvalue())
    conn.execute("ANALYZE market.history_bars")


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def run(server_dsn: str | None, n: int, profile: str, single_runs: int) -> None:
    with scratch_database_sync(server_dsn) as dsn:
        bars = synthetic_bars(n + single_runs)
        series, extra = bars[:n], bars[n:]
        with psycopg.connect(dsn, autocommit=True) as conn:
            load(conn, series)
            conn.execute(
                "INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, scheduled)"
                " VALUES (%s, '1m', %s, false)",
                (CONTRACT, profile),
            )
            job = conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'run_trend_jobs'"
            ).fetchone()[0]

            # 1. full recompute through the analysts' function (reads market.bars, runs the fold)
            sql_s, sql_starts = timed(lambda: conn.execute(
                "SELECT count(*) FROM signals.trend_starts(%s, '1m', NULL, NULL, %s)", (CONTRACT, profile)
            ).fetchone()[0])
            # the fold alone, on arrays already in memory
            fold_s, _ = timed(lambda: conn.execute(
                """WITH s AS (
                       SELECT array_agg(bucket ORDER BY bucket) AS t, array_agg(open ORDER BY bucket) AS o,
                              array_agg(high ORDER BY bucket) AS h, array_agg(low ORDER BY bucket) AS l,
                              array_agg(close ORDER BY bucket) AS c
                       FROM market.history_bars WHERE contract_id = %s AND timeframe = '1m')
                   SELECT count(*) FROM s, internal.trend_detect(%s, s.t, s.o, s.h, s.l, s.c)""",
                (CONTRACT, profile),
            ).fetchone())

            # 2. the incremental job: first run over the whole history, then runs seeing one new bar
            first_s, _ = timed(lambda: conn.execute("CALL run_job(%s)", (job,)))
            single = []
            for b in extra:
                conn.execute(
                    "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
                    " VALUES (%s, '1m', %s, %s, %s, %s, %s, 1)",
                    (CONTRACT, b.ts, b.o, b.h, b.l, b.c),
                )
                t, _ = timed(lambda: conn.execute("CALL run_job(%s)", (job,)))
                single.append(t)
            ok = conn.execute(
                """SELECT (SELECT count(*) FROM signals.detected_signals WHERE superseded_at IS NULL)
                        = (SELECT count(*) FROM signals.trend_starts(%s, '1m', NULL, NULL, %s))""",
                (CONTRACT, profile),
            ).fetchone()[0]

        # 3. the plain Python implementation on the same bars
        algo = trend_reference.PROFILES[profile]
        py_s, res = timed(lambda: trend_reference.final_list(algo(series).starts))

        print(f"trend-start benchmark: {n:,} synthetic 1m bars, profile {profile}")
        print(f"  SQL full recompute, signals.trend_starts (reads market.bars): {sql_s:7.2f} s"
              f"  {n / sql_s:>10,.0f} bars/s  ({sql_starts:,} starts)")
        print(f"  SQL fold alone (internal.trend_detect on arrays):            {fold_s:7.2f} s"
              f"  {n / fold_s:>10,.0f} bars/s")
        print(f"  Python reference (tests/trend_reference.py, Decimal):       {py_s:7.2f} s"
              f"  {n / py_s:>10,.0f} bars/s  ({len(res):,} starts)")
        print(f"  ratio SQL/Python throughput: full recompute {py_s / sql_s:.2f}, fold alone {py_s / fold_s:.2f}")
        print(f"  incremental job, first run over all {n:,} bars (CALL run_job): {first_s:7.2f} s")
        print(f"  incremental job run seeing one new bar (CALL run_job), {len(single)} runs: "
              f"median {statistics.median(single) * 1000:.1f} ms, max {max(single) * 1000:.1f} ms")
        print(f"  incremental signals equal the full recompute: {ok}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=300_000)
    ap.add_argument("--profile", default="baseline", choices=sorted(trend_reference.PROFILES))
    ap.add_argument("--single-runs", type=int, default=20, help="incremental runs that each see one new bar")
    ap.add_argument("--dsn", default=os.environ.get("MECHTRADE_TEST_DSN"),
                    help="server to use (any database on it); default: DATABASE_URL's, else a throw-away one")
    args = ap.parse_args(argv)
    run(args.dsn, args.bars, args.profile, args.single_runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
