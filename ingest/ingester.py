"""``mechtrade ingest``: the live feed into ``market.ticks``, thin and hard to kill.

hub (signalrcore, supervised) → parse → bounded buffer → batched idempotent writes; every outage
of the feed becomes a recorded gap that is repaired from REST bars; ``/healthz`` and ``/metrics``
tell how it goes; SIGTERM stops reading, flushes and exits within a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import asyncpg

from ingest.config import Config
from ingest.feed import FeedSettings, HubFeed
from ingest.gaps import FetchBars, Gap, GapRepairer, first_done
from ingest.metrics import Metrics
from ingest.rolls import Roller, RollSettings, SearchContracts
from ingest.session import market_open
from ingest.trades import Tick, parse_gateway_trade
from ingest.writer import TickWriter

log = logging.getLogger(__name__)
ROOTS_WAIT_S = 30.0  # at start, how long the feed waits for the roots' contracts before connecting anyway


class TokenSource(Protocol):
    async def token(self) -> str: ...

    def invalidate_token(self) -> None: ...


class Ingester:
    def __init__(
        self,
        cfg: Config,
        dsn: str | None,
        gateway: TokenSource,
        fetch_bars: FetchBars,
        *,
        metrics: Metrics | None = None,
        is_market_open: Callable[[], bool] = market_open,
        feed_settings: FeedSettings | None = None,
        repair_interval_s: float = 300.0,
        search_contracts: SearchContracts | None = None,
        clock: Callable[[], datetime] | None = None,
        history_requests: Callable[[], int] | None = None,
    ) -> None:
        self.cfg, self.dsn = cfg, dsn
        self.contracts = frozenset(cfg.contracts)
        self.metrics = metrics or Metrics()
        ing = cfg.ingest
        self.writer = TickWriter(dsn, self.metrics, batch_rows=ing.batch_rows, batch_ms=ing.batch_ms,
                                 max_buffered=ing.queue_rows, spill_dir=Path(ing.spill_dir))
        self.repairer = GapRepairer(dsn, fetch_bars, cfg.contracts, cfg.backfill.timeframes, self.metrics,
                                    interval_s=repair_interval_s, requests_made=history_requests)
        settings = feed_settings or FeedSettings(
            server_silence_s=ing.server_silence_s, stale_feed_s=ing.stale_feed_s, keep_alive_s=ing.keep_alive_s,
            backoff_initial_s=ing.reconnect_initial_s, backoff_max_s=ing.reconnect_max_s,
        )
        self.feed = HubFeed(cfg.gateway.hub_url, gateway.token, gateway.invalidate_token, cfg.contracts,
                            self._on_trades, self.metrics, settings, market_open=is_market_open,
                            on_disconnected=self._on_disconnected)
        self.roller: Roller | None = None
        if cfg.roots:
            if search_contracts is None:
                raise ValueError("roots need a contract search")
            self.roller = Roller(cfg.roots, cfg.contracts, search_contracts, dsn,
                                 RollSettings(ing.roll_rule, ing.roll_days, ing.roll_next_days, ing.roll_check_s),
                                 self.metrics, self._set_contracts, clock=clock)
        self.last_tick: dict[str, datetime] = {}
        self.awaiting_first_tick: dict[str, tuple[datetime, str]] = {}  # contract -> (gap start, reason)
        self._logged_problems: dict[str, float] = {}
        for name, kind, text in (
            ("ticks_received_total", "counter", "trades parsed from the hub"),
            ("trade_problems_total", "counter", "trade items dropped, by reason"),
            ("feed_lag_seconds", "gauge", "receive time minus exchange time of the newest trade"),
        ):
            self.metrics.describe(name, kind, text)

    # --- the receive path (on the event loop, called by the feed) ---

    def _on_trades(self, burst: list[tuple[Any, float]]) -> None:
        """GatewayTrade messages as they arrived since the last call: parsed, tracked, queued."""
        ticks: list[Tick] = []
        for arguments, received_at in burst:
            parsed = parse_gateway_trade(arguments, self.contracts)
            for reason, count in parsed.problems.items():
                self.metrics.inc("trade_problems_total", count, reason=reason)
                if reason != "null_item" and received_at - self._logged_problems.get(reason, 0) > 60:
                    self._logged_problems[reason] = received_at  # at most one line per reason a minute
                    log.warning("dropped trade data (%s): %s", reason, parsed.detail or reason)
            if parsed.ticks:
                self._track(parsed.ticks, received_at)
                ticks += parsed.ticks
        if ticks:
            self.metrics.inc("ticks_received_total", len(ticks))
            self.writer.put(ticks)

    def _track(self, ticks: list[Tick], received_at: float) -> None:
        """Freshness, lag and the end of a pending gap, from the ticks of one message (one contract)."""
        contract_id = ticks[0].contract_id
        self.feed.trade_seen(contract_id)
        newest = max(t.ts for t in ticks)
        self.metrics.set("feed_lag_seconds", max(0.0, received_at - newest.timestamp()), contract=contract_id)
        if contract_id in self.awaiting_first_tick:
            start, reason = self.awaiting_first_tick[contract_id]
            after = [t.ts for t in ticks if t.ts > start]
            if after:
                del self.awaiting_first_tick[contract_id]
                self.repairer.record(Gap(contract_id, start, min(after), reason))
        self.last_tick[contract_id] = max(newest, self.last_tick.get(contract_id, newest))

    async def _on_disconnected(self, reason: str) -> None:
        for contract_id, last in self.last_tick.items():
            self.awaiting_first_tick.setdefault(contract_id, (last, reason))

    async def _set_contracts(self, contracts: tuple[str, ...], fronts: frozenset[str]) -> None:
        """From the roller: stream these contracts now (a restart gap is noted first for new ones)."""
        await self._restart_gaps([c for c in contracts if c not in self.contracts])
        self.contracts = frozenset(contracts)
        self.repairer.contracts = list(contracts)
        await self.feed.set_contracts(contracts, fronts)

    async def _restart_gaps(self, contracts: Iterable[str]) -> None:
        """The span between the stored tape's end and this run's first trade is a gap too."""
        try:
            conn = await asyncpg.connect(self.dsn, timeout=10)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("database unavailable at start (%s): no restart gap recorded", exc)
            return
        try:
            for contract_id in contracts:
                last = await conn.fetchval("SELECT market.latest_tick_time($1)", contract_id)
                if last is not None:
                    self.awaiting_first_tick[contract_id] = (last, "restart")
                    self.last_tick[contract_id] = last
        finally:
            await conn.close()

    # --- life cycle ---

    def status(self) -> tuple[bool, dict]:
        now = time.time()
        details = {
            "hub_connected": self.feed.connected,
            "database_up": self.writer.database_up,
            "queue_depth": self.writer.buffered,
            "spill_files": len(self.writer.spill.pending()),
            "last_trade_age_s": {c: round(now - t.timestamp(), 1) for c, t in self.last_tick.items()},
            "streaming": sorted(self.contracts),
        }
        if self.roller is not None:
            details["fronts"] = dict(self.roller.front)
        healthy = (self.feed.connected or not market_open()) and (self.writer.database_up or self.writer.buffered == 0)
        return healthy, details

    async def run(self, stop: asyncio.Event) -> None:
        await self._restart_gaps(self.contracts)
        writer = asyncio.create_task(self.writer.run(), name="writer")
        others = [asyncio.create_task(self.repairer.run(stop), name="gap-repair")]
        if self.roller is not None:  # the roots' contracts first, so the first connection subscribes them
            others.append(asyncio.create_task(self.roller.run(stop), name="contracts"))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(first_done(self.roller.checked.wait(), stop.wait()), ROOTS_WAIT_S)
        others.append(asyncio.create_task(self.feed.run(stop), name="feed"))
        try:
            await stop.wait()
        finally:
            deadline = time.monotonic() + self.cfg.ingest.shutdown_deadline_s
            await asyncio.wait(others, timeout=max(0.1, deadline - time.monotonic()))
            self.writer.close()
            done, _ = await asyncio.wait({writer}, timeout=max(0.1, deadline - time.monotonic()))
            if not done:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                parked = self.writer.spill_remaining()
                log.warning("shutdown deadline reached: %d ticks parked in %s for the next start",
                            parked, self.writer.spill.directory)
            for task in others:
                task.cancel()
            log.info("ingester stopped: %d ticks written, %d duplicates",
                     self.metrics.total("ticks_written_total"), self.metrics.total("ticks_duplicate_total"))
