"""The tick writer: batching, duplicates, database outages with spill and replay, bad rows."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from ingest.metrics import Metrics
from ingest.trades import Tick
from ingest.writer import SpillFiles, TickQueue, TickWriter
from tcp_proxy import TcpProxy

T0 = datetime(2025, 6, 2, 14, tzinfo=UTC)


def ticks(n: int, start: int = 0) -> list[Tick]:
    return [Tick("CON.F.US.MES.M25", T0 + timedelta(seconds=start + i), Decimal("6000.25"), 1, i % 2) for i in range(n)]


def stored(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM market.ticks").fetchone()[0]


def via(proxy: TcpProxy, dsn: str) -> str:
    parts = urlsplit(dsn)
    return dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for a condition the code under test brings about (polled: it has no event for it)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def settle(writer: TickWriter, timeout: float = 20.0) -> None:
    await asyncio.wait_for(writer.idle.wait(), timeout)


def test_batches_are_written_and_duplicates_counted(db_dsn: str, tmp_path: Path) -> None:
    async def go() -> Metrics:
        metrics = Metrics()
        writer = TickWriter(db_dsn, metrics, batch_rows=100, batch_ms=20, spill_dir=tmp_path)
        task = asyncio.create_task(writer.run())
        writer.put(ticks(250))
        writer.put(ticks(50))  # a replayed overlap
        await asyncio.sleep(0)
        await settle(writer)
        writer.close()
        await task
        return metrics

    metrics = asyncio.run(go())
    assert stored(db_dsn) == 250
    assert metrics.total("ticks_written_total") == 250
    assert metrics.total("ticks_duplicate_total") == 50


def test_database_outage_spills_and_replays_without_loss(db_dsn: str, tmp_path: Path) -> None:
    parts = urlsplit(db_dsn)

    async def go() -> Metrics:
        proxy = await TcpProxy(parts.hostname, parts.port).up()
        metrics = Metrics()
        writer = TickWriter(via(proxy, db_dsn), metrics, batch_rows=10, batch_ms=10, max_buffered=50,
                            spill_dir=tmp_path, retry_initial_s=0.02, retry_max_s=0.1)
        task = asyncio.create_task(writer.run())
        writer.put(ticks(30))
        await settle(writer)
        assert stored(db_dsn) == 30

        await proxy.down()
        writer.put(ticks(200, start=30))  # the database is gone: 50 stay in memory, the rest spill
        assert writer.buffered == 50 and len(writer.spill.pending()) == 1
        await until(lambda: metrics.total("db_errors_total") >= 2)  # it has tried, and failed, twice
        assert stored(db_dsn) == 30

        await proxy.up()
        await settle(writer)
        writer.close()
        await task
        await proxy.down()
        return metrics

    metrics = asyncio.run(go())
    assert stored(db_dsn) == 230
    assert metrics.total("ticks_spilled_total") == 150 and metrics.total("ticks_replayed_total") == 150
    assert metrics.total("db_errors_total") >= 1
    assert list(tmp_path.glob("ticks-*.jsonl")) == []


def test_spill_left_by_a_previous_process_is_replayed(db_dsn: str, tmp_path: Path) -> None:
    SpillFiles(tmp_path).write(ticks(40))

    async def go() -> None:
        writer = TickWriter(db_dsn, Metrics(), spill_dir=tmp_path)
        task = asyncio.create_task(writer.run())
        writer.close()
        await asyncio.wait_for(task, 20)

    asyncio.run(go())
    assert stored(db_dsn) == 40
    assert list(tmp_path.glob("ticks-*.jsonl")) == []


def test_bad_rows_are_rejected_one_by_one_and_kept(db_dsn: str, tmp_path: Path) -> None:
    bad = Tick("CON.F.US.MES.M25", T0, Decimal("-1"), 1, 0)

    async def go() -> Metrics:
        metrics = Metrics()
        writer = TickWriter(db_dsn, metrics, batch_rows=100, batch_ms=10, spill_dir=tmp_path)
        task = asyncio.create_task(writer.run())
        writer.put([*ticks(5, start=1), bad])
        writer.close()
        await asyncio.wait_for(task, 20)
        return metrics

    metrics = asyncio.run(go())
    assert stored(db_dsn) == 5
    assert metrics.total("ticks_rejected_total") == 1
    assert "ticks_price_positive" in (tmp_path / "rejected.jsonl").read_text()


def test_shutdown_past_its_deadline_parks_the_buffer_on_disk(tmp_path: Path) -> None:
    async def go() -> int:
        writer = TickWriter("postgresql://nobody@127.0.0.1:1/none", Metrics(), spill_dir=tmp_path,
                            retry_initial_s=0.01, retry_max_s=0.05)
        task = asyncio.create_task(writer.run())
        writer.put(ticks(25))
        writer.close()
        done, _ = await asyncio.wait({task}, timeout=0.3)
        assert not done, "the database is unreachable: run() keeps trying"
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return writer.spill_remaining()

    assert asyncio.run(go()) == 25
    assert sum(len(b) for p in tmp_path.glob("ticks-*.jsonl") for b in SpillFiles(tmp_path).read(p)[0]) == 25


def test_the_queue_keeps_arrival_order_across_chunks_splits_and_put_backs() -> None:
    queue, t = TickQueue(), ticks(10)
    queue.append(t[:3], 1.0)
    queue.append(t[3:8], 2.0)
    queue.append(t[8:], 3.0)
    assert queue.take(4) == (1.0, t[:4]) and len(queue) == 6 and queue.oldest_arrival == 2.0
    arrived, batch = queue.take(5)
    assert (arrived, batch) == (2.0, t[4:9])
    queue.put_back(batch, arrived)  # a failed write
    assert len(queue) == 6 and queue.take(100) == (2.0, t[4:]) and len(queue) == 0
    assert queue.take(5) == (0.0, [])
