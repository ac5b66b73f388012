"""``/healthz`` and ``/metrics`` over HTTP, for Railway's health check and for Prometheus."""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web

from ingest.metrics import Metrics


class HealthRunner(web.AppRunner):
    """An AppRunner that knows its port (aiohttp's own has __slots__: no attribute can be added)."""

    bound_port: int = 0


async def serve(port: int, metrics: Metrics, status: Callable[[], tuple[bool, dict]],
                host: str = "0.0.0.0") -> HealthRunner:
    """Start the server; ``status()`` returns (healthy, details). Returns the runner (cleanup() stops it)."""

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
    await site.start()
    runner.bound_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner
