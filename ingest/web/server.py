"""The chart page's HTTP server (aiohttp): the page, its JSON API and its live event stream.

Every database connection acts as the role given (default ``mechtrade_web``: reads market and
signals, writes only labels), whatever user the connection string names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from ingest import db, labels
from ingest.config import DEFAULT_PROFILE
from ingest.errors import MechtradeError
from ingest.web.live import Live, Watcher

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("static")
ROOT = Path(__file__).resolve().parents[2]
CHART_JS_IN_PACKAGE = Path("node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js")
EXCHANGE_TIME_ZONE = "America/Chicago"
MAX_BARS = 20_000

BARS_SQL = """
SELECT * FROM (
    SELECT extract(epoch FROM bucket)::bigint AS time, open, high, low, close, volume, is_closed
    FROM market.bars
    WHERE contract_id = $1 AND timeframe = $2
        AND ($3::timestamptz IS NULL OR bucket >= $3) AND ($4::timestamptz IS NULL OR bucket < $4)
    ORDER BY bucket DESC
    LIMIT $5
) AS b
ORDER BY time"""

STARTS_SQL = """
SELECT extract(epoch FROM start_ts)::bigint AS time, direction, price, rule, rule_name,
    extract(epoch FROM confirmed_at)::bigint AS confirmed_at, extract(epoch FROM known_at)::bigint AS known_at,
    delay_bars, actionable, source
