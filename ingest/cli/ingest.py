"""``mechtrade ingest``: configuration, gateway client, health server and signals around the Ingester."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import signal
from contextlib import AsyncExitStack
from pathlib import Path

from ingest import config, db, health
from ingest.config import Config, Credentials, InvalidConfig
from ingest.db_checks import DatabaseChecks
from ingest.ingester import Ingester
from ingest.metrics import Metrics

log = logging.getLogger(__name__)

DESCRIPTION = """\
Stream trades of the configured contracts from the ProjectX market hub into market.ticks.
Outages of the feed are recorded in market.feed_gaps and repaired from REST bars; while the
database is away, ticks are buffered and then spilled to disk, to be written when it is back.
SIGTERM or Ctrl-C: stop reading, flush, exit (within ingest.shutdown_deadline_s).
Every trade the gateway sent is stored or inside a recorded gap; /healthz shows each task.
Exit status: 1 for configuration problems (one line each), a health port in use or a task that
cannot recover; 2 for usage errors.

credentials: PROJECTX_USERNAME and PROJECTX_API_KEY (environment only).
demo: --fake-gateway (or MECHTRADE_DEMO=1) replays real MES trades from a local fake gateway."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("ingest", help="stream live trades into the database", description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help=config.FILE_HELP)
    p.add_argument("--fake-gateway", action="store_true", help="use a local fake gateway replaying real MES data")
    p.add_argument("--speed", type=float, default=50.0, metavar="TRADES_PER_S",
                   help="with --fake-gateway: replay speed (default 50 trades/s)")
    p.set_defaults(run=run)


def demo_requested(args: argparse.Namespace) -> bool:
    return bool(args.fake_gateway or os.environ.get("MECHTRADE_DEMO", "").lower() in ("1", "true", "yes"))


async def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config)
    async with AsyncExitStack() as stack:
        if demo_requested(args):
            cfg = await _start_fake_gateway(stack, cfg, args.speed)
        else:
            cfg.credentials.require("or run with --fake-gateway for a demo feed")
        if not cfg.contracts and not cfg.roots:
            raise InvalidConfig(["roots/contracts: none configured (roots:/contracts: in the config file, or "
                                 "MECHTRADE_ROOTS/MECHTRADE_CONTRACTS)"])

        from ingest.backfill import fetch_into_history
        from ingest.projectx import ProjectXClient

        client = await stack.enter_async_context(ProjectXClient(
            cfg.gateway.rest_url, cfg.credentials, live=cfg.gateway.live,
            history_per_30s=cfg.gateway.history_requests_per_30s, token_refresh_s=cfg.gateway.token_refresh_s,
        ))
        metrics = Metrics()

        async def fetch(conn, contract_id, timeframe, start, end):  # type: ignore[no-untyped-def]
            return await fetch_into_history(conn, client, contract_id, timeframe, start, end)

        ingester = Ingester(cfg, db.database_url(), client, fetch, metrics=metrics,
                            search_contracts=client.search_contracts,
                            history_requests=lambda: client.history_limiter.acquired)
        # A replayed tape is historical: its ticks are never fresh, so the demo skips that check.
        checks = DatabaseChecks(db.database_url(), () if demo_requested(args) else ("ticks",), cfg.contracts,
                                roots=cfg.roots)
        runner = await health.serve(cfg.ingest.health_port, metrics, checks.wrap(ingester.status),
                                    cfg.ingest.health_host, "ingest.health_port")
        stack.push_async_callback(runner.cleanup)

        stop = asyncio.Event()
        checks.start()
        stack.push_async_callback(checks.close)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("ingesting %s from %s into %s; health on %s:%d", ", ".join(cfg.roots + cfg.contracts),
                 cfg.gateway.hub_url, db.describe(db.database_url()), cfg.ingest.health_host, runner.bound_port)
        await ingester.run(stop)
    return 0


async def _start_fake_gateway(stack: AsyncExitStack, cfg: Config, speed: float) -> Config:
    from ingest.fake_gateway import FakeGateway

    gw = await stack.enter_async_context(FakeGateway(autoplay=True, speed=speed))
    log.info("demo mode: fake gateway at %s replaying MES trades at %.0f/s", gw.rest_url, speed)
    return dataclasses.replace(
        cfg,
        gateway=dataclasses.replace(cfg.gateway, rest_url=gw.rest_url, hub_url=gw.hub_url),
        ingest=dataclasses.replace(cfg.ingest, max_age_s=0.0),  # the replay is of 2025 trades
        roots=("MES",),
        contracts=(),
        credentials=Credentials("demo", "demo-key"),
    )
