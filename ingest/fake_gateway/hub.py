"""SignalR JSON hub protocol pieces: one market-hub connection, its writer, and the wire forms it sends."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from ingest.fake_gateway.tape import Trade, format_ticks

RS = "\x1e"
CHANNELS = {"trades": "Trades", "quotes": "Quotes", "depth": "MarketDepth"}
METHODS = {f"{verb}contract{wire}".lower(): (verb, ch, f"{verb.capitalize()}Contract{wire}")
           for verb in ("subscribe", "unsubscribe") for ch, wire in CHANNELS.items()}
BINDING_ERROR = "Failed to invoke '{0}' due to an error on the server."
UNKNOWN_METHOD = "Unknown hub method '{0}'"
UNKNOWN_METHOD_NEW = "Failed to invoke '{0}' due to an error on the server. HubException: Method does not exist."
HUB_EXCEPTION = "An unexpected error occurred invoking '{0}' on the server."


def record(obj: Any) -> str:
    """One JSON hub-protocol record including its 0x1E terminator."""
    return json.dumps(obj, separators=(",", ":")) + RS


def trade_item(t: Trade, ts_style: str = "7", symbol_id: str = "") -> dict:
    return {"symbolId": symbol_id, "price": t.price, "timestamp": format_ticks(t.ticks, ts_style),
            "type": t.side, "volume": t.volume}


@dataclass
class Outgoing:
    """Something queued for a connection's writer: text (with the trades it carries), raw bytes or an action."""

    text: str | None = None
    trades: list[SentTrade] = field(default_factory=list)
    raw: bytes | None = None  # sent as a TEXT frame without UTF-8 validation
    ping: bytes | None = None  # WebSocket-level ping payload
    pong: bool = False  # send that payload as a pong frame instead
    action: str | None = None  # "rst", "fin", "close"
    code: int = 1000


@dataclass
class SentTrade:
    """A trade as it went out on the wire to one connection."""

    conn_id: int
    trade: Trade
    item: dict  # the JSON object sent
    repeat: str = ""  # "" for first delivery; "dup_item", "dup_batch" or "replay" for copies (fault F9)
    sent_at: float = field(default_factory=time.time)  # when the frame was composed for the wire

    @property
    def key(self) -> tuple[str, str, float, int, int]:
        return (self.trade.contract_id, self.item["timestamp"], self.trade.price, self.trade.volume, self.trade.side)


@dataclass
class HubConn:
    """One market-hub WebSocket connection: subscriptions, timers, outbox and what went both ways."""

    id: int
    ws: web.WebSocketResponse
    request: web.Request
    token_exp: float
    opened: float
    user: str
    subscriptions: set[tuple[str, str]] = field(default_factory=set)  # (channel, contractId)
    handshaken: bool = False
    handshake_silent: bool = False
    half_open: bool = False
    closed: bool = False
    close_reason: str = ""
    last_sent: float = 0.0
    last_received: float = 0.0
    sent: list[str] = field(default_factory=list)  # every record / frame sent, in order
    received: list[Any] = field(default_factory=list)  # every record the client sent (parsed, or raw text)
    pongs: list[bytes] = field(default_factory=list)  # payloads of the WebSocket pongs the client sent
    outbox: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)
    quote_snapshot_sent: set[str] = field(default_factory=set)
    writer: asyncio.Task | None = None

    def subscribed(self, channel: str, contract_id: str) -> bool:
        return (channel, contract_id) in self.subscriptions

    def put(self, item: Outgoing) -> None:
        if not self.closed:
            self.outbox.put_nowait(item)

    def abort(self, rst: bool = True) -> None:
        """Drop TCP without a WebSocket close frame: RST (linger 0) or a plain FIN."""
        transport = self.request.transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if rst and sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()


async def write_one(conn: HubConn, item: Outgoing) -> None:
    """Put one queued item on the wire (never called while the connection is half-open)."""
    ws = conn.ws
    if item.action in ("rst", "fin"):
        conn.closed = True
        conn.close_reason = conn.close_reason or item.action
        conn.abort(rst=item.action == "rst")
        return
    if item.action == "close":
        conn.closed = True
        conn.close_reason = conn.close_reason or f"ws close {item.code}"
        await ws.close(code=item.code)
        return
    if item.ping is not None:
        await (ws.pong if item.pong else ws.ping)(item.ping)
        conn.sent.append(f"<ws {'pong' if item.pong else 'ping'} {item.ping!r}>")
        return
    if item.raw is not None:
        await ws.send_frame(item.raw, WSMsgType.TEXT)
        conn.sent.append(item.raw.decode("utf-8", "replace"))
        return
    assert item.text is not None
    await ws.send_str(item.text)
    conn.sent.append(item.text)


def malformed_frame(kind: str, contract_id: str, sample: dict) -> bytes:
    """A hub message of the given malformed ``kind`` (fault F11); ``sample`` is a valid trade item to mangle."""
    good = {"type": 1, "target": "GatewayTrade", "arguments": [contract_id, [sample]]}

    def trade(**change: Any) -> bytes:
        item = {k: v for k, v in {**sample, **change}.items() if v is not _DROP}
        return record({**good, "arguments": [contract_id, [item]]}).encode()

    frames: dict[str, Any] = {
        "truncated_json": lambda: record(good)[:-12].encode() + RS.encode(),
        "missing_rs": lambda: record(good)[:-1].encode(),
        "empty_record": lambda: RS.encode(),
        "invalid_utf8": lambda: b'{"type":1,"target":"GatewayTrade","arguments":["\xff\xfe"]}' + RS.encode(),
        "non_object": lambda: record([1, 2, 3]).encode(),
        "missing_type": lambda: record({k: v for k, v in good.items() if k != "type"}).encode(),
        "unknown_type": lambda: record({**good, "type": 42}).encode(),
        "unknown_target": lambda: record({**good, "target": "GatewayMystery"}).encode(),
        "one_argument": lambda: record({**good, "arguments": [contract_id]}).encode(),
        "three_arguments": lambda: record({**good, "arguments": [contract_id, [sample], "extra"]}).encode(),
        "payload_wrong_type": lambda: record({**good, "arguments": [contract_id, "not a trade"]}).encode(),
        "trade_missing_field": lambda: trade(price=_DROP),
        "trade_null_field": lambda: trade(price=None),
        "trade_string_field": lambda: trade(price=str(sample["price"]), volume=str(sample["volume"])),
        "unknown_trade_type": lambda: trade(type=7),
        "ts_garbage": lambda: trade(timestamp="not a time"),
    }
    if kind not in frames:
        raise ValueError(f"unknown malformed kind {kind!r}; one of {sorted(frames)}")
    return frames[kind]()


MALFORMED_KINDS = ("truncated_json", "missing_rs", "empty_record", "invalid_utf8", "non_object", "missing_type",
                   "unknown_type", "unknown_target", "one_argument", "three_arguments", "payload_wrong_type",
                   "trade_missing_field", "trade_null_field", "trade_string_field", "unknown_trade_type",
                   "ts_garbage")
_DROP = object()
