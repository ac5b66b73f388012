"""The coordinator process against the real database: woken by NOTIFY, but never relying on it.

Every test checks the one promise that matters: each signal is read exactly once (the signal
counts of all batches add up to the number of signals) and the decisions are exactly those the
rule gives, across a kill before COMMIT, lost notifications, a database restart and a second
coordinator competing for the same work.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal as signal_module
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import aiohttp
import asyncpg
import psycopg
from helpers import SQL_DIR
from pg_server import RootServer, free_port
from tcp_proxy import TcpProxy
from test_coordinator import T0, h, signal

from ingest import migrate
from ingest.config import Coordinator as Settings
from ingest.coordinator import Coordinator
from ingest.metrics import Metrics

ROOT = SQL_DIR.parent

# poll_s is long on purpose: a test that passes within seconds was woken by NOTIFY or a reconnect.
FAST = Settings(consumer="live", poll_s=60.0, batch_size=500, query_timeout_s=5.0, reconnect_initial_s=0.05,
                reconnect_max_s=0.2)


def add_pairs(dsn: str, first: int, count: int, notify: bool = True) -> tuple[int, set[tuple]]:
    """``count`` confluences on days ``first``.. (a 15m start, then a 1h start known a quarter of an hour
    later, detected in that order; direction alternating by day, so the positions go long, then flat and short,
    then flat and long, ...), each far from the others, in one transaction. Returns the last signal_id and the
    expected decisions (direction, inputs, trigger)."""
    expected = set()
    with psycopg.connect(dsn) as conn:
        for k in range(first, first + count):
            base, up = T0 + timedelta(days=k), k % 2 == 0
            b = signal(conn, "15m", up, base + h(2), base + h(2.5))  # known 12:45
            a = signal(conn, "1h", up, base, base + h(2))  # known 13:00
            if k > 0:  # the 15m start alone closes the previous day's position
                expected.add(("flat", (None, b), b))
            expected.add(("long" if up else "short", (a, b), a))
        if notify:
            conn.execute("NOTIFY trend_signals_v1, 'test'")
    return a, expected


def decided(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT direction, inputs, trigger_signal_id FROM signals.decisions").fetchall()
    return [(d, tuple(i), t) for d, i, t in rows]


def watermark(dsn: str) -> tuple:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT last_signal_id, signals_read, decisions_made FROM internal.coordinator_watermarks"
                           " WHERE consumer = 'live'").fetchone()
    assert row
    return row


def assert_exactly_once(dsn: str, expected: set[tuple], through: int, *coordinators: Coordinator) -> None:
    rows = decided(dsn)
    assert len(rows) == len(set(rows)) and set(rows) == expected
    n = 2 * sum(1 for direction, *_ in expected if direction != "flat")
    assert watermark(dsn) == (through, n, len(expected))
    assert sum(c.signals_read for c in coordinators) == n, "a signal was read twice, or never"


@asynccontextmanager
async def coordinating(dsn: str, settings: Settings = FAST) -> AsyncIterator[Coordinator]:
    coordinator = Coordinator(settings, dsn, Metrics())
    stop = asyncio.Event()
    task = asyncio.create_task(coordinator.run(stop))
    try:
        await coordinator.wait_until(lambda c: c.batches >= 1)  # connected, listening, caught up
        yield coordinator
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def test_notify_wakes_it_and_the_timer_catches_what_no_notify_announced(db_dsn: str) -> None:
    async def go() -> None:
        async with coordinating(db_dsn) as c:
            through, expected = add_pairs(db_dsn, 0, 3)
            await c.wait_through(through)
        async with coordinating(db_dsn, dataclasses.replace(FAST, poll_s=0.1)) as c2:
            through, more = add_pairs(db_dsn, 3, 2, notify=False)
            await c2.wait_through(through)
        assert_exactly_once(db_dsn, expected | more, through, c, c2)

    asyncio.run(go())


def test_notifications_lost_while_disconnected_are_caught_up(db_dsn: str) -> None:
    parts = urlsplit(db_dsn)

    async def go() -> None:
        proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).up()
        via_proxy = db_dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
        try:
            async with coordinating(via_proxy) as c:
                through, expected = add_pairs(db_dsn, 0, 2)
                await c.wait_through(through)
                await proxy.down()
                through, more = add_pairs(db_dsn, 2, 3)  # its NOTIFY reaches nobody
                await c.wait_until(lambda c: not c.connected)
                assert c.through < through
                await proxy.up()
                await c.wait_through(through)
                assert c.metrics.total("coordinator_reconnects_total") >= 1
        finally:
            await proxy.down()
        assert_exactly_once(db_dsn, expected | more, through, c)

    asyncio.run(go())


def test_killed_between_writing_and_committing_loses_and_repeats_nothing(db_dsn: str, sql: psycopg.Connection) -> None:
    # The first two batches that advance the watermark kill their own session right after writing
    # decisions and the watermark, before COMMIT (a sequence counts: it survives the rollback).
    sql.execute("""
        CREATE SEQUENCE public.kills;
        CREATE FUNCTION public.kill_me() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('public.kills') <= 2 THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER kill_me AFTER UPDATE ON internal.coordinator_watermarks
        FOR EACH ROW EXECUTE FUNCTION public.kill_me();
    """)

    async def go() -> None:
        async with coordinating(db_dsn) as c:
            through, expected = add_pairs(db_dsn, 0, 4)
            await c.wait_through(through)
            assert c.metrics.total("coordinator_reconnects_total") == 2
        assert sql.execute("SELECT last_value FROM public.kills").fetchone() == (3,)
        assert_exactly_once(db_dsn, expected, through, c)

    asyncio.run(go())


def test_two_coordinators_of_one_name_never_decide_a_signal_twice(db_dsn: str) -> None:
    settings = dataclasses.replace(FAST, batch_size=3)

    async def go() -> None:
        async with coordinating(db_dsn, settings) as a, coordinating(db_dsn, settings) as b:
            expected: set[tuple] = set()
            for k in range(0, 60, 6):
                through, more = add_pairs(db_dsn, k, 6)
                expected |= more
            waits = [asyncio.ensure_future(x.wait_through(through)) for x in (a, b)]
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()
            assert all(w.exception() is None for w in done)
        assert a.signals_read and b.signals_read, "both took batches: they really competed"
        assert_exactly_once(db_dsn, expected, through, a, b)

    asyncio.run(go())


async def migrated(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await migrate.migrate(conn, SQL_DIR)
    finally:
        await conn.close()



def test_database_restart_loses_and_repeats_nothing(own_server: RootServer) -> None:
    dsn = f"postgresql://postgres@127.0.0.1:{own_server.port}/postgres"
    asyncio.run(migrated(dsn))

    async def go() -> None:
        async with coordinating(dsn) as c:
            through, expected = add_pairs(dsn, 0, 2)
            await c.wait_through(through)
            await asyncio.to_thread(own_server.restart)
            through, more = add_pairs(dsn, 2, 3)  # the coordinator may not be back yet
            await c.wait_through(through)
            assert c.metrics.total("coordinator_reconnects_total") >= 1
        assert_exactly_once(dsn, expected | more, through, c)

    asyncio.run(go())


def test_the_command_serves_health_decides_and_stops_on_sigterm(db_dsn: str) -> None:
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_dsn, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from ingest.cli import main; sys.exit(main())",
                             "coordinate", "--consumer", "live", "--health-port", str(port)],
                            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            async def health() -> dict:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as r:
                    return {"http": r.status, **await r.json()}

            async with asyncio.timeout(20):
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        if (h := await health())["http"] == 200:
                            break
                    await asyncio.sleep(0.05)
                assert h["connected"] and h["consumer"] == "live"
                through, expected = add_pairs(db_dsn, 0, 2)
                while watermark_or_none(db_dsn) != through:
                    await asyncio.sleep(0.05)
                assert (await health())["watermark"] == through
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    assert "mechtrade_coordinator_decisions_total 3" in await r.text()
        assert set(decided(db_dsn)) == expected

    try:
        asyncio.run(go())
        proc.send_signal(signal_module.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0, out
        assert "decision(s)" in out
    finally:
        proc.kill()


def watermark_or_none(dsn: str) -> int | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT last_signal_id FROM internal.coordinator_watermarks WHERE consumer = 'live'"
                           ).fetchone()
    return row[0] if row else None
