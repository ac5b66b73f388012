"""Dump-and-compare for the ingester: what the fake gateway's market produced against what is stored.

The invariant of ``mechtrade ingest``: every trade the gateway produced after the first stored one
is stored (exactly as often as the market printed it) or lies inside a recorded feed gap (an open
gap reaches to now). Used by the chaos tests and by ``bench/chaos.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import yaml

from ingest.config import Backfill, Config, Ingest
from ingest.fake_gateway import MES_M25, FakeGateway
from ingest.feed import FeedSettings
from ingest.ingester import Ingester
from ingest.metrics import Metrics
from ingest.replay_harness import DemoTokens, no_history

Key = tuple[datetime, Decimal, int, int]
REPLAY_FROM = "2025-04-28T13:30:00+00:00"  # two weeks of tape ahead: ~20,000 trades to stream


def key_of(trade: Any) -> Key:
    """A tape trade as ``market.ticks`` stores it (timestamps truncated to microseconds)."""
    micros = trade.ticks // 10
    return (datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000),
            Decimal(repr(trade.price)), trade.volume, trade.side)


def produced(gw: FakeGateway, contract_id: str = MES_M25) -> list[Any]:
    """Every trade the market produced for a contract, delivered to anyone or not."""
    return [t for cid, trades in gw.played if cid == contract_id for t in trades]


async def play_ours(gw: FakeGateway, trades: int, contract_id: str = MES_M25) -> None:
    """Play batches until the market printed ``trades`` more trades of our contract (others trade too)."""
    target = len(produced(gw, contract_id)) + trades
    while len(produced(gw, contract_id)) < target:
        await gw.play(1)


@dataclass
class Audit:
    sent: int  # trades the market produced from the first stored one on
    stored: int  # of those, stored
    in_gaps: int  # not stored, inside a recorded gap
    lost: int  # not stored, outside every gap: must be 0
    doubled: int  # stored more often than produced (or never produced): must be 0
    gaps: int
    open_gaps: int

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.doubled == 0

    def __str__(self) -> str:
        return (f"sent {self.sent}, stored {self.stored}, inside gaps {self.in_gaps}, lost {self.lost}, "
                f"doubled {self.doubled} ({self.gaps} gaps, {self.open_gaps} open)")


def audit(gw: FakeGateway, dsn: str, contract_id: str = MES_M25) -> Audit:
    with psycopg.connect(dsn) as conn:
        stored = Counter(conn.execute("SELECT ts, price, size, side FROM market.ticks WHERE contract_id = %s",
                                      (contract_id,)).fetchall())
        gaps = conn.execute("SELECT gap_start, gap_end FROM market.feed_gaps WHERE contract_id = %s",
                            (contract_id,)).fetchall()
    sent = Counter(key_of(t) for t in produced(gw, contract_id))
    first = min(stored, default=None)
    if first is not None:
        sent = Counter({k: n for k, n in sent.items() if k[0] >= first[0]})
    doubled = stored - sent
    missing = sent - stored
    in_gaps = sum(n for k, n in missing.items()
                  if any(start <= k[0] and (end is None or k[0] <= end) for start, end in gaps))
    return Audit(sent=sum(sent.values()), stored=sum((sent & stored).values()), in_gaps=in_gaps,
                 lost=sum(missing.values()) - in_gaps, doubled=sum(doubled.values()), gaps=len(gaps),
                 open_gaps=sum(1 for _, end in gaps if end is None))


def stored_count(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM market.ticks").fetchone()[0]  # type: ignore[index]


async def until(predicate: Any, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


def config_file(directory: Path, **ingest: Any) -> Path:
    """A configuration for a fast-reacting ingester of MES M25 (timeouts scaled down for tests)."""
    settings = {"batch_rows": 50, "batch_ms": 20, "spill_dir": str(directory / "spill"), "server_silence_s": 2,
                "stale_feed_s": 600, "reconnect_initial_s": 0.05, "reconnect_max_s": 0.5,
                "shutdown_deadline_s": 10, "health_port": 0, **ingest}
    path = directory / "mechtrade.yaml"
    path.write_text(yaml.safe_dump({"contracts": [MES_M25], "ingest": settings,
                                    "backfill": {"timeframes": ["1m"]}}))
    return path


class CliIngester:
    """``mechtrade ingest`` as a real process against a fake gateway, to kill and restart."""

    def __init__(self, gw: FakeGateway, dsn: str, config: Path, log: Path) -> None:
        self.gw, self.dsn, self.config, self.log = gw, dsn, config, log
        self.proc: asyncio.subprocess.Process | None = None
        self.starts = 0

    async def start(self) -> None:
        env = {**os.environ, "DATABASE_URL": self.dsn, "MECHTRADE_GATEWAY_REST_URL": self.gw.rest_url,
               "MECHTRADE_GATEWAY_HUB_URL": self.gw.hub_url, "PROJECTX_USERNAME": "demo",
               "PROJECTX_API_KEY": "demo-key", "MECHTRADE_LOG_FORMAT": "text"}
        env.pop("PORT", None)
        connections = len(self.gw.connections)
        with self.log.open("a") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "ingest.cli", "ingest", "--config", str(self.config),
                env=env, stdout=log, stderr=log)
        self.starts += 1
        await self.gw.wait_for(lambda: any(c.subscriptions for c in self.gw.connections[connections:]), 30)

    async def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(sig)
        return await asyncio.wait_for(self.proc.wait(), 30)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


FAST_FEED = FeedSettings(handshake_timeout_s=2.0, subscribe_timeout_s=2.0, server_silence_s=1.0, stale_feed_s=600,
                         backoff_initial_s=0.05, backoff_max_s=0.2, healthy_after_s=0.5, check_every_s=0.05)


@dataclass
class InProcess:
    gw: FakeGateway
    ingester: Ingester
    metrics: Metrics
    task: asyncio.Task
    earlier: int  # hub connections of the gateway before this ingester started

    async def subscribed(self, connections: int = 1) -> None:
        """Wait until this ingester's ``connections``-th hub connection has subscribed."""
        await self.gw.wait_for(lambda: sum(1 for c in self.gw.connections[self.earlier:] if c.subscriptions)
                               >= connections, 20)

    async def stored_through(self, dsn: str, trade: Any, timeout: float = 20.0) -> None:
        """Wait until ``trade`` (a tape trade) is in the database."""
        ts, price, size, side = key_of(trade)

        def there() -> bool:
            with psycopg.connect(dsn) as conn:
                return conn.execute("SELECT 1 FROM market.ticks WHERE ts = %s AND price = %s AND size = %s"
                                    " AND side = %s", (ts, price, size, side)).fetchone() is not None
        await until(there, timeout)


@contextlib.asynccontextmanager
async def ingesting(gw: FakeGateway, dsn: str, spill_dir: Path, gateway: Any = None,
                    feed: FeedSettings = FAST_FEED, **ingest: Any) -> AsyncIterator[InProcess]:
    """An Ingester in this process (its tasks supervised as in the CLI) against ``gw``."""
    cfg = Config(contracts=(MES_M25,), backfill=Backfill(timeframes=("1m",)),
                 ingest=Ingest(**{"batch_rows": 50, "batch_ms": 20, "spill_dir": str(spill_dir), **ingest}))
    cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, hub_url=gw.hub_url))
    metrics = Metrics()
    ingester = Ingester(cfg, dsn, gateway or DemoTokens(gw), no_history, metrics=metrics,
                        is_market_open=lambda: True, feed_settings=dataclasses.replace(
                            feed, max_message_bytes=cfg.ingest.max_message_bytes), repair_interval_s=0.2)
    ingester.writer.retry_max_s = 0.5  # scaled down, as the feed's timeouts
    stop = asyncio.Event()
    earlier = len(gw.connections)
    task = asyncio.create_task(ingester.run(stop))
    try:
        yield InProcess(gw, ingester, metrics, task, earlier)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
