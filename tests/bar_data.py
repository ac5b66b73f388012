"""Real ProjectX bars from tests/data and ticks synthesized from them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

DATA = Path(__file__).with_name("data") / "mes"
CONTRACT = "CON.F.US.MES.M25"


@dataclass(frozen=True)
class Bar:
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    @property
    def ohlcv(self) -> tuple[Decimal, Decimal, Decimal, Decimal, int]:
        return self.open, self.high, self.low, self.close, self.volume


def read_bars(timeframe: str) -> list[Bar]:
    with (DATA / f"mes_m25_{timeframe}.csv").open() as f:
        return [
            Bar(
                datetime.fromisoformat(row["timestamp"]),
                Decimal(row["open"]),
                Decimal(row["high"]),
                Decimal(row["low"]),
                Decimal(row["close"]),
                int(row["volume"]),
            )
            for row in csv.DictReader(f)
        ]


def ticks_for_bar(bar: Bar, width: timedelta, contract: str = CONTRACT) -> list[tuple]:
    """Four trades that rebuild the bar: open first, high, low, close last; volume split exactly.

    Rows are (contract_id, ts, price, size, side), the five columns a user loads.
    """
    prices = [bar.open, bar.high, bar.low, bar.close]
    sizes = [bar.volume // 4 + (1 if i < bar.volume % 4 else 0) for i in range(4)]
    step = width / 4
    return [
        (contract, bar.ts + step * i, price, size, i % 2)
        for i, (price, size) in enumerate(zip(prices, sizes, strict=True))
    ]
