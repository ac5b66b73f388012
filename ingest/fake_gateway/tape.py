"""The tick tape: trades synthesized deterministically from real bars, so REST bars and the live stream agree."""

from __future__ import annotations

import csv
import random
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

from ingest import resources
from ingest.fake_gateway.bars import Bar, aggregate, bucket

TICKS = 10_000_000  # .NET ticks (100 ns) per second: timestamps carry 7 fractional digits
MES_5M = resources.demo_tape()


@dataclass(frozen=True, slots=True)
class Trade:
    """One print on the tape; ``index`` is its position on the contract's tape (stable across runs)."""

    contract_id: str
    index: int
    ticks: int  # 100 ns units since the Unix epoch
    price: float
    volume: int
    side: int  # 0 buy aggressor, 1 sell aggressor

    @property
    def timestamp(self) -> str:
        """The .NET round-trip form: 7 fractional digits and ``+00:00``."""
        return format_ticks(self.ticks)


def format_ticks(ticks: int, style: str = "7") -> str:
    """Format 100 ns ticks. ``style``: ``7`` (``.1234567+00:00``), ``Z`` (``.1234567Z``), ``naive`` (no offset),
    ``3`` (milliseconds, ``+00:00``), ``0`` (whole seconds)."""
    sec, frac = divmod(ticks, TICKS)
    base = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if style == "3":
        return f"{base}.{frac // 10_000:03d}+00:00"
    if style == "0":
        return f"{base}+00:00"
    suffix = {"7": "+00:00", "Z": "Z", "naive": ""}[style]
    return f"{base}.{frac:07d}{suffix}"


def load_bars(path: Path = MES_5M) -> list[Bar]:
    """Read a ``timestamp,open,high,low,close,volume`` CSV (ascending) into bars."""
    with path.open(newline="") as f:
        return [Bar(int(datetime.fromisoformat(r["timestamp"]).timestamp()), float(r["open"]), float(r["high"]),
                    float(r["low"]), float(r["close"]), int(r["volume"])) for r in csv.DictReader(f)]


def synthesize(bar: Bar, rng: random.Random, width: int, tick_size: float = 0.25) -> list[tuple[int, float, int, int]]:
    """A few ``(ticks, price, volume, side)`` prints reproducing ``bar`` exactly.

    Open first, close last, high and low in between, the volume split exactly; sometimes one print
    is split into two identical-timestamp prints (byte-identical when the halves are equal).
    """
    k = min(rng.randint(4, 8), bar.v)
    middle = [bar.h, bar.l]
    rng.shuffle(middle)
    ticks_range = round((bar.h - bar.l) / tick_size)
    for _ in range(k - 4):
        middle.insert(rng.randint(0, len(middle)), bar.l + rng.randint(0, ticks_range) * tick_size)
    prices = [bar.o, *middle, bar.c][:k] if k >= 4 else [bar.o, bar.h, bar.l, bar.c][:k]
    offsets = sorted(rng.sample(range(width * TICKS), k))
    cuts = sorted(rng.sample(range(1, bar.v), k - 1))
    volumes = [b - a for a, b in zip([0, *cuts], [*cuts, bar.v])]
    out: list[tuple[int, float, int, int]] = []
    prev = bar.o
    for off, price, vol in zip(offsets, prices, volumes):
        side = (0 if price > prev else 1) if price != prev else rng.randint(0, 1)
        prev = price
        ts = bar.t * TICKS + off
        if vol >= 2 and len(out) and rng.random() < 0.15:
            half = vol // 2
            out += [(ts, price, half, side), (ts, price, vol - half, side)]
        else:
            out.append((ts, price, vol, side))
    return out


@dataclass
class Tape:
    """All trades of one contract, their batching into ``GatewayTrade`` messages, and bar views of them."""

    contract_id: str
    trades: list[Trade]
    batches: list[tuple[int, int]]  # [start, end) index ranges into ``trades``
    _ticks: list[int] = field(default_factory=list, repr=False)
    _cache: dict[tuple[int, int], list[Bar]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._ticks = [t.ticks for t in self.trades]

    @classmethod
    def from_bars(cls, contract_id: str, bars: list[Bar], seed: int = 0, width: int = 300) -> Tape:
        """Synthesize a tape from ascending bars ``width`` seconds wide (deterministic for a seed)."""
        trades: list[Trade] = []
        batches: list[tuple[int, int]] = []
        for bar in bars:
            rng = random.Random(f"{seed}:{contract_id}:{bar.t}")
            prints = synthesize(bar, rng, width)
            i = 0
            while i < len(prints):
                j = min(len(prints), i + rng.randint(1, 3))
                while j < len(prints) and prints[j][0] == prints[j - 1][0]:
                    j += 1  # identical prints travel in one message
                batches.append((len(trades) + i, len(trades) + j))
                i = j
            base = len(trades)
            trades += [Trade(contract_id, base + n, ts, p, v, s) for n, (ts, p, v, s) in enumerate(prints)]
        return cls(contract_id, trades, batches)

    def first_index_at(self, ticks: int) -> int:
        """Index of the first trade at or after ``ticks``."""
        return bisect_left(self._ticks, ticks)

    def count_until(self, ticks: int) -> int:
        """Number of trades at or before ``ticks``."""
        return bisect_right(self._ticks, ticks)

    def bars(self, unit: int, n: int, now_ticks: int, partial: bool) -> list[Bar]:
        """Ascending bars of trades up to ``now_ticks``; the bar still forming at ``now_ticks`` only if ``partial``."""
        full = self._bars(unit, n)
        now_s = now_ticks // TICKS
        forming = bucket(now_s, unit, n)
        end = bisect_right([b.t for b in full], forming) if full else 0
        out = full[:end]
        if out and out[-1].t == forming:
            out.pop()
            if partial:
                lo, hi = self.first_index_at(forming * TICKS), self.count_until(now_ticks)
                if hi > lo:
                    out += aggregate(((t.ticks // TICKS, t.price, t.price, t.price, t.price, t.volume)
                                      for t in self.trades[lo:hi]), unit, n)
        return out

    def _bars(self, unit: int, n: int) -> list[Bar]:
        key = (unit, n)
        if key not in self._cache:
            if unit == 1 or (unit, n) == (2, 1):
                src = ((t.ticks // TICKS, t.price, t.price, t.price, t.price, t.volume) for t in self.trades)
            else:
                src = ((b.t, b.o, b.h, b.l, b.c, b.v) for b in self._bars(2, 1))
            self._cache[key] = aggregate(src, unit, n)
        return self._cache[key]


@lru_cache(maxsize=8)
def default_tape(contract_id: str, seed: int = 0, price_offset: float = 0.0, volume_divisor: int = 1) -> Tape:
    """A tape synthesized from the real MES M25 5-minute bars (optionally shifted, thinned: a back month)."""
    bars = load_bars()
    if price_offset or volume_divisor != 1:
        bars = [Bar(b.t, b.o + price_offset, b.h + price_offset, b.l + price_offset, b.c + price_offset,
                    max(b.v // volume_divisor, 8)) for b in bars]
    return Tape.from_bars(contract_id, bars, seed)
