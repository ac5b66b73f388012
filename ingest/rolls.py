"""Contracts by root symbol: resolve each configured root (MES, MNQ, ...) to its active contract, stream the
next one ahead of expiry, and roll.

Every ``roll_check_s`` the gateway's ``Contract/search`` is asked for each root. The root's front contract
is the one the gateway marks ``activeContract`` (rule ``gateway``), or the nearest unexpired one until
``roll_days`` before its expiry (rule ``expiry``). When it changes, ``market.contract_rolls`` gets a row
and ``market.contracts`` a new active contract. The feed streams, per root: the front contract; the
next one from ``roll_next_days`` before the front's expiry; and earlier fronts until they expire. So
both sides of a roll are streamed before and after it and no tick of either is lost. Only the
fronts are watched for staleness (back months may be quiet for minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg

from ingest import db
from ingest.metrics import Metrics
from ingest.projectx import Contract, GatewayError
from ingest.waiting import first_set

log = logging.getLogger(__name__)

MONTH_CODES = "FGHJKMNQUVXZ"  # CME month codes, January to December
SearchContracts = Callable[[str], Awaitable[list[Contract]]]
# (every contract to stream, the fronts among them) -> None; called whenever either changes
OnChange = Callable[[tuple[str, ...], frozenset[str]], Awaitable[None]]


def root_of(contract_id: str) -> str:
    """``CON.F.US.MES.M25`` -> ``MES`` ("" if the id does not follow the gateway's grammar)."""
    parts = contract_id.split(".")
    return parts[3] if len(parts) == 5 and parts[0] == "CON" else ""


def expiry_of(contract_id: str) -> date | None:
    """Third Friday of the contract month (CME equity index futures) from the id's ``<month><yy>``."""
    code = contract_id.rsplit(".", 1)[-1]
    if len(code) != 3 or code[0] not in MONTH_CODES or not code[1:].isdigit():
        return None
    first = date(2000 + int(code[1:]), MONTH_CODES.index(code[0]) + 1, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def pick_front(found: list[Contract], settings: RollSettings, today: date) -> Contract | None:
    """The root's front among its contracts ``found``, by the rule of ``settings`` (None if there is none)."""
    by_expiry = sorted((c for c in found if (expiry_of(c.id) or date.max) >= today),
                       key=lambda c: expiry_of(c.id) or date.max)
    if settings.rule == "gateway":
        return next((c for c in by_expiry if c.active), None) or next((c for c in found if c.active), None)
    if len(by_expiry) > 1 and (expiry_of(by_expiry[0].id) or date.max) - today <= timedelta(days=settings.roll_days):
        return by_expiry[1]
    return by_expiry[0] if by_expiry else None


async def resolve_fronts(search: SearchContracts, roots: Iterable[str], settings: RollSettings) -> list[str]:
    """The front contract of each root now (roots without one are left out, with a warning)."""
    out = []
    for root in roots:
        front = pick_front([c for c in await search(root) if root_of(c.id) == root], settings,
                           datetime.now(UTC).date())
        if front is None:
            log.warning("no contract found for root %s", root)
        else:
            out.append(front.id)
    return out


@dataclass(frozen=True)
class RollSettings:
    rule: str = "gateway"  # "gateway": follow activeContract; "expiry": roll_days before expiry
    roll_days: int = 8
    next_days: int = 14
    check_s: float = 300.0


class Roller:
    """Keeps ``market.contracts`` and ``market.contract_rolls`` and tells the feed what to stream."""

    def __init__(self, roots: Sequence[str], fixed: Iterable[str], search: SearchContracts, dsn: str | None,
                 settings: RollSettings, metrics: Metrics, on_change: OnChange, *,
                 clock: Callable[[], datetime] | None = None) -> None:
        """``clock``: the market's time (default: now), for expiries and the time of a roll."""
        self.roots, self.fixed, self.search, self.dsn = tuple(roots), tuple(fixed), search, dsn
        self.settings, self.metrics, self.on_change = settings, metrics, on_change
        self.clock = clock or (lambda: datetime.now(UTC))
        self.front: dict[str, str] = {}
        self.retiring: dict[str, set[str]] = {}  # root -> earlier fronts, streamed until they expire
        self.streamed: tuple[tuple[str, ...], frozenset[str]] = ((), frozenset())
        self.checked = asyncio.Event()  # set after every check (tests wait on it)
        for name, text in (("contract_rolls_total", "front-month rolls recorded"),
                           ("contract_check_errors_total", "failed contract checks")):
            metrics.describe(name, "counter", text)

    async def run(self, stop: asyncio.Event) -> None:
        """Check now and every ``check_s`` (every 5 s until a first check succeeded) until ``stop``; then note
        the streamed contracts' last ticks once more."""
        loaded = False
        while not stop.is_set():
            try:
                async with self._connection() as conn:
                    if not loaded:
                        await self._load(conn)
                        loaded = True
                    await self.check(conn)
            except db.UNAVAILABLE as exc:
                self.metrics.inc("contract_check_errors_total")
                log.warning("contract check failed (%s); will retry", exc)
            await first_set(stop, timeout=self.settings.check_s if loaded else min(self.settings.check_s, 5.0))
        with contextlib.suppress(*db.UNAVAILABLE):
            async with self._connection() as conn:
                await conn.execute("SELECT internal.note_contract_ticks($1::text[])", list(self.streamed[0]))

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        conn = await db.connect(self.dsn, timeout=10)
        try:
            yield conn
        finally:
            await conn.close()

    async def _load(self, conn: asyncpg.Connection) -> None:
        """The fronts and unexpired earlier fronts recorded by a previous run."""
        today = self.clock().date()
        for root, cid in await conn.fetch("SELECT root, contract_id FROM market.contracts WHERE active"
                                          " AND root = any($1::text[])", list(self.roots)):
            self.front[root] = cid
        for root, cid, expires in await conn.fetch(
                "SELECT r.root, r.from_contract, c.expires_on FROM market.contract_rolls AS r"
                " JOIN market.contracts AS c ON c.contract_id = r.from_contract WHERE r.root = any($1::text[])",
                list(self.roots)):
            if expires is None or expires >= today:
                self.retiring.setdefault(root, set()).add(cid)

    async def check(self, conn: asyncpg.Connection) -> None:
        """One round: ask the gateway about every root, record rolls, hand the feed its contracts."""
        streamed = list(self.fixed)
        for root in self.roots:
            try:
                found = [c for c in await self.search(root) if root_of(c.id) == root]
            except GatewayError as exc:  # keep streaming what we have
                self.metrics.inc("contract_check_errors_total")
                log.warning("contract search for %s failed (%s); keeping %s", root, exc, self.front.get(root))
                found = []
            if found:
                await self._update_root(conn, root, found)
            streamed += self._streamed_for(root, found)
        fronts = frozenset(self.front.values()) | frozenset(self.fixed)
        await conn.execute("SELECT internal.note_contract_ticks($1::text[])", streamed)
        wanted = (tuple(dict.fromkeys(streamed)), fronts)
        if wanted != self.streamed:
            self.streamed = wanted
            log.info("streaming %s (fronts: %s)", ", ".join(wanted[0]), ", ".join(sorted(fronts)))
            await self.on_change(*wanted)
        self.checked.set()

    def _pick_front(self, found: list[Contract]) -> Contract | None:
        return pick_front(found, self.settings, self.clock().date())

    async def _update_root(self, conn: asyncpg.Connection, root: str, found: list[Contract]) -> None:
        front = self._pick_front(found)
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO market.contracts (contract_id, root, description, tick_size, tick_value, expires_on)"
                " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (contract_id) DO UPDATE SET"
                " description = excluded.description, tick_size = excluded.tick_size,"
                " tick_value = excluded.tick_value, updated_at = now()",
                [(c.id, root, c.description, c.tick_size, c.tick_value, expiry_of(c.id)) for c in found])
            current = self.front.get(root)
            if front is None or front.id == current:
                return
            if current is not None and (expiry_of(front.id) or date.max) <= (expiry_of(current) or date.min):
                log.warning("%s: the gateway marks %s active, which expires no later than %s; not rolling back",
                            root, front.id, current)
                return
            await conn.execute("UPDATE market.contracts SET active = false, updated_at = now()"
                               " WHERE root = $1 AND active", root)
            await conn.execute("UPDATE market.contracts SET active = true, updated_at = now()"
                               " WHERE contract_id = $1", front.id)
            if current is not None:
                rolled_at = self.clock()
                await conn.execute(
                    "INSERT INTO market.contract_rolls (root, from_contract, to_contract, rolled_at, reason)"
                    " VALUES ($1, $2, $3, $4, $5)", root, current, front.id, rolled_at, self.settings.rule)
                self.retiring.setdefault(root, set()).add(current)
                self.metrics.inc("contract_rolls_total", root=root)
                log.info("%s rolled from %s to %s at %s (%s)", root, current, front.id, rolled_at.isoformat(),
                         self.settings.rule)
        self.front[root] = front.id

    def _streamed_for(self, root: str, found: list[Contract]) -> list[str]:
        """The root's front, the next contract when the front nears expiry, earlier fronts until they expire."""
        front = self.front.get(root)
        if front is None:
            return []
        today = self.clock().date()
        out = [front]
        front_expiry = expiry_of(front)
        later = sorted((c.id for c in found if (expiry_of(c.id) or date.min) > (front_expiry or date.max)),
                       key=lambda cid: expiry_of(cid) or date.max)
        if later and front_expiry is not None and front_expiry - today <= timedelta(days=self.settings.next_days):
            out.append(later[0])
        self.retiring[root] = {c for c in self.retiring.get(root, set())
                               if c != front and (expiry_of(c) or date.max) >= today}
        return out + sorted(self.retiring[root])
