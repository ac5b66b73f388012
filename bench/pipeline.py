"""Benchmark (not a test): closed bar → signal, and the database CPU it costs, per trend job design.

Two designs, side by side on the same bars:
  old: one job per contract × timeframe × profile (before migration 0110), emulated as the scheduler
       ran it: a fresh session per series calling signals.trend_advance, at most as many at once as
       TimescaleDB has background workers (timescaledb.max_background_workers less the scheduler);
  new: one job per timeframe × profile (internal.run_trend_jobs via CALL run_job, one fresh session)
       running every series and committing each on its own.

Each contract gets 5 hours of 1m history (real MES 5m prices, one a minute, shifted per contract) and
its 5m bars, analysed once (not timed); then every market minute the minute's trades go into
market.ticks and the jobs due at that close run (1m every minute, 5m every fifth): the old design for
the first --minutes, then the new one for as many more, on the same database.
Per run of a series: closed bar → its work committed (design old: its session returned; design new:
internal.trend_series_runs.last_success), measured from the moment the jobs start: p50/p99 over every
series run (what a signal waits for); "signal" columns over the runs that found a new signal (the
synthetic contracts are shifted copies of one price series, so they signal together or not at all).
CPU is the PostgreSQL server's (postmaster and every backend, from /proc) while the jobs run, per
market minute.
Refresh policies are paused: the closed bars come from the real-time part of the aggregates. A live
job starts a few seconds after the close on top of this (internal.bar_close_schedule).

Usage: python bench/pipeline.py [--contracts 1,10,50,100] [--timeframes 1m,5m] [--minutes 20]
On DATABASE_URL's server (CPU only if it runs on this machine), else, as root, a throw-away one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from scratch import scratch_database  # noqa: E402

from ingest import db  # noqa: E402
from ingest.fake_gateway import load_bars  # noqa: E402
from ingest.replay_harness import contract_ids  # noqa: E402

PROFILE = "realtime"
START = datetime(2025, 5, 13, 14, tzinfo=UTC)  # Tuesday 09:00 Chicago: the replay is in session
HISTORY_MINUTES = 300
WIDTH = {"1m": 1, "5m": 5, "15m": 15, "1h": 60}


@dataclass
class Result:
    design: str
    contracts: int
    minutes: int
    series_s: list[float] = field(default_factory=list)  # every series run: close -> committed
    signal_s: list[float] = field(default_factory=list)  # the runs that found a new signal
    cpu_s: float | None = 0.0
    step_s: list[float] = field(default_factory=list)  # close -> the last job of the close returned


def pct(values: list[float], q: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def server_cpu(postmaster: int) -> float | None:
    """CPU seconds of the server so far: the postmaster, its live children and the children it reaped."""
    tick = os.sysconf("SC_CLK_TCK")
    try:
        total = 0
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
                pid, ppid = int(entry.name), int(fields[1])
                if pid == postmaster:
                    total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
                elif ppid == postmaster:
                    total += int(fields[11]) + int(fields[12])
        return total / tick
    except OSError:
        return None


@functools.cache
def mes_bars() -> list:
    return load_bars()


def minute_bars(contract: int, first: int, count: int) -> Iterator[tuple[float, float, float, float, int]]:
    """Real MES 5m prices, one bar a minute, shifted by 10 points per contract."""
    for b in mes_bars()[first:first + count]:
        k = 10 * contract
        yield b.o + k, b.h + k, b.l + k, b.c + k, max(b.v, 4)


async def load_history(conn: db.asyncpg.Connection, ids: tuple[str, ...], timeframes: list[str]) -> None:
    rows = []
    for k, cid in enumerate(ids):
        ones = list(minute_bars(k, 0, HISTORY_MINUTES))
        first = START - timedelta(minutes=HISTORY_MINUTES)
        for tf in timeframes:
            w = WIDTH[tf]
            for i in range(0, len(ones), w):
                group = ones[i:i + w]
                rows.append((cid, tf, first + timedelta(minutes=i), group[0][0], max(g[1] for g in group),
                             min(g[2] for g in group), group[-1][3], sum(g[4] for g in group)))
    await conn.copy_records_to_table("history_bars", schema_name="market", records=rows, columns=[
        "contract_id", "timeframe", "bucket", "open", "high", "low", "close", "volume"])


async def insert_minute(conn: db.asyncpg.Connection, ids: tuple[str, ...], minute: int) -> None:
    """The trades of market minute ``minute`` after START: open, high/low, close, 15 s apart."""
    at = START + timedelta(minutes=minute)
    rows = []
    for k, cid in enumerate(ids):
        o, h, lo, c, v = next(minute_bars(k, HISTORY_MINUTES + minute, 1))
        middle = (lo, h) if c >= o else (h, lo)
        for j, price in enumerate((o, *middle, c)):
            rows.append((cid, at + timedelta(seconds=15 * j), price, v // 4, j % 2))
    await conn.copy_records_to_table("ticks", schema_name="market", records=rows,
                                     columns=["contract_id", "ts", "price", "size", "side"])


async def old_design(dsn: str, series: list[tuple[str, str]], workers: int) -> list[tuple[float, int]]:
    """Each series in a fresh session, as many at once as there are worker slots: (returned at, new signals)."""
    slots = asyncio.Semaphore(workers)

    async def one(cid: str, tf: str) -> tuple[float, int]:
        async with slots:
            conn = await db.connect(dsn)
            try:
                result = await conn.fetchval("SELECT signals.trend_advance($1, $2, $3)", cid, tf, PROFILE)
            finally:
                await conn.close()
            return time.perf_counter(), json.loads(result)["new"]

    return await asyncio.gather(*(one(cid, tf) for cid, tf in series))


async def new_design(dsn: str, job: int) -> tuple[datetime, float]:
    """The timeframe's job in a fresh session: (server clock at its start, returned at)."""
    conn = await db.connect(dsn)
    try:
        began = await conn.fetchval("SELECT clock_timestamp()")
        await conn.execute("CALL run_job($1)", job)
        return began, time.perf_counter()
    finally:
        await conn.close()


