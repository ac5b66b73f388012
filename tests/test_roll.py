"""Contracts by root, live through the real ingester: MES resolves to M25 through Contract/search, U25 is
streamed ahead of expiry, the gateway flips activeContract to U25 mid-replay, the ingester rolls; no tick of
either contract is lost and market.continuous_bars runs on without a hole."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from test_backfill import cli
from test_ingester import FAST, expected

from ingest.config import Config, Credentials, Ingest
from ingest.fake_gateway import MES_M25, MES_U25, BackgroundGateway, FakeGateway
from ingest.fake_gateway.tape import TICKS
from ingest.ingester import Ingester
from ingest.metrics import Metrics
from ingest.replay_harness import no_history
from ingest.projectx import ProjectXClient

ROLL_AT = datetime(2025, 5, 13, 14, tzinfo=UTC)
END = datetime(2025, 5, 13, 14, 30, tzinfo=UTC)


def test_a_root_rolls_live_without_losing_a_tick(db_dsn: str, tmp_path: Path) -> None:
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, rolls=[(MES_M25, MES_U25, ROLL_AT.isoformat())]) as gw, \
                ProjectXClient(gw.rest_url, Credentials("demo", "demo-key")) as client:
            cfg = Config(roots=("MES",), ingest=Ingest(batch_rows=50, batch_ms=20, spill_dir=str(tmp_path / "spill"),
                                                      roll_next_days=60, roll_check_s=0.05))
            cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, rest_url=gw.rest_url,
                                                                        hub_url=gw.hub_url))
            metrics = Metrics()
            ingester = Ingester(cfg, db_dsn, client, no_history, metrics=metrics, is_market_open=lambda: True,
                                feed_settings=dataclasses.replace(FAST, stale_feed_s=60), repair_interval_s=0.1,
                                search_contracts=client.search_contracts,
                                clock=lambda: datetime.fromtimestamp(gw.market.now_ticks / TICKS, UTC))
            stop = asyncio.Event()
            task = asyncio.create_task(ingester.run(stop))
            try:
                both = {("trades", MES_M25), ("trades", MES_U25)}
                await gw.wait_for(lambda: any(both <= c.subscriptions for c in gw.open_connections()), 15)
                assert ingester.roller is not None and ingester.roller.front == {"MES": MES_M25}
                while not gw.rolled:
                    await gw.play(1)
                await gw.wait_for(lambda: ingester.roller.front["MES"] == MES_U25, 15)
                details = ingester.status()[1]  # what /healthz shows
                assert details["fronts"] == {"MES": MES_U25} and details["streaming"] == [MES_M25, MES_U25]
                await gw.play_until(END)
                await settled(ingester, gw, db_dsn)
                ingester.roller.checked.clear()
                await asyncio.wait_for(ingester.roller.checked.wait(), 15)  # first/last tick noted after the last
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)
            assert metrics.total("hub_reconnects_total") == 0 and len(gw.connections) == 1
            for cid in (MES_M25, MES_U25):
                sent = expected([t for t in gw.delivered_trades() if t.contract_id == cid])
                assert stored(db_dsn, cid) == sent, f"{cid}: stored != sent"
                assert any(t.ticks >= ROLL_AT.timestamp() * TICKS for t in gw.delivered_trades()
                           if t.contract_id == cid), f"{cid} traded on after the roll and was streamed"

    asyncio.run(go())
    with psycopg.connect(db_dsn) as conn:
        (root, old, new, rolled_at, reason), = conn.execute(
            "SELECT root, from_contract, to_contract, rolled_at, reason FROM market.contract_rolls").fetchall()
        assert (root, old, new, reason) == ("MES", MES_M25, MES_U25, "gateway")
        assert ROLL_AT <= rolled_at < ROLL_AT + timedelta(minutes=5)
        contracts = {r[0]: r[1:] for r in conn.execute(
            "SELECT contract_id, root, active, first_tick, last_tick, expires_on::text FROM market.contracts")}
        assert contracts[MES_U25][:2] == ("MES", True) and contracts[MES_M25][:2] == ("MES", False)
        assert contracts[MES_M25][4] == "2025-06-20" and contracts[MES_U25][4] == "2025-09-19"
        assert all(c[2] is not None and c[3] >= END - timedelta(minutes=5) for c in
                   (contracts[MES_M25], contracts[MES_U25]))

        series = conn.execute(
            "SELECT bucket, contract_id, close, adjustment FROM market.continuous_bars_adjusted"
            " WHERE root = 'MES' AND timeframe = '5m' ORDER BY bucket").fetchall()
        buckets = [r[0] for r in series]
        assert buckets == [datetime(2025, 5, 13, 13, 30, tzinfo=UTC) + timedelta(minutes=5 * i)
                           for i in range(12)], "5m continuous bars without a hole"
        assert [r[1] for r in series] == [MES_M25 if b < rolled_at else MES_U25 for b in buckets]
        gap = {r[3] for r in series if r[0] < rolled_at}
        assert len(gap) == 1 and 40 < next(iter(gap)) < 70, "one back-adjustment, about U25 - M25 (56.25)"
        assert {r[3] for r in series if r[0] >= rolled_at} == {0}

        minute = conn.execute("SELECT bucket, contract_id FROM market.continuous_bars"
                              " WHERE root = 'MES' AND timeframe = '1m'").fetchall()
        per_contract = conn.execute("SELECT bucket, contract_id FROM market.bars WHERE timeframe = '1m'").fetchall()
        assert sorted(minute) == sorted((b, c) for b, c in per_contract
                                        if (c == MES_M25) == (b < rolled_at)), "1m: every bar of the front"


async def settled(ingester: Ingester, gw: FakeGateway, dsn: str) -> None:
    """Every trade delivered is stored and the writer is idle."""
    want = expected(gw.delivered_trades()).total()
    async with asyncio.timeout(15):
        while sum(stored(dsn, c).total() for c in (MES_M25, MES_U25)) < want:
            await asyncio.sleep(0.05)
    await asyncio.wait_for(ingester.writer.idle.wait(), 15)


def stored(dsn: str, contract_id: str) -> Counter:
    with psycopg.connect(dsn) as conn:
        return Counter(conn.execute("SELECT ts, price, size, side FROM market.ticks WHERE contract_id = %s",
                                    (contract_id,)).fetchall())


def test_backfill_without_a_contract_takes_each_roots_front_month(db_dsn: str, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    with BackgroundGateway(replay_from="2025-05-14T00:00:00+00:00") as gw:
        monkeypatch.setenv("MECHTRADE_ROOTS", "MES")
        monkeypatch.setenv("MECHTRADE_CONTRACTS", "")
        assert cli(monkeypatch, gw, db_dsn, "backfill", "--timeframe", "1d", "--since", "2025-05-01",
                   "--until", "2025-05-09") == 0
        assert "CON.F.US.MES.M25  1d" in capsys.readouterr().out
