"""The market-hub feed: one ``signalrcore`` connection at a time, supervised by us.

signalrcore 1.0.x cannot be trusted to recover on its own (it hangs after an outage, storms on
handshake errors, dies on WebSocket pings, never resubscribes), so its automatic reconnect stays
off and this supervisor owns the life cycle: a fresh token and URL for every connection, a
handshake timeout, resubscription of every contract on every connection, a server-silence
timeout, a per-contract staleness watchdog during trading hours, exponential backoff with jitter
and a cap, a keep-alive ping every ``keep_alive_s`` (signalrcore only pings when its own reconnect
is configured; a silent client is closed by the server after 30 s), and a teardown that cannot
hang. WebSocket control frames are answered below the hub protocol (:mod:`ingest.hub_socket`).
Messages hop off signalrcore's receive thread at once (``call_soon_threadsafe``, one wake-up per
burst); nothing else happens on that thread. A frame over ``max_message_bytes`` is dropped before
it is parsed and the connection is rebuilt, so what it carried lies inside a recorded gap. A
failure to get a token (login refused, REST down) is a failed attempt like any other: logged,
counted, retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.protocol.json_hub_protocol import JsonHubProtocol
from signalrcore.types import RECORD_SEPARATOR

from ingest import hub_socket
from ingest.metrics import Metrics
from ingest.retry import Backoff
from ingest.waiting import first_set

log = logging.getLogger(__name__)
hub_socket.install()

# ([(GatewayTrade arguments, receive time)], connection number), on the loop
TradeSink = Callable[[list[tuple[Any, float]], int], None]


class Unauthorized(ConnectionError):
    """The hub refused the token (HTTP 401 on the upgrade)."""


@dataclass(frozen=True)
class FeedSettings:
    handshake_timeout_s: float = 15.0
    subscribe_timeout_s: float = 10.0
    server_silence_s: float = 45.0
    stale_feed_s: float = 120.0
    backoff_initial_s: float = 1.0
    backoff_max_s: float = 60.0
    healthy_after_s: float = 30.0  # a connection that lasted this long resets the backoff
    check_every_s: float = 0.25
    keep_alive_s: float = 10.0  # a SignalR ping this often; 0 = none (the server then drops us)
    max_message_bytes: int = 16 * 1024 * 1024


def _loads(record: str) -> Any:
    """One JSON record, parsed by orjson in half the time of ``json``, to the same values except integers past
    64 bits (floats: a trade carrying one is refused either way). What orjson refuses (``NaN``, broken text)
    goes to ``json``, which takes or refuses it as before."""
    try:
        return orjson.loads(record)
    except orjson.JSONDecodeError:
        return json.loads(record)


class _SizeLimitedProtocol(JsonHubProtocol):
    """JSON hub protocol that refuses frames over a size before parsing them (parsed, 100 MB is 1 GB)."""

    def __init__(self, max_bytes: int, on_oversize: Callable[[int, str], None]) -> None:
        super().__init__()
        self.max_bytes, self.on_oversize = max_bytes, on_oversize

    def parse_messages(self, raw: str) -> list:  # receive thread
        """signalrcore's own, with :func:`_loads` for ``json.loads``."""
        if len(raw) > self.max_bytes:
            self.on_oversize(len(raw), raw[:300])
            return []
        messages = []
        for record in raw.split(RECORD_SEPARATOR):
            if record and len((message := _loads(record)).keys()) > 0:
                messages.append(self.get_message(message))
        return messages