FROM signals.series_starts($1, $2, $3, $4, $5)"""

# Decisions where they became known: when the trigger signal's confirming bar closed.
DECISIONS_SQL = """
SELECT extract(epoch FROM k.known_at)::bigint AS known_at, d.direction, d.rule, d.price, d.reason
FROM signals.decisions AS d
INNER JOIN signals.detected_signals AS s ON s.signal_id = d.trigger_signal_id
CROSS JOIN LATERAL (SELECT market.session_bar_end(s.timeframe, s.confirmed_at) AS known_at) AS k
WHERE d.contract_id = $1 AND d.profile = $4 AND k.known_at >= $2 AND k.known_at < $3
ORDER BY k.known_at, d.decision_id"""

SERIES_SQL = """
SELECT contract_id FROM market.history_bars
UNION SELECT contract_id FROM signals.trend_jobs
UNION SELECT contract_id FROM signals.labels WHERE contract_id IS NOT NULL
UNION SELECT DISTINCT contract_id FROM market.ticks
ORDER BY 1"""


@dataclass(frozen=True)
class Settings:
    dsn: str | None
    role: str = "mechtrade_web"
    author: str = "analyst"
    profile: str = DEFAULT_PROFILE
    contract: str | None = None
    timeframe: str = "4h"
    chart_js: Path | None = None


class ServeError(MechtradeError):
    """The server cannot start; the message says what to do."""


def chart_js_path(explicit: Path | None = None) -> Path:
    """The lightweight-charts bundle installed by ``npm ci`` (or MECHTRADE_CHART_JS)."""
    path = explicit or Path(os.environ.get("MECHTRADE_CHART_JS") or ROOT / CHART_JS_IN_PACKAGE)
    if not path.is_file():
        raise ServeError(f"the charting library is missing at {path}: run `npm ci` in {ROOT} "
                         "(or point MECHTRADE_CHART_JS at lightweight-charts.standalone.production.js)")
    return path


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _rows(records: list[asyncpg.Record]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in records]


def _epoch(text: str | None) -> datetime | None:
    if text in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(text), tz=UTC)  # type: ignore[arg-type]
    except ValueError:
        raise web.HTTPBadRequest(text=f"not epoch seconds: {text!r}") from None


def _need(request: web.Request, name: str) -> str:
    value = request.query.get(name, "").strip()
    if not value:
        raise web.HTTPBadRequest(text=f"missing query parameter {name}")
    return value


class ChartServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.chart_js = chart_js_path(settings.chart_js)
        self.pool: asyncpg.Pool | None = None
        self.live = Live(self._connect, self.bars_since)
        self._live_task: asyncio.Task[None] | None = None

    async def _set_role(self, conn: asyncpg.Connection) -> None:
        if self.settings.role:
            try:
                quoted = '"' + self.settings.role.replace('"', '""') + '"'
                await conn.execute(f"SET ROLE {quoted}")
            except asyncpg.PostgresError as exc:
                raise ServeError(f"cannot act as role {self.settings.role} ({exc}); grant it to the connecting "
                                 f"user: GRANT {self.settings.role} TO <user>;") from None

    async def _connect(self) -> asyncpg.Connection:
        conn = await db.connect(self.settings.dsn)
        try:
            await self._set_role(conn)
        except ServeError:
            await conn.close()
            raise
        return conn

    async def start(self, app: web.Application) -> None:
        self.pool = await db.create_pool(self.settings.dsn, min_size=1, max_size=4, init=self._set_role)
        self._live_task = asyncio.create_task(self.live.run())

    async def stop(self, app: web.Application) -> None:
        if self._live_task:
            self._live_task.cancel()
            await asyncio.gather(self._live_task, return_exceptions=True)
        if self.pool:
            await self.pool.close()

    def app(self) -> web.Application:
        app = web.Application()
        app.on_startup.append(self.start)
        app.on_shutdown.append(self._close_streams)
        app.on_cleanup.append(self.stop)
        app.router.add_get("/", self.page)
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/vendor/lightweight-charts.js", self.vendor_js)
        app.router.add_static("/static", STATIC)
        app.router.add_get("/api/series", self.series)
        app.router.add_get("/api/bars", self.bars)
        app.router.add_get("/api/markers", self.markers)
        app.router.add_get("/api/score", self.score)
        app.router.add_post("/api/labels", self.label)
        app.router.add_get("/api/labels.csv", self.labels_csv)
        app.router.add_post("/api/labels/import", self.labels_import)
        app.router.add_get("/api/events", self.events)
        return app

    async def _close_streams(self, app: web.Application) -> None:
        for w in list(self.live.watchers):
            w.send("bye", {})

    # --- the page ----------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(STATIC / "index.html")

    async def vendor_js(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(self.chart_js, headers={"Cache-Control": "max-age=3600"})

    async def healthz(self, request: web.Request) -> web.Response:
        ok = self.live.connected
        return web.json_response({"status": "ok" if ok else "degraded", "live": ok,
                                  "pages": len(self.live.watchers)}, status=200 if ok else 503)

    # --- data --------------------------------------------------------------------------------

    async def series(self, request: web.Request) -> web.Response:
        assert self.pool
        async with self.pool.acquire() as conn:
            contracts = [r[0] for r in await conn.fetch(SERIES_SQL)]
            timeframes = [r[0] for r in await conn.fetch(
                "SELECT timeframe FROM market.timeframes ORDER BY bucket_width")]
            profiles = [r[0] for r in await conn.fetch("SELECT profile FROM signals.trend_profiles ORDER BY profile")]
        s = self.settings
        return web.json_response({
            "contracts": contracts, "timeframes": timeframes, "profiles": profiles,
            "contract": s.contract or (contracts[0] if contracts else None), "timeframe": s.timeframe,
            "profile": s.profile, "author": s.author, "exchange_time_zone": EXCHANGE_TIME_ZONE,
        })

    async def bars(self, request: web.Request) -> web.Response:
        assert self.pool
        try:
            limit = min(int(request.query.get("limit", "1500")), MAX_BARS)
        except ValueError:
            raise web.HTTPBadRequest(text="limit: a number of bars") from None
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(BARS_SQL, _need(request, "contract"), _need(request, "timeframe"),
                                    _epoch(request.query.get("from")), _epoch(request.query.get("to")), limit)
        return web.json_response(_rows(rows))

    async def bars_since(self, contract_id: str, timeframe: str, since: int | None) -> list[dict[str, Any]]:
        assert self.pool
        start = None if since is None else datetime.fromtimestamp(since, tz=UTC)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(BARS_SQL, contract_id, timeframe, start, None, MAX_BARS if since else 2)
        return _rows(rows)

    async def markers(self, request: web.Request) -> web.Response:
        """Trend starts, decisions and labels of the series in [from, to)."""
        assert self.pool
        contract, timeframe = _need(request, "contract"), _need(request, "timeframe")
        profile = request.query.get("profile") or self.settings.profile
        start, end = _epoch(request.query.get("from")), _epoch(request.query.get("to"))
        async with self.pool.acquire() as conn:
            starts = await conn.fetch(STARTS_SQL, contract, timeframe, start, end, profile)
            decisions = await conn.fetch(DECISIONS_SQL, contract, start or datetime.min.replace(tzinfo=UTC),
                                         end or datetime.max.replace(tzinfo=UTC), profile)
            current = await labels.current(conn, contract, timeframe, None, start, end)
        return web.json_response({
            "starts": _rows(starts),
            "decisions": _rows(decisions),
            "labels": [{"time": int(r["bar"].timestamp()), "direction": r["direction"], "author": r["author"]}
                       for r in current],
            # Hook for signals.backtest (to come): its trades as {entry_time, exit_time, side, entry, exit, pnl}.
            "trades": [],
        })

    async def score(self, request: web.Request) -> web.Response:
        assert self.pool
        profile = request.query.get("profile") or self.settings.profile
        async with self.pool.acquire() as conn:
            rows = await conn.fetch("SELECT * FROM signals.score_labels($1, $2, $3)", profile,
                                    _need(request, "contract"), _need(request, "timeframe"))
        return web.json_response(_rows(rows))

    async def label(self, request: web.Request) -> web.Response:
        """Add or remove one label: {contract, timeframe, time, direction, action: add|remove, author?}."""
        assert self.pool
        try:
            body = await request.json()
            contract, timeframe = str(body["contract"]), str(body["timeframe"])
            label = labels.Label(datetime.fromtimestamp(int(body["time"]), tz=UTC),
                                 labels.parse_direction(str(body["direction"])))
            action = body["action"]
            author = str(body.get("author") or self.settings.author)
        except (ValueError, KeyError, TypeError) as exc:
            raise web.HTTPBadRequest(text=f"bad label request: {exc}") from None
        if action not in ("add", "remove"):
            raise web.HTTPBadRequest(text="action must be add or remove")
        try:
            async with self.pool.acquire() as conn:
                if action == "add":
                    changed = (await labels.add(conn, contract, timeframe, [label], author)).added == 1
                else:
                    changed = await labels.remove(conn, contract, timeframe, label, author)
        except (labels.LabelError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise web.HTTPBadRequest(text=f"label refused: {exc}") from None
        log.info("label %s %s %s %s %s by %s%s", action, contract, timeframe, label.bar.isoformat(), label.direction,
                 author, "" if changed else " (nothing to do)")
        return web.json_response({"changed": changed})

    async def labels_csv(self, request: web.Request) -> web.Response:
        assert self.pool
        contract, timeframe = _need(request, "contract"), _need(request, "timeframe")
        async with self.pool.acquire() as conn:
            text = await labels.export_csv(conn, contract, timeframe, request.query.get("author") or None)
        name = f"{contract}_{timeframe}_labels.csv"
        return web.Response(text=text, content_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="{name}"'})

    async def labels_import(self, request: web.Request) -> web.Response:
        """Add the labels of a CSV body (the export's format) to the series; counts as ``mechtrade labels import``."""
        assert self.pool
        contract, timeframe = _need(request, "contract"), _need(request, "timeframe")
        author = request.query.get("author") or self.settings.author
        try:
            rows = labels.read_csv(await request.text(), "uploaded file")
            async with self.pool.acquire() as conn:
                result = await labels.add(conn, contract, timeframe, rows, author)
        except (labels.LabelError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        log.info("imported labels into %s %s by %s: %s", contract, timeframe, author, result)
        return web.json_response(dataclasses.asdict(result))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-sent events for one series: bars (changed and forming), signals, decisions, labels."""
        since = request.query.get("since")
        watcher = Watcher(_need(request, "contract"), _need(request, "timeframe"), int(since) if since else None)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.live.watch(watcher)
        try:
            await response.write(b"event: hello\ndata: {}\n\n")
            while True:
                try:
                    event, data = await asyncio.wait_for(watcher.queue.get(), 15)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event == "bye":
                    break
                await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())
        except ConnectionResetError:  # the page went away
            pass
        finally:
            self.live.unwatch(watcher)
        return response


async def serve(settings: Settings, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (cleanup() stops it) and the bound port."""
    server = ChartServer(settings)
    runner = web.AppRunner(server.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
