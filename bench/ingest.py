"""Benchmark (not a test): the live ingest path against a plain COPY, and its latency.

The real path end to end: fake hub (real WebSocket + SignalR framing on loopback, in a process of
its own so it does not share our GIL) -> signalrcore -> parse -> batches -> asyncpg -> hypertable,
with the configured batching (config/mechtrade.yaml). Printed, measured in one run:
  1. rows/s for a burst (the hub composes ``--trades`` trades first, then sends them as fast as the
     socket takes them; timed from its first send to our last commit), divided by a plain
     ``copy_records_to_table`` of the same rows into the same hypertable, for the tape's own
     messages (1-3 trades each) and busy-market ones (``--per-message`` trades each, target >= 0.7),
     ``--runs`` times each: every run's ratio, their median and spread (max - min);
  2. p50/p99 latency from the hub composing a trade's frame to its row being committed, at 1,000
     and 5,000 trades/s (target p99 < 250 ms); ``--seconds 0`` skips it.

Usage: DATABASE_URL=postgresql://... python bench/ingest.py [--trades 50000] [--runs 3] [--seconds 8]
Without DATABASE_URL, as root, it starts a throw-away server like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import dataclasses
import multiprocessing
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg
from scratch import scratch_database

from ingest.config import Config, Ingest
from ingest.fake_gateway import MES_M25, FakeGateway
from ingest.fake_gateway.tape import Tape, default_tape
from ingest.feed import FeedSettings
from ingest.ingester import Ingester
from ingest.metrics import Metrics
from ingest.trades import Tick, parse_gateway_trade

TAPE_START = "2025-03-16T22:00:00+00:00"  # the start of the fake gateway's MES tape (~76,000 trades)
Sent = list[tuple[dict, float]]  # (trade item as sent, when its frame was composed)


@dataclasses.dataclass
class Run:
    """One replay: what the hub sent and when our rows were committed."""

    started: float
    sent: Sent
    committed: dict[tuple, list[float]]

    @property
    def commit_s(self) -> float:
        return max(max(times) for times in self.committed.values()) - self.started

    def latencies_ms(self) -> list[float]:
        """Send-to-commit latency per trade: identical prints pair up in order of sending and committing."""
        sends: dict[tuple, list[float]] = defaultdict(list)
        for item, at in self.sent:
            tick = parse_gateway_trade([MES_M25, [item]], {MES_M25}).ticks[0]
            sends[tick[:5]].append(at)
        return [(c - s) * 1000 for key, times in sends.items()
                for s, c in zip(sorted(times), sorted(self.committed[key]), strict=False)]


def tape(per_message: int) -> Tape:
    """The demo tape, its trades ``per_message`` to a ``GatewayTrade`` (0: as synthesized, 1-3)."""
    natural = default_tape(MES_M25)
    if not per_message:
        return natural
    trades, batches, i = natural.trades, [], 0
    while i < len(trades):
        j = min(len(trades), i + per_message)
        while j < len(trades) and trades[j].ticks == trades[j - 1].ticks:
            j += 1  # identical prints must share a message (see ingest.trades)
        batches.append((i, j))
        i = j
    return Tape(MES_M25, trades, batches)


def serve_gateway(pipe: Connection, per_message: int) -> None:
    """Child process: a fake gateway steered over ``pipe`` (hub URL and token out, replay orders in)."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        async with FakeGateway(ping_interval_s=5.0, replay_from=TAPE_START, tapes={MES_M25: tape(per_message)}) as gw:
            pipe.send((gw.hub_url, gw.login()))
            await gw.wait_for(lambda: any(c.subscriptions for c in gw.connections), timeout=60)
            speed, trades, seconds = await loop.run_in_executor(None, pipe.recv)
            if trades:  # a burst: every frame composed first, then sent as fast as the socket takes them
                ends = [end for _, end in gw.market.tapes[MES_M25].batches]
                played = await gw.play(bisect.bisect_left(ends, trades) + 1)
                started = time.time()
                await gw.wait_for(lambda: len(gw.sent_trades) >= len(played), timeout=600)
            else:
                started = time.time()
                gw.start_replay(speed)
                await asyncio.sleep(seconds)
                gw.pause_replay()
            pipe.send((started, [(s.item, s.sent_at) for s in gw.sent_trades]))
            await loop.run_in_executor(None, pipe.recv)  # serve until the ingester has stopped

    asyncio.run(serve())


