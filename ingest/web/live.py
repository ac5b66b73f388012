"""Live updates for the chart page: the database's NOTIFY, fanned out to the pages' event streams.

One connection LISTENs on the channels below. A change of ``market.bars`` (new ticks or history
bars) wakes one poller, which reads each watched series from its last bar on (the forming bar
included) at most every ``min_interval_s`` and hands the rows to the pages watching it. Signals,
decisions and labels are announced to the pages, which reload their markers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from ingest import db
from ingest.waiting import first_set

log = logging.getLogger(__name__)

BARS_CHANNEL = "market_bars_v1"
SIGNALS_CHANNEL = "trend_signals_v1"
DECISIONS_CHANNEL = "trading_decisions_v1"
LABELS_CHANNEL = "signals_labels_v1"
CHANNELS = (BARS_CHANNEL, SIGNALS_CHANNEL, DECISIONS_CHANNEL, LABELS_CHANNEL)

# (contract_id, timeframe, since) -> bars with time >= since (epoch seconds; None: the latest few)
BarsSince = Callable[[str, str, int | None], Awaitable[list[dict[str, Any]]]]


@dataclass(eq=False)
class Watcher:
    """One open page: the series it shows and the queue of events for its stream."""

    contract_id: str
    timeframe: str
    last_time: int | None
    queue: asyncio.Queue[tuple[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=1000))

    def send(self, event: str, data: Any) -> None:
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:  # a page that stopped reading: it reloads on reconnect
            log.warning("event queue of a %s %s page is full; dropping %s", self.contract_id, self.timeframe, event)


class Live:
    def __init__(self, connect: Callable[[], Awaitable[asyncpg.Connection]], bars_since: BarsSince,
                 min_interval_s: float = 0.25, reconnect_s: float = 2.0) -> None:
        self._connect = connect
        self._bars_since = bars_since
        self.min_interval_s = min_interval_s
        self.reconnect_s = reconnect_s
        self.watchers: set[Watcher] = set()
        self._bars_changed = asyncio.Event()
        self.connected = False
        self.notifications = 0

    def watch(self, watcher: Watcher) -> None:
        self.watchers.add(watcher)

    def unwatch(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)

    def _broadcast(self, event: str, data: Any, contract_id: str | None = None, timeframe: str | None = None) -> None:
        for w in list(self.watchers):
            if contract_id in (None, w.contract_id) and timeframe in (None, w.timeframe):
                w.send(event, data)

    def _on_notify(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        self.notifications += 1
        if channel == BARS_CHANNEL:
            self._bars_changed.set()
            return
        try:
            data = json.loads(payload) if payload.startswith("{") else {"table": payload}
        except ValueError:
            data = {}
        if channel == SIGNALS_CHANNEL:
            self._broadcast("signals", data, data.get("contract_id"), data.get("timeframe"))
        elif channel == DECISIONS_CHANNEL:
            self._broadcast("decisions", data)
        elif channel == LABELS_CHANNEL:
            self._broadcast("labels", data)

    async def run(self) -> None:
        """Listen (reconnecting after a loss) and poll changed bars until cancelled."""
        poller = asyncio.create_task(self._poll_bars())
        try:
            while True:
                try:
                    await self._listen()
                except db.UNAVAILABLE as exc:
                    log.warning("live updates interrupted (%s); reconnecting in %.0f s", exc, self.reconnect_s)
                self.connected = False
                await asyncio.sleep(self.reconnect_s)
        finally:
            poller.cancel()

    async def _listen(self) -> None:
        conn = await self._connect()
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _c: lost.set())
        try:
            for channel in CHANNELS:
                await conn.add_listener(channel, self._on_notify)
            self.connected = True
            log.info("listening on %s", ", ".join(CHANNELS))
            # Whatever happened while we were away: the pages reload, and bars are read again.
            self._broadcast("resync", {})
            self._bars_changed.set()
            while not await first_set(lost, timeout=10):
                await conn.fetchval("SELECT 1")  # notices a dead connection
        finally:
            await conn.close(timeout=2)

    async def _poll_bars(self) -> None:
        while True:
            await self._bars_changed.wait()
            self._bars_changed.clear()
            try:
                await self._push_bars()
            except db.UNAVAILABLE as exc:
                log.warning("could not read changed bars: %s", exc)
            await asyncio.sleep(self.min_interval_s)

    async def _push_bars(self) -> None:
        groups: dict[tuple[str, str], list[Watcher]] = {}
        for w in self.watchers:
            groups.setdefault((w.contract_id, w.timeframe), []).append(w)
        for (contract_id, timeframe), watchers in groups.items():
            known = [w.last_time for w in watchers]
            since = None if None in known else min(t for t in known if t is not None)
            rows = await self._bars_since(contract_id, timeframe, since)
            if not rows:
                continue
            for w in watchers:
                fresh = [r for r in rows if w.last_time is None or r["time"] >= w.last_time]
                if fresh:
                    w.last_time = fresh[-1]["time"]
                    w.send("bars", fresh)