class _Handoff:
    """Carries trade messages from signalrcore's thread to the loop, in order, waking the loop once
    per burst instead of once per message (each wake-up is a system call and a loop turn). A backlog is
    handed on ``CHUNK`` messages at a time for at most ``TURN_S`` a loop turn, then the loop runs the
    writer's database I/O before the rest: parsed in one go, it would stall the COPY under way."""

    CHUNK = 10
    TURN_S = 0.002

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: TradeSink, connection: int) -> None:
        self.loop, self.sink, self.connection = loop, sink, connection
        self.pending: list[tuple[Any, float]] = []
        self.lock = threading.Lock()

    def put(self, arguments: Any) -> None:  # receive thread
        with self.lock:
            self.pending.append((arguments, time.time()))
            if len(self.pending) > 1:
                return  # a drain is already on its way, queued before anything that follows
        self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:  # event loop
        turn_ends = time.monotonic() + self.TURN_S
        while True:
            with self.lock:
                burst, self.pending = self.pending[:self.CHUNK], self.pending[self.CHUNK:]
                more = bool(self.pending)  # while any are pending, ``put`` schedules no drain: we carry on
            if burst:  # empty after a flush
                self.sink(burst, self.connection)
            if not more:
                return
            if time.monotonic() > turn_ends:
                self.loop.call_soon(self._drain)
                return

    def flush(self) -> None:  # event loop
        """Hands on all that is pending now. The connection has ended: its trades must reach the sink before
        the disconnect is handled (gaps open at the last trade seen) and before the next connection's
        trades (identical prints are numbered per connection, in arrival order)."""
        with self.lock:
            burst, self.pending = self.pending, []
        if burst:
            self.sink(burst, self.connection)