async def replay(dsn: str, spill: Path, *, speed: float | None = None, trades: int | None = None,
                 seconds: float | None = None, per_message: int = 0) -> Run:
    """Replay through the real path until every trade sent is committed."""
    pipe, child_end = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(target=serve_gateway, args=(child_end, per_message))
    child.start()
    loop = asyncio.get_running_loop()
    hub_url, token = await loop.run_in_executor(None, pipe.recv)

    class Tokens:
        async def token(self) -> str:
            return token

        def invalidate_token(self) -> None:
            pass

    async def no_history(*_args: object) -> int:
        return 0

    cfg = Config(contracts=(MES_M25,), ingest=Ingest(spill_dir=str(spill)))
    cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, hub_url=hub_url))
    metrics = Metrics()
    commits: list[tuple[Sequence[Tick], float]] = []  # sorted out after the run, not on its clock

    def on_committed(ticks: Sequence[Tick], at: float) -> None:
        commits.append((ticks, at))

    ingester = Ingester(cfg, dsn, Tokens(), no_history, metrics=metrics, is_market_open=lambda: False,
                        feed_settings=FeedSettings(server_silence_s=30))
    ingester.writer.on_committed = on_committed
    stop = asyncio.Event()
    task = asyncio.create_task(ingester.run(stop))
    while not metrics.total("hub_connects_total") and not task.done():
        await asyncio.sleep(0.01)
    pipe.send((speed, trades, seconds))
    started, sent = await loop.run_in_executor(None, pipe.recv)
    while metrics.total("ticks_written_total") + metrics.total("ticks_duplicate_total") < len(sent):
        await asyncio.sleep(0.01)
    stop.set()
    await task
    pipe.send("stop")
    child.join()
    committed: dict[tuple, list[float]] = defaultdict(list)
    for ticks, at in commits:
        for t in ticks:
            committed[t[:5]].append(at)
    return Run(started, sent, committed)


async def plain_copy(dsn: str) -> tuple[float, int]:
    """Seconds for a plain COPY of the rows the ingester stored, into the emptied hypertable."""
    conn = await asyncpg.connect(dsn)
    rows = [tuple(r) for r in await conn.fetch("SELECT contract_id, ts, price, size, side, seq FROM market.ticks")]
    await conn.execute("TRUNCATE market.ticks")
    start = time.perf_counter()
    await conn.copy_records_to_table("ticks", schema_name="market", records=rows,
                                     columns=["contract_id", "ts", "price", "size", "side", "seq"])
    elapsed = time.perf_counter() - start
    await conn.execute("TRUNCATE market.ticks")
    await conn.close()
    return elapsed, len(rows)


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) >= 100 else max(values)


async def main(trades: int, runs: int, seconds: float, per_message: int) -> None:
    async with scratch_database() as dsn:
        with TemporaryDirectory() as spill:
            for size in (0, per_message):
                label = f"{size} trades" if size else "1-3 trades (the tape's own)"
                ratios = []
                for i in range(runs):
                    run = await replay(dsn, Path(spill), trades=trades, per_message=size)
                    copy_s, copy_rows = await plain_copy(dsn)
                    n, ours, plain = len(run.sent), len(run.sent) / run.commit_s, copy_rows / copy_s
                    ratios.append(ours / plain)
                    print(f"burst of {n:,} trades, {label} per GatewayTrade, run {i + 1}: all committed "
                          f"{run.commit_s:.2f} s after the hub began sending = {ours:,.0f} rows/s; plain "
                          f"copy_records_to_table of the same {copy_rows:,} rows {plain:,.0f} rows/s; "
                          f"ratio {ours / plain:.2f}", flush=True)
                target = "  (target >= 0.7)" if size == per_message else ""
                print(f"{label} per GatewayTrade: ratio ingest/COPY over {runs} runs: median "
                      f"{statistics.median(ratios):.2f}, spread {min(ratios):.2f}-{max(ratios):.2f}{target}\n",
                      flush=True)
            for rate in (1000, 5000) if seconds else ():
                run = await replay(dsn, Path(spill), speed=rate, seconds=seconds)
                lat = run.latencies_ms()
                await plain_copy(dsn)  # empties the table for the next run
                print(f"{rate:>5} trades/s for {seconds:.0f} s ({len(run.sent):,} trades): hub send -> commit "
                      f"p50 {statistics.median(lat):.1f} ms, p99 {pct(lat, 99):.1f} ms, max {max(lat):.1f} ms"
                      f"  (target p99 < 250 ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=50_000, help="trades for the full-speed runs (default 50,000)")
    parser.add_argument("--runs", type=int, default=3, help="full-speed runs per message size (default 3)")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per latency run (default 8; 0: none)")
    parser.add_argument("--per-message", type=int, default=50,
                        help="trades per message for the second full-speed run, as in a busy market (default 50)")
    args = parser.parse_args()
    asyncio.run(main(args.trades, args.runs, args.seconds, args.per_message))
