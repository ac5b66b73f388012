"""``mechtrade demo``: the whole pipeline on a replayed MES day, shown live, then summed up."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

import asyncpg

from ingest import db, migrate
from ingest.cli.backtest import format_summary
from ingest.cli.shared import TIMEFRAMES
from ingest.replay_harness import DAY_END, DAY_START, DEMO_RULE, ReplayHarness, Step

log = logging.getLogger(__name__)

BACKTEST_TIMEFRAME = "15m"  # the demo rule's fastest timeframe: its decisions are filled on these bars
DESCRIPTION = f"""\
Run everything in one process against the configured database (migrated first if needed): a local
fake gateway replays a day of real MES trades ({DAY_START:%Y-%m-%d %H:%M} to {DAY_END:%H:%M} UTC) into
the ingester; at every 15-minute close the trend jobs (realtime profile, 15m and 1h) run, and the
coordinator turns their signals into decisions by the rule {DEMO_RULE.name}. Bars, signals and
decisions are shown as they appear; a summary follows. Running it again over the same day stores
nothing new: the ticks are duplicates and the signals are already known."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("demo", help="the whole pipeline on a replayed MES day, shown live",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--speed", type=float, default=600.0, metavar="X",
                   help="market seconds per wall second (default 600: a 15-minute bar every 1.5 s); 0 = flat out")
    p.add_argument("--hours", type=float, default=23.0, help="market hours to replay (default the whole session, 23)")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many wall seconds")
    p.set_defaults(run=run)


@dataclass
class Summary:
    start: datetime
    end: datetime
    ticks: int = 0  # trades the gateway sent
    bars: dict[str, int] = field(default_factory=dict)
    signals: int = 0
    decisions: int = 0
    live_signals: int = 0  # of those: confirmed during the replay (the rest came from the warm-up history)
    live_decisions: int = 0
    backtest: str = ""  # signals.backtest_summary of the demo rule's decisions, as a table

    def lines(self) -> list[str]:
        bars = "  ".join(f"{tf} {self.bars.get(tf, 0)}" for tf in TIMEFRAMES)
        return [f"replayed   {self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M} UTC",
                f"ticks      {self.ticks}", f"bars       {bars}  (closed)",
                f"signals    {self.signals} ({self.live_signals} confirmed during the replay)",
                f"decisions  {self.decisions} ({self.live_decisions} during the replay)",
                "", f"backtest of the decisions of {DEMO_RULE.name} on {BACKTEST_TIMEFRAME} bars "
                "(warm-up and replay; signals.backtest_summary, no costs)", self.backtest or "no bars"]


