"""Chaos bench (not a test): random fault schedules against the real ``mechtrade ingest`` process.

Each schedule streams the fake gateway's MES tape at ``--rate`` trades/s for ``--seconds`` into a
fresh database, while a seeded random sequence of faults hits it every 1-3 s: kill -9 and SIGTERM
of the process (restarted once the market printed more), hub resets, WebSocket closes, half-open
sockets, hub outages, redelivered and replayed batches (F9), reversed and late batches (F10),
database outages (a cut TCP proxy) and, as root, fast database restarts. Then it compares what
the market produced with ``market.ticks`` and ``market.feed_gaps`` and prints, per schedule and in
total: sent / stored / inside gaps / lost / doubled. "lost" (outside every recorded gap) and
"doubled" must be 0.

Usage: python bench/chaos.py [--schedules 4] [--seconds 30] [--rate 200] [--seed 1]
Without DATABASE_URL, as root, it starts a throw-away server of its own (and restarts it as a fault).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from scratch import ROOT, scratch_database  # puts the repository and tests/ on sys.path

from ingest import db
from ingest.fake_gateway import FakeGateway
from pg_server import RootServer, is_root
from tcp_proxy import TcpProxy


def _harness():  # type: ignore[no-untyped-def]
    """tests/chaos/harness.py (this script's own name, chaos, hides the tests' chaos directory)."""
    spec = importlib.util.spec_from_file_location("chaos_harness", ROOT / "tests" / "chaos" / "harness.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


harness = _harness()
REPLAY_FROM, Audit, CliIngester, audit = harness.REPLAY_FROM, harness.Audit, harness.CliIngester, harness.audit
config_file, key_of, produced, until = harness.config_file, harness.key_of, harness.produced, harness.until
play_ours = harness.play_ours


class Target:
    """A fresh database per schedule, reached through a proxy that can be cut."""

    def __init__(self, admin_dsn: str, server: RootServer | None) -> None:
        self.admin_dsn, self.server = admin_dsn, server


async def run_schedule(number: int, target: Target, rng: random.Random, seconds: float, rate: float,
                       workdir: Path) -> tuple[list[str], Audit]:
    # the jobs run as in production: their load is part of the chaos
    async with scratch_database(target.admin_dsn, prefix="mechtrade_chaos", pause_jobs=False) as dsn:
        return await run_schedule_on(dsn, target, rng, seconds, rate, workdir)


async def run_schedule_on(dsn: str, target: Target, rng: random.Random, seconds: float, rate: float,
                          workdir: Path) -> tuple[list[str], Audit]:
    parts = urlsplit(dsn)
    proxy = await TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432).up()
    via_proxy = dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
    done: list[str] = []
    async with FakeGateway(ping_interval_s=0.3, replay_from=REPLAY_FROM) as gw:
        ingester = CliIngester(gw, via_proxy, config_file(workdir), workdir / "ingest.log")

        async def grows(by: int) -> None:
            target_count = len(produced(gw)) + by
            await until(lambda: len(produced(gw)) >= target_count, 60)

        async def kill(sig: int) -> None:
            await ingester.kill(sig)
            await grows(rng.randint(10, 100))
            await ingester.start()

        async def db_down() -> None:
            await proxy.down()
            await asyncio.sleep(rng.uniform(0.5, 3.0))
            await proxy.up()

        faults: dict[str, Callable[[], Awaitable[None] | None]] = {
            "kill -9": lambda: kill(signal.SIGKILL),
            "SIGTERM": lambda: kill(signal.SIGTERM),
            "F1 reset": lambda: gw.reset(),
            "F2 ws close": lambda: gw.ws_close(1011),
            "F4 hub outage": lambda: gw.outage(rng.uniform(0.3, 2.0)),
            "F7 half-open": lambda: gw.half_open(),
            "F9 batch twice": lambda: gw.duplicate_batch(rng.randint(1, 5)),
            "F9 replay on subscribe": lambda: gw.replay_on_subscribe(rng.choice([0, 10, 50])),
            "F10 reversed/late": lambda: (gw.reverse_batch(2), gw.late_batch(2)) and None,
            "database down": db_down,
        }
        if target.server is not None:
            faults["database restart"] = lambda: asyncio.to_thread(target.server.restart)  # type: ignore[union-attr]
        await ingester.start()
        gw.start_replay(speed=rate)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await asyncio.sleep(rng.uniform(1.0, 3.0))
            name = rng.choice(sorted(faults))
            result = faults[name]()
            if asyncio.iscoroutine(result):
                await result
            done.append(name)
        gw.pause_replay()
        await until(lambda: gw.hub_up, 30)
        await until(lambda: any(c.subscriptions for c in gw.open_connections()), 60)
        await play_ours(gw, 5)
        last = key_of(produced(gw)[-1])

        def stored_last() -> bool:
            import psycopg
            with psycopg.connect(dsn) as conn:
                return conn.execute("SELECT 1 FROM market.ticks WHERE ts = %s AND price = %s",
                                    last[:2]).fetchone() is not None
        await until(stored_last, 120)
        await ingester.kill(signal.SIGTERM)
    await proxy.down()
    return done, audit(gw, dsn)


async def main(schedules: int, seconds: float, rate: float, seed: int) -> int:
    server = None
    admin_dsn = db.database_url()
    if admin_dsn is None:
        if not is_root():
            sys.exit("set DATABASE_URL, or run as root for a throw-away server")
        server = RootServer()
        admin_dsn = server.start().dsn("postgres")
    target = Target(admin_dsn, server)
    rows: list[tuple[int, list[str], Audit]] = []
    try:
        for number in range(1, schedules + 1):
            rng = random.Random(f"{seed}:{number}")
            with tempfile.TemporaryDirectory(prefix="mechtrade-chaos-") as tmp:
                began = time.monotonic()
                faults, result = await run_schedule(number, target, rng, seconds, rate, Path(tmp))
                rows.append((number, faults, result))
                print(f"schedule {number}: {result}  [{time.monotonic() - began:.0f} s; {len(faults)} faults: "
                      f"{', '.join(faults)}]", flush=True)
    finally:
        if server:
            server.stop()
    total = (sum(r.sent for *_, r in rows), sum(r.stored for *_, r in rows), sum(r.in_gaps for *_, r in rows),
             sum(r.lost for *_, r in rows), sum(r.doubled for *_, r in rows))
    print(f"\n{'schedules':>9} {'faults':>7} {'sent':>8} {'stored':>8} {'in gaps':>8} {'lost':>5} {'doubled':>8}")
    print(f"{len(rows):>9} {sum(len(f) for _, f, _ in rows):>7} {total[0]:>8} {total[1]:>8} {total[2]:>8} "
          f"{total[3]:>5} {total[4]:>8}")
    return 0 if total[3] == 0 and total[4] == 0 else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--schedules", type=int, default=4, help="random fault schedules to run (default 4)")
    parser.add_argument("--seconds", type=float, default=30.0, help="streaming time per schedule (default 30)")
    parser.add_argument("--rate", type=float, default=200.0, help="trades per second (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the schedules (default 1)")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.schedules, args.seconds, args.rate, args.seed)))
