"""Parse ``GatewayTrade`` payloads into ticks, defensively.

The hub sends ``[contractId, [trade, ...]]`` (sometimes one trade object instead of a list,
sometimes wrapped in ``{"data": ...}``, sometimes with ``null`` entries). Every bad item is dropped
and counted by reason; the good ones in the same message survive. Prints carry no id, so identical
prints within one message get ordinals (``seq`` 0, 1, ...) that keep them apart while a replay of
the same message maps onto the same keys.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
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


def _price(value: Any) -> Decimal:
    if type(value) is float:  # what ProjectX sends; ``type`` (not isinstance) also keeps bools out
        price = Decimal(repr(value))
    elif type(value) is int:
        price = Decimal(value)
    else:
        raise BadField("price", f"not a number: {value!r:.40}")
    if not price.is_finite() or price <= 0:
        raise BadField("price", f"not positive: {value!r:.40}")
    return price


def _whole(value: Any, name: str, low: int, high: int) -> int:
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) is not int:
        raise BadField(name, f"not a whole number: {value!r:.40}")
    if not low <= value <= high:
        raise BadField(name, f"out of range: {value!r:.40}")
    return value


def _one(contract_id: str, item: Any) -> Tick:
    if not isinstance(item, dict):
        raise BadField("trade", f"not an object: {item!r:.40}")
    ts_text = item.get("timestamp")
    if not isinstance(ts_text, str):
        raise BadField("timestamp", f"not a string: {ts_text!r:.40}")
    return Tick(
        contract_id=contract_id,
        ts=parse_timestamp(ts_text),
        price=_price(item.get("price")),
        size=_whole(item.get("volume"), "volume", 1, 2**31 - 1),
        side=_whole(item.get("type"), "type", 0, 1),
    )


def parse_gateway_trade(arguments: Any, subscribed: set[str] | frozenset[str]) -> Parsed:
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
    detail = ""
    seen: dict[tuple, int] = {}
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
        print_ = tick[1:5]
        seq = seen.get(print_, 0)
        seen[print_] = seq + 1
        ticks.append(tick._replace(seq=seq) if seq else tick)
    return Parsed(ticks, problems, detail)
