"""Parse ``GatewayTrade`` payloads into ticks, defensively.

The hub sends ``[contractId, [trade, ...]]`` (sometimes one trade object instead of a list,
sometimes wrapped in ``{"data": ...}``, sometimes with ``null`` entries). Every bad item is dropped
and counted by reason; the good ones in the same message survive. Items outside the input limits
(a timestamp implausibly far from the receive time, a price outside the contract's band) are
dropped the same way, so nothing stored can break a later start.

Prints carry no id, so the key of a tick is the print plus an ordinal ``seq`` among identical
prints of one *delivery*: an array message is one delivery; trades sent one object per message
form one delivery while their timestamps do not go back on one connection (:class:`ObjectRuns`).
Identical prints in one delivery are kept apart (0, 1, ...), while a redelivered message or a
replay after resubscribing maps onto the keys already stored.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

class Tick(NamedTuple):
    """One trade; the tuple itself is the row of ``market.ticks`` and its key."""

    contract_id: str
    ts: datetime
    price: Decimal
    size: int
    side: int
    seq: int = 0


@dataclass
class Parsed:
    ticks: list[Tick]
    problems: Counter[str]  # reason -> count; reasons are a small fixed set (metric labels)
    detail: str = ""  # the first problem, described, for a (rate-limited) log line
    single: bool = False  # the payload was one trade object, not an array
    rejected: list[tuple[str, Any]] = field(default_factory=list)  # (reason, item) outside the input limits


@dataclass(frozen=True)
class Limits:
    """What a plausible trade looks like. Times are checked against the receive time."""

    max_future_s: float = 300.0  # exchange time ahead of our clock
    max_age_s: float = 0.0  # exchange time behind our clock; 0: no limit (replays of old data)
    min_price: Decimal = Decimal("0.000001")
    max_price: Decimal = Decimal("10000000")
    price_bands: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # contract id or root

    def band(self, contract_id: str) -> tuple[Decimal, Decimal]:
        parts = contract_id.split(".")
        root = parts[3] if len(parts) > 3 else ""
        return self.price_bands.get(contract_id) or self.price_bands.get(root) or (self.min_price, self.max_price)

    def bounds(self, contract_id: str, received_at: float) -> Bounds:
        """The limits for the trades of one message of ``contract_id`` received at ``received_at``."""
        low, high = self.band(contract_id)
        earliest = _instant(received_at - self.max_age_s, EARLIEST) if self.max_age_s else EARLIEST
        return Bounds(earliest, _instant(received_at + self.max_future_s, LATEST), low, high)


EARLIEST, LATEST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)


def _instant(seconds: float, beyond: datetime) -> datetime:
    """``seconds`` since the epoch as a UTC datetime; ``beyond`` (no bound) past what a datetime holds."""
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, ValueError, OSError):
        return beyond


class Bounds(NamedTuple):
    """:class:`Limits` made ready to compare for one message: a plausible trade lies inside all four."""

    earliest: datetime
    latest: datetime
    low: Decimal
    high: Decimal

    def problem(self, ts: datetime, price: Decimal) -> str | None:
        """The reason a trade at ``ts`` and ``price`` is implausible, or None."""
        if ts > self.latest:
            return "ts_future"
        if ts < self.earliest:
            return "ts_too_old"
        if not self.low <= price <= self.high:
            return "price_out_of_band"
        return None


NO_LIMITS = Limits(max_future_s=float("inf"))


class BadField(ValueError):
    """One field of a trade is unusable."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(f"{field}: {why}")
        self.field = field


def parse_timestamp(text: str) -> datetime:
    """ISO 8601 date and time, to the second or finer (ProjectX sends 7 fractional digits); finer than
    microseconds is truncated. A timestamp without an offset is taken as UTC, ProjectX's only zone.
    """
    try:
        if len(text) < 19 or text[10] not in "T ":  # a date and a time, at least to the second
            raise ValueError(text)
        ts = datetime.fromisoformat(text)
    except ValueError:
        raise BadField("timestamp", f"not ISO 8601: {text[:40]!r}") from None
    if ts.tzinfo is UTC:
        return ts
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


_DECIMALS: dict[float, Decimal] = {}  # float price -> its Decimal: a market trades at a few hundred prices
_DECIMALS_MAX = 100_000


def _price(value: Any) -> Decimal:
    if type(value) is float:  # what ProjectX sends; ``type`` (not isinstance) also keeps bools out
        price = Decimal(repr(value))
    elif type(value) is int:
        price = Decimal(value)
    else:
        raise BadField("price", f"not a number: {value!r:.40}")
    if not price.is_finite() or price <= 0:
        raise BadField("price", f"not positive: {value!r:.40}")
    if type(value) is float:
        if len(_DECIMALS) >= _DECIMALS_MAX:
            _DECIMALS.clear()
        _DECIMALS[value] = price
    return price


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise BadField(name, f"not a whole number: {value!r:.40}")
    if not low <= value <= high:
        raise BadField(name, f"out of range: {value!r:.40}")
    return value


