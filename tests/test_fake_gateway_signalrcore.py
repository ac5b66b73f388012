"""The fake market hub driven by the real ``signalrcore`` 1.0.2 client (the library the ingester uses)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import pytest
from signalrcore.hub_connection_builder import HubConnectionBuilder
from signalrcore.transport.websockets import websocket_transport
from signalrcore.transport.websockets.websocket_client import WebSocketClient

from ingest.fake_gateway import MES_M25, BackgroundGateway

# signalrcore's stop() closes its socket and then joins its receive thread, which only wakes up when the
# next frame arrives: frequent server pings keep every test's teardown short.
FAST = {"ping_interval_s": 0.2}


class Inbox:
    """Thread-safe list that signalrcore callbacks append to and tests wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.items: list[Any] = []

    def add(self, item: Any) -> None:
        with self.cond:
            self.items.append(item)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[list[Any]], bool], timeout: float = 5.0) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: predicate(self.items), timeout), self.items[-5:]


@contextmanager
def hub_client(url: str, *, negotiate: bool = False, factory: Callable[[], str] | None = None,
               resubscribe: bool = True) -> Iterator[tuple[Any, Inbox, Inbox]]:
    """A started signalrcore connection subscribed to MES trades; yields (connection, trades, events)."""
    options: dict[str, Any] = {"skip_negotiation": not negotiate}
    if factory is not None:
        options["access_token_factory"] = factory
    hub = (HubConnectionBuilder().with_url(url, options=options)
           .with_automatic_reconnect({"type": "raw", "keep_alive_interval": 1, "reconnect_interval": 0.2,
                                      "max_attempts": 20})
           .configure_logging(logging.CRITICAL).build())
    trades, events = Inbox(), Inbox()

    def subscribe() -> None:
        hub.send("SubscribeContractTrades", [MES_M25])

    hub.on_open(lambda: (events.add("open"), subscribe()))
    hub.on_reconnect(lambda: (events.add("reconnect"), resubscribe and subscribe()))
    hub.on_close(lambda: events.add("close"))
    hub.on_error(lambda error: events.add(("error", error)))
    hub.on("GatewayTrade", lambda args: [trades.add((args[0], t)) for t in args[1] if t is not None])
    hub.start()
    try:
        events.wait(lambda e: "open" in e)
        yield hub, trades, events
    finally:
        hub.stop()


def play_until_sent(gw: BackgroundGateway, conn_index: int, n: int) -> None:
    """Play batches until ``n`` trades went out to connection ``conn_index`` (a position in gw.connections)."""
    def enough() -> bool:
        conn = gw.connections[conn_index]
        return sum(st.conn_id == conn.id for st in gw.sent_trades) >= n
    while not enough():
        gw.play(5)
        gw.wait_for(lambda: all(c.outbox.empty() for c in gw.connections))


def key(item: dict) -> tuple:
    return item["timestamp"], item["price"], item["volume"], item["type"]


def test_signalrcore_gets_exactly_the_trades_the_server_sent() -> None:
    with BackgroundGateway(**FAST) as gw:
        with hub_client(gw.hub_url_with_token(gw.login())) as (_hub, trades, _events):
            gw.wait_for(lambda: gw.connections and gw.connections[0].subscriptions)
            play_until_sent(gw, 0, 200)
            sent = Counter(key(st.item) for st in gw.sent_trades)
            trades.wait(lambda items: len(items) >= sum(sent.values()))
            assert Counter(key(t) for _, t in trades.items) == sent
            assert all(cid == MES_M25 for cid, _ in trades.items)
        conn = gw.connections[0]
        assert conn.received[0] == {"protocol": "json", "version": 0}  # what signalrcore 1.0.2 really sends
        invocation = conn.received[1]
        assert invocation["target"] == "SubscribeContractTrades" and invocation["arguments"] == [MES_M25]
        assert invocation["invocationId"] and conn.sent[1].startswith('{"type":3')


