"""Soak (not a test): the real ``mechtrade ingest`` against the fake gateway at the tape's real rate, for
minutes, with and without keep-alive side by side.

One fake gateway (its own process; it closes a client silent for ``--client-timeout`` seconds, as
ASP.NET does after 30 s) replays ``--contracts`` contracts in market time (``--time-scale 1`` = the
tape's real rate). Two ``mechtrade ingest`` processes, each with its own scratch database and login,
stream them: one with ``ingest.keep_alive_s`` = ``--keep-alive``, one with 0 (no pings). Printed every
``--every`` seconds and at the end, per ingester: reconnects, feed gaps, ticks stored vs sent to it vs
played by the market (a trade played while it was disconnected is never sent), pings, RSS.

The tape is sparse (4-8 prints per 5-minute bar), so the staleness watchdog is set to 15 minutes here:
a quiet stretch of the replay must not count as a dropped feed.

Usage: python bench/soak.py [--minutes 10] [--contracts 4] [--keep-alive 10]
Without DATABASE_URL, as root, it starts a throw-away server like the tests do.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import socket
import sys
import time
import urllib.request
from contextlib import AsyncExitStack
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from tempfile import TemporaryDirectory

import asyncpg
from scratch import scratch_database

from ingest.fake_gateway import FakeGateway
from ingest.fake_gateway.catalog import Contract, default_catalog
from ingest.replay_harness import contract_ids, tapes_for

REPLAY_FROM = "2025-05-13T13:30:00+00:00"  # the cash open of a recorded MES day
LOGINS = {"keepalive": "soak-key", "silent": "soak-key"}


def serve_gateway(pipe: Connection, contracts: tuple[str, ...], time_scale: float, client_timeout: float) -> None:
    """Child process: the fake gateway; answers ``user`` with (trades played, distinct trades delivered to
    ``user``, ``user``'s connections)."""

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        catalog = default_catalog() + [Contract(c, c.split(".")[3], f"synthetic copy {c}", 0.25, 1.25, True,
                                                f"F.US.{c.split('.')[3]}") for c in contracts[1:]]
        async with FakeGateway(tapes=tapes_for(contracts), catalog=catalog, replay_from=REPLAY_FROM,
                               credentials=LOGINS, client_timeout_s=client_timeout) as gw:
            pipe.send((gw.rest_url, gw.hub_url))
            await gw.wait_for(lambda: {c.user for c in gw.connections if c.subscriptions} >= set(LOGINS), 60)
            gw.start_replay(time_scale=time_scale)  # both are subscribed: every trade played is owed to both
            while (user := await loop.run_in_executor(None, pipe.recv)) is not None:
                conns = {c.id for c in gw.connections if c.user == user}
                delivered = {(s.trade.contract_id, s.trade.index) for s in gw.sent_trades if s.conn_id in conns}
                pipe.send((sum(len(trades) for _, trades in gw.played), len(delivered), len(conns)))

    asyncio.run(serve())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


@dataclass
class Ingester:
    """One ``mechtrade ingest`` process and its database."""

    name: str
    keep_alive: float
    dsn: str
    port: int
    proc: asyncio.subprocess.Process | None = None
    rss_start: float = 0.0

    async def start(self, rest_url: str, hub_url: str, contracts: tuple[str, ...], spill: Path) -> None:
        env = {**os.environ, "DATABASE_URL": self.dsn, "PROJECTX_USERNAME": self.name,
               "PROJECTX_API_KEY": LOGINS[self.name], "MECHTRADE_CONTRACTS": ",".join(contracts),
               "MECHTRADE_ROOTS": "",
               "MECHTRADE_GATEWAY_REST_URL": rest_url, "MECHTRADE_GATEWAY_HUB_URL": hub_url,
               "MECHTRADE_INGEST_KEEP_ALIVE_S": str(self.keep_alive), "MECHTRADE_INGEST_STALE_FEED_S": "900",
               "MECHTRADE_INGEST_HEALTH_PORT": str(self.port), "MECHTRADE_INGEST_SPILL_DIR": str(spill / self.name)}
        mechtrade = Path(sys.executable).with_name("mechtrade")
        self.proc = await asyncio.create_subprocess_exec(mechtrade, "ingest", env=env,
                                                         stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)

    def metric(self, name: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5).read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if re.match(rf"mechtrade_{name}(\{{| )", line))

    async def sample(self, pipe: Connection) -> dict[str, float]:
        conn = await asyncpg.connect(self.dsn)
        try:
            stored = await conn.fetchval("SELECT count(*) FROM market.ticks")
            gaps = await conn.fetchval("SELECT count(*) FROM market.feed_gaps")
        finally:
            await conn.close()
        pipe.send(self.name)
        played, sent, connections = pipe.recv()
        assert self.proc is not None
        return {"reconnects": await asyncio.to_thread(self.metric, "hub_reconnects_total"),
                "pings": await asyncio.to_thread(self.metric, "hub_pings_sent_total"),
                "connections": connections, "gaps": gaps, "stored": stored, "sent": sent, "played": played,
                "rss_mb": rss_mb(self.proc.pid)}

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.proc.wait(), 60)


