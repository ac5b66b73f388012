"""Chaos probes against the real ``mechtrade ingest`` process: kill -9, SIGTERM, database restarts.

Each probe streams trades from the fake gateway, hurts the ingester or its database, and then
compares everything the gateway's market produced with ``market.ticks`` and ``market.feed_gaps``:
nothing may be lost outside a recorded gap, nothing stored twice.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import asyncpg

from chaos.harness import (REPLAY_FROM, CliIngester, audit, config_file, key_of, play_ours, produced, stored_count,
                           until)
from helpers import SQL_DIR
from ingest import migrate
from ingest.fake_gateway import FakeGateway
from pg_server import RootServer


async def settle(gw: FakeGateway, dsn: str, timeout: float = 30.0) -> None:
    """Stop the market, print a few more trades to the connected ingester, wait until they are stored."""
    gw.pause_replay()
    await play_ours(gw, 5)
    last = key_of(produced(gw)[-1])

    def stored_last() -> bool:
        import psycopg
        with psycopg.connect(dsn) as conn:
            return conn.execute("SELECT 1 FROM market.ticks WHERE ts = %s AND price = %s", last[:2]).fetchone() \
                is not None
    await until(stored_last, timeout)


async def grows(gw: FakeGateway, by: int) -> None:
    """Wait until the market has produced ``by`` more trades."""
    target = len(produced(gw)) + by
    await until(lambda: len(produced(gw)) >= target)


def test_kill_9_and_sigterm_lose_nothing_outside_recorded_gaps(db_dsn: str, tmp_path: Path) -> None:
    """Row 8: kill -9 four times and SIGTERM twice at 200 trades/s; the market keeps printing meanwhile."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.3, replay_from=REPLAY_FROM) as gw:
            ingester = CliIngester(gw, db_dsn, config_file(tmp_path), tmp_path / "ingest.log")
            await ingester.start()
            gw.start_replay(speed=200)
            for sig in [signal.SIGKILL] * 4 + [signal.SIGTERM] * 2:
                before = stored_count(db_dsn)
                await until(lambda: stored_count(db_dsn) >= before + 40)  # noqa: B023
                code = await ingester.kill(sig)
                assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
                await grows(gw, 30)  # printed while nobody listens
                await ingester.start()
            await settle(gw, db_dsn)
            await ingester.kill(signal.SIGTERM)
            result = audit(gw, db_dsn)
            assert result.ok, str(result)
            assert result.in_gaps >= 6 * 30, str(result)
            assert result.gaps >= 6 and result.open_gaps == 0, str(result)
            assert "Traceback" not in (tmp_path / "ingest.log").read_text()

    asyncio.run(go())



async def _migrated(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn, SQL_DIR)
    finally:
        await conn.close()


def test_database_fast_stop_and_start_loses_nothing(own_server: RootServer, tmp_path: Path) -> None:
    """Row 1: the database is stopped (fast: sessions cut mid-write) and started again, five times."""
    dsn = f"postgresql://postgres@127.0.0.1:{own_server.port}/postgres"
    asyncio.run(_migrated(dsn))

    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.3, replay_from=REPLAY_FROM) as gw:
            ingester = CliIngester(gw, dsn, config_file(tmp_path), tmp_path / "ingest.log")
            await ingester.start()
            gw.start_replay(speed=200)
            for _ in range(5):
                before = stored_count(dsn)
                await until(lambda: stored_count(dsn) >= before + 40)  # noqa: B023
                await asyncio.to_thread(own_server.restart)
            await settle(gw, dsn, timeout=60)
            assert ingester.alive, "the ingester survived every restart"
            await ingester.kill(signal.SIGTERM)
            result = audit(gw, dsn)
            assert result.ok, str(result)
            assert result.lost == 0 and result.stored == result.sent, str(result)

    asyncio.run(go())
