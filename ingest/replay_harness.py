"""The demo's replay harness: the whole product in one process on a replayed market clock (fake gateway →
ingester → trend jobs → coordinator). Not the production path: ``mechtrade ingest`` and ``mechtrade
coordinate`` run separately, and TimescaleDB schedules the jobs. Used by ``mechtrade demo``, the
end-to-end test and ``bench/pipeline.py``.

The replay is historical, so every bar of it closed long ago as far as ``market.bars.is_closed`` is
concerned. The clock therefore advances in steps of the smallest detector timeframe: all trades up
to a bar boundary are played and stored, then the jobs whose timeframe closed a bar there run
(``CALL run_job``), exactly as their schedule would run them live just after the close. The
coordinator runs on its own, woken by the jobs' NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Self

import asyncpg

from ingest import db
from ingest.config import DEFAULT_PROFILE, Config, Credentials, Ingest, Rule
from ingest.config import Coordinator as CoordinatorSettings
from ingest.coordinator import Coordinator
from ingest.fake_gateway import MES_M25, FakeGateway, Tape, load_bars
from ingest.fake_gateway.bars import Bar, aggregate
from ingest.fake_gateway.catalog import Contract, default_catalog
from ingest.fake_gateway.tape import TICKS
from ingest.feed import FeedSettings
from ingest.ingester import Ingester
from ingest.metrics import Metrics
from ingest.projectx import ProjectXClient

TIMEFRAMES = {"15m": timedelta(minutes=15), "1h": timedelta(hours=1)}
DEMO_RULE = Rule("confluence_1h_15m", ("1h", "15m"), "2 hours", profile=DEFAULT_PROFILE)
# A trading day of the recorded MES data: the session opening Sunday 2025-05-11 17:00 CT.
DAY_START = datetime(2025, 5, 11, 22, tzinfo=UTC)
DAY_END = datetime(2025, 5, 12, 21, tzinfo=UTC)
FEED = FeedSettings(handshake_timeout_s=5.0, subscribe_timeout_s=5.0, server_silence_s=30.0, stale_feed_s=3600.0,
                    backoff_initial_s=0.05, backoff_max_s=1.0, healthy_after_s=1.0, check_every_s=0.05)


class DemoTokens:
    """Tokens straight from the fake gateway."""

    def __init__(self, gw: FakeGateway) -> None:
        self.gw = gw

    async def token(self) -> str:
        return self.gw.login()

    def invalidate_token(self) -> None:
        pass


async def no_history(*_args: object) -> int:
    """The fake feed never drops: there are no gaps to repair from REST."""
    return 0


def contract_ids(n: int) -> tuple[str, ...]:
    """MES M25 and ``n - 1`` synthetic copies of it (shifted prices), for load tests."""
    return (MES_M25, *(f"CON.F.US.MX{k}.M25" for k in range(1, n)))


def tapes_for(contracts: tuple[str, ...]) -> dict[str, Tape]:
    bars = load_bars()
    out = {}
    for k, cid in enumerate(contracts):
        shifted = [Bar(b.t, b.o + 10 * k, b.h + 10 * k, b.l + 10 * k, b.c + 10 * k, b.v) for b in bars]
        out[cid] = Tape.from_bars(cid, shifted, seed=k)
    return out


@dataclass
class Step:
    """What one step of the clock produced."""

    at: datetime  # the bar boundary reached
    ticks: int  # trades played in this step
    jobs: list[str] = field(default_factory=list)  # timeframes whose job ran
    job_seconds: float = 0.0
    new_signals: list[asyncpg.Record] = field(default_factory=list)


class ReplayHarness:
    """``async with ReplayHarness(dsn) as p: await p.step()`` until ``p.done``; then ``await p.drain()``."""

    def __init__(self, dsn: str | None, *, contracts: tuple[str, ...] = (MES_M25,), start: datetime = DAY_START,
                 end: datetime = DAY_END, history_days: int = 5, profile: str = DEFAULT_PROFILE,
                 rules: tuple[Rule, ...] = (DEMO_RULE,), spill_dir: Path = Path("spill"),
                 consumer: str = "demo") -> None:
        self.dsn, self.contracts, self.start, self.end = dsn, contracts, start, end
        self.history_days, self.profile = history_days, profile
        self.metrics = Metrics()
        self.coordinator = Coordinator(CoordinatorSettings(consumer=consumer, poll_s=5.0, rules=rules,
                                                           reconnect_initial_s=0.1, reconnect_max_s=2.0),
                                       dsn, self.metrics)
        self.spill_dir = spill_dir
        self.clock = start
        self.played = 0
        self.last_signal_id = 0
        self.jobs: dict[str, int] = {}  # timeframe -> its trend job (every contract)
        self._stack = contextlib.AsyncExitStack()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    @property
    def done(self) -> bool:
        return self.clock >= self.end

    async def __aenter__(self) -> Self:
        self.conn = await db.connect(self.dsn)
        self._stack.push_async_callback(self.conn.close)
        tapes = tapes_for(self.contracts)
        await self._load_history(tapes)
        await self._configure_jobs()
        self.last_signal_id = await self.conn.fetchval(
            "SELECT coalesce(max(signal_id), 0) FROM signals.detected_signals")
        catalog = default_catalog() + [Contract(c, c.split(".")[3], f"synthetic copy {c}", 0.25, 1.25, True,
                                                f"F.US.{c.split('.')[3]}") for c in self.contracts[1:]]
        self.gw = await self._stack.enter_async_context(
            FakeGateway(tapes=tapes, catalog=catalog, replay_from=self.start, ping_interval_s=1.0))
        cfg = Config(contracts=self.contracts, roots=("MES",),  # MES resolves to M25: market.continuous_bars
                     ingest=Ingest(batch_rows=1000, batch_ms=5, spill_dir=str(self.spill_dir), roll_check_s=3600.0))
        cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, hub_url=self.gw.hub_url))
        rest = await self._stack.enter_async_context(ProjectXClient(self.gw.rest_url, Credentials("demo", "demo-key")))
        self.ingester = Ingester(cfg, self.dsn, DemoTokens(self.gw), no_history, metrics=self.metrics,
                                 is_market_open=lambda: True, feed_settings=FEED, repair_interval_s=3600.0,
                                 search_contracts=rest.search_contracts,
                                 clock=lambda: datetime.fromtimestamp(self.gw.market.now_ticks / TICKS, UTC))
        self._tasks = [asyncio.create_task(self.ingester.run(self._stop), name="ingester"),
                       asyncio.create_task(self.coordinator.run(self._stop), name="coordinator")]
        self._stack.push_async_callback(self._shutdown)
        await self.gw.wait_for(lambda: sum(len(c.subscriptions) for c in self.gw.open_connections())
                               >= len(self.contracts), timeout=30)
        await self.coordinator.wait_until(lambda c: c.batches >= 1, timeout=30)
        assert self.ingester.roller is not None
        await asyncio.wait_for(self.ingester.roller.checked.wait(), 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _shutdown(self) -> None:
        self._stop.set()
        await asyncio.wait(self._tasks, timeout=30)

    async def _load_history(self, tapes: dict[str, Tape]) -> None:
        """The days before the replay as REST history bars, so the detectors start warmed up."""
        first = int((self.start - timedelta(days=self.history_days)).timestamp())
        last = int(self.start.timestamp())
        for k, cid in enumerate(self.contracts):
            five = [b for b in load_bars() if first <= b.t < last]
            rows = []
            for tf, width in TIMEFRAMES.items():
                minutes = int(width.total_seconds() // 60)
                unit, n = (3, minutes // 60) if minutes >= 60 else (2, minutes)
                for b in aggregate(((b.t, b.o + 10 * k, b.h + 10 * k, b.l + 10 * k, b.c + 10 * k, b.v)
                                    for b in five), unit, n):
                    rows.append((cid, tf, datetime.fromtimestamp(b.t, UTC), b.o, b.h, b.l, b.c, b.v))
            await self.conn.executemany(
                "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING", rows)

    async def _configure_jobs(self) -> None:
        """Every contract in signals.trend_jobs, paused: this process runs each timeframe's job at its closes."""
        await self.conn.execute(
            "INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, scheduled)"
            " SELECT c, tf, $3, false FROM unnest($1::text[]) AS c, unnest($2::text[]) AS tf"
            " ON CONFLICT DO NOTHING", list(self.contracts), list(TIMEFRAMES), self.profile)
        for tf in TIMEFRAMES:
            self.jobs[tf] = await self.conn.fetchval(
                "SELECT DISTINCT job_id FROM signals.trend_job_status WHERE timeframe = $1 AND profile = $2",
                tf, self.profile)

    async def step(self) -> Step:
        """Play up to the next bar boundary, wait until it is stored, run the jobs of the closed bars."""
        boundary = self.clock + min(TIMEFRAMES.values())
        trades = await self.gw.play_until(boundary - timedelta(microseconds=1))
        ours = sum(1 for t in trades if t.contract_id in self.contracts)
        self.played += ours
        await self.stored()
        self.clock = boundary
        step = Step(boundary, ours)
        due = [tf for tf, width in TIMEFRAMES.items() if (boundary - DAY_START) % width == timedelta(0)]
        began = time.perf_counter()
        await asyncio.gather(*(self._run_jobs(tf) for tf in due))
        step.jobs, step.job_seconds = due, time.perf_counter() - began
        step.new_signals = await self.conn.fetch(
            "SELECT * FROM signals.detected_signals WHERE signal_id > $1 ORDER BY signal_id", self.last_signal_id)
        if step.new_signals:
            self.last_signal_id = step.new_signals[-1]["signal_id"]
        return step

    async def _run_jobs(self, timeframe: str) -> None:
        conn = await db.connect(self.dsn)
        try:
            await conn.execute("CALL run_job($1)", self.jobs[timeframe])
        finally:
            await conn.close()

    async def stored(self, timeout: float = 30.0) -> None:
        """Wait until every trade played so far is in the database (written or found duplicate)."""
        async with asyncio.timeout(timeout):
            while self.metrics.total("ticks_written_total") + self.metrics.total("ticks_duplicate_total") \
                    < self.played or not self.ingester.writer.idle.is_set():
                await asyncio.sleep(0.002)

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until the coordinator has read every signal written so far."""
        await self.coordinator.wait_through(self.last_signal_id, timeout)

    async def run(self) -> None:
        """Step to the end as fast as it goes, then wait for the coordinator."""
        while not self.done:
            await self.step()
        await self.drain()
