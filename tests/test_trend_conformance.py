"""The SQL detector reproduces the reference files of the trend-start specification exactly.

Specification: docs/trend-starts.md; reference files: tests/data/mes/ogfixed_reference.

The real MES 1d and 4h bars go into ``market.history_bars``; ``signals.trend_starts``,
``signals.trend_events`` and ``signals.trend_states`` must then give, row for row, the baseline's
starts, per-bar events and per-bar state (``ogfixed_reference/``) and variant B's starts
(``variantb_reference/``). The 'detail' wording of events is informational (spec 12), so only its
code is compared.
"""

from __future__ import annotations

import csv
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import trend_reference
from ingest.config import DEFAULT_PROFILE

DATA = Path(__file__).parent / "data" / "mes"
CONTRACT = "CON.F.US.MES.M25"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def load_bars(sql: psycopg.Connection, timeframe: str, contract: str = CONTRACT, path: Path | None = None) -> None:
    rows = read_csv(path or DATA / f"mes_m25_{timeframe}.csv")
    with sql.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(contract, timeframe, r["timestamp"], r["open"], r["high"], r["low"], r["close"], r["volume"])
             for r in rows],
        )


@pytest.fixture
def mes(sql: psycopg.Connection) -> psycopg.Connection:
    load_bars(sql, "1d")
    load_bars(sql, "4h")
    return sql


def starts(sql: psycopg.Connection, timeframe: str, profile: str) -> list[tuple]:
    return sql.execute(
        "SELECT start_ts, direction, price, confirmed_at, rule FROM signals.trend_starts(%s, %s, NULL, NULL, %s)",
        (CONTRACT, timeframe, profile),
    ).fetchall()


@pytest.mark.parametrize("timeframe", ["1d", "4h"])
def test_baseline_starts(mes: psycopg.Connection, timeframe: str) -> None:
    ref = read_csv(DATA / "ogfixed_reference" / f"mes_m25_{timeframe}_ogfixed_starts.csv")
    want = [(r["timestamp"], r["direction"], Decimal(r["price"]), r["confirmed_at"], r["rule_code"]) for r in ref]
    got = [(iso(t), d, p, iso(c), rule) for t, d, p, c, rule in starts(mes, timeframe, "baseline")]
    assert got == want


@pytest.mark.parametrize("timeframe", ["1d", "4h"])
def test_baseline_events(mes: psycopg.Connection, timeframe: str) -> None:
    ref = read_csv(DATA / "ogfixed_reference" / f"mes_m25_{timeframe}_ogfixed_events.csv")
    want = [
        (int(r["at_bar_index"]), r["at_timestamp"], r["event"], int(r["bar_index"]), r["bar_timestamp"],
         r["detail"].split(" ")[0])
        for r in ref
    ]
    rows = mes.execute(
        "SELECT at_bar, at_ts, event, bar, bar_ts, detail FROM signals.trend_events(%s, %s, NULL, NULL, 'baseline')",
        (CONTRACT, timeframe),
    ).fetchall()
    got = [(a, iso(at), e, b, iso(bt), d.split(" ")[0]) for a, at, e, b, bt, d in rows]
    assert got == want


@pytest.mark.parametrize("timeframe", ["1d", "4h"])
def test_baseline_state(mes: psycopg.Connection, timeframe: str) -> None:
    ref = read_csv(DATA / "ogfixed_reference" / f"mes_m25_{timeframe}_ogfixed_state.csv")
    cols = ("pus_bar", "pds_bar", "containment_ref_bar", "last_direction", "last_start_bar")
    want = [(int(r["bar_index"]), r["timestamp"], *(r[c] for c in cols)) for r in ref]
    rows = mes.execute(
        "SELECT bar, bar_ts, pus_bar, pds_bar, containment_ref_bar, last_direction, last_start_bar"
        " FROM signals.trend_states(%s, %s, NULL, NULL, 'baseline')",
        (CONTRACT, timeframe),
    ).fetchall()
    got = [(b, iso(ts), *("" if v is None else str(v) for v in rest)) for b, ts, *rest in rows]
    assert got == want


