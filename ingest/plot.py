"""Candlestick charts of ``market.bars`` with trend starts and decisions marked (matplotlib, PNG)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg

from ingest.config import DEFAULT_PROFILE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

UP, DOWN, DECISION = "#26a69a", "#ef5350", "#ffc107"

BARS_SQL = """
SELECT bucket, closes_at, open, high, low, close
FROM market.bars
WHERE contract_id = $1 AND timeframe = $2 AND bucket >= $3 AND bucket < $4
ORDER BY bucket"""

# The current starts the incremental jobs stored for this series and profile.
STORED_STARTS_SQL = """
SELECT "timestamp", signal_type = 'uptrend_start', signal_price
FROM signals.detected_signals
WHERE contract_id = $1 AND timeframe = $2 AND profile = $5 AND superseded_at IS NULL
    AND "timestamp" >= $3 AND "timestamp" < $4
ORDER BY "timestamp", signal_type"""

# Whether an incremental job covers the series (then its stored signals are the truth, even if none).
JOB_SQL = """
SELECT EXISTS (SELECT 1 FROM signals.trend_jobs WHERE contract_id = $1 AND timeframe = $2 AND profile = $3)"""

# No job covers the series: the starts recomputed from the bars of the window.
RECOMPUTED_STARTS_SQL = """
SELECT start_ts, direction = 'up', price
FROM signals.trend_starts($1, $2, $3, $4, $5)
ORDER BY start_ts, direction"""

# Position changes on the contract, placed where they became knowable (known_at: when the last input's
# confirming bar closed). Decisions made before positions existed (action NULL) are loose signals: left out.
DECISIONS_SQL = """
SELECT d.known_at, d.direction, d.rule
FROM signals.decisions AS d
WHERE d.contract_id = $1 AND d.profile = $4 AND d.action IS NOT NULL
    AND d.known_at >= $2 AND d.known_at < $3
ORDER BY d.known_at, d.decision_id"""
MARKS = {"long": ("*", UP, 1), "short": ("*", DOWN, -1), "flat": ("X", "#9e9e9e", 1)}


@dataclass
class Chart:
    """What a chart shows: bars (open and close times, OHLC), trend starts (bar open time, up?, price) and
    decisions (when they became known, the position after them: long, short or flat, rule)."""

    contract_id: str
    timeframe: str
    buckets: list[datetime] = field(default_factory=list)
    closes: list[datetime] = field(default_factory=list)
    ohlc: list[tuple[float, float, float, float]] = field(default_factory=list)
    starts: list[tuple[datetime, bool, float]] = field(default_factory=list)
    starts_source: str = "stored"
    decisions: list[tuple[datetime, str, str]] = field(default_factory=list)

    def bar_at(self, ts: datetime) -> int | None:
        """Index of the bar opening at ``ts``, if charted."""
        i = bisect.bisect_left(self.buckets, ts)
        return i if i < len(self.buckets) and self.buckets[i] == ts else None

    def bar_acting_on(self, ts: datetime) -> int | None:
        """Index of the first charted bar still open after ``ts``: where something known at ``ts`` can be acted on."""
        i = bisect.bisect_right(self.closes, ts)
        return i if i < len(self.closes) else None


async def load(conn: asyncpg.Connection, contract_id: str, timeframe: str, start: datetime, end: datetime,
               profile: str = DEFAULT_PROFILE) -> Chart:
    """Bars with ``start <= bucket < end``, their trend starts (stored by the series' job, recomputed when no job
    covers it) and the decisions, if the coordinator's table exists."""
    chart = Chart(contract_id, timeframe)
    for r in await conn.fetch(BARS_SQL, contract_id, timeframe, start, end):
        chart.buckets.append(r["bucket"])
        chart.closes.append(r["closes_at"])
        chart.ohlc.append((float(r["open"]), float(r["high"]), float(r["low"]), float(r["close"])))
    args = (contract_id, timeframe, start, end, profile)
    rows = await conn.fetch(STORED_STARTS_SQL, *args)
    if not rows and chart.ohlc and not await conn.fetchval(JOB_SQL, contract_id, timeframe, profile):
        rows, chart.starts_source = await conn.fetch(RECOMPUTED_STARTS_SQL, *args), "recomputed"
    chart.starts = [(r[0], r[1], float(r[2])) for r in rows]
    if await conn.fetchval("SELECT to_regclass('signals.decisions') IS NOT NULL"):
        rows = await conn.fetch(DECISIONS_SQL, contract_id, start, end, profile)
        chart.decisions = [(r[0], r[1], r[2]) for r in rows]
    return chart


