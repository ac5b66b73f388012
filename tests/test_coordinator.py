"""signals.coordinate on hand-inserted signals: the rules give the expected decisions, and the
watermark, the unique key and superseded signals behave as documented."""

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
           profile: str = "swing", contract: str = C, superseded: bool = False) -> int:
    row = sql.execute(
        """INSERT INTO signals.detected_signals (contract_id, timeframe, profile, signal_type, "timestamp",
               signal_price, confirmed_at, details, superseded_at)
           VALUES (%s, %s, %s, %s, %s, 5000, %s, '{}', CASE WHEN %s THEN now() END) RETURNING signal_id""",
        (contract, timeframe, profile, "uptrend_start" if up else "downtrend_start", start, confirmed, superseded),
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


def h(n: float) -> timedelta:
    return timedelta(hours=n)


def test_same_direction_on_1h_and_15m_within_the_window_is_a_decision(sql: psycopg.Connection) -> None:
    up_1h = signal(sql, "1h", True, T0, T0 + h(2))  # known 13:00
    up_15m = signal(sql, "15m", True, T0 + h(2.25), T0 + h(2.75))  # known 13:00
    down_15m = signal(sql, "15m", False, T0 + h(3), T0 + h(3.5))  # no 1h down start
    result = coordinate(sql)
    assert result == {"type": "decisions", "consumer": "test", "from": 0, "through": down_15m, "signals": 3,
                      "decisions": 1}
    assert decisions(sql) == [("confluence_1h_15m", "long", [up_1h, up_15m], up_15m)]
    reason = sql.execute("SELECT reason, starts, timeframes FROM signals.decisions").fetchone()
    assert reason == ((f"confluence_1h_15m: up starts confirmed on 1h and 15m within 02:00:00 "
                       f"(signals {up_1h}, {up_15m}, starting 2025-05-06 10:00, 2025-05-06 12:15 UTC)"),
                      [T0, T0 + h(2.25)], ["1h", "15m"])
    # Nothing new past the watermark: nothing happens.
    assert coordinate(sql)["signals"] == 0
    assert len(decisions(sql)) == 1


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
    s4 = signal(sql, "4h", False, T0 - h(4), T0)  # known 08:00 local bar end ... within 6 h of 12:00
    d1 = signal(sql, "1h", False, T0, T0 + h(1))
    d15 = signal(sql, "15m", False, T0 + h(1), T0 + h(1.5))
    u1 = signal(sql, "1h", True, T0 + h(3), T0 + h(4))
    u15 = signal(sql, "15m", True, T0 + h(4), T0 + h(4.25))
    for _ in range(5):  # one signal per batch
        assert coordinate(sql, rules, limit=1)["signals"] == 1
    assert coordinate(sql, rules, limit=1)["signals"] == 0
    assert sorted(decisions(sql)) == sorted([
        ("confluence_1h_15m", "short", [d1, d15], d15),
        ("confluence_4h_1h_15m", "short", [s4, d1, d15], d15),
        ("confluence_1h_15m", "long", [u1, u15], u15),
    ])
    # Another coordinator name reads everything and makes its own decisions (the key includes the
    # consumer); a second run of it adds nothing.
    assert coordinate(sql, rules, consumer="shadow") | {"through": 0} == {
        "type": "decisions", "consumer": "shadow", "from": 0, "through": 0, "signals": 5, "decisions": 3}
    assert coordinate(sql, rules, consumer="shadow")["decisions"] == 0
    by_consumer = sql.execute("SELECT consumer, count(*) FROM signals.decisions GROUP BY 1 ORDER BY 1").fetchall()
    assert by_consumer == [("shadow", 3), ("test", 3)]
    watermark = sql.execute("SELECT last_signal_id, batches, signals_read, decisions_made "
                            "FROM internal.coordinator_watermarks WHERE consumer = 'test'").fetchone()
    assert watermark == (u15, 5, 5, 3)


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
