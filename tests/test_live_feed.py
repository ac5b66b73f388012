"""A live feed that survives a trading week: keep-alive owned by our supervision, control frames kept away
from the JSON parser. Timeouts scaled down (a 2 s client timeout instead of ASP.NET's 30 s); the
10-minute version at the tape's real rate is ``bench/soak.py``."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from test_ingester import FAST, running

CLIENT_TIMEOUT_S = 2.0  # the fake closes a client silent this long (ASP.NET ClientTimeoutInterval, scaled)


def test_keep_alive_holds_a_connection_the_server_would_drop(db_dsn: str, tmp_path: Path) -> None:
    """Five client timeouts of live trading: zero reconnects, zero gaps, stored = sent."""
    async def go() -> None:
        settings = dataclasses.replace(FAST, keep_alive_s=CLIENT_TIMEOUT_S / 3)
        async with running(db_dsn, tmp_path, feed_settings=settings, client_timeout_s=CLIENT_TIMEOUT_S) as run:
            run.gw.start_replay(speed=40)
            await asyncio.sleep(5.5 * CLIENT_TIMEOUT_S)  # the scenario's length, not a synchronisation
            run.gw.pause_replay()
            await run.settled()
            assert run.metrics.total("hub_reconnects_total") == 0
            assert len(run.gw.connections) == 1 and not run.gw.connections[0].closed
            assert run.gaps() == []
            run.assert_nothing_lost_or_doubled(exact=True)
            assert len(run.gw.delivered_trades()) > 150
            pings = [r for r in run.gw.connections[0].received if isinstance(r, dict) and r.get("type") == 6]
            assert len(pings) >= 12 and run.metrics.total("hub_pings_sent_total") == len(pings)

    asyncio.run(go())


def test_without_keep_alive_the_server_drops_the_client(db_dsn: str, tmp_path: Path) -> None:
    """The fake enforces the client timeout, so the test above proves the pings, not a lenient fake."""
    async def go() -> None:
        settings = dataclasses.replace(FAST, keep_alive_s=0)
        async with running(db_dsn, tmp_path, feed_settings=settings, client_timeout_s=CLIENT_TIMEOUT_S / 2) as run:
            await run.subscribed(connections=2)
            assert run.gw.connections[0].close_reason == "client timeout"
            assert run.metrics.total("hub_reconnects_total") >= 1

    asyncio.run(go())


def test_control_frames_never_reach_the_json_parser(db_dsn: str, tmp_path: Path) -> None:
    """WebSocket pings (with payloads, one that looks like JSON, empty) are answered with the same payload;
    unsolicited pongs are ignored; the connection and every trade survive."""
    payloads = [b"ping", b'{"type":1,"target":"GatewayTrade"}', b""]

    async def go() -> None:
        async with running(db_dsn, tmp_path) as run:
            for payload in payloads:
                await run.gw.play(10)
                run.gw.ws_ping(payload)
                run.gw.ws_ping(payload + b"-pong", pong=True)
            await run.gw.play(10)
            conn = run.gw.connections[0]
            await run.gw.wait_for(lambda: len(conn.pongs) == len(payloads))
            await run.settled()
            assert conn.pongs == payloads
            assert run.metrics.total("hub_reconnects_total") == 0 and len(run.gw.connections) == 1
            run.assert_nothing_lost_or_doubled(exact=True)

    asyncio.run(go())