async def measure(contracts: int, timeframes: list[str], minutes: int) -> list[Result]:
    ids = contract_ids(contracts)
    results = [Result("old", contracts, minutes), Result("new", contracts, minutes)]
    async with scratch_database() as dsn:
        conn = await db.connect(dsn)
        try:
            await load_history(conn, ids, timeframes)
            await conn.execute(
                "INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, scheduled)"
                " SELECT c, tf, $3, false FROM unnest($1::text[]) AS c, unnest($2::text[]) AS tf",
                list(ids), timeframes, PROFILE)
            jobs = dict(await conn.fetch("SELECT DISTINCT timeframe, job_id FROM signals.trend_job_status"))
            workers = await conn.fetchval("SELECT max_background_workers - 1 FROM internal.worker_slots()")
            pid = await conn.fetchval("SELECT pg_backend_pid()")
            postmaster = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) \
                if Path(f"/proc/{pid}").exists() else None
            for job in jobs.values():  # warm-up, not timed: the whole history
                await conn.execute("CALL run_job($1)", job)
            for minute in range(2 * minutes):
                result = results[minute // minutes]
                design = result.design
                await insert_minute(conn, ids, minute)
                close = minute + 1
                due = [tf for tf in timeframes if close % WIDTH[tf] == 0]
                cpu = server_cpu(postmaster) if postmaster else None
                t0 = time.perf_counter()
                if design == "old":
                    done = await old_design(dsn, [(c, tf) for tf in due for c in ids], workers)
                    for end, new in done:
                        result.series_s.append(end - t0)
                        if new:
                            result.signal_s.append(end - t0)
                    result.step_s.append(max(end for end, _ in done) - t0)
                else:
                    ran = await asyncio.gather(*(new_design(dsn, jobs[tf]) for tf in due))
                    result.step_s.append(max(end for _, end in ran) - t0)
                    for tf, (began, _) in zip(due, ran, strict=True):
                        for r in await conn.fetch(
                                "SELECT last_success, (last_result ->> 'new')::integer AS new"
                                " FROM internal.trend_series_runs WHERE timeframe = $1 AND profile = $2",
                                tf, PROFILE):
                            s = (r["last_success"] - began).total_seconds()
                            result.series_s.append(s)
                            if r["new"]:
                                result.signal_s.append(s)
                if cpu is not None and result.cpu_s is not None:
                    after = server_cpu(postmaster)
                    result.cpu_s = None if after is None else result.cpu_s + after - cpu
                else:
                    result.cpu_s = None
        finally:
            await conn.close()
    return results


def table(results: list[Result]) -> str:
    head = ("design", "contracts", "series runs", "p50 s", "p99 s", "signals", "signal p50 s", "signal p99 s",
            "close->all done p99 s", "CPU-s/market min")
    rows = [head]
    for r in results:
        rows.append((r.design, str(r.contracts), str(len(r.series_s)), f"{pct(r.series_s, 50):.3f}",
                     f"{pct(r.series_s, 99):.3f}", str(len(r.signal_s)),
                     f"{pct(r.signal_s, 50):.3f}" if r.signal_s else "-",
                     f"{pct(r.signal_s, 99):.3f}" if r.signal_s else "-", f"{pct(r.step_s, 99):.3f}",
                     "n/a" if r.cpu_s is None else f"{r.cpu_s / r.minutes:.3f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows)


async def main(contracts: list[int], timeframes: list[str], minutes: int) -> None:
    results = []
    for n in contracts:
        results += await measure(n, timeframes, minutes)
        print(f"  done: {n} contract(s)", file=sys.stderr, flush=True)
    print(f"trend jobs over {','.join(timeframes)} ({PROFILE}), {minutes} market minutes, "
          f"closed bar -> work committed:")
    print(table(results))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", default="1,10,50,100",
                        help="comma-separated contract counts (default 1,10,50,100)")
    parser.add_argument("--timeframes", default="1m,5m", help=f"comma-separated, of {','.join(WIDTH)} (default 1m,5m)")
    parser.add_argument("--minutes", type=int, default=20, help="market minutes replayed per design (default 20)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the throw-away server on kill too
    if db.database_url() is None:
        from pg_server import RootServer

        server = RootServer()
        os.environ["DATABASE_URL"] = server.start().dsn("postgres")
    else:
        server = None
    try:
        asyncio.run(main([int(n) for n in args.contracts.split(",")], args.timeframes.split(","), args.minutes))
    finally:
        if server:
            server.stop()