MAX_SIZE = 2**31 - 1
_new_tick = tuple.__new__  # builds a Tick from a tuple without NamedTuple's keyword handling


def _one(contract_id: str, item: Any) -> Tick:
    """The trade ``item`` as the row COPY writes (``seq`` 0); the first unusable field raises :class:`BadField`.
    Usual values take the short way (a known price, whole numbers in range); anything else is checked in full."""
    if not isinstance(item, dict):
        raise BadField("trade", f"not an object: {item!r:.40}")
    ts_text = item.get("timestamp")
    if not isinstance(ts_text, str):
        raise BadField("timestamp", f"not a string: {ts_text!r:.40}")
    ts = parse_timestamp(ts_text)
    value = item.get("price")
    price = _DECIMALS.get(value) if type(value) is float else None
    if price is None:
        price = _price(value)
    size, side = item.get("volume"), item.get("type")
    if type(size) is not int or not 1 <= size <= MAX_SIZE:
        size = _whole(size, "volume", 1, MAX_SIZE)
    if type(side) is not int or not 0 <= side <= 1:
        side = _whole(side, "type", 0, 1)
    return _new_tick(Tick, (contract_id, ts, price, size, side, 0))


def parse_gateway_trade(arguments: Any, subscribed: set[str] | frozenset[str], limits: Limits = NO_LIMITS,
                        received_at: float = 0.0) -> Parsed:
    """Ticks from the ``arguments`` of one ``GatewayTrade`` invocation, with problems counted."""
    problems: Counter[str] = Counter()
    if not isinstance(arguments, list) or len(arguments) != 2 or not isinstance(arguments[0], str):
        problems["bad_arguments"] += 1
        return Parsed([], problems, f"arguments: {arguments!r:.80}")
    contract_id, payload = arguments
    if contract_id not in subscribed:
        problems["unknown_contract"] += 1
        return Parsed([], problems, f"unknown contract {contract_id!r:.60}")
    if isinstance(payload, dict) and set(payload) == {"data"}:
        payload = payload["data"]
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        problems["empty"] += 1
    ticks: list[Tick] = []
    rejected: list[tuple[str, Any]] = []
    detail = ""
    earliest, latest, low, high = bounds = limits.bounds(contract_id, received_at)
    for item in items:
        if item is None:
            problems["null_item"] += 1
            continue
        try:
            tick = _one(contract_id, item)
        except BadField as exc:
            problems[f"bad_{exc.field}"] += 1
            detail = detail or str(exc)
            continue
        except (InvalidOperation, OverflowError) as exc:
            problems["bad_number"] += 1
            detail = detail or str(exc)
            continue
        if not (earliest <= tick[1] <= latest and low <= tick[2] <= high):
            reason = bounds.problem(tick[1], tick[2]) or "price_out_of_band"
            problems[reason] += 1
            rejected.append((reason, item))
            detail = detail or f"{reason}: {tick[1].isoformat()} at {tick[2]}"
            continue
        ticks.append(tick)
    if len(set(ticks)) < len(ticks):  # identical prints: numbered in the order sent
        ticks = _numbered(ticks)
    return Parsed(ticks, problems, detail, single=not isinstance(payload, list), rejected=rejected)


def _numbered(ticks: list[Tick]) -> list[Tick]:
    """``ticks`` (all ``seq`` 0) with identical prints numbered 0, 1, ... in order."""
    repeats = {tick: 0 for tick, count in Counter(ticks).items() if count > 1}
    numbered = list(ticks)
    for i, tick in enumerate(ticks):
        if tick in repeats:
            seq = repeats[tick]
            repeats[tick] = seq + 1
            if seq:
                numbered[i] = tick._replace(seq=seq)
    return numbered


class ObjectRuns:
    """Ordinals for trades sent one object per message, per contract.

    A run is the trades of one connection whose timestamps do not go back. Within a run, identical
    prints are numbered 0, 1, ...; a timestamp older than the run's newest (a redelivered batch, a
    replay) or a new connection starts a new run, numbered from 0 again, so a redelivery maps onto
    the keys already stored. Only the counts at the newest timestamp are kept.
    """

    def __init__(self) -> None:
        self._runs: dict[str, tuple[int, datetime, Counter[tuple]]] = {}

    def number(self, connection: int, tick: Tick) -> Tick:
        run = self._runs.get(tick.contract_id)
        if run is None or run[0] != connection or tick.ts != run[1]:
            run = (connection, tick.ts, Counter())
            self._runs[tick.contract_id] = run
        counts = run[2]
        seq = counts[tick[1:5]]
        counts[tick[1:5]] += 1
        return tick._replace(seq=seq) if seq else tick

    def end(self, contract_id: str) -> None:
        """An array message came: it is a delivery of its own."""
        self._runs.pop(contract_id, None)
