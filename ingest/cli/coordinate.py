"""``mechtrade coordinate``: configuration, health server and signals around the Coordinator."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import signal
from pathlib import Path

from ingest import config, db, health
from ingest.coordinator import CHANNEL, Coordinator
from ingest.db_checks import DatabaseChecks
from ingest.metrics import Metrics

log = logging.getLogger(__name__)

DESCRIPTION = f"""\
Combine trend starts (signals.detected_signals) into trading decisions (signals.decisions) by the
rules in the coordinator section of the configuration. Listens on {CHANNEL} for wake-ups and
re-reads past its durable watermark at start, after every reconnect and every poll_s, so no
signal is missed or decided twice. Needs a direct (session) connection: LISTEN does not work
through a transaction pooler. SIGTERM or Ctrl-C: finish the current batch and exit."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("coordinate", help="turn trend starts into trading decisions", description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, help=config.FILE_HELP)
    p.add_argument("--consumer", help="watermark name (default coordinator.consumer)")
    p.add_argument("--health-port", type=int, help="port of /healthz and /metrics, 0 for none "
                   "(default coordinator.health_port)")
    p.set_defaults(run=run)


async def run(args: argparse.Namespace) -> int:
    cfg = config.load(args.config).coordinator
    if args.consumer:
        cfg = dataclasses.replace(cfg, consumer=args.consumer)
    port = cfg.health_port if args.health_port is None else args.health_port
    metrics = Metrics()
    coordinator = Coordinator(cfg, db.database_url(), metrics)
    checks = DatabaseChecks(db.database_url(), ("trend_jobs",))
    runner = await health.serve(port, metrics, checks.wrap(coordinator.status), cfg.health_host,
                                "coordinator.health_port") if port else None
    stop = asyncio.Event()
    checks.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("coordinating into %s with rules %s", db.describe(db.database_url()),
             ", ".join(r.name for r in cfg.rules))
    try:
        await coordinator.run(stop)
    finally:
        await checks.close()
        if runner:
            await runner.cleanup()
    return 0
