"""A straightforward Python implementation of the trend-start detectors (docs/trend-starts.md).

This is the executable reading of the spec that the SQL detector (``signals.trend_starts``) is
checked against, and the Python side of ``bench/trend.py``. It is deliberately plain: one loop,
bar numbers 1..N, range helpers rescanned (with a cache so long ranges stay linear).

    python tests/trend_reference.py BARS.csv [--profile NAME] [--events OUT] [--state OUT]

prints the final start list as CSV (timestamp, direction, price, bar_index, confirmed_at,
confirmed_at_bar_index, rule_code, rule), the format the scoring tool reads.
"""

from __future__ import annotations

import argparse
import csv
import sys
from dataclasses import dataclass, field
from decimal import Decimal

RULE_NAMES = {
    "U1": "EXHAUSTION_REVERSAL",
    "U2": "LowUndercutHighRespect",
    "U3": "HigherHighLowerLowDownClose",
    "U4": "EngulfingUpPDSLowBreak",
    "U5": "BreakoutAfterFailedLowV2",
    "D1": "LowThenHigherClose_vs_PDSOpen",
    "D2": "RallyLowBreaksPeakLow_A",
    "D3": "NewHighWeakAdvance_B",
    "D4": "FailedRallyAfterLowBreak_F",
    "D5": "HigherOHLCAfterLowBreak_G",
    "ZU": "HigherHighHigherLow",
    "ZD": "LowerHighLowerLow",
    "FORCED": "FORCED",
}


@dataclass(frozen=True)
class Bar:
    ts: str
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (the spec's letter)
    c: Decimal


@dataclass(frozen=True)
class Start:
    bar: int
    direction: str
    confirmed_at: int
    rule: str


@dataclass
class Result:
    starts: list[Start] = field(default_factory=list)
    events: list[tuple[int, str, int, str]] = field(default_factory=list)  # at, event, bar, detail
    states: list[tuple[int, int | None, int | None, int | None, str | None, int | None]] = field(
        default_factory=list
    )


def read_bars(path: str) -> list[Bar]:
    with open(path, newline="") as fh:
        return [
            Bar(r["timestamp"], Decimal(r["open"]), Decimal(r["high"]), Decimal(r["low"]), Decimal(r["close"]))
            for r in csv.DictReader(fh)
        ]


def final_list(raw: list[Start]) -> list[Start]:
    """§7: sort by (bar, down before up, confirming bar), keep the first per (bar, direction)."""
    seen: set[tuple[int, str]] = set()
    out = []
    for s in sorted(raw, key=lambda s: (s.bar, s.direction != "down", s.confirmed_at)):
        if (s.bar, s.direction) not in seen:
            seen.add((s.bar, s.direction))
            out.append(s)
    return out


def baseline(bars: list[Bar], exhaustion_max_age: int = 6, containment_grace: int = 5, trace: bool = False) -> Result:
    """§1–§7. Bars are indexed 1..N (``B[0]`` is a placeholder)."""
    B = [None, *bars]
    H = [None] + [b.h for b in bars]
    L = [None] + [b.l for b in bars]
    O = [None] + [b.o for b in bars]  # noqa: E741
    C = [None] + [b.c for b in bars]
    n = len(bars)
    res = Result()
    ev = res.events.append

    # min L over x+1..b, cached per anchor x (ends only grow between resets)
    cache: dict[str, list] = {}

    def min_low(key: str, x: int, b: int) -> Decimal | None:
        ent = cache.get(key)
        if ent is None or ent[0] != x or ent[1] > b:
            ent = [x, x, None]
        m = ent[2]
        for k in range(ent[1] + 1, b + 1):
            if m is None or L[k] < m:
                m = L[k]
        ent[1], ent[2] = max(ent[1], b), m
        cache[key] = ent
        return m

    def max_high(key: str, x: int, b: int) -> Decimal | None:
        ent = cache.get(key)
        if ent is None or ent[0] != x or ent[1] > b:
            ent = [x, x, None]
        m = ent[2]
        for k in range(ent[1] + 1, b + 1):
            if m is None or H[k] > m:
                m = H[k]
        ent[1], ent[2] = max(ent[1], b), m
        cache[key] = ent
        return m

    pus = pds = last_bar = cont_ref = cont_start = None
    last_dir = None

    def lower_bar(j):
        return L[j] < L[j - 1] and H[j] < H[j - 1] and C[j] < C[j - 1]

    def higher_bar(j):
        return L[j] > L[j - 1] and H[j] > H[j - 1] and C[j] > C[j - 1]

    def outside(j):
        return H[j] > H[j - 1] and L[j] < L[j - 1]

    def inside(j, r):
        return H[j] <= H[r] and L[j] >= L[r]

    def offer_pds(x, code, at):
        nonlocal pds
        if x > 1 and H[x] < H[x - 1]:
            return False
        if pds is None or H[x] > H[pds]:
            pds = x
            if trace:
                ev((at, "PDS_SET", x, code))
            return True
        return False

    def offer_pus(x, code, at):
        nonlocal pus
        if pus is None or L[x] < L[pus]:
            pus = x
            if trace:
                ev((at, "PUS_SET", x, code))
            return True
        return False

    def confirm(x, d, i, rule):
        nonlocal last_dir, last_bar
        if last_dir == d and x > last_bar and x - last_bar > 1:
            rng = range(last_bar + 1, x)
            if d == "up":
                f = min(rng, key=lambda k: (-H[k], k))
                res.starts.append(Start(f, "down", i, "FORCED"))
                if trace:
                    ev((i, "CDS_FORCED", f, "FORCED"))
            else:
                f = min(rng, key=lambda k: (L[k], k))
                res.starts.append(Start(f, "up", i, "FORCED"))
                if trace:
                    ev((i, "CUS_FORCED", f, "FORCED"))
        res.starts.append(Start(x, d, i, rule))
        if trace:
            ev((i, "CUS" if d == "up" else "CDS", x, f"{rule} {RULE_NAMES[rule]}"))
        last_dir, last_bar = d, x

    if trace and n >= 1:
        res.states.append((1, None, None, None, None, None))
    for i in range(2, n + 1):
        # step 1: X1
        if pus is not None and pus + 1 <= i - 2:
            m = min_low("x1", pus, i - 2)
            if m < L[pus]:
                if trace:
                    ev((i, "PUS_DROPPED", pus, "X1 undercut"))
                pus = None
        P, D = pus, pds
        # step 3: containment
        if cont_ref is not None and not inside(i, cont_ref):
            if trace:
                ev((i, "CONTAINMENT_END", cont_ref, ""))
            cont_ref = cont_start = None
        if cont_ref is None:
            R = D if D is not None else P
            if R is not None and inside(i, R):
                cont_ref, cont_start = R, i
                if trace:
                    ev((i, "CONTAINMENT_START", R, ""))
        frozen = cont_ref is not None and i > cont_start + containment_grace
        # step 4: CUS
        cus = None
        if P is not None and not frozen:
            if lower_bar(i) and not (D is not None and L[i] < L[D]) and i - P <= exhaustion_max_age:
                cus = "U1"
            elif D is not None and D > P and L[i] < L[D] and H[i] <= H[D] and C[i] > C[i - 1]:
                cus = "U2"
            elif outside(i) and C[i] < O[i]:
                cus = "U3"
            elif D is not None and outside(i) and C[i] > C[i - 1] and C[i] > O[i] and L[i] < L[D]:
                cus = "U4"
            elif (
                D is not None
                and D > P
                and not (P + 1 <= i - 1 and min_low("u5", P, i - 1) < L[P])
                and H[i] > H[D]
                and C[i] > C[i - 1]
                and C[i] > O[i]
            ):
                cus = "U5"
        # step 5: CDS
        cds = None
        if D is not None and not frozen:
            mh = max_high("nh", D, i - 1)
            nh = mh is None or not mh > H[D]
            ml = min_low("pb", D, i - 1)
            pb = ml is not None and ml <= L[D]
            if nh and L[i] < L[i - 1] and H[i] > H[i - 1] and C[i] > C[i - 1] and L[i] < O[D]:
                cds = "D1"
            elif nh and pb and H[i] > H[i - 1] and C[i] > C[i - 1] and L[i] < L[D]:
                cds = "D2"
            elif nh and pb and C[i] > C[i - 1] and L[i] >= L[i - 1] and H[i] > H[D]:
                cds = "D3"
            elif nh and L[i - 1] < L[D] and H[i] > H[i - 1] and C[i] < C[i - 1] and C[i] < O[i]:
                cds = "D4"
            elif nh and L[i - 1] < L[D] and higher_bar(i):
                cds = "D5"
        # step 6a
        if cus is not None:
            confirm(P, "up", i, cus)
            pus = None
            if cus == "U3":
                offer_pds(i, "A1", i)
            elif cus != "U4" and H[i] <= H[P]:
                offer_pds(P, "A2", i)
        # step 6b
        if cds is not None:
            confirm(D, "down", i, cds)
            if pus is not None and pus < D:
                if trace:
                    ev((i, "PUS_DROPPED", pus, "X2 older than CDS"))
                pus = None
            if pds == D:
                pds = None
        # step 7
        if not (cont_ref is not None and cont_start != i):
            n1 = False
            if cds is None and H[i] > H[i - 1] and C[i] < O[i]:
                n1 = offer_pds(i, "N1", i)
            if cds is None and not n1 and H[i] <= H[i - 1]:
                offer_pds(i - 1, "N2", i)
            if cus is None and not n1 and (L[i] >= L[i - 1] or (outside(i) and C[i] < O[i])):
                offer_pus(i - 1, "N3", i)
        if trace:
            res.states.append((i, pus, pds, cont_ref, last_dir, last_bar))
    del B
    return res


def variant_b(bars: list[Bar], down_at_swing_high: bool = False, up_between_adjacent_downs: bool = False) -> Result:
    """§13, and the two options of the ``swing`` profile.

    ``down_at_swing_high``: the down start is the bar with the highest high after the up start
    just emitted, up to the PDS (earliest on ties), not necessarily the PDS itself.
    ``up_between_adjacent_downs``: when the new down start is the bar right after the last one,
    that bar is also the up start between them (strict alternation).
    """
    H = [None] + [b.h for b in bars]
    L = [None] + [b.l for b in bars]
    O = [None] + [b.o for b in bars]  # noqa: E741
    C = [None] + [b.c for b in bars]
    res = Result()
    pds = last_down = None
    for i in range(2, len(bars) + 1):
        D = pds
        rule = None
        if D is not None:
            rng = range(D + 1, i)
            nh = all(not H[k] > H[D] for k in rng)
            pb = any(L[k] <= L[D] for k in rng)
            if nh and L[i] < L[i - 1] and H[i] > H[i - 1] and C[i] > C[i - 1] and L[i] < O[D]:
                rule = "D1"
            elif nh and pb and H[i] > H[i - 1] and C[i] > C[i - 1] and L[i] < L[D]:
                rule = "D2"
            elif nh and pb and C[i] > C[i - 1] and L[i] >= L[i - 1] and H[i] > H[D]:
                rule = "D3"
            elif nh and L[i - 1] < L[D] and H[i] > H[i - 1] and C[i] < C[i - 1] and C[i] < O[i]:
                rule = "D4"
            elif nh and L[i - 1] < L[D] and L[i] > L[i - 1] and H[i] > H[i - 1] and C[i] > C[i - 1]:
                rule = "D5"
        if rule is not None:
            x = D
            if last_down is not None and D > last_down + 1:
                f = min(range(last_down + 1, D), key=lambda k: (L[k], k))
                res.starts.append(Start(f, "up", i, "FORCED"))
                if down_at_swing_high:
                    x = min(range(f + 1, D + 1), key=lambda k: (-H[k], k))
            elif up_between_adjacent_downs and last_down is not None and D == last_down + 1:
                res.starts.append(Start(D, "up", i, "FORCED"))
            res.starts.append(Start(x, "down", i, rule))
            last_down = x
            if pds == D:
                pds = None
            if rule == "D4":
                pds = i
        if H[i] > H[i - 1] and C[i] < O[i]:
            pds = i
        elif rule is None and H[i] <= H[i - 1]:
            if pds is None or H[i - 1] > H[pds]:
                pds = i - 1
    return res


def swing(bars: list[Bar]) -> Result:
    """The ``swing`` profile: variant B with down starts at the swing high and strict alternation."""
    return variant_b(bars, down_at_swing_high=True, up_between_adjacent_downs=True)


def zigzag(bars: list[Bar]) -> Result:
    """The ``realtime`` profile: alternating swing extremes, each confirmed by the first bar reversing from it.

    Looking for an up start, the candidate is the lowest low since the last down start (bar 1 at first,
    earliest on ties); a bar with a higher high and a higher low than the bar before confirms it (ZU),
    and the highest high after it becomes the down candidate. Down starts mirror this (ZD).
    """
    H = [None] + [b.h for b in bars]
    L = [None] + [b.l for b in bars]
    res = Result()
    pus: int | None = 1
    pds: int | None = 1
    for i in range(2, len(bars) + 1):
        if pus is not None and H[i] > H[i - 1] and L[i] > L[i - 1]:
            res.starts.append(Start(pus, "up", i, "ZU"))
            pds = min(range(pus + 1, i + 1), key=lambda k: (-H[k], k))
            pus = None
        elif pds is not None and H[i] < H[i - 1] and L[i] < L[i - 1]:
            res.starts.append(Start(pds, "down", i, "ZD"))
            pus = min(range(pds + 1, i + 1), key=lambda k: (L[k], k))
            pds = None
        else:
            if pus is not None and L[i] < L[pus]:
                pus = i
            if pds is not None and H[i] > H[pds]:
                pds = i
    return res


PROFILES = {"baseline": baseline, "variant_b": variant_b, "swing": swing, "realtime": zigzag}


def write_starts(bars: list[Bar], starts: list[Start], out) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["timestamp", "direction", "price", "bar_index", "confirmed_at", "confirmed_at_bar_index",
                "rule_code", "rule"])
    for s in starts:
        b = bars[s.bar - 1]
        price = b.l if s.direction == "up" else b.h
        w.writerow([b.ts, s.direction, price, s.bar, bars[s.confirmed_at - 1].ts, s.confirmed_at, s.rule,
                    RULE_NAMES[s.rule]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bars")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="baseline")
    args = ap.parse_args(argv)
    bars = read_bars(args.bars)
    res = PROFILES[args.profile](bars)
    write_starts(bars, final_list(res.starts), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