class _Connection:
    """One signalrcore connection and what its callbacks tell us, made safe for the event loop."""

    def __init__(self, url: str, loop: asyncio.AbstractEventLoop, on_trade: TradeSink, number: int,
                 max_message_bytes: int) -> None:
        self.loop = loop
        self.oversize: tuple[int, str] | None = None  # (size, head) of a refused frame
        self.opened = asyncio.Event()
        self.closed = asyncio.Event()
        self.last_activity = time.monotonic()
        self.errors: list[str] = []
        self.completions: dict[str, asyncio.Future[str | None]] = {}
        self.subscribed: set[str] = set()  # contracts whose SubscribeContractTrades completed
        self.hub = (
            HubConnectionBuilder()
            .with_url(url, options={"skip_negotiation": True})
            .with_hub_protocol(_SizeLimitedProtocol(max_message_bytes, self._refused_from_thread))
            .build()  # no configure_logging: its records go through our redacting handler
        )
        raw_on_message = self.hub.on_message

        def on_message(messages: list) -> None:  # receive thread
            self.last_activity = time.monotonic()
            raw_on_message(messages)

        self.hub.on_message = on_message  # type: ignore[method-assign]
        self.hub.on_open(lambda: loop.call_soon_threadsafe(self.opened.set))
        self.hub.on_close(lambda: loop.call_soon_threadsafe(self.closed.set))
        self.hub.on_error(lambda err: loop.call_soon_threadsafe(self._error, err))
        self.handoff = _Handoff(loop, on_trade, number)
        self.hub.on("GatewayTrade", self.handoff.put)

    def _refused_from_thread(self, size: int, head: str) -> None:  # receive thread
        def refused() -> None:
            self.oversize = (size, head)
            self.closed.set()
        self.loop.call_soon_threadsafe(refused)

    def _error(self, err: Any) -> None:
        invocation = getattr(err, "invocation_id", None)
        text = getattr(err, "error", None) or str(err)
        if invocation in self.completions and not self.completions[invocation].done():
            self.completions[invocation].set_result(text)
        else:
            self.errors.append(text)
            self.closed.set()

    async def start(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(asyncio.to_thread(self.hub.start), timeout)
        except Exception as exc:
            if "401" in str(exc):
                raise Unauthorized("hub refused the session token (401)") from None
            raise
        await asyncio.wait_for(self.opened.wait(), timeout)  # the SignalR handshake reply

    async def invoke(self, method: str, arguments: list, timeout: float) -> None:
        """A blocking hub invocation; raises on a Completion error or when none comes."""
        done: asyncio.Future[str | None] = self.loop.create_future()

        def completed(_message: Any) -> None:  # receive thread
            self.loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

        invocation_id = str(uuid.uuid4())
        self.completions[invocation_id] = done
        await asyncio.to_thread(self.hub.invoke, method, arguments, completed, invocation_id)
        error = await asyncio.wait_for(done, timeout)
        if error:
            raise RuntimeError(f"{method}({arguments[0]}) failed: {error}")

    async def ping(self) -> None:
        """One SignalR ping record; raises when the socket is gone."""
        await asyncio.to_thread(self.hub.transport.send, hub_socket.PING_RECORD)

    async def keep_alive(self, every_s: float, metrics: Metrics) -> None:
        """Ping every ``every_s`` seconds until cancelled; a failed send ends the connection."""
        while not self.closed.is_set():
            await asyncio.sleep(every_s)
            try:
                await asyncio.wait_for(self.ping(), every_s)
            except Exception as exc:  # noqa: BLE001 - signalrcore raises ValueError/OSError/bare Exception
                self.errors.append(f"keep-alive ping failed: {exc or type(exc).__name__}")
                self.closed.set()
                return
            metrics.inc("hub_pings_sent_total")

    async def close(self) -> None:
        """Tear down without trusting signalrcore: shut the socket so its receive thread wakes."""
        client = getattr(getattr(self.hub, "transport", None), "_client", None)
        sock = getattr(client, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        stopping = asyncio.create_task(asyncio.to_thread(self._stop_quietly))
        await asyncio.wait({stopping}, timeout=2.0)  # a hung stop() is abandoned (daemon thread)

    def _stop_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self.hub.stop()


class HubFeed:
    """Keeps a subscription to every contract alive until ``stop`` is set."""

    def __init__(
        self,
        hub_url: str,
        token: Callable[[], Awaitable[str]],
        invalidate_token: Callable[[], None],
        contracts: Iterable[str],
        on_trade: TradeSink,
        metrics: Metrics,
        settings: FeedSettings = FeedSettings(),
        *,
        market_open: Callable[[], bool] = lambda: True,
        on_connected: Callable[[], Awaitable[None]] | None = None,
        on_disconnected: Callable[[str], Awaitable[None]] | None = None,
        on_rejected: Callable[[str, str], None] | None = None,
    ) -> None:
        self.hub_url, self.token, self.invalidate_token = hub_url, token, invalidate_token
        self.contracts = tuple(contracts)
        self.watched = frozenset(self.contracts)  # contracts judged by the staleness watchdog
        self.watched_since: dict[str, float] = {}  # when a contract joined mid-connection
        self._live: _Connection | None = None  # the connection in supervision, if any
        self.on_trade, self.metrics, self.settings = on_trade, metrics, settings
        self.market_open = market_open
        self.on_connected, self.on_disconnected, self.on_rejected = on_connected, on_disconnected, on_rejected
        self.last_trade: dict[str, float] = {}
        self.connected = False
        self.connection_number = 0
        self.last_failure = ""
        for name, kind, text in (
            ("hub_connects_total", "counter", "hub connections established"),
            ("hub_reconnects_total", "counter", "connections torn down and rebuilt, by reason"),
            ("hub_connect_failures_total", "counter", "failed connection attempts, by reason"),
            ("hub_connected", "gauge", "1 while subscribed to the hub"),
            ("hub_pings_sent_total", "counter", "keep-alive pings sent to the hub"),
            ("hub_messages_too_large_total", "counter", "frames over ingest.max_message_bytes, dropped unparsed"),
        ):
            metrics.describe(name, kind, text)
        metrics.set("hub_connected", 0)

    def trade_seen(self, contract_id: str) -> None:
        """Called by the owner for every trade it accepted (feeds the staleness watchdog)."""
        self.last_trade[contract_id] = time.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        backoff, failures = Backoff(self.settings.backoff_initial_s, self.settings.backoff_max_s), 0
        while not stop.is_set():
            started = time.monotonic()
            reason = await self._one_connection(stop)
            if stop.is_set():
                break
            lasted = time.monotonic() - started
            failures = 0 if lasted >= self.settings.healthy_after_s else failures + 1
            delay = backoff.delay(max(failures, 1))
            log.info("hub connection ended (%s); reconnecting in %.1f s", reason, delay)
            await first_set(stop, timeout=delay)

    async def _one_connection(self, stop: asyncio.Event) -> str:
        try:
            token = await self.token()
        except Exception as exc:  # login refused, REST down, a malformed reply: retried like any failure
            log.warning("no session token for the hub: %s", exc)
            return self._failed("token", exc)
        self.connection_number += 1
        conn = _Connection(f"{self.hub_url}?access_token={token}", asyncio.get_running_loop(), self.on_trade,
                           self.connection_number, self.settings.max_message_bytes)
        pinger: asyncio.Task | None = None
        try:
            try:
                await conn.start(self.settings.handshake_timeout_s)
                if self.settings.keep_alive_s > 0:
                    pinger = asyncio.create_task(conn.keep_alive(self.settings.keep_alive_s, self.metrics))
                while missing := [c for c in self.contracts if c not in conn.subscribed]:  # it may change meanwhile
                    await conn.invoke("SubscribeContractTrades", missing[:1], self.settings.subscribe_timeout_s)
                    conn.subscribed.add(missing[0])
            except Unauthorized as exc:
                self.invalidate_token()
                return self._failed("unauthorized", exc)
            except TimeoutError as exc:
                return self._failed("timeout", exc)
            except Exception as exc:  # signalrcore raises bare Exceptions of several kinds
                log.warning("hub connection failed: %s", exc)
                return self._failed(type(exc).__name__, exc)
            self._live = conn
            return await self._supervise(conn, stop)
        finally:
            self._live = None
            if pinger is not None:
                pinger.cancel()
            await conn.close()
            conn.handoff.flush()  # its receive thread has stopped: what it handed over comes first
            if self.connected:
                self.connected = False
                self.metrics.set("hub_connected", 0)

    def _failed(self, reason: str, exc: BaseException) -> str:
        self.metrics.inc("hub_connect_failures_total", reason=reason)
        self.last_failure = f"{reason}: {exc}"[:300]
        return f"connect failed: {reason}"

    async def set_contracts(self, contracts: Iterable[str], watched: Iterable[str]) -> None:
        """Stream ``contracts`` from now on (watching ``watched`` for staleness): subscribes and unsubscribes on
        the live connection, or ends it if that fails (the next one subscribes everything)."""
        self.contracts, self.watched = tuple(contracts), frozenset(watched)
        conn = self._live
        if conn is None or conn.closed.is_set():
            return
        try:
            for contract_id in [c for c in self.contracts if c not in conn.subscribed]:
                self.watched_since[contract_id] = time.monotonic()
                await conn.invoke("SubscribeContractTrades", [contract_id], self.settings.subscribe_timeout_s)
                conn.subscribed.add(contract_id)
            for contract_id in [c for c in conn.subscribed if c not in self.contracts]:
                await conn.invoke("UnsubscribeContractTrades", [contract_id], self.settings.subscribe_timeout_s)
                conn.subscribed.discard(contract_id)
        except Exception as exc:  # noqa: BLE001 - any failure: a fresh connection subscribes the new set
            conn.errors.append(f"changing subscriptions failed: {exc or type(exc).__name__}")
            conn.closed.set()
            return
        log.info("hub subscriptions now %s", ", ".join(self.contracts))

    async def _supervise(self, conn: _Connection, stop: asyncio.Event) -> str:
        self.connected, self.last_failure = True, ""
        self.metrics.inc("hub_connects_total")
        self.metrics.set("hub_connected", 1)
        connected_at = time.monotonic()
        log.info("hub connected; subscribed to %s", ", ".join(self.contracts))
        if self.on_connected:
            await self.on_connected()
        reason = ""
        while not reason:
            await first_set(conn.closed, timeout=self.settings.check_every_s)
            now = time.monotonic()
            if stop.is_set():
                return "stopping"
            if conn.oversize:
                size, head = conn.oversize
                reason = f"message too large: {size} bytes over the limit of {self.settings.max_message_bytes}"
                self.metrics.inc("hub_messages_too_large_total")
                log.error("%s; dropped unparsed, reconnecting (it lies inside the feed gap)", reason)
                if self.on_rejected:
                    self.on_rejected(reason, head)
            elif conn.closed.is_set():
                reason = "closed" + (f": {conn.errors[-1]}" if conn.errors else "")
            elif now - conn.last_activity > self.settings.server_silence_s:
                reason = "server silent"
            elif self.market_open() and now - connected_at > self.settings.stale_feed_s:
                stale = [c for c in self.contracts if c in self.watched and now - max(
                    self.last_trade.get(c, 0), connected_at, self.watched_since.get(c, 0)) > self.settings.stale_feed_s]
                if stale:
                    reason = f"no trades for {', '.join(stale)}"
        self.metrics.inc("hub_reconnects_total", reason=reason.split(":")[0])
        conn.handoff.flush()  # the gap opens at the last trade received, not at the last one handed on
        if self.on_disconnected:
            await self.on_disconnected(reason)
        return reason
