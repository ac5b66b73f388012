"""End to end on real sockets and the real database: a day of MES trades through the fake gateway,
the ingester, the trend jobs at every bar close and the coordinator. The signals the jobs wrote live
equal ``signals.trend_starts`` recomputed over the final bars, and the decisions equal the rule
applied to those signals (by an independent reading of the rule, here in Python)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import psycopg

from ingest.fake_gateway import MES_M25
from ingest.replay_harness import DEMO_RULE, ReplayHarness

WINDOW = timedelta(hours=2)
assert DEMO_RULE.window == "2 hours"


def live_signals(sql: psycopg.Connection, timeframe: str) -> list[tuple]:
    return sql.execute(
        """SELECT "timestamp", signal_type, signal_price, confirmed_at, details ->> 'rule'
           FROM signals.detected_signals
           WHERE contract_id = %s AND timeframe = %s AND profile = 'realtime' AND superseded_at IS NULL
           ORDER BY 1, 2""", (MES_M25, timeframe)).fetchall()


def recomputed(sql: psycopg.Connection, timeframe: str) -> list[tuple]:
    return sql.execute(
        """SELECT start_ts, CASE direction WHEN 'up' THEN 'uptrend_start' ELSE 'downtrend_start' END,
                  price, confirmed_at, rule
           FROM signals.trend_starts(%s, %s, NULL, NULL, 'realtime') ORDER BY 1, 2""", (MES_M25, timeframe)).fetchall()


def rule_applied(sql: psycopg.Connection) -> set[tuple]:
    """The confluence rule as positions. Each unforced 1h or 15m start agrees with the latest unforced
    same-direction start on the other timeframe detected before it and known (its confirming bar closed)
    within the window of it; an agreement is known when its last input is. In detection order: an agreement
    enters or reverses to its side, a lone start against the position exits; a position changes at most once
    per instant, where an exit gives way to the reverse agreed at that same instant; nothing known before the
    last change counts."""
    rows = sql.execute(
        """SELECT signal_id, timeframe, signal_type, confirmed_at, market.session_bar_end(timeframe, confirmed_at)
           FROM signals.detected_signals WHERE profile = 'realtime' AND timeframe IN ('1h', '15m')
               AND superseded_at IS NULL AND details ->> 'rule' <> 'FORCED'""").fetchall()
    events = []
    for sid, tf, kind, _confirmed, known in rows:
        side = "long" if kind == "uptrend_start" else "short"
        partners = [r for r in rows if r[1] != tf and r[2] == kind and r[0] < sid and abs(r[4] - known) <= WINDOW]
        if partners:
            p = max(partners, key=lambda r: (r[3], r[0]))
            inputs = (p[0], sid) if tf == "15m" else (sid, p[0])
            events.append((sid, max(known, p[4]), False, side, inputs))
        else:
            events.append((sid, known, True, side, (None, sid) if tf == "15m" else (sid, None)))
    decided: list[tuple] = []  # (position after, inputs, trigger, known_at)
    for sid, known, alone, side, inputs in sorted(events):
        last = decided[-1] if decided else None
        position = last[0] if last else "flat"
        if last and last[3] == known and not alone and position == "flat":
            before = decided[-2][0] if len(decided) > 1 else "flat"
            if side != before:
                decided[-1] = (side, inputs, sid, known)
            continue
        target = side if not alone else "flat" if position not in ("flat", side) else None
        if target is None or target == position or (last and known <= last[3]):
            continue
        decided.append((target, inputs, sid, known))
    return {d[:3] for d in decided}


def test_a_day_of_trades_gives_the_recomputed_signals_and_the_rule_decisions(
        db_dsn: str, sql: psycopg.Connection, tmp_path: Path) -> None:
    async def go() -> ReplayHarness:
        async with ReplayHarness(db_dsn, spill_dir=tmp_path / "spill") as p:
            await p.run()
            return p

    p = asyncio.run(go())
    assert p.played > 1000
    assert sql.execute("SELECT count(*) FROM market.ticks").fetchone() == (p.played,)
    for tf in ("15m", "1h"):
        assert live_signals(sql, tf) == recomputed(sql, tf)
    # Each job ran only on closed bars, so nothing it wrote had to be withdrawn.
    assert sql.execute("SELECT count(*) FROM signals.detected_signals WHERE superseded_at IS NOT NULL").fetchone() \
        == (0,)
    live_day = sql.execute("SELECT count(*) FROM signals.detected_signals WHERE detected_at >= now() - interval '1 h'"
                           " AND confirmed_at >= '2025-05-11 22:00Z'").fetchone()
    assert live_day[0] >= 3, "the replayed day itself must produce signals"
    decisions = {(d, tuple(i), t) for d, i, t in sql.execute(
        "SELECT direction, inputs, trigger_signal_id FROM signals.decisions").fetchall()}
    assert decisions == rule_applied(sql)
    assert decisions, "the day must produce at least one decision"
    # Never two decisions at one instant, never one from a forced start.
    assert sql.execute("SELECT count(*) = count(DISTINCT known_at) FROM signals.decisions").fetchone() == (True,)
    assert sql.execute("""SELECT count(*) FROM signals.decisions AS d JOIN signals.detected_signals AS s
                          ON s.signal_id = ANY(d.inputs) WHERE s.details ->> 'rule' = 'FORCED'""").fetchone() == (0,)
    assert p.coordinator.signals_read == sql.execute("SELECT count(*) FROM signals.detected_signals").fetchone()[0]
