"""Fault injection (spec §5.4, F1-F18) as methods of the gateway; ``FAULTS`` maps catalogue ids to them."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from ingest.fake_gateway import hub as H
from ingest.fake_gateway.catalog import MES_M25, MES_U25
from ingest.fake_gateway.hub import HubConn, Outgoing, record, trade_item
from ingest.fake_gateway.rest import REST_FAULT_KINDS, RestFault


class Faults:
    """Mixed into :class:`FakeGateway`. ``conn`` selects one connection id; ``None`` means every open one."""

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

    def ws_ping(self, payload: bytes = b"ping", conn: int | None = None, pong: bool = False) -> None:
        """F13: a WebSocket-level ping control frame (``b""`` for an empty one; ``pong``: an unsolicited pong)."""
        for c in self._conns(conn):
            c.put(Outgoing(ping=payload, pong=pong))

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

    def roll(self, old: str = MES_M25, new: str = MES_U25, halt: bool = True) -> None:
        """F17: ``new`` becomes the active contract and (``halt``) ``old`` stops trading at the current market time."""
        for c in self.catalog:
            if c.id == old:
                c.activeContract = False
            if c.id == new:
                c.activeContract = True
        self.rolled.append((old, new, self.market.now_ticks))
        if halt:
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

    def schedule(self, fault: str, *, after_batches: int | None = None, at: str | datetime | None = None,
                 **kw: Any) -> None:
        """Inject ``fault`` later: once ``after_batches`` more batches were played, or when the market clock
        reaches ``at`` (ISO time), e.g. ``schedule("F2", after_batches=100, code=1011)``."""
        if (after_batches is None) == (at is None):
            raise TypeError("give exactly one of after_batches or at")
        if at is not None:
            when = at if isinstance(at, datetime) else datetime.fromisoformat(at)
            self.scheduled.append(("at", int(when.timestamp() * 10_000_000), fault, kw))
        else:
            self.scheduled.append(("batches", len(self.played) + after_batches, fault, kw))

    def _fire_scheduled(self) -> None:
        due = [s for s in self.scheduled if (self.market.now_ticks >= s[1] if s[0] == "at" else
                                             len(self.played) >= s[1])]
        for item in due:
            self.scheduled.remove(item)
            result = self.inject(item[2], **item[3])
            if asyncio.iscoroutine(result):
                self._spawn(result)

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
