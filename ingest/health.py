"""``/healthz`` and ``/metrics`` over HTTP, for Railway's health check and for Prometheus.

Health is a set of named checks, each ``(ok, reason)``; the service is healthy when all are ok.
``/healthz`` answers 200 or 503 with every check and the owner's details as JSON.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from ingest.config import InvalidConfig
from ingest.metrics import Metrics

Check = tuple[bool, str]


class HealthRunner(web.AppRunner):
    """The server's runner, with the port it listens on (aiohttp's runner has slots: no new attributes)."""

    bound_port: int = 0


def combine(checks: Mapping[str, Check], details: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
    """(healthy, details with ``checks``) from named checks."""
    body = {"checks": {name: {"ok": ok, "reason": reason} for name, (ok, reason) in checks.items()}, **details}
    return all(ok for ok, _ in checks.values()), body


async def serve(
    port: int, metrics: Metrics, status: Callable[[], tuple[bool, dict]], host: str = "127.0.0.1",
    setting: str = "health_port",
) -> HealthRunner:
    """Start the server; ``status()`` returns (healthy, details). Returns the runner (cleanup() stops it).

    A port in use (or an address that cannot be bound) is an :class:`InvalidConfig` naming ``setting``."""

    async def healthz(_request: web.Request) -> web.Response:
        healthy, details = status()
        body = json.dumps({"status": "ok" if healthy else "degraded", **details}, default=str)
        return web.Response(text=body, status=200 if healthy else 503, content_type="application/json")

    async def metrics_page(_request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(), content_type="text/plain", charset="utf-8")

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics_page)
    runner = HealthRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        why = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be bound ({exc.strerror or exc})"
        raise InvalidConfig([f"{setting}: port {port} on {host} {why}"]) from None
    runner.bound_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner
