"""The replay schedule: tapes of several contracts merged by time, with a market clock and trading halts."""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field

from ingest.fake_gateway.tape import Tape, Trade


@dataclass
class QuoteState:
    """Session values behind ``GatewayQuote`` (volume is session-cumulative)."""

    trade_date: object = None
    open: float = 0.0
    high: float = 0.0
    low: float = 0.0
    last: float = 0.0
    volume: int = 0
    prev_close: float = 0.0
    stamp: str | None = None


@dataclass
class Market:
    """Which batch of which tape comes next; ``now_ticks`` is the time of the last trade played."""

    tapes: dict[str, Tape]
    now_ticks: int
    next_batch: dict[str, int] = field(default_factory=dict)
    halted: dict[str, int] = field(default_factory=dict)  # contract -> ticks when it stopped trading
    quotes: dict[str, QuoteState] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for cid, tape in self.tapes.items():
            self.seek(cid, self.now_ticks + 1)

    def seek(self, contract_id: str, ticks: int) -> None:
        tape = self.tapes[contract_id]
        self.next_batch[contract_id] = bisect_left(tape.batches, ticks, key=lambda b: tape.trades[b[0]].ticks)

    def now_for(self, contract_id: str) -> int:
        return min(self.now_ticks, self.halted.get(contract_id, self.now_ticks))

    def peek(self) -> tuple[int, str] | None:
        best: tuple[int, str] | None = None
        for cid, tape in self.tapes.items():
            i = self.next_batch[cid]
            if cid in self.halted or i >= len(tape.batches):
                continue
            ts = tape.trades[tape.batches[i][0]].ticks
            if best is None or ts < best[0]:
                best = (ts, cid)
        return best

    def pop(self) -> tuple[str, list[Trade]] | None:
        """The next batch in time order across all trading contracts, advancing the clock."""
        nxt = self.peek()
        if nxt is None:
            return None
        cid = nxt[1]
        tape = self.tapes[cid]
        s, e = tape.batches[self.next_batch[cid]]
        self.next_batch[cid] += 1
        trades = tape.trades[s:e]
        self.now_ticks = max(self.now_ticks, trades[-1].ticks)
        return cid, trades

    def recent(self, contract_id: str, n: int) -> list[Trade]:
        """The last ``n`` trades of a contract at or before the market clock."""
        tape = self.tapes.get(contract_id)
        if tape is None or n <= 0:
            return []
        end = tape.count_until(self.now_for(contract_id))
        return tape.trades[max(0, end - n):end]
