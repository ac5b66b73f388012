"""signalrcore's WebSocket client, fixed where it breaks on a real hub: control frames and concurrent sends.

signalrcore 1.0.2 hands every frame it reads to the JSON parser, control frames included: a WebSocket
ping with a payload then fails as JSON, kills the receive loop and costs the connection, and no pong
is ever sent. Its sends are not serialized either, so a keep-alive ping from one thread could
interleave with a subscription from another. :class:`GuardedClient` answers pings with pongs,
drops pongs, turns a close frame into the end of the connection, and sends one frame at a time;
:func:`install` makes signalrcore's WebSocket transport build it instead of its own client.
"""

from __future__ import annotations

import threading
from typing import Any

from signalrcore.messages.ping_message import PingMessage
from signalrcore.transport.sockets.errors import SocketClosedError
from signalrcore.transport.websockets import websocket_transport
from signalrcore.transport.websockets.websocket_client import WebSocketClient

CLOSE, PING, PONG = 0x8, 0x9, 0xA
PING_RECORD = PingMessage()  # {"type": 6}: the SignalR keep-alive


class GuardedClient(WebSocketClient):
    """A signalrcore WebSocket client whose control frames never reach the hub protocol's parser."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._send_lock = threading.Lock()
        self.pings_answered = 0

    def send(self, message: str | bytes, opcode: int = 0x1) -> None:
        with self._send_lock:
            super().send(message, opcode)

    def _recv_frame(self) -> Any:
        """The next data message; control frames in between (even inside a fragmented message) are handled."""
        payload, first = b"", True
        while True:
            fin, opcode, data = self._read_one_frame()
            if opcode == CLOSE:
                raise SocketClosedError()
            if opcode == PING:
                self.send(data, opcode=PONG)  # RFC 6455 5.5.3: the pong echoes the ping's payload
                self.pings_answered += 1
                continue
            if opcode == PONG or opcode > 0x7:
                continue
            if first and opcode == 0x0:
                continue  # a stray continuation frame: no message to continue
            payload, first = payload + data, False
            if fin:
                return self.prepare_data(payload)


def install() -> None:
    """Make signalrcore's WebSocket transport create :class:`GuardedClient` (idempotent)."""
    websocket_transport.WebSocketClient = GuardedClient  # type: ignore[misc]
