"""Bar arithmetic: CME-session-aligned buckets and OHLCV aggregation, as ProjectX labels bars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Iterable
from zoneinfo import ZoneInfo

CHICAGO = ZoneInfo("America/Chicago")
UNITS = {1: "second", 2: "minute", 3: "hour", 4: "day", 5: "week", 6: "month"}
_EPOCH = date(1970, 1, 1)
_MONDAY = date(1969, 12, 29)


@dataclass(slots=True)
class Bar:
    """One OHLCV bar; ``t`` is its start in Unix seconds."""

    t: int
    o: float
    h: float
    l: float  # noqa: E741
    c: float
    v: int

    def add(self, price: float, volume: int) -> None:
        self.h = max(self.h, price)
        self.l = min(self.l, price)
        self.c = price
        self.v += volume


@lru_cache(maxsize=4096)
def _session_open(utc_hour: int) -> int:
    """Unix seconds of the latest 17:00 America/Chicago at or before the hour ``utc_hour`` (hours since epoch)."""
    local = datetime.fromtimestamp(utc_hour * 3600, CHICAGO)
    day = local.date() if local.hour >= 17 else local.date() - timedelta(days=1)
    return int(datetime(day.year, day.month, day.day, 17, tzinfo=CHICAGO).timestamp())


def trade_date(t: int) -> date:
    """The CME trade date of Unix second ``t``: sessions opening at 17:00 CT belong to the next day."""
    return (datetime.fromtimestamp(t, CHICAGO) + timedelta(hours=7)).date()


def _midnight(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())


def bucket(t: int, unit: int, n: int) -> int:
    """Start (Unix seconds) of the ``unit``/``n`` bar holding second ``t``.

    Seconds and minutes align to the epoch, hours to the 17:00 CT session open, days are labelled
    00:00Z of their trade date, weeks start on the trade date's Monday, months on its first day.
    """
    if unit == 1:
        return t - t % n
    if unit == 2:
        return t - t % (60 * n)
    if unit == 3:
        start = _session_open(t // 3600)
        return start + (t - start) // (3600 * n) * 3600 * n
    d = trade_date(t)
    if unit == 4:
        days = (d - _EPOCH).days
        return _midnight(_EPOCH + timedelta(days=days - days % n))
    if unit == 5:
        weeks = (d - _MONDAY).days // 7
        return _midnight(_MONDAY + timedelta(days=7 * (weeks - weeks % n)))
    months = d.year * 12 + d.month - 1
    months -= months % n
    return _midnight(date(months // 12, months % 12 + 1, 1))


def aggregate(points: Iterable[tuple[int, float, float, float, float, int]], unit: int, n: int) -> list[Bar]:
    """Aggregate time-ordered ``(t, o, h, l, c, v)`` rows (ticks or finer bars) into ascending bars."""
    out: list[Bar] = []
    cur: Bar | None = None
    for t, o, h, lo, c, v in points:
        b = bucket(t, unit, n)
        if cur is None or cur.t != b:
            cur = Bar(b, o, h, lo, c, v)
            out.append(cur)
        else:
            cur.h = max(cur.h, h)
            cur.l = min(cur.l, lo)
            cur.c = c
            cur.v += v
    return out


def iso(t: int) -> str:
    """Bar time as ProjectX prints it: ``2025-05-13T04:45:00+00:00``."""
    return datetime.fromtimestamp(t, UTC).isoformat()


def bar_json(bar: Bar) -> str:
    """One bar as JSON text, prices printed with nine fractional digits like the real API."""
    return (f'{{"t":"{iso(bar.t)}","o":{bar.o:.9f},"h":{bar.h:.9f},"l":{bar.l:.9f},'
            f'"c":{bar.c:.9f},"v":{bar.v}}}')
