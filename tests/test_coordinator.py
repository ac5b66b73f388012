"""signals.coordinate on hand-inserted signals: the rules give the expected position transitions,
and the watermark, the unique keys, forced and superseded signals behave as documented."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from ingest import config
from ingest.config import ConfigError, Rule
from ingest.coordinator import Coordinator

T0 = datetime(2025, 5, 6, 10, 0, tzinfo=UTC)
C = "CON.F.US.MES.M25"
RULES = [Rule("confluence_1h_15m", ("1h", "15m"), "2 hours").as_json()]


def signal(sql: psycopg.Connection, timeframe: str, up: bool, start: datetime, confirmed: datetime, *,
           profile: str = "realtime", contract: str = C, superseded: bool = False, rule: str = "ZU") -> int:
    row = sql.execute(
        """INSERT INTO signals.detected_signals (contract_id, timeframe, profile, signal_type, "timestamp",
               signal_price, confirmed_at, details, superseded_at)
           VALUES (%s, %s, %s, %s, %s, 5000, %s, jsonb_build_object('rule', %s::text),
                   CASE WHEN %s THEN now() END) RETURNING signal_id""",
        (contract, timeframe, profile, "uptrend_start" if up else "downtrend_start", start, confirmed, rule,
         superseded),
    ).fetchone()
    assert row
    return int(row[0])


def coordinate(sql: psycopg.Connection, rules: list[dict] | None = None, limit: int = 500,
               consumer: str = "test") -> dict:
    row = sql.execute("SELECT signals.coordinate(%s, %s::jsonb, %s)",
                      (consumer, json.dumps(rules or RULES), limit)).fetchone()
    assert row
    return row[0]


def decisions(sql: psycopg.Connection) -> list[tuple]:
    return sql.execute("SELECT rule, direction, inputs, trigger_signal_id FROM signals.decisions "
                       "ORDER BY decision_id").fetchall()


def transitions(sql: psycopg.Connection) -> list[tuple]:
    return sql.execute("SELECT action, direction, known_at, trigger_signal_id FROM signals.decisions "
                       "ORDER BY known_at, decision_id").fetchall()


def h(n: float) -> timedelta:
    return timedelta(hours=n)


def test_same_direction_on_1h_and_15m_within_the_window_enters_and_a_lone_opposite_start_exits(
        sql: psycopg.Connection) -> None:
    up_1h = signal(sql, "1h", True, T0, T0 + h(2))  # known 13:00
    up_15m = signal(sql, "15m", True, T0 + h(2.25), T0 + h(2.75))  # known 13:00
    down_15m = signal(sql, "15m", False, T0 + h(3), T0 + h(3.5))  # known 13:45, no 1h down start
    result = coordinate(sql)
    assert result == {"type": "decisions", "consumer": "test", "from": 0, "through": down_15m, "signals": 3,
                      "decisions": 2}
    assert decisions(sql) == [("confluence_1h_15m", "long", [up_1h, up_15m], up_15m),
                              ("confluence_1h_15m", "flat", [None, down_15m], down_15m)]
    assert transitions(sql) == [("enter", "long", T0 + h(3), up_15m), ("exit", "flat", T0 + h(3.75), down_15m)]
    reasons = sql.execute("SELECT reason, starts, timeframes FROM signals.decisions ORDER BY decision_id").fetchall()
    assert reasons == [
        ((f"confluence_1h_15m: up starts confirmed on 1h and 15m within 02:00:00 "
          f"(signals {up_1h}, {up_15m}, starting 2025-05-06 10:00, 2025-05-06 12:15 UTC): enter long"),
         [T0, T0 + h(2.25)], ["1h", "15m"]),
        ((f"confluence_1h_15m: down start confirmed on 15m (signal {down_15m}, starting 2025-05-06 13:00 UTC) "
          "while long: exit to flat"), [None, T0 + h(3)], ["1h", "15m"]),
    ]
    # Nothing new past the watermark: nothing happens.
    assert coordinate(sql)["signals"] == 0
    assert len(decisions(sql)) == 2


def test_agreement_the_other_way_reverses_and_the_same_way_again_decides_nothing(sql: psycopg.Connection) -> None:
    up_1h = signal(sql, "1h", True, T0, T0 + h(1))  # known 12:00
    up_15m = signal(sql, "15m", True, T0 + h(1), T0 + h(1.5))  # known 11:45
    signal(sql, "15m", True, T0 + h(2), T0 + h(2.5))  # known 12:45: already long
    down_1h = signal(sql, "1h", False, T0 + h(2), T0 + h(3))  # known 14:00: 1h alone exits
    down_15m = signal(sql, "15m", False, T0 + h(4), T0 + h(4.5))  # known 14:45: both down, short
    assert coordinate(sql)["decisions"] == 3
    assert transitions(sql) == [("enter", "long", T0 + h(2), up_15m), ("exit", "flat", T0 + h(4), down_1h),
                                ("enter", "short", T0 + h(4.75), down_15m)]
    up_1h_again = signal(sql, "1h", True, T0 + h(4), T0 + h(5))  # known 16:00
    up_15m_again = signal(sql, "15m", True, T0 + h(5.5), T0 + h(5.75))  # known 16:00: agreement, reverse
    # The 1h start alone exits at 16:00; the agreement at that same instant turns the exit into the reverse
    # (written twice, one decision).
    assert coordinate(sql)["decisions"] == 2
    assert transitions(sql)[-1] == ("reverse", "long", T0 + h(6), up_15m_again)
    assert len(transitions(sql)) == 4
    assert decisions(sql)[0][2] == [up_1h, up_15m] and up_1h_again


def test_forced_starts_never_decide(sql: psycopg.Connection) -> None:
    signal(sql, "1h", True, T0, T0 + h(2), rule="FORCED")  # known 13:00, but only with hindsight
    signal(sql, "15m", True, T0 + h(2.25), T0 + h(2.75))  # known 13:00: no unforced 1h partner
    signal(sql, "1h", False, T0 + h(2), T0 + h(3), rule="FORCED")
    assert coordinate(sql)["signals"] == 3
    assert decisions(sql) == []


def test_one_decision_per_rule_and_contract_at_one_instant(sql: psycopg.Connection) -> None:
    """Opposite signals known at the same instant (two detectors, or a start and its opposite confirmed by
    one bar) never give two contradictory decisions: the first transition at that instant stands."""
    up_1h = signal(sql, "1h", True, T0, T0 + h(2))  # known 13:00
    up_15m = signal(sql, "15m", True, T0 + h(2), T0 + h(2.75))  # known 13:00: long
    signal(sql, "15m", False, T0 + h(2.25), T0 + h(2.75))  # also known 13:00: would exit
    assert coordinate(sql)["decisions"] == 1
    # In a later batch as well.
    signal(sql, "1h", False, T0 + h(1), T0 + h(2))
    assert coordinate(sql)["decisions"] == 0
    assert decisions(sql) == [("confluence_1h_15m", "long", [up_1h, up_15m], up_15m)]
    # A signal known before the position's last change is stale: no decision.
    signal(sql, "15m", False, T0 + h(1), T0 + h(1.5))  # known 11:45
    assert coordinate(sql)["decisions"] == 0
    instants = sql.execute("SELECT count(*), count(DISTINCT (rule, contract_id, known_at)) FROM signals.decisions")
    assert instants.fetchone() == (1, 1)


def test_the_reference_price_is_the_confirming_bar_close(sql: psycopg.Connection) -> None:
    sql.execute(
        "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
        " VALUES (%s, '15m', %s, 5010, 5020, 5005, 5017.25, 100)", (C, T0 + h(2.75)))
    signal(sql, "1h", True, T0, T0 + h(2))
    signal(sql, "15m", True, T0 + h(2.25), T0 + h(2.75))  # start price 5000, confirming bar closes 5017.25
    coordinate(sql)
    assert sql.execute("SELECT price, known_at FROM signals.decisions").fetchall() == [(5017.25, T0 + h(3))]


def test_either_order_and_short_decisions(sql: psycopg.Connection) -> None:
    down_15m = signal(sql, "15m", False, T0, T0 + h(0.5))  # known 10:45
    down_1h = signal(sql, "1h", False, T0, T0 + h(1))  # known 12:00, 1h15 later: inside the window
    assert coordinate(sql)["decisions"] == 1
    assert decisions(sql) == [("confluence_1h_15m", "short", [down_1h, down_15m], down_1h)]


def test_outside_window_other_profile_or_contract_is_not_a_decision(sql: psycopg.Connection) -> None:
    signal(sql, "1h", True, T0, T0 + h(2))  # known 13:00
    signal(sql, "15m", True, T0 + h(4), T0 + h(5))  # known 15:15: 2h15 later
    signal(sql, "15m", True, T0 + h(2), T0 + h(2.5), profile="baseline")
    signal(sql, "15m", True, T0 + h(2), T0 + h(2.5), contract="CON.F.US.MNQ.M25")
    signal(sql, "4h", True, T0 + h(2), T0 + h(2.5))  # not in the rule
    assert coordinate(sql)["signals"] == 5
    assert decisions(sql) == []


def test_superseded_signals_decide_nothing_and_replacements_decide_once(sql: psycopg.Connection) -> None:
    up_1h = signal(sql, "1h", True, T0, T0 + h(2))
    signal(sql, "15m", True, T0 + h(2), T0 + h(2.5), superseded=True)  # withdrawn before it was read
    assert coordinate(sql)["decisions"] == 0
    first = signal(sql, "15m", True, T0 + h(2), T0 + h(2.5))
    assert coordinate(sql)["decisions"] == 1
    # The job recomputes: the 15m start is withdrawn and replaced by one for the same bar.
    sql.execute("UPDATE signals.detected_signals SET superseded_at = now() WHERE signal_id = %s", (first,))
    again = signal(sql, "15m", True, T0 + h(2), T0 + h(2.75))
    assert coordinate(sql) | {"through": None} == {"type": "decisions", "consumer": "test", "from": first,
                                                   "through": None, "signals": 1, "decisions": 0}
    assert decisions(sql) == [("confluence_1h_15m", "long", [up_1h, first], first)]
    assert again > first
    # A partner withdrawn before the trigger was detected does not count.
    sql.execute("UPDATE signals.detected_signals SET superseded_at = now() WHERE signal_id = %s", (up_1h,))
    signal(sql, "15m", True, T0 + h(3), T0 + h(3.25))
    assert coordinate(sql)["decisions"] == 0


def test_rules_are_data_and_batches_do_not_change_the_outcome(sql: psycopg.Connection) -> None:
    rules = RULES + [Rule("confluence_4h_1h_15m", ("4h", "1h", "15m"), "6 hours").as_json()]
    # Detected in the order they became known, as the jobs do.
    s4 = signal(sql, "4h", False, T0 - h(4), T0)  # known 10:00, within 6 h of 12:00
    d15 = signal(sql, "15m", False, T0 + h(1), T0 + h(1.5))  # known 11:45
    d1 = signal(sql, "1h", False, T0, T0 + h(1))  # known 12:00
    u15 = signal(sql, "15m", True, T0 + h(4), T0 + h(4.25))  # known 14:30
    u1 = signal(sql, "1h", True, T0 + h(3), T0 + h(4))  # known 15:00
    for _ in range(5):  # one signal per batch
        assert coordinate(sql, rules, limit=1)["signals"] == 1
    assert coordinate(sql, rules, limit=1)["signals"] == 0
    assert sorted(decisions(sql), key=str) == sorted([
        ("confluence_1h_15m", "short", [d1, d15], d1),
        ("confluence_4h_1h_15m", "short", [s4, d1, d15], d1),
        ("confluence_1h_15m", "flat", [None, u15], u15),  # the 15m turns up alone: exit
        ("confluence_4h_1h_15m", "flat", [None, None, u15], u15),
        ("confluence_1h_15m", "long", [u1, u15], u1),  # both up: enter long; the 4h rule stays flat
    ], key=str)
    in_one_batch = decisions(sql)
    sql.execute("DELETE FROM signals.decisions")
    sql.execute("DELETE FROM internal.coordinator_watermarks")
    assert coordinate(sql, rules)["decisions"] == 5
    assert sorted(decisions(sql), key=str) == sorted(in_one_batch, key=str)
    # Another coordinator name reads everything and makes its own decisions (the key includes the
    # consumer); a second run of it adds nothing.
    assert coordinate(sql, rules, consumer="shadow") | {"through": 0} == {
        "type": "decisions", "consumer": "shadow", "from": 0, "through": 0, "signals": 5, "decisions": 5}
    assert coordinate(sql, rules, consumer="shadow")["decisions"] == 0
    by_consumer = sql.execute("SELECT consumer, count(*) FROM signals.decisions GROUP BY 1 ORDER BY 1").fetchall()
    assert by_consumer == [("shadow", 5), ("test", 5)]
    watermark = sql.execute("SELECT last_signal_id, batches, signals_read, decisions_made "
                            "FROM internal.coordinator_watermarks WHERE consumer = 'test'").fetchone()
    assert watermark == (u1, 1, 5, 5)


def test_analysts_read_decisions_but_cannot_decide(sql: psycopg.Connection) -> None:
    sql.execute("SET ROLE mechtrade_analyst")
    assert sql.execute("SELECT count(*) FROM signals.decisions").fetchone() == (0,)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        coordinate(sql)


def test_rules_from_yaml_are_checked() -> None:
    cfg = config.load()
    assert cfg.coordinator.rules[0].timeframes == ("1h", "15m")
    env = {"MECHTRADE_COORDINATOR_RULES": '[{"name": "x", "timeframes": ["1h"], "window": "1 hour"}]'}
    with pytest.raises(ConfigError, match="two or more"):
        config.load(env=env)
    env = {"MECHTRADE_COORDINATOR_RULES": '[{"name": "x", "kind": "vote", "timeframes": ["1h", "4h"], '
           '"window": "1 hour"}]'}
    with pytest.raises(ConfigError, match="kind"):
        config.load(env=env)


@pytest.mark.parametrize(("rule", "problem"), [
    ({"timeframes": ["2h", "15m"]}, "unknown timeframe 2h"),
    ({"profile": "nope"}, "unknown profile nope"),
    ({"window": "-1 hour"}, "is not a positive interval"),
    ({"kind": "vote"}, "kind vote is not confluence"),
])
def test_rules_the_database_cannot_apply_are_refused(sql: psycopg.Connection, rule: dict, problem: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=problem):
        coordinate(sql, [RULES[0] | rule])
    assert sql.execute("SELECT count(*) FROM internal.coordinator_watermarks").fetchone() == (0,)


def test_a_coordinator_with_bad_rules_stops_with_a_config_error(db_dsn: str) -> None:
    settings = config.Coordinator(rules=(Rule("r", ("1h", "90m"), "1 hour"),), reconnect_initial_s=0.01)
    with pytest.raises(ConfigError, match="unknown timeframe 90m"):
        asyncio.run(asyncio.wait_for(Coordinator(settings, db_dsn).run(asyncio.Event()), 10))
    with pytest.raises(ConfigError, match="interval"):
        settings = config.Coordinator(rules=(Rule("r", ("1h", "15m"), "two hours"),))
        asyncio.run(asyncio.wait_for(Coordinator(settings, db_dsn).run(asyncio.Event()), 10))


def test_coordinator_settings_from_the_environment() -> None:
    cfg = config.load(env={
        "MECHTRADE_COORDINATOR_POLL_S": "0.5", "PORT": "9000",
        "MECHTRADE_COORDINATOR_RULES": '[{"name": "a", "timeframes": ["4h", "1h"], "window": "6 hours", '
                                       '"contracts": ["CON.F.US.MES.M25"]}]',
    }).coordinator
    assert (cfg.poll_s, cfg.health_port) == (0.5, 9000)
    assert cfg.rules == (Rule("a", ("4h", "1h"), "6 hours", contracts=("CON.F.US.MES.M25",)),)


def test_an_exit_becomes_the_reverse_all_timeframes_agree_on_at_that_instant(sql: psycopg.Connection) -> None:
    """The 1h and 15m jobs report one close one after the other: the first alone exits, the second completes
    the agreement at the same instant, which then reverses (one decision at that instant, whatever the
    batches)."""
    signal(sql, "15m", False, T0, T0 + h(0.5))  # known 10:45
    signal(sql, "1h", False, T0, T0 + h(1))  # known 12:00: short
    assert coordinate(sql)["decisions"] == 1
    signal(sql, "1h", True, T0 + h(3), T0 + h(5))  # known 16:00, alone: exit
    assert coordinate(sql)["decisions"] == 1
    assert transitions(sql)[-1][:3] == ("exit", "flat", T0 + h(6))
    up_15m = signal(sql, "15m", True, T0 + h(5.5), T0 + h(5.75))  # known 16:00 too: reverse
    assert coordinate(sql)["decisions"] == 1
    assert [t[:2] for t in transitions(sql)] == [("enter", "short"), ("reverse", "long")]
    assert transitions(sql)[-1][2:] == (T0 + h(6), up_15m)