def test_signalrcore_negotiates_and_sends_the_token_in_headers() -> None:
    with BackgroundGateway(**FAST) as gw:
        token = gw.login()
        with hub_client(gw.hub_url, negotiate=True, factory=lambda: token) as (_hub, trades, _events):
            gw.wait_for(lambda: gw.connections and gw.connections[0].subscriptions)
            play_until_sent(gw, 0, 1)
            trades.wait(lambda items: len(items) >= 1)
        assert "id=" in gw.upgrades[0][0] and gw.upgrades[0][1] == 101
        assert gw.connections[0].received[1]["headers"]["Authorization"] == f"Bearer {token}"


@pytest.mark.parametrize("rst", [True, False], ids=["rst", "fin"])
def test_signalrcore_reconnects_after_tcp_drop_and_resubscribes(rst: bool) -> None:
    with BackgroundGateway(**FAST) as gw:
        with hub_client(gw.hub_url_with_token(gw.login())) as (_hub, trades, events):
            gw.wait_for(lambda: gw.connections and gw.connections[0].subscriptions)
            gw.inject("F1", rst=rst)  # after an RST signalrcore only notices at its next keep-alive ping
            events.wait(lambda e: "reconnect" in e)
            gw.wait_for(lambda: len(gw.connections) == 2 and gw.connections[1].subscriptions)
            play_until_sent(gw, 1, 5)
            trades.wait(lambda items: len(items) >= 5)
            assert gw.connections[0].close_reason == ("rst" if rst else "fin")


def test_signalrcore_reconnects_after_signalr_close() -> None:
    with BackgroundGateway(**FAST) as gw:
        with hub_client(gw.hub_url_with_token(gw.login())) as (_hub, _trades, events):
            gw.wait_for(lambda: gw.connections and gw.connections[0].subscriptions)
            gw.signalr_close("going away", allow_reconnect=False)
            events.wait(lambda e: "reconnect" in e)  # signalrcore ignores allowReconnect:false
            gw.wait_for(lambda: len(gw.connections) == 2 and gw.connections[1].subscriptions)


def test_signalrcore_start_fails_on_401() -> None:
    with BackgroundGateway(**FAST) as gw:
        gw.reject_upgrades(1)
        with pytest.raises(Exception, match="401"):
            with hub_client(gw.hub_url_with_token(gw.login())):
                pass
        assert gw.upgrades == [(gw.upgrades[0][0], 401)]


def test_signalrcore_drops_the_connection_on_a_websocket_ping_with_payload(monkeypatch: pytest.MonkeyPatch) -> None:
    # signalrcore as shipped: importing ingest.feed replaces its client with ingest.hub_socket.GuardedClient
    monkeypatch.setattr(websocket_transport, "WebSocketClient", WebSocketClient)
    with BackgroundGateway(**FAST) as gw:
        with hub_client(gw.hub_url_with_token(gw.login()), resubscribe=False) as (_hub, _trades, events):
            gw.wait_for(lambda: gw.connections and gw.connections[0].subscriptions)
            gw.ws_ping(b"\xff\xfe payload")
            events.wait(lambda e: "close" in e)  # spec 3.8 [E]: decode error, connection dropped
            events.wait(lambda e: "reconnect" in e)  # ... and rebuilt, without subscriptions
            gw.wait_for(lambda: len(gw.connections) == 2)
            assert gw.connections[1].subscriptions == set()


def test_continuous_replay_at_a_chosen_speed() -> None:
    with BackgroundGateway(**FAST) as gw:
        with hub_client(gw.hub_url_with_token(gw.login())) as (_hub, trades, _events):
            gw.wait_for(lambda: gw.connections and gw.connections[0].subscriptions)
            gw.start_replay(2000.0)
            trades.wait(lambda items: len(items) >= 50)
            gw.pause_replay()
        assert len(gw.played) >= 10