class View:
    """A live terminal view (ANSI redraw) on a TTY; one line per event otherwise."""

    def __init__(self, out: TextIO, start: datetime, end: datetime) -> None:
        self.out, self.start, self.end = out, start, end
        self.tty = out.isatty()
        self.bars: list[asyncpg.Record] = []
        self.signals: list[asyncpg.Record] = []
        self.decisions: list[asyncpg.Record] = []
        self.counts: dict[str, int] = {}
        self.ticks = 0
        self.at = start
        self.warmup_signals = self.warmup_decisions = 0

    def update(self, step: Step | None, bars: list[asyncpg.Record], counts: dict[str, int],
               decisions: list[asyncpg.Record]) -> None:
        new_signals = [x for x in step.new_signals if x["confirmed_at"] >= self.start] if step else []
        new_decisions = [d for d in decisions if d["trigger_confirmed_at"] >= self.start]
        if step:
            self.at, self.ticks = step.at, self.ticks + step.ticks
            self.signals += new_signals
            self.warmup_signals += len(step.new_signals) - len(new_signals)
        self.bars, self.counts = bars, counts
        self.decisions += new_decisions
        self.warmup_decisions += len(decisions) - len(new_decisions)
        if self.tty:
            self._redraw()
            return
        if step and (warmup := len(step.new_signals) - len(new_signals)):
            tfs = ", ".join(sorted({x["timeframe"] for x in step.new_signals if x["confirmed_at"] < self.start}))
            self._line(f"{step.at:%H:%M}  warm-up  {warmup} {tfs} signals from the history before the replay")
        if step and step.at.minute == 0 and bars:
            b = bars[-1]
            self._line(f"{step.at:%H:%M}  bar 1h   {b['bucket']:%H:%M}  O {b['open']}  H {b['high']}  L {b['low']}  "
                       f"C {b['close']}  V {b['volume']}   ticks so far {self.ticks}")
        for x in new_signals:
            self._line(f"{self.at:%H:%M}  signal   {_signal(x)}")
        for d in new_decisions:
            self._line(f"{self.at:%H:%M}  DECISION {_decision(d)}")

    def _line(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def _redraw(self) -> None:
        done = (self.at - self.start) / (self.end - self.start)
        width = 30
        rows = [(f"\x1b[1mmechtrade demo\x1b[0m  MES replay  {self.at:%Y-%m-%d %H:%M} UTC  "
                 f"[{'#' * round(done * width):<{width}}] {done:4.0%}"),
                f"ticks {self.ticks}   bars " + "  ".join(f"{tf} {self.counts.get(tf, 0)}" for tf in TIMEFRAMES),
                "", "\x1b[1mlatest 15m bars\x1b[0m"]
        rows += [f"  {b['bucket']:%H:%M}  O {b['open']:>9}  H {b['high']:>9}  L {b['low']:>9}  C {b['close']:>9}  "
                 f"V {b['volume']:>6}" for b in self.bars[-5:]]
        rows += ["", f"\x1b[1msignals\x1b[0m ({len(self.signals)}, and {self.warmup_signals} from the warm-up)"]
        rows += [f"  {_signal(s)}" for s in self.signals[-8:]]
        rows += ["", f"\x1b[1mdecisions\x1b[0m ({len(self.decisions)}, and {self.warmup_decisions} from the warm-up)"]
        rows += [f"  \x1b[1;{32 if d['direction'] == 'long' else 31}m{_decision(d)}\x1b[0m"
                 for d in self.decisions[-8:]]
        self.out.write("\x1b[H\x1b[2J" + "\n".join(rows) + "\n")
        self.out.flush()


def _signal(s: asyncpg.Record) -> str:
    arrow = "up  " if s["signal_type"] == "uptrend_start" else "down"
    return (f"#{s['signal_id']:<5} {s['timeframe']:>3} {arrow} start {s['timestamp']:%m-%d %H:%M} "
            f"at {s['signal_price']}, confirmed {s['confirmed_at']:%m-%d %H:%M}")


def _decision(d: asyncpg.Record) -> str:
    return f"{d['direction'].upper():<5} at {d['price']}  ({d['reason']})"


async def run(args: argparse.Namespace) -> int:
    if sys.stdout.isatty():  # progress lines would scroll the live view away: warnings only
        logging.getLogger().setLevel(max(logging.WARNING, logging.getLogger().level))
    summary = await demo(db.database_url(), speed=args.speed, hours=args.hours, duration=args.duration)
    print("\n".join(["", "summary", *summary.lines()]))
    return 0


async def demo(dsn: str | None, *, speed: float = 600.0, hours: float = 23.0, duration: float | None = None,
               out: TextIO | None = None) -> Summary:
    """Migrate, run the pipeline over ``hours`` of the demo day, show it on ``out``, return the summary."""
    out = out or sys.stdout
    conn = await db.connect(dsn)
    try:
        plan = await migrate.migrate(conn)
        if plan.pending:
            log.info("database %s migrated: %d migration(s) applied", db.describe(dsn), len(plan.pending))
        first_decision = await conn.fetchval("SELECT coalesce(max(decision_id), 0) FROM signals.decisions")
    finally:
        await conn.close()
    end = min(DAY_END, DAY_START + timedelta(hours=hours))
    view = View(out, DAY_START, end)
    step_s = 900.0 / speed if speed > 0 else 0.0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration if duration else None
    with tempfile.TemporaryDirectory(prefix="mechtrade-demo-") as spill:
        async with ReplayHarness(dsn, end=end, spill_dir=Path(spill)) as p:
            first_signal = p.last_signal_id
            seen = first_decision
            due = loop.time()
            while not p.done and (deadline is None or loop.time() < deadline):
                step = await p.step()
                seen = await _show(p, view, step, seen)
                due += step_s
                await asyncio.sleep(max(0.0, min(due, deadline or due) - loop.time()))
            await p.drain()
            seen = await _show(p, view, None, seen)
            counts = await _bar_counts(p.conn, DAY_START, p.clock)
            signals = await p.conn.fetchval("SELECT count(*) FROM signals.detected_signals WHERE signal_id > $1",
                                            first_signal)
            backtest = await p.conn.fetchrow(
                "SELECT * FROM signals.backtest_summary($1, $2, NULL, $3, rule => $4, consumer => $5)",
                p.contracts[0], BACKTEST_TIMEFRAME, p.clock, DEMO_RULE.name, p.coordinator.settings.consumer)
            return Summary(DAY_START, p.clock, p.played, counts, signals, len(view.decisions) + view.warmup_decisions,
                           len(view.signals), len(view.decisions),
                           format_summary(backtest) if backtest else "")


async def _show(p: ReplayHarness, view: View, step: Step | None, seen: int) -> int:
    """Read what is new since ``seen`` (decisions) and up to the clock (bars) into the view."""
    decisions = await p.conn.fetch(
        "SELECT d.*, s.confirmed_at AS trigger_confirmed_at FROM signals.decisions AS d"
        " JOIN signals.detected_signals AS s ON s.signal_id = d.trigger_signal_id"
        " WHERE d.decision_id > $1 ORDER BY d.decision_id", seen)
    bars = await p.conn.fetch(
        "SELECT bucket, open, high, low, close, volume FROM market.bars WHERE contract_id = $1 AND timeframe = $2"
        " AND bucket >= $3 AND bucket < $4 ORDER BY bucket DESC LIMIT 5",
        p.contracts[0], "1h" if not view.tty else "15m", view.start, p.clock)
    counts = await _bar_counts(p.conn, view.start, p.clock) if view.tty or step is None else view.counts
    view.update(step, list(reversed(bars)), counts, decisions)
    return decisions[-1]["decision_id"] if decisions else seen


async def _bar_counts(conn: asyncpg.Connection, start: datetime, end: datetime) -> dict[str, int]:
    """Bars built from the replayed ticks that closed by ``end``, per timeframe."""
    rows = await conn.fetch(
        "SELECT timeframe, count(*) AS n FROM market.bars WHERE bucket >= $1 AND closes_at <= $2"
        " AND source = 'ticks' GROUP BY timeframe", start, end)
    return {r["timeframe"]: r["n"] for r in rows}
