"""Gap repair within the documented history budget (30 requests per 30 s): a flapping feed's gaps coalesce,
each timeframe is fetched once and only after its bars closed, and every gap records what it cost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from test_backfill import go, history_calls

from ingest import backfill as B
from ingest.fake_gateway import MES_M25, FakeGateway
from ingest.gaps import Gap, GapRepairer
from ingest.metrics import Metrics
from ingest.projectx import ProjectXClient

TIMEFRAMES = ["1m", "5m", "15m", "1h", "4h", "1d"]


def repairer_for(dsn: str, px: ProjectXClient) -> GapRepairer:
    async def fetch(conn, contract_id, timeframe, start, end):  # type: ignore[no-untyped-def]
        return await B.fetch_into_history(conn, px, contract_id, timeframe, start, end)

    return GapRepairer(dsn, fetch, [MES_M25], TIMEFRAMES, Metrics(), interval_s=3600,
                       requests_made=lambda: px.history_limiter.acquired)


async def one_round(repairer: GapRepairer) -> None:
    stop = asyncio.Event()
    repairer.round_done.clear()
    task = asyncio.create_task(repairer.run(stop))
    await asyncio.wait_for(repairer.round_done.wait(), 60)
    stop.set()
    await asyncio.wait_for(task, 10)


def test_a_flapping_feed_costs_one_range_per_timeframe(db_dsn: str) -> None:
    """20 outages of 2 s, 45 s apart (what a client without keep-alive suffers): 120 requests repaired one by
    one, 6 coalesced; all within the budget, every outage accounted for."""
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        repairer = repairer_for(db_dsn, px)
        first = datetime(2025, 5, 12, 14, tzinfo=UTC)
        for i in range(20):
            start = first + timedelta(seconds=45 * i)
            repairer.record(Gap(MES_M25, start, start + timedelta(seconds=2), "closed"))
        await one_round(repairer)
        gaps = await conn.fetch("SELECT requests, repaired_timeframes, finalized_at FROM market.feed_gaps")
        assert len(gaps) == 20, "every outage is recorded"
        assert all(sorted(g["repaired_timeframes"]) == sorted(TIMEFRAMES) and g["finalized_at"] for g in gaps)
        calls = history_calls(gw)
        assert sum(g["requests"] for g in gaps) == len(calls) == len(TIMEFRAMES), "one request per timeframe"
        assert all(c.status == 200 for c in calls), "never over the budget"
        minutes = await conn.fetch("SELECT bucket FROM market.bars WHERE timeframe = '1m' AND source = 'history'"
                                   " AND bucket BETWEEN $1 AND $2", first, first + timedelta(minutes=14))
        assert minutes, "the gaps' 1m bars come from history"
        await one_round(repairer)
        assert len(history_calls(gw)) == len(calls), "final gaps are never fetched again"
    go(db_dsn, scenario)


def test_a_timeframe_is_fetched_only_once_its_bars_have_closed(db_dsn: str) -> None:
    """A gap minutes ago: its 1m bars have closed and are fetched; its 1d bar has not, so not yet."""
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        repairer = repairer_for(db_dsn, px)
        start = datetime.now(UTC) - timedelta(minutes=4)
        repairer.record(Gap(MES_M25, start, start + timedelta(seconds=30), "closed"))
        await one_round(repairer)
        done, final = await conn.fetchrow("SELECT repaired_timeframes, finalized_at FROM market.feed_gaps")
        assert "1m" in done and "1d" not in done and final is None
        closed = {(2, 1), (2, 5), (2, 15)}  # minutes: 1m, 5m, 15m
        gap_end = start + timedelta(seconds=30)
        if gap_end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1) <= datetime.now(UTC):
            closed |= {(3, 1), (3, 4)}  # a whole hour has passed since: its 1h bar, maybe a 4h bar, closed
        assert {(c.body["unit"], c.body["unitNumber"]) for c in history_calls(gw)} <= closed
    go(db_dsn, scenario)
