"""``mechtrade fake-gateway``: serve the fake ProjectX gateway on loopback and replay the MES tape."""

from __future__ import annotations

import argparse
import asyncio
import logging

from ingest.fake_gateway.catalog import MES_M25, MES_U25
from ingest.fake_gateway.server import DEFAULT_REPLAY_FROM, FakeGateway

log = logging.getLogger(__name__)


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "fake-gateway",
        help="serve a local fake ProjectX gateway (REST + market hub) for development",
        description="Serve a fake ProjectX gateway on loopback: REST on --port, the market hub on --hub-port, "
        "with trades synthesized from the real MES bars replayed from --from at --speed. Faults: "
        'POST /_fake/inject {"fault": "F1".."F18" or a method name, ...} on the REST port.',
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="REST port (default: any free port)")
    p.add_argument("--hub-port", type=int, default=0, help="market hub port (default: any free port)")
    p.add_argument("--speed", type=float, default=20.0, metavar="TRADES_PER_S",
                   help="replay speed in trades per second; 0 = as fast as possible (default 20)")
    p.add_argument("--time-scale", type=float, metavar="X",
                   help="replay in market time, X market seconds per second (overrides --speed)")
    p.add_argument("--from", dest="replay_from", default=DEFAULT_REPLAY_FROM, metavar="ISO_TIME",
                   help=f"market time where the live replay starts; earlier bars are history (default "
                   f"{DEFAULT_REPLAY_FROM})")
    p.add_argument("--roll-at", metavar="ISO_TIME",
                   help="market time at which MES U25 becomes the active contract instead of M25 (both trade on)")
    p.add_argument("--paused", action="store_true", help="do not start the replay (POST /_fake/replay starts it)")
    p.add_argument("--user", default="demo", help="accepted userName (default demo)")
    p.add_argument("--api-key", default="demo-key", help="accepted apiKey (default demo-key)")
    p.add_argument("--token-lifetime", type=float, default=24 * 3600.0, metavar="SECONDS")
    p.add_argument("--seed", type=int, default=0, help="seed of the trade synthesis (default 0)")
    p.add_argument("--for", dest="duration", type=float, metavar="SECONDS", help="stop after this long")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    gw = FakeGateway(credentials={args.user: args.api_key}, token_lifetime_s=args.token_lifetime,
                     replay_from=args.replay_from, speed=args.speed or None, time_scale=args.time_scale,
                     autoplay=not args.paused, rolls=[(MES_M25, MES_U25, args.roll_at)] if args.roll_at else [],
                     seed=args.seed, host=args.host, rest_port=args.port, hub_port=args.hub_port)
    try:
        await gw.start()
    except OSError as exc:
        log.error("cannot listen on %s: %s", args.host, exc)
        return 2
    try:
        print(f"rest    {gw.rest_url}", flush=True)
        print(f"hub     {gw.hub_url}", flush=True)
        print(f"login   userName={args.user} apiKey={args.api_key}", flush=True)
        print(f"control {gw.rest_url}/_fake/inject", flush=True)
        pace = f"x{args.time_scale:g} market time" if args.time_scale else \
            f"{args.speed:g} trades/s" if args.speed else "full speed"
        log.info("replaying from %s at %s", args.replay_from, pace)
        try:
            await asyncio.wait_for(asyncio.Event().wait(), args.duration)
        except TimeoutError:
            pass
        log.info("stopping: %d trades sent to %d connection(s)", len(gw.sent_trades), len(gw.connections))
    finally:
        await gw.stop()
    return 0
