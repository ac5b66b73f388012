"""Benchmark (not a test): how fast does a trade become a bar, a bar a signal, a signal a decision?

Runs the whole pipeline (fake gateway → ingester → trend jobs → coordinator, ``ingest.replay_harness``) over
replayed MES hours, once with 1 contract and once with 10 at once, and prints p50/p99 of:
  1. tick → bar visible: a trade batch leaves the fake gateway → its 1m bar in market.bars shows it
     (for 10 contracts: one batch of each, sent together);
  2. closed bar → signal row: the bar's last trade is stored → the trend job of its timeframe that ran
     on that close (one job for every contract) has returned. A live job starts a few seconds after the
     close on top: this is the work, not the waiting (bench/pipeline.py compares the job designs);
  3. signal → decision: the job's commit → the coordinator has committed the batch that read it
     (over all signals; the decisions among them are counted).
Signals from the warm-up history are left out.

Usage: DATABASE_URL=postgresql://... python bench/pipeline_e2e.py [--hours 23]
Without DATABASE_URL, as root, it starts a throw-away server like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from scratch import scratch_database  # noqa: E402

from ingest import db, migrate  # noqa: E402
from ingest.replay_harness import DAY_START, TIMEFRAMES, ReplayHarness, contract_ids  # noqa: E402


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def line(name: str, values: list[float], extra: str = "") -> str:
    if not values:
        return f"  {name:<28} (no samples)"
    ms = [v * 1000 for v in values]
    return f"  {name:<28} p50 {pct(ms, 50):8.1f} ms   p99 {pct(ms, 99):8.1f} ms   n={len(ms)}{extra}"


async def bar_shows(conn: db.asyncpg.Connection, contract: str, minute: datetime, volume: int) -> None:
    """Poll until the 1m bar of ``contract`` at ``minute`` holds ``volume`` (what has been sent)."""
    while True:
        got = await conn.fetchval("SELECT volume FROM market.bars WHERE contract_id = $1 AND timeframe = '1m'"
                                  " AND bucket = $2", contract, minute)
        if got is not None and got >= volume:
            return
        await asyncio.sleep(0.0005)


async def measure(dsn: str, contracts: int, hours: float) -> list[str]:
    ids = contract_ids(contracts)
    tick_bar: list[float] = []
    bar_signal: list[float] = []
    signal_seen: list[float] = []
    decisions = 0
    committed: dict[int, float] = {}  # signal_id -> when the job that wrote it returned
    progress: list[tuple[float, int]] = []  # (when, coordinator watermark)
    sent_volume: dict[tuple[str, datetime], int] = defaultdict(int)
    with tempfile.TemporaryDirectory() as spill:
        async with ReplayHarness(dsn, contracts=ids, end=DAY_START + timedelta(hours=hours), spill_dir=Path(spill),
                            consumer="bench") as p:
            watcher = asyncio.create_task(watch(p, progress))
            poll = await db.connect(dsn)
            started = time.perf_counter()
            while not p.done:
                boundary = p.clock + min(TIMEFRAMES.values())
                limit = int((boundary - timedelta(microseconds=1)).timestamp() * 10_000_000)
                # 1. one batch per contract at a time, until the boundary
                while (nxt := p.gw.market.peek()) is not None and nxt[0] <= limit:
                    played = await p.gw.play(1)
                    while (nxt := p.gw.market.peek()) is not None and nxt[0] <= limit and len(
                            {t.contract_id for t in played}) < contracts:
                        played += await p.gw.play(1)
                    t0 = time.perf_counter()
                    ours = [t for t in played if t.contract_id in ids]
                    p.played += len(ours)
                    last: dict[str, tuple[datetime, int]] = {}
                    for t in ours:
                        minute = datetime.fromtimestamp(t.ticks // 10_000_000 // 60 * 60, UTC)
                        sent_volume[(t.contract_id, minute)] += t.volume
                        last[t.contract_id] = (minute, sent_volume[(t.contract_id, minute)])
                    for cid, (minute, volume) in last.items():
                        await bar_shows(poll, cid, minute, volume)
                        tick_bar.append(time.perf_counter() - t0)
                await p.stored()
                p.clock = boundary
                # 2. the jobs of the bars that closed here, every contract at once
                due = [tf for tf, width in TIMEFRAMES.items() if (boundary - DAY_START) % width == timedelta(0)]
                t0 = time.perf_counter()
                ends = await asyncio.gather(*(run_job(dsn, p.jobs[tf]) for tf in due))
                new = await p.conn.fetch(
                    "SELECT signal_id, contract_id, timeframe, confirmed_at FROM signals.detected_signals"
                    " WHERE signal_id > $1 ORDER BY signal_id", p.last_signal_id)
                end_of = dict(zip(due, ends, strict=True))
                for s in new:
                    done = end_of[s["timeframe"]]
                    committed[s["signal_id"]] = done
                    if s["confirmed_at"] >= DAY_START:
                        bar_signal.append(done - t0)
                if new:
                    p.last_signal_id = new[-1]["signal_id"]
            await p.drain()
            elapsed = time.perf_counter() - started
            watcher.cancel()
            live = await p.conn.fetch("SELECT signal_id FROM signals.detected_signals WHERE confirmed_at >= $1",
                                      DAY_START)
            for s in live:
                when = next(t for t, through in progress if through >= s["signal_id"])
                signal_seen.append(when - committed[s["signal_id"]])
            decisions = await p.conn.fetchval(
                "SELECT count(*) FROM signals.decisions AS d JOIN signals.detected_signals AS s"
                " ON s.signal_id = d.trigger_signal_id WHERE s.confirmed_at >= $1", DAY_START)
            await poll.close()
            played = p.played
    return [f"{contracts} contract(s), {hours:g} market hours, {played} trades, {elapsed:.1f} s wall:",
            line("tick -> bar visible", tick_bar),
            line("closed bar -> signal row", bar_signal),
            line("signal -> decision", signal_seen, f"  ({decisions} decisions)")]


async def run_job(dsn: str, job_id: int) -> float:
    conn = await db.connect(dsn)
    try:
        await conn.execute("CALL run_job($1)", job_id)
        return time.perf_counter()
    finally:
        await conn.close()


async def watch(p: ReplayHarness, progress: list[tuple[float, int]]) -> None:
    """Record when the coordinator's watermark moves."""
    seen = p.coordinator.through
    while True:
        await p.coordinator.wait_until(lambda c, s=seen: c.through > s, timeout=3600)
        seen = p.coordinator.through
        progress.append((time.perf_counter(), seen))


async def main(hours: float) -> None:
    for contracts in (1, 10):
        async with scratch_database() as dsn:
            conn = await db.connect(dsn)
            await migrate.migrate(conn)
            await conn.close()
            for text in await measure(dsn, contracts, hours):
                print(text, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=23.0, help="market hours to replay (default 23: a day)")
    asyncio.run(main(parser.parse_args().hours))
