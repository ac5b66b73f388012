"""``FakeGateway``: REST + market hub on 127.0.0.1, a replayed tick tape, fault injection and recordings."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

from aiohttp import WSMsgType, web

from ingest.fake_gateway import hub as H
from ingest.fake_gateway.bars import trade_date
from ingest.fake_gateway.catalog import MES_M25, MES_U25, Contract, default_catalog
from ingest.fake_gateway.hub import RS, HubConn, Outgoing, SentTrade, record, trade_item
from ingest.fake_gateway.market import Market, QuoteState
from ingest.fake_gateway.rest import REST_FAULT_KINDS, RateLimit, RestApi, RestCall, RestFault
from ingest.fake_gateway.tape import TICKS, Tape, Trade, default_tape, format_ticks
from ingest.fake_gateway.tokens import Clock, TokenIssuer, user_of

log = logging.getLogger("mechtrade.fake_gateway")
DEFAULT_REPLAY_FROM = "2025-05-13T13:30:00+00:00"


@dataclass
class GatewayOptions:
    """Switchable behaviour; every [S]/[X]/[U] point of the protocol sheet that a client must tolerate."""

    credentials: dict[str, str] = field(default_factory=lambda: {"demo": "demo-key"})
    account_errors: dict[str, int] = field(default_factory=dict)  # userName -> loginKey errorCode (7, 9, 10)
    token_lifetime_s: float = 24 * 3600.0
    validate_expired: bool = False  # may /api/Auth/validate refresh an expired token?
    unauthorized_body: str = ""
    search_by_id_array: bool = False  # ``contracts: [..]`` instead of ``contract: {..}``
    start_inclusive: bool = True
    end_inclusive: bool = True
    minute_lookback_s: float | None = None  # shallower history for unit 1/2 with unitNumber 1
    history_rate: RateLimit = field(default_factory=lambda: RateLimit(50, 30.0))
    other_rate: RateLimit = field(default_factory=lambda: RateLimit(200, 60.0))
    retry_after: str | None = "seconds"  # on 429: "seconds", "date" or None
    ping_interval_s: float = 15.0  # {"type":6} after this much outbound silence
    client_timeout_s: float | None = 30.0  # close after this long without any client record
    handshake_timeout_s: float = 15.0
    close_on_token_expiry: bool = False  # F14 mode B
    trade_payload: str = "array"  # "array" or "object" (one trade per message)
    null_padding: bool = False  # add ``null`` entries to trade arrays
    data_wrapper: bool = False  # wrap payloads as ``{"data": ...}``
    ts_style: str = "7"  # "7", "Z", "naive", "3" or "0" (see tape.format_ticks)
    completion_result: bool = True  # ``"result": null`` in completions (else omitted)
    new_unknown_method_wording: bool = False
    quote_snapshot: bool = True  # full GatewayQuote right after SubscribeContractQuotes
    replay_on_subscribe: int = 0  # F9: resend the last N trades on SubscribeContractTrades
    coalesce_handshake: bool = False  # send ``{}␞{"type":6}␞`` in one WebSocket message
    require_negotiate: bool = False  # upgrades must carry an ``id`` from /negotiate
    ws_close_timeout_s: float = 0.5  # how long a server-side close waits for the client's close frame
    tick_s: float = 0.02  # housekeeping period (pings, timeouts)


class Changes:
    """Wakes async and threaded waiters whenever the gateway's recorded state changes."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._futures: set[asyncio.Future] = set()
        self.version = 0

    def notify(self) -> None:
        self.version += 1
        for fut in self._futures:
            if not fut.done():
                fut.set_result(None)
        self._futures.clear()
        with self._cond:
            self._cond.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy (returning it); ``TimeoutError`` after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not (result := predicate()):
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError(f"condition not met within {timeout} s")
            fut = loop.create_future()
            self._futures.add(fut)
            try:
                await asyncio.wait_for(fut, left)
            except TimeoutError:
                pass
        return result

    def wait_for_sync(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Threaded twin of :meth:`wait_for` (call it from outside the gateway's loop)."""
        with self._cond:
            if not self._cond.wait_for(predicate, timeout):
                raise TimeoutError(f"condition not met within {timeout} s")
            return predicate()


def _ticks(value: str | datetime | None, default: str) -> int:
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(value or default)
    return int(dt.timestamp()) * TICKS


class FakeGateway:
    """A local ProjectX Gateway. ``async with FakeGateway() as gw:`` then use ``gw.rest_url`` / ``gw.hub_url``.

    The tape is replayed from ``replay_from``: everything before it is history (REST), everything after
    is played live, either by :meth:`play` (N batches now) or :meth:`start_replay` (``speed`` trades/s,
    ``None`` = as fast as possible). Faults are methods (see :data:`FAULTS`); recordings are
    ``sent_trades``, ``connections`` (each with ``sent``/``received``), ``rest_calls`` and ``upgrades``.
    """

    def __init__(self, options: GatewayOptions | None = None, *, tapes: dict[str, Tape] | None = None,
                 catalog: list[Contract] | None = None, replay_from: str | datetime | None = None,
                 speed: float | None = None, autoplay: bool = False, seed: int = 0, host: str = "127.0.0.1",
                 rest_port: int = 0, hub_port: int = 0, **overrides: Any) -> None:
        self.options = options or GatewayOptions()
        for k, v in overrides.items():
            if not hasattr(self.options, k):
                raise TypeError(f"unknown option {k!r}")
            setattr(self.options, k, v)
        self.clock = Clock()
        self.tokens = TokenIssuer(self.clock, self.options.token_lifetime_s)
        self.catalog = catalog if catalog is not None else default_catalog()
        if tapes is None:
            tapes = {MES_M25: default_tape(MES_M25, seed), MES_U25: default_tape(MES_U25, seed, 56.25, 20)}
        self.market = Market(tapes, _ticks(replay_from, DEFAULT_REPLAY_FROM) - 1)
        self.speed, self.autoplay, self.host = speed, autoplay, host
        self.rest_port, self.hub_port = rest_port, hub_port
        self.changes = Changes()
        self.stopping = asyncio.Event()
        # recordings
        self.sent_trades: list[SentTrade] = []
        self.malformed_sent: list[tuple[int, str, bytes]] = []  # (conn id, kind, frame)
        self.connections: list[HubConn] = []
        self.rest_calls: list[RestCall] = []
        self.upgrades: list[tuple[str, int]] = []  # (path with query, HTTP status)
        self.played: list[tuple[str, list[Trade]]] = []  # every batch the market produced, delivered or not
        # fault state
        self.rest_faults: list[RestFault] = []
        self.pending: dict[str, int] = {}  # one-shot message transforms: name -> remaining count
        self.stalled: set[str] = set()
        self.reject_status: list[int] = []
        self.handshake_faults: list[tuple[str, str]] = []
        self.completion_faults: list[tuple[str, str | None, bool]] = []
        self.hub_up = True
        self._late: list[tuple[HubConn, Outgoing]] = []
        self._negotiated: set[str] = set()
        self._conn_ids = 0
        self._tasks: set[asyncio.Task] = set()
        self._replay: asyncio.Task | None = None
        self._rest = RestApi(self)

    # --- lifecycle ---

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def hub_url(self) -> str:
        return f"http://{self.host}:{self.hub_port}/hubs/market"

    def hub_url_with_token(self, token: str) -> str:
        return f"{self.hub_url}?access_token={token}"

    def login(self, user: str = "demo") -> str:
        """A valid token without going through REST (for tests that only exercise the hub)."""
        return self.tokens.issue(user)

    async def start(self) -> FakeGateway:
        self.loop = asyncio.get_running_loop()
        rest_app = web.Application()
        rest_app.router.add_route("*", "/{tail:.*}", self._rest_or_control)
        hub_app = web.Application()
        hub_app.router.add_route("POST", "/hubs/{hub}/negotiate", self._negotiate)
        hub_app.router.add_route("GET", "/hubs/{hub}", self._hub)
        self._runners = {"rest": web.AppRunner(rest_app, shutdown_timeout=0.5, handle_signals=False,
                                         access_log=None),
                         "hub": web.AppRunner(hub_app, shutdown_timeout=0.5, handle_signals=False,
                                         access_log=None)}
        self._sites: dict[str, web.TCPSite] = {}
        for name, runner in self._runners.items():
            await runner.setup()
            await self._listen(name, self.rest_port if name == "rest" else self.hub_port)
        self._spawn(self._housekeeping())
        if self.autoplay:
            self.start_replay(self.speed)
        return self

    async def _listen(self, name: str, port: int) -> None:
        site = web.TCPSite(self._runners[name], self.host, port, reuse_address=True)
        await site.start()
        self._sites[name] = site
        bound = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        if name == "rest":
            self.rest_port = bound
        else:
            self.hub_port = bound

    async def stop(self) -> None:
        self.stopping.set()
        for conn in self.open_connections():
            conn.closed = True
            conn.abort(rst=False)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for runner in self._runners.values():
            await runner.cleanup()

    async def __aenter__(self) -> FakeGateway:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # --- waiting and reading recordings ---

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        return await self.changes.wait_for(predicate, timeout)

    def open_connections(self) -> list[HubConn]:
        return [c for c in self.connections if not c.closed]

    def received_invocations(self, target: str | None = None) -> list[dict]:
        return [r for c in self.connections for r in c.received
                if isinstance(r, dict) and r.get("type") == 1 and (target is None or r.get("target") == target)]

    def delivered_trades(self, conn_id: int | None = None) -> list[Trade]:
        """Distinct tape trades that went out at least once (to ``conn_id``, or to anyone)."""
        seen: dict[tuple[str, int], Trade] = {}
        for s in self.sent_trades:
            if conn_id is None or s.conn_id == conn_id:
                seen.setdefault((s.trade.contract_id, s.trade.index), s.trade)
        return sorted(seen.values(), key=lambda t: (t.ticks, t.contract_id, t.index))

    # --- the replay ---

    async def play(self, batches: int = 1) -> list[Trade]:
        """Play the next ``batches`` batches of the merged tape right now; returns the trades played."""
        out: list[Trade] = []
        for _ in range(batches):
            nxt = self.market.pop()
            if nxt is None:
                break
            self._emit(*nxt)
            out += nxt[1]
        self.changes.notify()
        await asyncio.sleep(0)
        return out

    async def play_until(self, when: str | datetime) -> list[Trade]:
        """Play every batch up to (and including) ``when``."""
        limit = _ticks(when, DEFAULT_REPLAY_FROM)
        out: list[Trade] = []
        while (nxt := self.market.peek()) is not None and nxt[0] <= limit:
            out += await self.play(1)
        return out

    def start_replay(self, speed: float | None = None) -> None:
        """Play continuously at ``speed`` trades per second (``None``: as fast as possible)."""
        self.pause_replay()
        self._replay = self._spawn(self._run_replay(speed))

    def pause_replay(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
            self._replay = None

    async def _run_replay(self, speed: float | None) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while (nxt := self.market.pop()) is not None:
            self._emit(*nxt)
            self.changes.notify()
            if speed:
                due += len(nxt[1]) / speed
                await asyncio.sleep(max(0.0, due - loop.time()))
            else:
                await asyncio.sleep(0)

    def _emit(self, cid: str, trades: list[Trade]) -> None:
        self.played.append((cid, trades))
        self._update_quote(cid, trades)
        if cid in self.stalled:
            return
        conns = [c for c in self.open_connections() if c.handshaken]
        hold = dup_batch = dup_item = reverse = False
        bad_items: list[str] = []
        late: list[tuple[HubConn, Outgoing]] = []
        if any(c.subscribed("trades", cid) for c in conns):  # one-shot faults hit the next batch someone gets
            late, self._late = self._late, []
            hold = self._take("late_batch")
            dup_batch, dup_item = self._take("duplicate_batch"), self._take("duplicate_trade")
            reverse = self._take("reverse_batch")
            bad_items = [k for k in list(self.pending) if k.startswith("bad_item:") and self._take(k)]
        for conn in conns:
            if conn.subscribed("trades", cid):
                batch = [(t, "") for t in trades]
                if reverse:
                    batch.reverse()
                if dup_item:
                    batch.insert(1, (batch[0][0], "dup_item"))
                msgs = [self._trade_message(conn, cid, batch, [k.split(":", 1)[1] for k in bad_items])]
                if dup_batch:
                    msgs.append(self._trade_message(conn, cid, [(t, "dup_batch") for t, _ in batch], []))
                for m in msgs:
                    if hold:
                        self._late.append((conn, m))
                    else:
                        conn.put(m)
            if conn.subscribed("quotes", cid):
                conn.put(Outgoing(self._quote_record(cid, full=False)))
            if conn.subscribed("depth", cid):
                conn.put(Outgoing(self._depth_record(cid, trades[-1], reset=False)))
        for conn, m in late:
            conn.put(m)

    def _take(self, name: str) -> bool:
        left = self.pending.get(name, 0)
        if left <= 0:
            return False
        if left == 1:
            del self.pending[name]
        else:
            self.pending[name] = left - 1
        return True

    def _symbol(self, cid: str) -> str:
        return next((c.symbolId for c in self.catalog if c.id == cid), cid.removeprefix("CON.").rsplit(".", 1)[0])

    def _trade_message(self, conn: HubConn, cid: str, batch: list[tuple[Trade, str]], bad: list[str]) -> Outgoing:
        opts, sym = self.options, self._symbol(cid)
        sent = [SentTrade(conn.id, t, trade_item(t, opts.ts_style, sym), rep) for t, rep in batch]
        items: list[Any] = [s.item for s in sent]
        for kind in bad:
            frame = json.loads(H.malformed_frame(kind, cid, items[0]).decode().rstrip(RS))
            bad_item = frame["arguments"][1][0]
            items.insert(len(items) // 2 + 1, bad_item)
            self.malformed_sent.append((conn.id, kind, json.dumps(bad_item).encode()))
        if opts.null_padding:
            items = [None, *items, None]
        records = [items] if opts.trade_payload == "array" else items
        text = ""
        for payload in records:
            if opts.data_wrapper:
                payload = {"data": payload}
            text += record({"type": 1, "target": "GatewayTrade", "arguments": [cid, payload]})
        return Outgoing(text, sent)

    def _update_quote(self, cid: str, trades: list[Trade]) -> None:
        q = self.market.quotes.setdefault(cid, QuoteState())
        day = trade_date(trades[0].ticks // TICKS)
        if q.trade_date != day:
            q.prev_close = q.last or trades[0].price
            q.trade_date, q.open, q.high, q.low, q.volume = day, trades[0].price, trades[0].price, trades[0].price, 0
        for t in trades:
            q.high, q.low, q.last = max(q.high, t.price), min(q.low, t.price), t.price
            q.volume += t.volume
        q.stamp = format_ticks(trades[-1].ticks, self.options.ts_style)

    def _quote_record(self, cid: str, full: bool) -> str:
        q = self.market.quotes.get(cid)
        sym = self._symbol(cid)
        if q is None:
            return record({"type": 1, "target": "GatewayQuote", "arguments": [cid, {"symbol": sym}]})
        stamp = q.stamp
        body: dict[str, Any] = {"symbol": sym, "lastPrice": q.last, "bestBid": q.last - 0.25, "bestAsk": q.last,
                                "volume": q.volume, "lastUpdated": stamp, "timestamp": stamp}
        if full:
            change = q.last - q.prev_close
            body = {"symbol": sym, "symbolName": "/" + sym.rsplit(".", 1)[-1], **body, "change": change,
                    "changePercent": round(100 * change / q.prev_close, 4) if q.prev_close else 0.0,
                    "open": q.open, "high": q.high, "low": q.low}
        return record({"type": 1, "target": "GatewayQuote", "arguments": [cid, body]})

    def _depth_record(self, cid: str, last: Trade, reset: bool) -> str:
        stamp = format_ticks(last.ticks, self.options.ts_style)
        entries = [{"timestamp": stamp, "type": 6, "price": 0, "volume": 0, "currentVolume": 0}] if reset else []
        size = 10 + last.volume % 40
        entries += [{"timestamp": stamp, "type": 2, "price": last.price - 0.25, "volume": size, "currentVolume": size},
                    {"timestamp": stamp, "type": 1, "price": last.price, "volume": size + 3,
                     "currentVolume": size + 3}]
        return record({"type": 1, "target": "GatewayDepth", "arguments": [cid, entries]})

    # --- HTTP: REST, control, negotiate, hub upgrade ---

    async def _rest_or_control(self, request: web.Request) -> web.StreamResponse:
        if request.path.lower().startswith("/_fake/"):
            return await self._control(request)
        return await self._rest.handle(request)

    async def _control(self, request: web.Request) -> web.Response:
        """``POST /_fake/inject {"fault": "F1" | method name, ...kwargs}``; ``POST /_fake/play {"batches": N}``."""
        body = await request.json() if request.can_read_body else {}
        what = request.path.lower().removeprefix("/_fake/")
        try:
            if what == "inject":
                result = self.inject(body.pop("fault"), **body)
                if asyncio.iscoroutine(result):
                    result = await result
            elif what == "play":
                result = len(await self.play(int(body.get("batches", 1))))
            elif what == "replay":
                speed = body.get("speed")
                self.start_replay(speed) if body.get("run", True) else self.pause_replay()
                result = None
            elif what == "sent":
                result = len(self.sent_trades)
            else:
                return web.json_response({"error": f"unknown control {what!r}"}, status=404)
        except (TypeError, ValueError, KeyError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True, "result": result if isinstance(result, (int, str, type(None))) else
                                  repr(result)})

    def _token_of(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization", "")
        return request.query.get("access_token") or (auth[7:].strip() if auth[:7].lower() == "bearer " else None)

    async def _negotiate(self, request: web.Request) -> web.Response:
        if self.tokens.claims(self._token_of(request)) is None:
            return web.Response(status=401)
        conn_id = secrets.token_urlsafe(16)
        body: dict[str, Any] = {"connectionId": conn_id, "negotiateVersion": 0,
                                "availableTransports": [{"transport": "WebSockets",
                                                         "transferFormats": ["Text", "Binary"]}]}
        if request.query.get("negotiateVersion") == "1":
            token = secrets.token_urlsafe(16)
            body.update(negotiateVersion=1, connectionToken=token)
            self._negotiated.add(token)
        else:
            self._negotiated.add(conn_id)
        return web.json_response(body)

    async def _hub(self, request: web.Request) -> web.StreamResponse:
        where = request.path_qs
        status = 101
        claims = self.tokens.claims(self._token_of(request))
        neg_id = request.query.get("id")
        if self.reject_status:
            status = self.reject_status.pop(0)
        elif claims is None:
            status = 401
        elif (neg_id is not None or self.options.require_negotiate) and neg_id not in self._negotiated:
            status = 404
        self.upgrades.append((where, status))
        self.changes.notify()
        if status != 101:
            return web.Response(status=status)
        assert claims is not None
        ws = web.WebSocketResponse(heartbeat=None, autoping=True, compress=False, max_msg_size=0,
                                   timeout=self.options.ws_close_timeout_s)
        await ws.prepare(request)
        now = self.loop.time()
        self._conn_ids += 1
        conn = HubConn(self._conn_ids, ws, request, claims["exp"], now, user_of(claims), last_sent=now,
                       last_received=now)
        self.connections.append(conn)
        conn.writer = self._spawn(self._writer(conn))
        self.changes.notify()
        buffer = ""
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    continue
                conn.last_received = self.loop.time()
                data = msg.data if msg.type == WSMsgType.TEXT else msg.data.decode("utf-8", "replace")
                buffer += data
                *records, buffer = buffer.split(RS)
                for text in records:
                    self._on_record(conn, text)
                self.changes.notify()
        finally:
            conn.closed = True
            conn.close_reason = conn.close_reason or f"client gone ({ws.close_code})"
            if conn.writer is not None:
                conn.writer.cancel()
            self.changes.notify()
        return ws

    async def _writer(self, conn: HubConn) -> None:
        try:
            while True:
                item = await conn.outbox.get()
                if conn.half_open and item.action is None:
                    continue
                await H.write_one(conn, item)
                conn.last_sent = self.loop.time()
                self.sent_trades += item.trades
                self.changes.notify()
                if item.action is not None:
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the socket died under us; the reader side cleans up
            conn.closed = True
            conn.close_reason = conn.close_reason or f"send failed: {exc!r}"
            self.changes.notify()

    def _on_record(self, conn: HubConn, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            conn.received.append(text)
            err = {"error": "Connection closed with an error."} if not conn.handshaken else \
                {"type": 7, "error": "Connection closed with an error. InvalidDataException: invalid JSON."}
            conn.put(Outgoing(record(err)))
            conn.put(Outgoing(action="close"))
            return
        conn.received.append(msg)
        if not conn.handshaken:
            self._handshake(conn, msg)
            return
        if not isinstance(msg, dict):
            return
        kind = msg.get("type")
        if kind == 1:
            self._invocation(conn, msg)
        elif kind == 7:
            conn.put(Outgoing(action="close"))

    def _handshake(self, conn: HubConn, msg: Any) -> None:
        if conn.handshake_silent:
            return
        error = None
        if not isinstance(msg, dict) or msg.get("protocol") != "json":
            proto = msg.get("protocol") if isinstance(msg, dict) else None
            error = f"Requested protocol '{proto}' is not available."
        elif not isinstance(msg.get("version"), int) or msg["version"] > 1:
            error = f"The server does not support version {msg.get('version')} of the 'json' protocol."
        if error is None and self.handshake_faults:
            mode, fault_error = self.handshake_faults.pop(0)
            if mode == "silent":
                conn.handshake_silent = True
                return
            error = fault_error
        if error is not None:
            conn.put(Outgoing(record({"error": error})))
            conn.put(Outgoing(action="close"))
            return
        conn.handshaken = True
        conn.put(Outgoing("{}" + RS + (record({"type": 6}) if self.options.coalesce_handshake else "")))

    def _invocation(self, conn: HubConn, msg: dict) -> None:
        target, inv_id, args = msg.get("target"), msg.get("invocationId"), msg.get("arguments")
        method = H.METHODS.get(target.lower()) if isinstance(target, str) else None
        fault = next((f for f in self.completion_faults if f[1] is None or f[1] == target), None)
        if fault is not None:
            self.completion_faults.remove(fault)
            mode, _, apply = fault
            if mode == "never":
                if apply and method is not None:
                    self._subscribe(conn, method, args)
                return
            error = {"binding": H.BINDING_ERROR, "unknown": H.UNKNOWN_METHOD,
                     "exception": H.HUB_EXCEPTION}[mode].format(target)
        elif method is None:
            error = (H.UNKNOWN_METHOD_NEW if self.options.new_unknown_method_wording else H.UNKNOWN_METHOD).format(
                target)
        elif not (isinstance(args, list) and len(args) == 1 and isinstance(args[0], str)):
            error = H.BINDING_ERROR.format(method[2])
        else:
            error = None
        if inv_id is not None:
            reply: dict[str, Any] = {"type": 3, "invocationId": inv_id}
            if error is not None:
                reply["error"] = error
            elif self.options.completion_result:
                reply["result"] = None
            conn.put(Outgoing(record(reply)))
        if error is None and method is not None:
            self._subscribe(conn, method, args)

    def _subscribe(self, conn: HubConn, method: tuple[str, str, str], args: Any) -> None:
        verb, channel, _ = method
        cid = args[0]
        if verb == "unsubscribe":
            conn.subscriptions.discard((channel, cid))
            return
        fresh = (channel, cid) not in conn.subscriptions
        conn.subscriptions.add((channel, cid))
        if channel == "trades" and self.options.replay_on_subscribe and cid not in self.stalled:
            recent = self.market.recent(cid, self.options.replay_on_subscribe)
            if recent:
                conn.put(self._trade_message(conn, cid, [(t, "replay") for t in recent], []))
        elif channel == "quotes" and fresh and self.options.quote_snapshot and cid in self.market.quotes:
            conn.put(Outgoing(self._quote_record(cid, full=True)))
        elif channel == "depth" and fresh:
            last = self.market.recent(cid, 1)
            if last:
                conn.put(Outgoing(self._depth_record(cid, last[0], reset=True)))

    async def _housekeeping(self) -> None:
        opts = self.options
        while True:
            await asyncio.sleep(opts.tick_s)
            now = self.loop.time()
            for conn in self.open_connections():
                if conn.half_open:
                    continue
                if not conn.handshaken:
                    if now - conn.opened >= opts.handshake_timeout_s:
                        conn.close_reason = "handshake timeout"
                        conn.put(Outgoing(action="close"))
                    continue
                if opts.close_on_token_expiry and self.clock.now() >= conn.token_exp:
                    conn.close_reason = "token expired"
                    self.signalr_close("Authentication expired.", allow_reconnect=None, conn=conn.id)
                elif opts.client_timeout_s and now - conn.last_received >= opts.client_timeout_s:
                    conn.close_reason = "client timeout"
                    self.signalr_close("Server timeout elapsed without receiving a message from the client.",
                                       allow_reconnect=None, conn=conn.id)
                elif conn.outbox.empty() and now - conn.last_sent >= opts.ping_interval_s:
                    conn.last_sent = now
                    conn.put(Outgoing(record({"type": 6})))

    # --- faults (F1..F18); ``conn`` selects one connection id, ``None`` means every open connection ---

    def _conns(self, conn: int | None) -> list[HubConn]:
        return [c for c in self.open_connections() if conn is None or c.id == conn]

    def reset(self, conn: int | None = None, rst: bool = True) -> None:
        """F1: drop TCP without a close frame, after what is already queued (RST, or FIN with ``rst=False``)."""
        for c in self._conns(conn):
            c.put(Outgoing(action="rst" if rst else "fin"))

    def ws_close(self, code: int = 1000, conn: int | None = None) -> None:
        """F2: WebSocket close frame (1000, 1001, 1011 …) without a SignalR Close."""
        for c in self._conns(conn):
            c.put(Outgoing(action="close", code=code))

    def signalr_close(self, error: str | None = "Server closed the connection.", allow_reconnect: bool | None = True,
                      conn: int | None = None) -> None:
        """F3: ``{"type":7,...}`` (``allow_reconnect=None`` omits the flag), then a WebSocket close."""
        body: dict[str, Any] = {"type": 7}
        if error is not None:
            body["error"] = error
        if allow_reconnect is not None:
            body["allowReconnect"] = allow_reconnect
        for c in self._conns(conn):
            c.put(Outgoing(record(body)))
            c.put(Outgoing(action="close"))

    async def outage(self, seconds: float, target: str = "hub") -> None:
        """F4: refuse TCP on the hub (or ``rest``/``both``) port for ``seconds``; open hub connections are reset.

        Returns once the port is closed; it reopens by itself (``gw.hub_up`` turns true again)."""
        names = ["rest", "hub"] if target == "both" else [target]
        for name in names:
            await self._sites.pop(name).stop()
        if "hub" in names:
            self.hub_up = False
            for c in self.open_connections():
                c.closed, c.close_reason = True, "outage"
                c.abort(rst=True)
        self.changes.notify()
        self._spawn(self._reopen(names, seconds))

    async def _reopen(self, names: list[str], seconds: float) -> None:
        await asyncio.sleep(seconds)
        for name in names:
            await self._listen(name, self.rest_port if name == "rest" else self.hub_port)
        self.hub_up = True
        self.changes.notify()

    def reject_upgrades(self, count: int = 1, status: int = 401) -> None:
        """F5: answer the next ``count`` hub upgrades with ``status`` (401 as for an expired/invalid token)."""
        self.reject_status += [status] * count

    def handshake_fault(self, mode: str = "error", count: int = 1,
                        error: str = "Handshake was canceled.") -> None:
        """F6: ``mode="error"`` replies ``{"error":...}`` and closes; ``"silent"`` never answers the handshake."""
        if mode not in ("error", "silent"):
            raise ValueError("mode is 'error' or 'silent'")
        self.handshake_faults += [(mode, error)] * count

    def half_open(self, conn: int | None = None) -> None:
        """F7: keep the socket up but send nothing at all (no data, no pings)."""
        for c in self._conns(conn):
            c.half_open = True

    def stall(self, contract_id: str = MES_M25, on: bool = True) -> None:
        """F8: stop delivering data for one contract (the market moves on, REST stays fresh, pings continue)."""
        (self.stalled.add if on else self.stalled.discard)(contract_id)

    def duplicate_trade(self, count: int = 1) -> None:
        """F9: the next ``count`` trade batches carry their first trade twice."""
        self.pending["duplicate_trade"] = self.pending.get("duplicate_trade", 0) + count

    def duplicate_batch(self, count: int = 1) -> None:
        """F9: the next ``count`` trade batches are sent twice."""
        self.pending["duplicate_batch"] = self.pending.get("duplicate_batch", 0) + count

    def replay_on_subscribe(self, trades: int = 10) -> None:
        """F9: every SubscribeContractTrades first gets the last ``trades`` trades again (0 turns it off)."""
        self.options.replay_on_subscribe = trades

    def reverse_batch(self, count: int = 1) -> None:
        """F10: timestamps decrease within the next ``count`` batches."""
        self.pending["reverse_batch"] = self.pending.get("reverse_batch", 0) + count

    def late_batch(self, count: int = 1) -> None:
        """F10: hold the next batch back and send it after the following one (older than its predecessor)."""
        self.pending["late_batch"] = self.pending.get("late_batch", 0) + count

    def malformed(self, kind: str, conn: int | None = None, contract_id: str = MES_M25) -> None:
        """F11: send one malformed frame now (kinds: :data:`hub.MALFORMED_KINDS`), to trade subscribers."""
        sample_trade = self.market.recent(contract_id, 1) or self.market.tapes[contract_id].trades[:1]
        sample = trade_item(sample_trade[0], self.options.ts_style, self._symbol(contract_id))
        frame = H.malformed_frame(kind, contract_id, sample)
        for c in self._conns(conn):
            if c.handshaken:
                self.malformed_sent.append((c.id, kind, frame))
                c.put(Outgoing(raw=frame))

    def corrupt_next_batch(self, kind: str = "trade_missing_field", count: int = 1) -> None:
        """F11: slip one bad trade item (``trade_*``/``unknown_trade_type``/``ts_garbage``) into the next batch."""
        if not (kind.startswith("trade_") or kind in ("unknown_trade_type", "ts_garbage")):
            raise ValueError(f"{kind!r} is not an item-level kind")
        self.pending["bad_item:" + kind] = self.pending.get("bad_item:" + kind, 0) + count

    def trade_format(self, **changes: Any) -> None:
        """F11 (well-formed variants): ``ts_style``, ``trade_payload``, ``null_padding``, ``data_wrapper``."""
        for k, v in changes.items():
            if k not in ("ts_style", "trade_payload", "null_padding", "data_wrapper"):
                raise TypeError(f"unknown trade format option {k!r}")
            setattr(self.options, k, v)

    def flood(self, rate: float = 5000.0, seconds: float = 30.0, contract_id: str = MES_M25,
              to_all: bool = False) -> asyncio.Task:
        """F12: ``rate`` quote+depth records per second for ``seconds`` to quote/depth subscribers (``to_all``:
        every connection); the trade replay keeps going. Returns the task (its result is the records sent)."""
        return self._spawn(self._flood(rate, seconds, contract_id, to_all))

    async def _flood(self, rate: float, seconds: float, cid: str, to_all: bool) -> int:
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while (elapsed := loop.time() - start) < seconds:
            due = int(elapsed * rate) + 1 - sent
            for _ in range(max(due, 0)):
                last = (self.market.recent(cid, 1) or self.market.tapes[cid].trades[:1])[0]
                quote, depth = self._quote_record(cid, False), self._depth_record(cid, last, False)
                for c in self.open_connections():
                    if c.handshaken and cid not in self.stalled:
                        if to_all or c.subscribed("quotes", cid):
                            c.put(Outgoing(quote))
                        if to_all or c.subscribed("depth", cid):
                            c.put(Outgoing(depth))
                sent += 1
            await asyncio.sleep(0.005)
        return sent

    def ws_ping(self, payload: bytes = b"ping", conn: int | None = None) -> None:
        """F13: a WebSocket-level ping control frame (``b""`` for an empty one)."""
        for c in self._conns(conn):
            c.put(Outgoing(ping=payload))

    def expire_tokens(self) -> None:
        """F14: move the clock past every token's ``exp`` (with ``close_on_token_expiry``, connections close)."""
        self.clock.advance(self.options.token_lifetime_s + 1)

    def logout(self, conn: int | None = None, close: bool = True, arguments: list | None = None) -> None:
        """F15: a ``GatewayLogout`` invocation, then (by default) a WebSocket close."""
        for c in self._conns(conn):
            c.put(Outgoing(record({"type": 1, "target": "GatewayLogout", "arguments": arguments or []})))
            if close:
                c.put(Outgoing(action="close"))

    def completion_fault(self, mode: str = "binding", count: int = 1, method: str | None = None,
                         apply: bool = False) -> None:
        """F16: the next ``count`` invocations (of ``method``, or any) get an error Completion: ``binding``,
        ``unknown`` or ``exception`` wording; ``never`` sends no Completion (``apply``: subscribe anyway)."""
        if mode not in ("binding", "unknown", "exception", "never"):
            raise ValueError("mode is binding, unknown, exception or never")
        self.completion_faults += [(mode, method, apply)] * count

    def roll(self, old: str = MES_M25, new: str = MES_U25) -> None:
        """F17: ``new`` becomes the active contract and ``old`` stops trading at the current market time."""
        for c in self.catalog:
            if c.id == old:
                c.activeContract = False
            if c.id == new:
                c.activeContract = True
        self.market.halted[old] = self.market.now_ticks

    def rest_fault(self, kind: str, endpoint: str = "History/retrieveBars", count: int = 1, **kw: Any) -> None:
        """F18: the next ``count`` calls to ``endpoint`` (``*`` = any) misbehave; kinds: :data:`REST_FAULT_KINDS`."""
        if kind not in REST_FAULT_KINDS:
            raise ValueError(f"unknown REST fault {kind!r}; one of {REST_FAULT_KINDS}")
        self.rest_faults.append(RestFault(kind, endpoint.lower().strip("/").removeprefix("api/"), count, **kw))

    def take_rest_fault(self, endpoint: str) -> RestFault | None:
        for f in self.rest_faults:
            if f.endpoint in (endpoint, "*"):
                f.count -= 1
                if f.count <= 0:
                    self.rest_faults.remove(f)
                return f
        return None

    def inject(self, fault: str, **kw: Any) -> Any:
        """Apply a fault by catalogue id (``"F1"``…``"F18"``) or method name, e.g. ``inject("F2", code=1011)``."""
        name = FAULTS.get(fault.upper(), fault)
        if name not in FAULT_METHODS:
            raise ValueError(f"unknown fault {fault!r}")
        return getattr(self, name)(**kw)


FAULTS = {"F1": "reset", "F2": "ws_close", "F3": "signalr_close", "F4": "outage", "F5": "reject_upgrades",
          "F6": "handshake_fault", "F7": "half_open", "F8": "stall", "F9": "duplicate_batch",
          "F10": "late_batch", "F11": "malformed", "F12": "flood", "F13": "ws_ping", "F14": "expire_tokens",
          "F15": "logout", "F16": "completion_fault", "F17": "roll", "F18": "rest_fault"}
FAULT_METHODS = set(FAULTS.values()) | {"duplicate_trade", "replay_on_subscribe", "reverse_batch",
                                        "corrupt_next_batch", "trade_format"}


class BackgroundGateway:
    """A :class:`FakeGateway` on its own event loop in a daemon thread, for synchronous callers.

    ``with BackgroundGateway(speed=None) as gw:`` — attributes read through to the gateway; methods run on
    its loop (coroutines are awaited) and return their result; ``gw.wait_for(pred, timeout)`` blocks.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-gateway", daemon=True)
        self.gw: FakeGateway | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.gw = FakeGateway(**self._kwargs)
            self.loop.run_until_complete(self.gw.start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.gw.stop())
        self.loop.close()

    def start(self) -> BackgroundGateway:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def __enter__(self) -> BackgroundGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the gateway's loop and return its (awaited) result."""
        async def run() -> Any:
            result = fn(*args, **kwargs)
            return await result if asyncio.iscoroutine(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        assert self.gw is not None
        return self.gw.changes.wait_for_sync(predicate, timeout)

    def __getattr__(self, name: str) -> Any:
        gw = self.__dict__.get("gw")
        if gw is None:
            raise AttributeError(name)
        value = getattr(gw, name)
        if callable(value) and not isinstance(value, type):
            return lambda *a, **k: self.call(value, *a, **k)
        return value
