"""``mechtrade ingest``: the live feed into ``market.ticks``, thin and hard to kill.

hub (signalrcore, supervised) → parse → bounded buffer → batched idempotent writes; every outage
of the feed becomes a recorded gap that is repaired from REST bars; ``/healthz`` and ``/metrics``
tell how it goes; SIGTERM stops reading, flushes and exits within a deadline.

The invariant: every trade the gateway sent is stored, or lies inside a recorded gap. The writer,
the feed and the gap recorder each run supervised (an unexpected end is logged and restarted);
gaps are journalled before they matter (see :mod:`ingest.gaps`); input outside the limits is
rejected, counted and kept in ``rejected.jsonl``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import operator
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ingest import health
from ingest.config import Config
from ingest.feed import FeedSettings, HubFeed
from ingest.gaps import FetchBars, Gap, GapBook, GapRepairer
from ingest.metrics import Metrics
from ingest.rolls import Roller, RollSettings, SearchContracts
from ingest.session import market_open
from ingest.supervise import Supervisor
from ingest.trades import Limits, ObjectRuns, Tick, parse_gateway_trade
from ingest.waiting import first_set
from ingest.writer import TickWriter

TICK_TS = operator.attrgetter("ts")
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
        self.market_open = is_market_open
        ing = cfg.ingest
        spill_dir = Path(ing.spill_dir)
        self.writer = TickWriter(dsn, self.metrics, batch_rows=ing.batch_rows, batch_ms=ing.batch_ms,
                                 max_buffered=ing.queue_rows, spill_dir=spill_dir, on_dropped=self._on_dropped)
        self.gaps = GapBook(spill_dir / "gaps.jsonl", self.metrics)
        self.repairer = GapRepairer(dsn, fetch_bars, cfg.contracts, cfg.backfill.timeframes, self.metrics,
                                    interval_s=repair_interval_s, book=self.gaps, requests_made=history_requests)
        settings = feed_settings or FeedSettings(
            server_silence_s=ing.server_silence_s, stale_feed_s=ing.stale_feed_s, keep_alive_s=ing.keep_alive_s,
            backoff_initial_s=ing.reconnect_initial_s, backoff_max_s=ing.reconnect_max_s,
            max_message_bytes=ing.max_message_bytes,
        )
        self.feed = HubFeed(cfg.gateway.hub_url, gateway.token, gateway.invalidate_token, cfg.contracts,
                            self._on_trades, self.metrics, settings, market_open=is_market_open,
                            on_disconnected=self._on_disconnected, on_rejected=self._keep_rejected)
        self.limits = Limits(max_future_s=ing.max_future_s, max_age_s=ing.max_age_s, min_price=ing.min_price,
                             max_price=ing.max_price, price_bands={k: (lo, hi) for k, lo, hi in ing.price_bands})
        self.object_runs = ObjectRuns()
        self.supervisor = Supervisor(self.metrics)
        self.roller: Roller | None = None
        if cfg.roots:
            if search_contracts is None:
                raise ValueError("roots need a contract search")
            self.roller = Roller(cfg.roots, cfg.contracts, search_contracts, dsn,
                                 RollSettings(ing.roll_rule, ing.roll_days, ing.roll_next_days, ing.roll_check_s),
                                 self.metrics, self._set_contracts, clock=clock)
        self.last_tick: dict[str, datetime] = {}
        # contract -> start of its open gap (None: a restart's, from the latest stored trade)
        self.open_gap: dict[str, datetime | None] = {}
        self._logged_problems: dict[str, float] = {}
        for name, kind, text in (
            ("ticks_received_total", "counter", "trades parsed from the hub"),
            ("trade_problems_total", "counter", "trade items dropped, by reason (limits: kept in rejected.jsonl)"),
            ("feed_lag_seconds", "gauge", "receive time minus exchange time of the newest trade"),
        ):
            self.metrics.describe(name, kind, text)

    # --- the receive path (on the event loop, called by the feed) ---

    def _on_trades(self, burst: list[tuple[Any, float]], connection: int) -> None:
        """GatewayTrade messages as they arrived since the last call: parsed, numbered and queued; freshness and
        lag tracked once per contract of the burst."""
        ticks: list[Tick] = []
        newest: dict[str, tuple[datetime, float]] = {}  # contract -> (newest trade, latest receive time)
        for arguments, received_at in burst:
            parsed = parse_gateway_trade(arguments, self.contracts, self.limits, received_at)
            for reason, count in parsed.problems.items():
                self.metrics.inc("trade_problems_total", count, reason=reason)
                if reason != "null_item" and received_at - self._logged_problems.get(reason, 0) > 60:
                    self._logged_problems[reason] = received_at  # at most one line per reason a minute
                    log.warning("dropped trade data (%s): %s", reason, parsed.detail or reason)
            for reason, item in parsed.rejected:
                self._keep_rejected(reason, item)
            if not parsed.ticks:
                continue
            contract_id = parsed.ticks[0].contract_id
            if parsed.single:
                parsed.ticks = [self.object_runs.number(connection, t) for t in parsed.ticks]
            else:
                self.object_runs.end(contract_id)
            if contract_id in self.open_gap:
                self._close_gap(contract_id, parsed.ticks)
            latest = max(map(TICK_TS, parsed.ticks))
            if contract_id in newest:
                latest = max(latest, newest[contract_id][0])
            newest[contract_id] = (latest, received_at)
            ticks += parsed.ticks
        for contract_id, (latest, received_at) in newest.items():
            self.feed.trade_seen(contract_id)
            self.metrics.set("feed_lag_seconds", max(0.0, received_at - latest.timestamp()), contract=contract_id)
            self.last_tick[contract_id] = max(latest, self.last_tick.get(contract_id, latest))
        if ticks:
            self.metrics.inc("ticks_received_total", len(ticks))
            self.writer.put(ticks)

    def _close_gap(self, contract_id: str, ticks: list[Tick]) -> None:
        """The open gap of ``contract_id`` ends with this message if it brings a trade after the gap's start."""
        start = self.open_gap[contract_id]
        after = [t.ts for t in ticks if start is None or t.ts > start]
        if after:  # a restart's gap ends at this message's newest trade: its start is not known here
            del self.open_gap[contract_id]
            self.gaps.close(contract_id, max(after) if start is None else min(after))

    async def _on_disconnected(self, reason: str) -> None:
        for contract_id, last in self.last_tick.items():
            if contract_id not in self.open_gap:
                self.open_gap[contract_id] = last
                self.gaps.open(contract_id, last, reason)

    async def _set_contracts(self, contracts: tuple[str, ...], fronts: frozenset[str]) -> None:
        """From the roller: stream these contracts now (a restart gap is opened first for new ones)."""
        self._restart_gaps([c for c in contracts if c not in self.contracts])
        self.contracts = frozenset(contracts)
        self.repairer.contracts = list(contracts)
        await self.feed.set_contracts(contracts, fronts)

    def _restart_gaps(self, contracts: Iterable[str]) -> None:
        """The span since the stored tape's end is a gap until a trade comes (the database resolves its start)."""
        for contract_id in contracts:
            self.open_gap[contract_id] = None
            self.gaps.open(contract_id, None, "restart", stored_before=datetime.now(UTC))

    def _on_dropped(self, ticks: Sequence[Tick], reason: str) -> None:
        """Ticks the writer could not keep: their span becomes a gap, per contract."""
        for contract_id in {t.contract_id for t in ticks}:
            times = [t.ts for t in ticks if t.contract_id == contract_id]
            self.repairer.record(Gap(contract_id, min(times), max(times), reason))

    def _keep_rejected(self, reason: str, item: Any) -> None:
        """Input refused by the limits, kept for inspection (best effort: it is counted either way)."""
        try:
            self.writer.spill.directory.mkdir(parents=True, exist_ok=True)
            with (self.writer.spill.directory / "rejected.jsonl").open("a") as f:
                f.write(json.dumps({"reason": reason, "item": item, "at": datetime.now(UTC).isoformat()},
                                   default=str)[:10_000] + "\n")
        except OSError:
            pass

    # --- life cycle ---

    def checks(self) -> dict[str, tuple[bool, str]]:
        """Named health checks: (ok, reason). Other modules may add theirs to this dict."""
        checks = self.supervisor.checks()
        if self.feed.connected:
            checks["hub"] = (True, "connected")
        else:
            why = self.feed.last_failure or "connecting"
            checks["hub"] = (not self.market_open(), f"not connected ({why})"
                             + ("" if self.market_open() else "; market closed"))
        waiting = self.writer.buffered + len(self.writer.spill.pending())
        checks["database"] = (True, "up") if self.writer.database_up else \
            (waiting == 0, f"down ({self.writer.database_error}); {self.writer.buffered} ticks waiting")
        return checks

    def status(self) -> tuple[bool, dict]:
        now = time.time()
        return health.combine(self.checks(), {
            "hub_connected": self.feed.connected,
            "database_up": self.writer.database_up,
            "queue_depth": self.writer.buffered,
            "spill_files": len(self.writer.spill.pending()),
            "open_gaps": sorted(self.open_gap),
            "last_trade_age_s": {c: round(now - t.timestamp(), 1) for c, t in self.last_tick.items()},
            "streaming": sorted(self.contracts),
            **({"fronts": dict(self.roller.front)} if self.roller is not None else {}),
        })

    async def _feed_after_roots(self, stop: asyncio.Event) -> None:
        """The feed, once the roots' contracts are known (at most ``ROOTS_WAIT_S``), so its first connection
        subscribes them."""
        if self.roller is not None:
            await first_set(self.roller.checked, stop, timeout=ROOTS_WAIT_S)
        await self.feed.run(stop)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: every task supervised. Raises the :class:`~ingest.supervise.Fatal` error that ended it."""
        self._restart_gaps(self.contracts)
        stopping = asyncio.Event()  # the feed and repairer stop first; the writer once they have
        sup = self.supervisor
        sup.add("writer", self.writer.run, stopping)
        sup.add("feed", lambda: self._feed_after_roots(stop), stop)
        sup.add("gap-recorder", lambda: self.repairer.run(stop), stop)
        if self.roller is not None:
            sup.add("contracts", lambda: self.roller.run(stop), stop)
        tasks = sup.start()
        try:
            await first_set(stop, sup.failed)
        finally:
            stop.set()
            deadline = time.monotonic() + self.cfg.ingest.shutdown_deadline_s
            others = [tasks[name] for name in ("feed", "gap-recorder", "contracts") if name in tasks]
            await asyncio.wait(others, timeout=max(0.1, deadline - time.monotonic()))
            stopping.set()
            self.writer.close()
            done, _ = await asyncio.wait({tasks["writer"]}, timeout=max(0.1, deadline - time.monotonic()))
            if not done:
                tasks["writer"].cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await tasks["writer"]
            if parked := self.writer.spill_remaining():  # past the deadline, or the writer gave up
                log.warning("%d ticks parked in %s for the next start", parked, self.writer.spill.directory)
            for task in others:
                task.cancel()
            log.info("ingester stopped: %d ticks written, %d duplicates",
                     self.metrics.total("ticks_written_total"), self.metrics.total("ticks_duplicate_total"))
        sup.raise_fatal()
