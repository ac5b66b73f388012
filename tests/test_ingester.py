"""The live ingester against the fake gateway (real HTTP/WebSocket/SignalR on loopback) and the real
database: the ticks stored are exactly the trades the gateway sent, across every stream fault."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from ingest.config import Config, Ingest
from ingest.fake_gateway import MES_M25, FakeGateway
from ingest.feed import FeedSettings
from ingest.ingester import Ingester
from ingest.metrics import Metrics
from ingest.replay_harness import DemoTokens, no_history
from tcp_proxy import TcpProxy

FAST = FeedSettings(handshake_timeout_s=2.0, subscribe_timeout_s=2.0, server_silence_s=1.0, stale_feed_s=1.5,
                    backoff_initial_s=0.05, backoff_max_s=0.2, healthy_after_s=0.5, check_every_s=0.05)


class FakeTokens(DemoTokens):
    """Tokens straight from the fake gateway (the REST client has its own tests), invalidations counted."""

    def __init__(self, gw: FakeGateway) -> None:
        super().__init__(gw)
        self.invalidated = 0

    def invalidate_token(self) -> None:
        self.invalidated += 1


@dataclass
class Run:
    gw: FakeGateway
    ingester: Ingester
    metrics: Metrics
    dsn: str
    tokens: FakeTokens

    async def until(self, predicate: Callable[[], object], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.01)

    async def subscribed(self, connections: int = 1) -> None:
        """Wait until the ``connections``-th hub connection has subscribed."""
        await self.until(lambda: sum(1 for c in self.gw.connections if c.subscriptions) >= connections)

    async def settled(self) -> None:
        """Wait until the trades sent on the newest connection are stored and nothing is pending."""
        newest = max(s.conn_id for s in self.gw.sent_trades)
        want = expected(dict.fromkeys(s.trade for s in self.gw.sent_trades if s.conn_id == newest
                                      and s.trade not in corrupted(self.gw)))
        await self.until(lambda: not (want - self.stored()))
        await asyncio.wait_for(self.ingester.writer.idle.wait(), 15)
        await self.until(lambda: not self.ingester.gaps.pending)

    def stored(self) -> Counter:
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute("SELECT ts, price, size, side FROM market.ticks").fetchall()
        return Counter(rows)

    def gaps(self) -> list[tuple[datetime, datetime]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute("SELECT gap_start, gap_end FROM market.feed_gaps").fetchall()

    def assert_nothing_lost_or_doubled(self, exact: bool = False) -> None:
        """Stored == sent, except trades that died with a connection: those lie inside a recorded gap."""
        stored = self.stored()
        sent = expected([t for t in self.gw.delivered_trades() if t not in corrupted(self.gw)])
        assert not stored - sent, "stored something twice, or something never sent"
        missing = sent - stored
        if exact:
            assert not missing
        gaps = self.gaps()
        outside = [m for m in missing if not any(start <= m[0] <= end for start, end in gaps)]
        assert not outside, f"{len(outside)} trades lost outside any recorded gap"


def expected(trades: list) -> Counter:
    """Trades as the database stores them: timestamps truncated to microseconds."""
    return Counter(
        (datetime.fromtimestamp(t.ticks // 10 // 1_000_000, UTC).replace(microsecond=t.ticks // 10 % 1_000_000),
         Decimal(repr(t.price)), t.volume, t.side)
        for t in trades
    )


@asynccontextmanager
async def running(dsn: str, tmp_path: Path, *, gateway_dsn: str | None = None, feed_settings: FeedSettings = FAST,
                  **gateway_options: object) -> AsyncIterator[Run]:
    async with FakeGateway(ping_interval_s=0.2, **gateway_options) as gw:
        cfg = Config(contracts=(MES_M25,), ingest=Ingest(batch_rows=50, batch_ms=20, spill_dir=str(tmp_path / "spill")))
        cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, hub_url=gw.hub_url))
        metrics, tokens = Metrics(), FakeTokens(gw)
        ingester = Ingester(cfg, gateway_dsn or dsn, tokens, no_history, metrics=metrics,
                            is_market_open=lambda: True, feed_settings=feed_settings, repair_interval_s=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(ingester.run(stop))
        run = Run(gw, ingester, metrics, dsn, tokens)
        try:
            await run.subscribed()
            yield run
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


def test_clean_stream_is_stored_exactly(db_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with running(db_dsn, tmp_path) as run:
            await run.gw.play(200)
            await run.settled()
            run.assert_nothing_lost_or_doubled(exact=True)
            assert run.metrics.total("ticks_duplicate_total") == 0
            assert len(run.gw.delivered_trades()) > 150

    asyncio.run(go())


CONNECTION_FAULTS = {
    "F1 tcp reset": lambda gw: gw.reset(rst=True),
    "F1 tcp fin": lambda gw: gw.reset(rst=False),
    "F2 ws close 1011": lambda gw: gw.ws_close(1011),
    "F3 signalr close, reconnect allowed": lambda gw: gw.signalr_close(allow_reconnect=True),
    "F3 signalr close, no reconnect": lambda gw: gw.signalr_close(allow_reconnect=False),
    "F7 half-open": lambda gw: gw.half_open(),
    "F8 stalled contract": lambda gw: gw.stall(MES_M25, True),
    "F15 GatewayLogout": lambda gw: gw.logout(),
}


@pytest.mark.parametrize("fault", list(CONNECTION_FAULTS))
def test_connection_faults_lose_and_duplicate_nothing(db_dsn: str, tmp_path: Path, fault: str) -> None:
    async def go() -> None:
        async with running(db_dsn, tmp_path) as run:
            await run.gw.play(30)
            CONNECTION_FAULTS[fault](run.gw)
            await run.gw.play(30)  # sent to a dying connection, or to nobody
            await run.subscribed(connections=2)
            run.gw.stall(MES_M25, False)
            await run.gw.play(30)
            await run.settled()
            assert run.metrics.total("hub_reconnects_total") >= 1
            assert len(run.gaps()) == 1
            run.assert_nothing_lost_or_doubled()

    asyncio.run(go())


@pytest.mark.parametrize("fault", ["F4 outage", "F5 401 on upgrade", "F6 handshake error", "F6 handshake silent",
                                   "F14 token expiry", "F16 subscribe binding error", "F16 completion never sent"])
def test_connect_time_faults_are_retried(db_dsn: str, tmp_path: Path, fault: str) -> None:
    async def go() -> None:
        async with running(db_dsn, tmp_path) as run:
            await run.gw.play(10)
            if fault == "F4 outage":
                await run.gw.outage(0.5)
            else:
                {
                    "F5 401 on upgrade": lambda: run.gw.reject_upgrades(2, 401),
                    "F6 handshake error": lambda: run.gw.handshake_fault("error", 2),
                    "F6 handshake silent": lambda: run.gw.handshake_fault("silent", 1),
                    "F14 token expiry": lambda: run.gw.expire_tokens(),
                    "F16 subscribe binding error": lambda: run.gw.completion_fault("binding", 1),
                    "F16 completion never sent": lambda: run.gw.completion_fault("never", 1),
                }[fault]()
                run.gw.reset()
            await run.until(lambda: run.gw.hub_up)
            await run.subscribed(connections=2)
            await run.gw.play(20)
            await run.settled()
            run.assert_nothing_lost_or_doubled()
            if fault == "F5 401 on upgrade":
                assert run.tokens.invalidated >= 1
            failures = run.metrics.total("hub_connect_failures_total")
            assert failures >= (0 if fault in ("F4 outage", "F14 token expiry") else 1)

    asyncio.run(go())


def test_duplicated_and_replayed_batches_are_stored_once(db_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with running(db_dsn, tmp_path) as run:
            run.gw.replay_on_subscribe(25)
            await run.gw.play(20)
            run.gw.duplicate_batch(3)
            await run.gw.play(20)
            run.gw.reset()
            await run.subscribed(connections=2)  # the gateway replays its last 25 trades here
            await run.gw.play(20)
            await run.settled()
            repeats = Counter(s.repeat for s in run.gw.sent_trades)
            assert repeats["dup_batch"] > 0 and repeats["replay"] > 0
            run.assert_nothing_lost_or_doubled()
            assert run.metrics.total("ticks_duplicate_total") >= repeats["dup_batch"]

    asyncio.run(go())


def test_out_of_order_and_late_batches_are_stored_correctly(db_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with running(db_dsn, tmp_path) as run:
            run.gw.reverse_batch(3)
            run.gw.late_batch(2)
            await run.gw.play(40)
            await run.settled()
            run.assert_nothing_lost_or_doubled(exact=True)

    asyncio.run(go())


def test_malformed_frames_are_counted_not_fatal(db_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with running(db_dsn, tmp_path, null_padding=True) as run:
            for kind in ("trade_missing_field", "trade_null_field", "trade_string_field", "unknown_trade_type",
                         "ts_garbage"):
                run.gw.corrupt_next_batch(kind)
                await run.gw.play(2)
            await run.gw.play(10)
            await run.settled()
            problems = {k[1][0][1]: v for k, v in run.metrics.counters.items() if k[0] == "trade_problems_total"}
            assert problems.get("null_item", 0) > 0
            assert sum(v for r, v in problems.items() if r != "null_item") >= 5
            run.assert_nothing_lost_or_doubled(exact=True)
            assert run.metrics.total("hub_reconnects_total") == 0, "bad items never cost the connection"

    asyncio.run(go())


def corrupted(gw: FakeGateway) -> set:
    """Tape trades that went out with a corrupted field (fault F11): the parser must drop them."""
    return {s.trade for s in gw.sent_trades if s.item.get("price") != s.trade.price
            or s.item.get("volume") != s.trade.volume or s.item.get("type") != s.trade.side
            or s.item.get("timestamp") != s.trade.timestamp}


def test_database_outage_mid_stream_loses_nothing(db_dsn: str, tmp_path: Path) -> None:
    parts = urlsplit(db_dsn)

    async def go() -> None:
        proxy = await TcpProxy(parts.hostname, parts.port).up()
        via_proxy = db_dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
        async with running(db_dsn, tmp_path, gateway_dsn=via_proxy) as run:
            await run.gw.play(20)
            await run.settled()
            await proxy.down()
            await run.gw.play(60)
            await run.until(lambda: run.metrics.total("db_errors_total") >= 1)
            await proxy.up()
            await run.gw.play(20)
            await run.settled()
            run.assert_nothing_lost_or_doubled(exact=True)
        await proxy.down()

    asyncio.run(go())


def test_sigterm_flushes_the_queue(db_dsn: str, tmp_path: Path) -> None:
    """The CLI turns SIGTERM into ``stop``; here: stop right after trades arrive, before a batch is due."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2) as gw:
            cfg = Config(contracts=(MES_M25,), ingest=Ingest(batch_rows=100_000, batch_ms=60_000,
                                                           spill_dir=str(tmp_path / "spill")))
            cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, hub_url=gw.hub_url))
            metrics = Metrics()
            ingester = Ingester(cfg, db_dsn, FakeTokens(gw), no_history, metrics=metrics,
                                is_market_open=lambda: True, feed_settings=FAST)
            stop = asyncio.Event()
            task = asyncio.create_task(ingester.run(stop))
            await Run(gw, ingester, metrics, db_dsn, FakeTokens(gw)).subscribed()
            await gw.play(30)
            run = Run(gw, ingester, metrics, db_dsn, FakeTokens(gw))
            await run.until(lambda: metrics.total("ticks_received_total") >= len(gw.sent_trades))
            assert ingester.writer.buffered > 0, "nothing written yet: the batch is not due"
            stop.set()
            await asyncio.wait_for(task, 30)
            run.assert_nothing_lost_or_doubled(exact=True)

    asyncio.run(go())



class NoGateway:
    """A gateway that is never reached: the test below does not start the ingester."""

    async def token(self) -> str:
        raise AssertionError("not called")

    def invalidate_token(self) -> None:
        raise AssertionError("not called")


@pytest.mark.parametrize("market_open", [True, False])
def test_health_and_feed_ask_the_injected_market_clock(tmp_path: Path, market_open: bool) -> None:
    """Hub not connected: unhealthy while the market is open, fine while it is closed, as the injected clock says."""
    cfg = Config(contracts=(MES_M25,), ingest=Ingest(spill_dir=str(tmp_path)))
    ingester = Ingester(cfg, None, NoGateway(), no_history, is_market_open=lambda: market_open)
    ok, reason = ingester.checks()["hub"]
    assert ok is not market_open
    assert reason == "not connected (connecting)" + ("" if market_open else "; market closed")
    assert ingester.feed.market_open() is market_open  # the feed's stale-contract check asks the same clock
