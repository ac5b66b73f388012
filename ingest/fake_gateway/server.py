"""``FakeGateway``: REST + market hub on 127.0.0.1, a replayed tick tape, fault injection and recordings."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
from datetime import datetime
from typing import Any, Callable

from aiohttp import WSMsgType, web

from ingest.fake_gateway import hub as H
from ingest.fake_gateway.bars import trade_date
from ingest.fake_gateway.catalog import MES_M25, MES_U25, Contract, default_catalog
from ingest.fake_gateway.faults import Faults
from ingest.fake_gateway.hub import RS, HubConn, Outgoing, SentTrade, record, trade_item
from ingest.fake_gateway.market import Market, QuoteState
from ingest.fake_gateway.options import GatewayOptions
from ingest.fake_gateway.rest import RestApi, RestCall, RestFault
from ingest.fake_gateway.tape import TICKS, Tape, Trade, default_tape, format_ticks
from ingest.fake_gateway.tokens import Clock, TokenIssuer, user_of

log = logging.getLogger(__name__)
DEFAULT_REPLAY_FROM = "2025-05-13T13:30:00+00:00"


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


class FakeGateway(Faults):
    """A local ProjectX Gateway. ``async with FakeGateway() as gw:`` then use ``gw.rest_url`` / ``gw.hub_url``.

    The tape is replayed from ``replay_from``: everything before it is history (REST), everything after
    is played live, either by :meth:`play` (N batches now) or :meth:`start_replay` (``speed`` trades/s,
    ``None`` = as fast as possible). Faults are methods (see :data:`FAULTS`); recordings are
    ``sent_trades``, ``connections`` (each with ``sent``/``received``), ``rest_calls`` and ``upgrades``.
    """

    def __init__(self, options: GatewayOptions | None = None, *, tapes: dict[str, Tape] | None = None,
                 catalog: list[Contract] | None = None, replay_from: str | datetime | None = None,
                 speed: float | None = None, time_scale: float | None = None, autoplay: bool = False,
                 seed: int = 0, host: str = "127.0.0.1",
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
        self.speed, self.time_scale, self.autoplay, self.host = speed, time_scale, autoplay, host
        self.rest_port, self.hub_port = rest_port, hub_port
        self.changes = Changes()
        self.stopping = asyncio.Event()
        # recordings
        self.sent_trades: list[SentTrade] = []
        self.malformed_sent: list[tuple[int, str, bytes]] = []  # (conn id, kind, frame)
        self.connections: list[HubConn] = []
        self.rest_calls: list[RestCall] = []
        self.upgrades: list[tuple[str, int]] = []  # (path with query, HTTP status)
        self.rolled: list[tuple[str, str, int]] = []  # (old, new, market ticks) of every roll so far
        self.played: list[tuple[str, list[Trade]]] = []  # every batch the market produced, delivered or not
        # fault state
        self.rest_faults: list[RestFault] = []
        self.scheduled: list[tuple[str, int, str, dict]] = []  # (kind, trigger, fault, kwargs)
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
        for old, new, at in self.options.rolls:
            self.schedule("roll", at=at, old=old, new=new, halt=False)

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
        hub_app.router.add_route("POST", "/hubs/{hub:market|user}/negotiate", self._negotiate)
        hub_app.router.add_route("GET", "/hubs/{hub:market|user}", self._hub)
        self._runners = {name: web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False, access_log=None)
                         for name, app in (("rest", rest_app), ("hub", hub_app))}
        self._sites: dict[str, web.TCPSite] = {}
        for name, runner in self._runners.items():
            await runner.setup()
            await self._listen(name, self.rest_port if name == "rest" else self.hub_port)
        self._spawn(self._housekeeping())
        if self.autoplay:
            self.start_replay(self.speed, self.time_scale)
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
            self._after_batch()
            out += nxt[1]
        await asyncio.sleep(0)
        return out

    async def play_until(self, when: str | datetime) -> list[Trade]:
        """Play every batch up to (and including) ``when``."""
        limit = _ticks(when, DEFAULT_REPLAY_FROM)
        out: list[Trade] = []
        while (nxt := self.market.peek()) is not None and nxt[0] <= limit:
            out += await self.play(1)
        return out

    def start_replay(self, speed: float | None = None, time_scale: float | None = None) -> None:
        """Play continuously: ``speed`` trades per second, or ``time_scale`` market seconds per wall second
        (closed markets then stay silent but for pings); neither means as fast as possible."""
        self.pause_replay()
        self._replay = self._spawn(self._run_replay(speed, time_scale))

    def pause_replay(self) -> None:
        if self._replay is not None:
            self._replay.cancel()
            self._replay = None

    async def _run_replay(self, speed: float | None, time_scale: float | None) -> None:
        loop = asyncio.get_running_loop()
        due, origin = loop.time(), self.market.now_ticks
        while (nxt := self.market.peek()) is not None:
            if time_scale:
                due = max(due, loop.time() - 1.0)  # don't burst after a stall of the loop
                await asyncio.sleep(max(0.0, due + (nxt[0] - origin) / TICKS / time_scale - loop.time()))
                due, origin = due + (nxt[0] - origin) / TICKS / time_scale, nxt[0]
            popped = self.market.pop()
            assert popped is not None
            self._emit(*popped)
            self._after_batch()
            if speed and not time_scale:
                due += len(popped[1]) / speed
                await asyncio.sleep(max(0.0, due - loop.time()))
            elif not time_scale:
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

    def _after_batch(self) -> None:
        if self.scheduled:
            self._fire_scheduled()
        self.changes.notify()

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
                if isinstance(body.get("payload"), str):
                    body["payload"] = body["payload"].encode()
                result = self.inject(body.pop("fault"), **body)
                if asyncio.iscoroutine(result):
                    result = await result
            elif what == "play":
                result = len(await self.play(int(body.get("batches", 1))))
            elif what == "replay":
                if body.get("run", True):
                    self.start_replay(body.get("speed"), body.get("time_scale"))
                else:
                    self.pause_replay()
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
        ws = web.WebSocketResponse(heartbeat=None, autoping=False, compress=False, max_msg_size=0,
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
                if msg.type == WSMsgType.PING:
                    await ws.pong(msg.data)
                    continue
                if msg.type == WSMsgType.PONG:
                    conn.pongs.append(msg.data)
                    self.changes.notify()
                    continue
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