def line(at: float, ing: Ingester, s: dict[str, float]) -> str:
    return (f"{at:7.0f} s  {ing.name:<9} keep_alive={ing.keep_alive:<4g} reconnects={s['reconnects']:<4.0f} "
            f"connections={s['connections']:<4.0f} gaps={s['gaps']:<4.0f} "
            f"stored/sent/played={s['stored']}/{s['sent']}/{s['played']:<6} "
            f"pings={s['pings']:<4.0f} rss={s['rss_mb']:.1f} MB")


async def main(args: argparse.Namespace) -> None:
    contracts = contract_ids(args.contracts)
    pipe, child_end = multiprocessing.Pipe()
    child = multiprocessing.get_context("spawn").Process(
        target=serve_gateway, args=(child_end, contracts, args.time_scale, args.client_timeout), daemon=True)
    child.start()
    rest_url, hub_url = await asyncio.to_thread(pipe.recv)
    async with AsyncExitStack() as stack:
        spill = Path(stack.enter_context(TemporaryDirectory()))
        ingesters = [Ingester("keepalive", args.keep_alive, await stack.enter_async_context(scratch_database()),
                              free_port()),
                     Ingester("silent", 0, await stack.enter_async_context(scratch_database()), free_port())]
        for ing in ingesters:
            await ing.start(rest_url, hub_url, contracts, spill)
            stack.push_async_callback(ing.stop)
        print(f"soak: {len(contracts)} contracts at x{args.time_scale:g} market time from {REPLAY_FROM}, "
              f"{args.minutes:g} min, the gateway drops clients silent for {args.client_timeout:g} s", flush=True)
        started = time.monotonic()
        await asyncio.sleep(3)
        for ing in ingesters:
            assert ing.proc is not None
            ing.rss_start = rss_mb(ing.proc.pid)
        end = started + args.minutes * 60
        while (now := time.monotonic()) < end:
            await asyncio.sleep(min(args.every, end - now))
            for ing in ingesters:
                print(line(time.monotonic() - started, ing, await ing.sample(pipe)), flush=True)
        print("\nfinal (after the last batch is written):")
        await asyncio.sleep(2)
        summary = {}
        for ing in ingesters:
            s = await ing.sample(pipe)
            print(line(time.monotonic() - started, ing, s) + f"  (rss at start {ing.rss_start:.1f} MB)")
            summary[ing.name] = {**s, "rss_start_mb": round(ing.rss_start, 1), "rss_mb": round(s["rss_mb"], 1)}
        print(json.dumps(summary))
    pipe.send(None)
    child.join(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to stream (default 10)")
    parser.add_argument("--contracts", type=int, default=4, help="contracts streamed at once (default 4)")
    parser.add_argument("--keep-alive", type=float, default=10.0, help="keep-alive of the first ingester, s")
    parser.add_argument("--client-timeout", type=float, default=30.0, help="the gateway's client timeout, s")
    parser.add_argument("--time-scale", type=float, default=1.0, help="market seconds per second (default 1)")
    parser.add_argument("--every", type=float, default=60.0, help="print a sample this often, s (default 60)")
    asyncio.run(main(parser.parse_args()))