@pytest.mark.parametrize("timeframe", ["1d", "4h"])
def test_variant_b_starts(mes: psycopg.Connection, timeframe: str) -> None:
    ref = read_csv(DATA / "variantb_reference" / f"mes_m25_{timeframe}_variantb_starts.csv")
    want = [(r["timestamp"], r["direction"], Decimal(r["price"]), r["confirmed_at"]) for r in ref]
    got = [(iso(t), d, p, iso(c)) for t, d, p, c, _ in starts(mes, timeframe, "variant_b")]
    assert got == want


def test_default_profile_is_realtime(mes: psycopg.Connection) -> None:
    default = mes.execute(
        "SELECT start_ts, direction, price, confirmed_at, rule FROM signals.trend_starts(%s, '4h', NULL, NULL)",
        (CONTRACT,),
    ).fetchall()
    assert default == starts(mes, "4h", "realtime")


def test_default_profile_has_one_home(sql: psycopg.Connection) -> None:
    """signals.default_profile() is the default of every profile argument, and Python's DEFAULT_PROFILE."""
    assert sql.execute("SELECT signals.default_profile()").fetchone()[0] == DEFAULT_PROFILE
    assert sql.execute("SELECT count(*) FROM signals.trend_profiles WHERE profile = signals.default_profile()"
                       ).fetchone()[0] == 1
    defaults = dict(sql.execute(
        """SELECT p.oid::regprocedure::text, substring(a.args FROM 'profile text DEFAULT ([^,]*)')
           FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace,
               LATERAL (SELECT pg_get_function_arguments(p.oid) AS args) AS a
           WHERE n.nspname IN ('market', 'signals', 'internal') AND a.args ~ 'profile text DEFAULT'"""
    ).fetchall())
    assert len(defaults) >= 8
    assert set(defaults.values()) == {"signals.default_profile()"}, defaults


def test_window_and_unclosed_bars(mes: psycopg.Connection) -> None:
    """from_ts/to_ts cut the series (bar 1 = first bar in the window); a forming bar is never read."""
    cut = mes.execute(
        "SELECT count(*) FROM signals.trend_starts(%s, '1d', '2025-04-01', '2025-05-01', 'baseline')"
        " WHERE start_ts < '2025-04-01' OR confirmed_at >= '2025-05-01'",
        (CONTRACT,),
    ).fetchone()
    assert cut == (0,)
    before = starts(mes, "1d", "baseline")
    # A bar that has not closed yet (its session ends in the future) changes nothing.
    mes.execute(
        "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
        " VALUES (%s, '1d', (now() AT TIME ZONE 'UTC')::date + 1, 6000, 9000, 1000, 5000, 1)",
        (CONTRACT,),
    )
    assert starts(mes, "1d", "baseline") == before


def test_unknown_profile_is_refused(mes: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unknown trend profile 'nope'"):
        starts(mes, "1d", "nope")


def reference_starts(timeframe: str, profile: str) -> list[tuple]:
    bars = trend_reference.read_bars(DATA / f"mes_m25_{timeframe}.csv")
    return [
        (bars[s.bar - 1].ts, s.direction, bars[s.bar - 1].l if s.direction == "up" else bars[s.bar - 1].h,
         bars[s.confirmed_at - 1].ts, s.rule)
        for s in trend_reference.final_list(trend_reference.PROFILES[profile](bars).starts)
    ]


@pytest.mark.parametrize("timeframe", ["1d", "4h"])
def test_swing_matches_the_python_reference(mes: psycopg.Connection, timeframe: str) -> None:
    got = [(iso(t), d, p, iso(c), rule) for t, d, p, c, rule in starts(mes, timeframe, "swing")]
    assert got == reference_starts(timeframe, "swing")
    # it differs from variant B exactly where its two options apply
    assert got != [(iso(t), d, p, iso(c), rule) for t, d, p, c, rule in starts(mes, timeframe, "variant_b")]


@pytest.mark.parametrize("timeframe", ["1d", "4h"])
def test_realtime_matches_the_python_reference(mes: psycopg.Connection, timeframe: str) -> None:
    """Every realtime start is confirmed by a rule, and alternates with the one before it."""
    got = [(iso(t), d, p, iso(c), rule) for t, d, p, c, rule in starts(mes, timeframe, "realtime")]
    assert got == reference_starts(timeframe, "realtime")
    assert {rule for *_, rule in got} == {"ZU", "ZD"}
    by_confirmation = [d for _, d, _, _, _ in sorted(got, key=lambda s: s[3])]
    assert all(a != b for a, b in zip(by_confirmation, by_confirmation[1:]))