def render(chart: Chart, out: Path, dpi: int = 100) -> Figure:
    """Write the PNG; returns the figure (x is the bar index, y the price). No pyplot: no GUI, no global state."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(max(8.0, min(40.0, len(chart.ohlc) * 0.12)), 5), dpi=dpi)
    ax = fig.add_subplot()
    lows = [low for _, _, low, _ in chart.ohlc]
    highs = [h for _, h, _, _ in chart.ohlc]
    pad = (max(highs, default=1.0) - min(lows, default=0.0)) * 0.03 or 1.0
    for i, (o, h, low, c) in enumerate(chart.ohlc):
        color = UP if c >= o else DOWN
        ax.vlines(i, low, h, colors=color, linewidth=1, zorder=1, gid=f"wick-{i}")
        body = abs(c - o) or pad * 0.05  # a doji still shows a thin body
        ax.add_patch(Rectangle((i - 0.35, min(o, c)), 0.7, body, facecolor=color, edgecolor=color, zorder=2,
                               gid=f"body-{i}"))
    for ts, up, price in chart.starts:
        if (i := chart.bar_at(ts)) is not None:
            ax.plot(i, price - pad if up else price + pad, "^" if up else "v", color=UP if up else DOWN,
                    markeredgecolor="black", markersize=9, zorder=3, gid=f"start-{'up' if up else 'down'}-{i}")
    for ts, position, rule in chart.decisions:
        if (i := chart.bar_acting_on(ts)) is not None:
            o, h, low, c = chart.ohlc[i]
            marker, color, above = MARKS[position]
            y = h + 2 * pad if above > 0 else low - 2 * pad
            ax.plot(i, y, marker, color=DECISION if marker == "*" else color, markeredgecolor="black",
                    markersize=14 if marker == "*" else 9, zorder=4, gid=f"decision-{position}-{i}")
            ax.annotate(f"{position.upper()} ({rule})", (i, y), textcoords="offset points",
                        xytext=(0, 9 if above > 0 else -14), ha="center", fontsize=7, fontweight="bold",
                        color=color)
    if chart.ohlc:
        ax.set_xlim(-1, len(chart.ohlc))
        ax.set_ylim(min(lows) - 4 * pad, max(highs) + 4 * pad)
        ticks = list(range(0, len(chart.buckets), max(1, len(chart.buckets) // 8)))
        fmt = "%Y-%m-%d" if chart.timeframe == "1d" else "%Y-%m-%d %H:%M"
        ax.set_xticks(ticks, [chart.buckets[t].strftime(fmt) for t in ticks], fontsize=7)
    ax.set_title(f"{chart.contract_id} {chart.timeframe} (UTC): {_n(len(chart.ohlc), 'bar')}, "
                 f"{_n(len(chart.starts), 'trend start')} ({chart.starts_source}), "
                 f"{_n(len(chart.decisions), 'decision')}", fontsize=9)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    return fig


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def render_backtest(title: str, bars: list, trades: list, out: Path, dpi: int = 100) -> Figure:
    """Price (closes) with each trade drawn from entry to exit, and the equity curve below; returns the figure.

    ``bars`` rows have bucket, closes_at and close (drawn at its close time), ``trades`` the columns of
    signals.backtest."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 7), dpi=dpi)
    price, equity = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    price.plot([b["closes_at"] for b in bars], [float(b["close"]) for b in bars], color="#607d8b", linewidth=1,
               gid="closes")
    total, curve = 0.0, [(bars[0]["bucket"], 0.0)] if bars else []
    for t in trades:
        long = t["side"] == "long"
        color = UP if t["pnl"] > 0 else DOWN
        price.plot([t["entry_ts"], t["exit_ts"]], [float(t["entry_price"]), float(t["exit_price"])], color=color,
                   linewidth=2, gid=f"trade-{t['trade_no']}")
        price.plot(t["entry_ts"], float(t["entry_price"]), "^" if long else "v", color=UP if long else DOWN,
                   markeredgecolor="black", markersize=8, gid=f"entry-{t['trade_no']}")
        total += float(t["pnl"])
        curve.append((t["exit_ts"], total))
    equity.step([x for x, _ in curve], [y for _, y in curve], where="post", color=DECISION, gid="equity")
    equity.axhline(0, color="black", linewidth=0.5)
    equity.set_ylabel("equity (USD)", fontsize=8)
    price.set_title(f"{title}: {_n(len(trades), 'trade')}, net {total:,.2f} USD", fontsize=9)
    for ax in (price, equity):
        ax.grid(alpha=0.2)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=dpi)
    return fig
