"""The incremental trend jobs: whatever way the bars arrive, the signals equal one full recompute.

Each test configures a series in ``signals.trend_jobs`` (which registers a paused TimescaleDB job),
feeds the real MES 4h bars into ``market.history_bars`` and runs the job with ``CALL run_job``. The
current signals (``superseded_at IS NULL``) must then equal ``signals.trend_starts`` over the same
bars: one bar at a time, in random chunks, after a crash, and after bars change or appear late.
The retention tests run the 5m series (11,324 bars) to check that the detector state the jobs
keep stays within the recheck window while the signals stay exact.
"""

from __future__ import annotations

import asyncio
import csv
import json
import random
import shutil
import subprocess
import tarfile
from datetime import timedelta
from io import BytesIO
from pathlib import Path

import asyncpg
import psycopg
import pytest

from ingest import migrate

DATA = Path(__file__).parent / "data" / "mes"
C = "CON.F.US.MES.M25"
PROFILES = ["baseline", "variant_b", "swing", "realtime"]


def bars(timeframe: str = "4h") -> list[dict[str, str]]:
    with (DATA / f"mes_m25_{timeframe}.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def insert(sql: psycopg.Connection, rows: list[dict[str, str]], timeframe: str = "4h") -> None:
    with sql.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [(C, timeframe, r["timestamp"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows],
        )


def configure(sql: psycopg.Connection, profile: str, timeframe: str = "4h", **options: object) -> int:
    """Add the series to signals.trend_jobs (paused: the test runs it) and return its job id."""
    cols = {"contract_id": C, "timeframe": timeframe, "profile": profile, "scheduled": False, **options}
    sql.execute(
        f"INSERT INTO signals.trend_jobs ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
        list(cols.values()),
    )
    return job_id(sql, profile, timeframe)


def job_id(sql: psycopg.Connection, profile: str, timeframe: str = "4h") -> int:
    rows = sql.execute(
        "SELECT job_id FROM timescaledb_information.jobs WHERE proc_schema = 'internal' AND proc_name = 'run_trend_jobs'"
        " AND config ->> 'timeframe' = %s AND config ->> 'profile' = %s",
        (timeframe, profile),
    ).fetchall()
    assert len(rows) == 1, rows
    return rows[0][0]


def run(sql: psycopg.Connection, job: int) -> None:
    sql.execute("CALL run_job(%s)", (job,))


def copy_series(sql: psycopg.Connection, contract_id: str) -> None:
    """The bars of C, for another contract too (the bars it does not have yet)."""
    sql.execute("INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
                " SELECT %s, timeframe, bucket, open, high, low, close, volume FROM market.history_bars"
                " WHERE contract_id = %s ON CONFLICT DO NOTHING", (contract_id, C))


def current(sql: psycopg.Connection, profile: str, timeframe: str = "4h") -> list[tuple]:
    return sql.execute(
        """SELECT "timestamp", signal_type, signal_price, confirmed_at, details ->> 'rule'
           FROM signals.detected_signals
           WHERE contract_id = %s AND timeframe = %s AND profile = %s AND superseded_at IS NULL
           ORDER BY "timestamp", signal_type""",
        (C, timeframe, profile),
    ).fetchall()


def recomputed(sql: psycopg.Connection, profile: str, timeframe: str = "4h") -> list[tuple]:
    return sql.execute(
        """SELECT start_ts, CASE direction WHEN 'up' THEN 'uptrend_start' ELSE 'downtrend_start' END,
                  price, confirmed_at, rule
           FROM signals.trend_starts(%s, %s, NULL, NULL, %s) ORDER BY 1, 2""",
        (C, timeframe, profile),
    ).fetchall()


@pytest.mark.parametrize("profile", PROFILES)
def test_one_bar_at_a_time_equals_full_recompute(sql: psycopg.Connection, profile: str) -> None:
    job = configure(sql, profile)
    for row in bars():
        insert(sql, [row])
        run(sql, job)
    assert current(sql, profile) == recomputed(sql, profile)
    assert len(current(sql, profile)) > 50
    watermark = sql.execute("SELECT bar_no, bar_ts FROM internal.trend_watermarks").fetchone()
    assert watermark[0] == len(bars())


@pytest.mark.parametrize("profile", PROFILES)
def test_random_chunks_equal_full_recompute(sql: psycopg.Connection, profile: str) -> None:
    job = configure(sql, profile)
    rows, rng, k = bars(), random.Random(20250513), 0
    while k < len(rows):
        step = rng.randint(1, 40)
        insert(sql, rows[k:k + step])
        k += step
        run(sql, job)
        if rng.random() < 0.3:
            run(sql, job)  # a run that sees no new bar changes nothing
    assert current(sql, profile) == recomputed(sql, profile)
    total = sql.execute("SELECT count(*), count(*) FILTER (WHERE superseded_at IS NULL) FROM signals.detected_signals")
    assert total.fetchone()[0] == len(current(sql, profile))  # nothing was ever superseded


class Crash(Exception):
    pass


def test_crash_between_and_during_runs(sql: psycopg.Connection, db_dsn: str) -> None:
    profile = "baseline"
    job = configure(sql, profile)
    rows = bars()
    insert(sql, rows[:100])
    run(sql, job)
    insert(sql, rows[100:180])
    # A run whose session dies before it commits leaves no trace.
    victim = psycopg.connect(db_dsn)
    victim.execute("SELECT signals.trend_advance(%s, '4h', %s)", (C, profile))
    pid = victim.info.backend_pid
    sql.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        victim.execute("SELECT 1")
    victim.close()
    assert sql.execute("SELECT bar_no FROM internal.trend_watermarks").fetchone() == (100,)
    # A run that fails after doing its work rolls back entirely.
    with pytest.raises(Crash), sql.transaction():
        sql.execute("SELECT signals.trend_advance(%s, '4h', %s)", (C, profile))
        raise Crash
    assert sql.execute("SELECT bar_no FROM internal.trend_watermarks").fetchone() == (100,)
    insert(sql, rows[180:])
    run(sql, job)
    assert current(sql, profile) == recomputed(sql, profile)


@pytest.mark.parametrize("profile", PROFILES)
def test_changed_bar_is_recomputed_and_superseded(sql: psycopg.Connection, profile: str) -> None:
    job = configure(sql, profile, recheck_bars=60)
    rows = bars()
    insert(sql, rows)
    run(sql, job)
    before = sql.execute("SELECT count(*) FROM signals.detected_signals").fetchone()[0]
    # A late tick: the bar 36 bars back had a lower low than first reported (and a gap repair,
    # a bar missing from the history that turns up later, is covered by test_gap_filled_later).
    late = rows[-36]["timestamp"]
    sql.execute(
        "UPDATE market.history_bars SET low = low - 60 WHERE contract_id = %s AND timeframe = '4h' AND bucket = %s",
        (C, late),
    )
    run(sql, job)
    assert current(sql, profile) == recomputed(sql, profile)
    superseded = sql.execute(
        """SELECT s.signal_id, s.superseded_by, s.confirmed_at >= %s
           FROM signals.detected_signals AS s WHERE s.superseded_at IS NOT NULL""",
        (late,),
    ).fetchall()
    assert superseded, "the lower low must change some signal"
    assert all(after for _, _, after in superseded), "only signals confirmed from the changed bar on"
    assert sql.execute("SELECT count(*) FROM signals.detected_signals").fetchone()[0] >= before
    # superseded_by points at the current signal of the same bar and direction
    pairs = sql.execute(
        """SELECT o."timestamp" = n."timestamp" AND o.signal_type = n.signal_type AND n.superseded_at IS NULL
           FROM signals.detected_signals AS o JOIN signals.detected_signals AS n ON n.signal_id = o.superseded_by"""
    ).fetchall()
    assert all(ok for (ok,) in pairs)


def test_gap_filled_later(sql: psycopg.Connection) -> None:
    profile = "baseline"
    job = configure(sql, profile)
    rows = bars()
    gap = rows[260]
    insert(sql, [r for r in rows if r is not gap])
    run(sql, job)
    without_gap = current(sql, profile)
    insert(sql, [gap])
    run(sql, job)
    assert current(sql, profile) == recomputed(sql, profile) != without_gap


def test_repair_older_than_the_recheck_window(sql: psycopg.Connection) -> None:
    profile = "baseline"
    job = configure(sql, profile, recheck_bars=0)
    rows = bars()
    insert(sql, rows)
    run(sql, job)
    # Bar 30 of 316: beyond what the job compares on its own (recheck_bars = 0), so an operator
    # names it.
    sql.execute(
        "UPDATE market.history_bars SET high = high + 80 WHERE contract_id = %s AND timeframe = '4h' AND bucket = %s",
        (C, rows[29]["timestamp"]),
    )
    result = sql.execute(
        "SELECT signals.trend_advance(%s, '4h', %s, p_changed_from => %s)", (C, profile, rows[29]["timestamp"])
    ).fetchone()[0]
    assert result["recomputed_from"] is not None
    assert current(sql, profile) == recomputed(sql, profile)


def test_only_closed_bars_are_analysed(sql: psycopg.Connection) -> None:
    profile = "variant_b"
    job = configure(sql, profile, timeframe="1d")
    insert(sql, bars("1d"), timeframe="1d")
    # Today's daily bar is still forming (it closes at 17:00 Chicago time on its trading date).
    sql.execute(
        "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
        " VALUES (%s, '1d', (now() AT TIME ZONE 'America/Chicago')::date + 1, 5000, 9000, 100, 5000, 1)",
        (C,),
    )
    run(sql, job)
    last = sql.execute("SELECT bar_ts FROM internal.trend_watermarks").fetchone()[0]
    assert last.strftime("%Y-%m-%d") == bars("1d")[-1]["timestamp"][:10]
    assert current(sql, profile, "1d") == recomputed(sql, profile, "1d")


def test_one_notify_per_run_and_reruns_are_no_ops(sql: psycopg.Connection, db_dsn: str) -> None:
    job = configure(sql, "variant_b")
    insert(sql, bars()[:120])
    with psycopg.connect(db_dsn, autocommit=True) as listener:
        listener.execute("LISTEN trend_signals_v1")
        run(sql, job)
        got = [json.loads(n.payload) for n in listener.notifies(timeout=5, stop_after=1)]
        assert len(got) == 1
        note = got[0]
        assert note["type"] == "trend_signals" and note["bars"] == 120 and note["profile"] == "variant_b"
        assert note["new"] == sql.execute("SELECT count(*) FROM signals.detected_signals").fetchone()[0] > 0
        assert note["through"].startswith(bars()[119]["timestamp"][:10])
        run(sql, job)  # nothing new: no rows, no notification
        assert list(listener.notifies(timeout=0.5)) == []
    assert sql.execute("SELECT runs FROM internal.trend_watermarks").fetchone() == (1,)


def _migrate(dsn: str, sql_dir: Path | None = None) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate.migrate(conn, sql_dir)
        finally:
            await conn.close()

    asyncio.run(go())


def trend_jobs(sql: psycopg.Connection) -> list[tuple]:
    return sql.execute(
        "SELECT config ->> 'timeframe', config ->> 'profile', schedule_interval::text, scheduled, fixed_schedule,"
        " initial_start::text, check_schema || '.' || check_name FROM timescaledb_information.jobs"
        " WHERE proc_schema = 'internal' AND proc_name = 'run_trend_jobs' ORDER BY 1, 2"
    ).fetchall()


CHECK = "internal.check_trend_job_config"


def test_one_job_per_timeframe_and_profile_registered_idempotently(sql: psycopg.Connection, db_dsn: str) -> None:
    configure(sql, "baseline")
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile) VALUES (%s, '4h', 'variant_b'),"
                " ('CON.F.US.MNQ.M25', '4h', 'variant_b'), (%s, '1m', 'variant_b')", (C, C))
    # On the bar grid, a few seconds after the close: 1m on the UTC minute, 4h every Chicago hour
    # (a 4h bar also closes at the 16:00 halt).
    want = [("1m", "variant_b", "00:01:00", True, True, "2000-01-03 00:00:05+00", CHECK),
            ("4h", "baseline", "01:00:00", False, True, "2000-01-02 23:00:05+00", CHECK),
            ("4h", "variant_b", "01:00:00", True, True, "2000-01-02 23:00:05+00", CHECK)]
    assert trend_jobs(sql) == want
    _migrate(db_dsn)  # re-running migrate
    assert sql.execute("SELECT internal.sync_trend_jobs()").fetchone() == (0,)  # re-running setup
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile) VALUES (%s, '4h', 'baseline')"
                " ON CONFLICT DO NOTHING", (C,))
    assert trend_jobs(sql) == want
    # A job runs while any of its series is scheduled; paused when all are.
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile) VALUES ('X', '4h', 'baseline')")
    assert [j[3] for j in trend_jobs(sql)] == [True, True, True]
    sql.execute("UPDATE signals.trend_jobs SET scheduled = false WHERE profile = 'variant_b'")
    assert [j[3] for j in trend_jobs(sql)] == [False, True, False]
    sql.execute("DELETE FROM signals.trend_jobs WHERE profile = 'variant_b'")
    assert [j[:2] for j in trend_jobs(sql)] == [("4h", "baseline")]
    # The daily job runs at the 16:00 Chicago halt, in summer and winter time alike.
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile) VALUES (%s, '1d', 'baseline')", (C,))
    assert sql.execute("SELECT j.schedule_interval::text, b.timezone, (j.initial_start AT TIME ZONE 'America/Chicago')"
                       "::time::text FROM timescaledb_information.jobs AS j JOIN _timescaledb_config.bgw_job AS b"
                       " ON b.id = j.job_id WHERE j.config ->> 'timeframe' = '1d'").fetchone() \
        == ("1 day", "America/Chicago", "16:00:05")


def test_refresh_policies_run_on_the_grid_before_the_trend_jobs(sql: psycopg.Connection) -> None:
    rows = sql.execute(
        "SELECT j.hypertable_name, j.schedule_interval::text, j.fixed_schedule, j.initial_start, s.first_close,"
        " s.refresh_delay < s.trend_delay FROM timescaledb_information.jobs AS j"
        " JOIN internal.bar_close_schedule AS s ON j.hypertable_name = 'bars_' || s.timeframe"
        " WHERE j.proc_name = 'policy_refresh_continuous_aggregate' ORDER BY s.run_every, 1").fetchall()
    assert [r[:3] for r in rows] == [("bars_1m", "00:01:00", True), ("bars_5m", "00:05:00", True),
                                     ("bars_15m", "00:15:00", True), ("bars_1h", "01:00:00", True),
                                     ("bars_4h", "01:00:00", True), ("bars_1d", "1 day", True)]
    assert all(start - close < timedelta(seconds=5) and before for _, _, _, start, close, before in rows)


def test_one_run_covers_every_series_and_a_failure_stops_none(sql: psycopg.Connection) -> None:
    other = "CON.F.US.MNQ.M25"
    job = configure(sql, "baseline")
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, scheduled) VALUES"
                " (%s, '4h', 'baseline', false), ('BROKEN', '4h', 'baseline', false)", (other,))
    assert job_id(sql, "baseline") == job
    rows = bars()
    insert(sql, rows)
    copy_series(sql, other)
    copy_series(sql, "BROKEN")
    # A series whose run fails (here: its signals cannot be written).
    sql.execute("""CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN RAISE EXCEPTION 'refused %', NEW.contract_id; END $$""")
    sql.execute("CREATE TRIGGER refuse BEFORE INSERT ON signals.detected_signals FOR EACH ROW"
                " WHEN (NEW.contract_id = 'BROKEN') EXECUTE FUNCTION pg_temp.refuse()")
    run(sql, job)
    status = {r[0]: r[1:] for r in sql.execute(
        "SELECT contract_id, last_success IS NOT NULL, failures_since_success, last_error, bars_behind"
        " FROM signals.trend_job_status WHERE job_id = %s", (job,))}
    assert status == {C: (True, 0, None, 0), other: (True, 0, None, 0),
                      "BROKEN": (False, 1, "refused BROKEN", len(rows))}
    assert current(sql, "baseline") == recomputed(sql, "baseline") and len(current(sql, "baseline")) > 50
    assert sql.execute("SELECT count(*) FROM signals.detected_signals WHERE contract_id = %s", (other,)).fetchone() \
        == (len(current(sql, "baseline")),)
    assert sql.execute("SELECT count(*) FROM internal.trend_watermarks WHERE contract_id = 'BROKEN'").fetchone() \
        == (0,), "the failed series rolled back alone"
    assert sql.execute("SELECT last_result FROM internal.job_runs WHERE job_id = %s", (job,)).fetchone()[0] \
        | {"seconds": 0} == {"series": 3, "failed": 1, "new": 2 * len(current(sql, "baseline")), "seconds": 0}
    run(sql, job)
    assert sql.execute("SELECT failures_since_success FROM signals.trend_job_status WHERE contract_id = 'BROKEN'"
                       ).fetchone() == (2,)
    sql.execute("DROP TRIGGER refuse ON signals.detected_signals")
    # A scheduled job runs its scheduled series only; a paused series waits.
    sql.execute("UPDATE signals.trend_jobs SET scheduled = (contract_id = 'BROKEN')")
    run(sql, job)
    assert sql.execute("SELECT contract_id, failures_since_success, bars_behind FROM signals.trend_job_status"
                       " ORDER BY 1").fetchall() == [("BROKEN", 0, 0), (C, 0, 0), (other, 0, 0)]
    assert sql.execute("SELECT count(*) FROM signals.detected_signals WHERE contract_id = 'BROKEN'").fetchone() \
        == (len(current(sql, "baseline")),)
    # (the scheduler may have run the job as well: it too runs the scheduled series only)
    assert sql.execute("SELECT successes FROM internal.trend_series_runs WHERE contract_id <> 'BROKEN'").fetchall() \
        == [(2,), (2,)]


def test_job_config_is_validated(sql: psycopg.Connection) -> None:
    job = configure(sql, "baseline")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="matches no row"):
        sql.execute("SELECT alter_job(%s, config => %s)",
                    (job, json.dumps({"timeframe": "1d", "profile": "baseline"})))
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="must be"):
        sql.execute("SELECT add_job('internal.run_trend_jobs', '1 hour', config => '{\"profile\": 1}',"
                    " check_config => 'internal.check_trend_job_config')")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        configure(sql, "no_such_profile")
    with pytest.raises(psycopg.errors.CheckViolation, match="trend_jobs_recheck_bars_non_negative"):
        configure(sql, "variant_b", recheck_bars=-1)


def test_analyst_reads_signals_but_not_state(sql: psycopg.Connection) -> None:
    job = configure(sql, "variant_b")
    insert(sql, bars())
    run(sql, job)
    sql.execute("SET ROLE mechtrade_analyst")
    try:
        n = sql.execute("SELECT count(*) FROM signals.signal_bars WHERE high IS NOT NULL").fetchone()[0]
        assert n == len(current(sql, "variant_b")) > 0
        starts = sql.execute("SELECT count(*) FROM signals.trend_starts(%s, '4h', NULL, NULL, 'variant_b')", (C,))
        assert starts.fetchone()[0] == n
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql.execute("SELECT * FROM internal.trend_watermarks")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql.execute("DELETE FROM signals.detected_signals")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql.execute("SELECT signals.trend_advance(%s, '4h', 'variant_b')", (C,))
    finally:
        sql.execute("RESET ROLE")


# Retention: each run prunes the checkpoints and analysed bars (inputs) no later run can reach.

def state_refs(state: dict) -> list[int]:
    """The bar numbers a detector state refers to (what the job rechecks besides recheck_bars)."""
    return [v for v in state.values() if isinstance(v, int)]


def detector_state(sql: psycopg.Connection, timeframe: str) -> dict:
    n, state = sql.execute("SELECT bar_no, state FROM internal.trend_watermarks WHERE timeframe = %s",
                           (timeframe,)).fetchone()
    inputs = sql.execute(
        "SELECT count(*), min(bar_no), max(bar_no), max(bar_no) - min(bar_no) + 1 FROM internal.trend_inputs"
        " WHERE timeframe = %s", (timeframe,)).fetchone()
    checkpoints = sql.execute(
        "SELECT count(*), min(bar_no), max(bar_no) FROM internal.trend_checkpoints WHERE timeframe = %s",
        (timeframe,)).fetchone()
    return {"n": n, "state": state, "inputs": inputs, "checkpoints": checkpoints}


def superseded_count(sql: psycopg.Connection) -> int:
    return sql.execute("SELECT count(*) FROM signals.detected_signals WHERE superseded_at IS NOT NULL").fetchone()[0]


def oldest_compared(n: int, state: dict, recheck_bars: int) -> int:
    """The oldest bar the next run compares with market.bars (signals.trend_advance's v_check_no)."""
    return max(1, min([n - recheck_bars + 1] + [r - 1 for r in state_refs(state)]))


@pytest.mark.parametrize("profile", PROFILES)
def test_state_stays_bounded_and_signals_equal_full_recompute(sql: psycopg.Connection, profile: str) -> None:
    """11,324 5m bars in random chunks: the state stays within the recheck window, the signals exact."""
    recheck, max_chunk, tf = 30, 40, "5m"
    job = configure(sql, profile, timeframe=tf, recheck_bars=recheck)
    rows, rng = bars(tf), random.Random(20251124)
    insert(sql, rows[:300], tf)
    run(sql, job)
    k, age, most, runs = 300, 0, 0, 1
    while k < len(rows):
        step = 1 if rng.random() < 0.3 else rng.randint(1, max_chunk)
        insert(sql, rows[k:k + step], tf)
        k += step
        run(sql, job)
        runs += 1
        if rng.random() < 0.1:
            run(sql, job)  # a run that sees no new bar changes nothing
        got = detector_state(sql, tf)
        n, state = got["n"], got["state"]
        count, first, last, span = got["inputs"]
        cp_count, cp_first, cp_last = got["checkpoints"]
        assert last == cp_last == n and count == span  # the newest bars, contiguous
        # The window: the last recheck_bars bars and every bar the state refers to (age: how far
        # back the state has reached so far; every checkpoint kept was the watermark of a run).
        age = max([age] + [n - r for r in state_refs(state)])
        compared = oldest_compared(n, state, recheck)
        # Kept: the bars compared, the newest checkpoint before them (at most one chunk further
        # back, as each run checkpoints its last bar) and what a replay from it reads (its state's
        # bars, the one before the oldest).
        bound = max(recheck, age + 2) + max_chunk + age + 1
        assert count <= bound, (n, count, bound)
        assert first <= compared  # nothing a recheck compares was pruned
        assert cp_first >= first and cp_count <= count  # every checkpoint sits on a kept bar
        if k > 300 + recheck + max_chunk + age + 2:
            # A recompute from any compared bar has a start state and the bars to replay from it.
            start = sql.execute(
                "SELECT replay_from FROM internal.trend_checkpoints WHERE timeframe = %s AND bar_no < %s"
                " ORDER BY bar_ts DESC LIMIT 1", (tf, compared)).fetchone()
            assert start is not None and start[0] >= first
        most = max(most, count)
    assert current(sql, profile, tf) == recomputed(sql, profile, tf)
    assert superseded_count(sql) == 0
    # Bounded in absolute terms too: a few windows, not the 11,324 bars analysed over some 750 runs.
    assert most <= 3 * recheck + max_chunk + 2 * age and most < len(rows) // 20, (most, age, runs)


@pytest.mark.parametrize("profile", PROFILES)
def test_late_change_after_pruning(sql: psycopg.Connection, profile: str) -> None:
    """A change inside the kept window recomputes from a nearby checkpoint; one before it is not seen."""
    recheck, tf = 40, "5m"
    job = configure(sql, profile, timeframe=tf, recheck_bars=recheck)
    rows = bars(tf)[:3000]
    insert(sql, rows[:1000], tf)
    run(sql, job)
    for k in range(1000, len(rows) - 1):
        insert(sql, [rows[k]], tf)
        run(sql, job)
    kept = detector_state(sql, tf)["inputs"][0]
    assert kept < 200

    # Inside the window: a much lower low 18 bars back. The job rewinds to a checkpoint before it
    # (not to the start of the series) and supersedes what no longer holds.
    late = rows[-18]["timestamp"]
    sql.execute("UPDATE market.history_bars SET low = low - 40 WHERE timeframe = %s AND bucket = %s", (tf, late))
    insert(sql, [rows[-1]], tf)
    result = sql.execute("SELECT signals.trend_advance(%s, %s, %s)", (C, tf, profile)).fetchone()[0]
    assert result["recomputed_from"] is not None and result["bars"] <= 2 * kept
    assert current(sql, profile, tf) == recomputed(sql, profile, tf)
    assert superseded_count(sql) > 0

    # Before the kept range: bar 500 of 3000 is no longer compared, so the change goes unnoticed
    # (the documented limit) until an operator names it; then the whole series is recomputed, as
    # no checkpoint that old is kept.
    before, withdrawn = current(sql, profile, tf), superseded_count(sql)
    old = rows[499]["timestamp"]
    sql.execute("UPDATE market.history_bars SET high = high + 40 WHERE timeframe = %s AND bucket = %s", (tf, old))
    more = bars(tf)[3000:3001]
    insert(sql, more, tf)
    result = sql.execute("SELECT signals.trend_advance(%s, %s, %s)", (C, tf, profile)).fetchone()[0]
    assert result["recomputed_from"] is None and result["bars"] == 1
    assert set(before) <= set(current(sql, profile, tf)) and superseded_count(sql) == withdrawn
    result = sql.execute("SELECT signals.trend_advance(%s, %s, %s, p_changed_from => %s)",
                         (C, tf, profile, old)).fetchone()[0]
    assert result["recomputed_from"] is not None and result["bars"] == 3001
    assert result["superseded"] > 0  # the change mattered
    assert current(sql, profile, tf) == recomputed(sql, profile, tf)
    assert detector_state(sql, tf)["inputs"][0] <= kept + 1


def test_raising_recheck_bars_after_pruning(sql: psycopg.Connection) -> None:
    """A wider window than what was kept compares the bars still kept, without recomputing."""
    profile, tf = "swing", "5m"
    job = configure(sql, profile, timeframe=tf, recheck_bars=10)
    rows = bars(tf)[:600]
    insert(sql, rows[:500], tf)
    run(sql, job)
    for k in range(500, 550):
        insert(sql, [rows[k]], tf)
        run(sql, job)
    sql.execute("UPDATE signals.trend_jobs SET recheck_bars = 400 WHERE timeframe = %s", (tf,))
    kept = detector_state(sql, tf)["inputs"][0]
    for k in range(550, 600):
        insert(sql, [rows[k]], tf)
        result = sql.execute("SELECT signals.trend_advance(%s, %s, %s)", (C, tf, profile)).fetchone()[0]
        assert result["recomputed_from"] is None and result["bars"] == 1
    # The window grows back with the new bars (up to 400), and changes in it are still found.
    assert detector_state(sql, tf)["inputs"][0] >= kept + 50
    sql.execute("UPDATE market.history_bars SET low = low - 40 WHERE timeframe = %s AND bucket = %s",
                (tf, rows[560]["timestamp"]))
    result = sql.execute("SELECT signals.trend_advance(%s, %s, %s)", (C, tf, profile)).fetchone()[0]
    assert result["recomputed_from"] is not None
    assert current(sql, profile, tf) == recomputed(sql, profile, tf)


def test_upgrade_prunes_the_state_kept_before_retention(
    sql: psycopg.Connection, empty_db_dsn: str, tmp_path: Path
) -> None:
    """Migration 0022 on a database whose jobs kept every checkpoint and bar: the next run prunes."""
    profile, tf = "baseline", "4h"
    rows = bars(tf)
    # The state the jobs kept before 0022: every checkpoint and every bar (a window wider than
    # the series keeps them all), made here on the current schema.
    job = configure(sql, profile, recheck_bars=10_000)
    insert(sql, rows[:100])
    run(sql, job)
    for row in rows[100:250]:
        insert(sql, [row])
        run(sql, job)
    tables = {
        "market.history_bars": "contract_id, timeframe, bucket, open, high, low, close, volume",
        "signals.trend_jobs": "contract_id, timeframe, profile, scheduled",
        "signals.detected_signals": "contract_id, timeframe, profile, signal_type, timestamp,"
                                    " signal_price, confirmed_at, details, detected_at",
        "internal.trend_watermarks": "contract_id, timeframe, profile, bar_no, bar_ts, state, runs",
        "internal.trend_checkpoints": "contract_id, timeframe, profile, bar_ts, bar_no, state",
        "internal.trend_inputs": "contract_id, timeframe, profile, bucket, bar_no, open, high, low, close",
    }
    assert sql.execute("SELECT count(*) FROM internal.trend_checkpoints").fetchone() == (151,)
    replay_from = sql.execute("SELECT bar_ts, replay_from FROM internal.trend_checkpoints ORDER BY 1").fetchall()

    old_sql = Path(shutil.copytree(Path(__file__).resolve().parents[1] / "sql", tmp_path / "sql"))
    (old_sql / "migrations" / "0022_trend_state_retention.sql").unlink()
    _migrate(empty_db_dsn, old_sql)
    with psycopg.connect(empty_db_dsn, autocommit=True) as old:
        for table, cols in tables.items():
            quoted = cols.replace("timestamp,", '"timestamp",')
            data = sql.execute(f"SELECT {quoted} FROM {table}").fetchall()
            with old.cursor() as cur:
                cur.executemany(
                    f"INSERT INTO {table} ({quoted}) VALUES ({', '.join(['%s'] * len(cols.split(',')))})",
                    [tuple(psycopg.types.json.Jsonb(v) if isinstance(v, dict) else v for v in r) for r in data],
                )
        _migrate(empty_db_dsn)
        # 0022 derives where each checkpoint's replay starts as the detector does.
        assert old.execute("SELECT bar_ts, replay_from FROM internal.trend_checkpoints ORDER BY 1").fetchall() \
            == replay_from
        old.execute("UPDATE signals.trend_jobs SET recheck_bars = 30")
        insert(old, rows[250:])
        old.execute("CALL run_job(%s)", (job_id(old, profile),))
        n, first, cps = old.execute(
            "SELECT (SELECT bar_no FROM internal.trend_watermarks), (SELECT min(bar_no) FROM internal.trend_inputs),"
            " (SELECT count(*) FROM internal.trend_checkpoints)").fetchone()
        assert n == len(rows) and n - first < 30 + 50 and cps <= 3
        assert current(old, profile) == recomputed(old, profile)


def test_upgrade_adds_a_realtime_job_beside_each_swing_job(empty_db_dsn: str, tmp_path: Path) -> None:
    """Migration 0060 on a database whose series are analysed with swing: the default realtime profile
    gets a job per such series, registered like any other."""
    old_sql = sql_tree_before_0110(tmp_path)
    for name in ("0060_trend_realtime_profile.sql", "0061_decisions_from_positions.sql", "0062_contract_specs.sql"):
        (old_sql / "migrations" / name).unlink()
    for name in ("signals.backtest.sql", "signals.backtest_summary.sql"):  # they read 0062's table
        (old_sql / "functions" / name).unlink()
    order = old_sql / "functions" / "order.txt"
    order.write_text("".join(ln for ln in order.read_text().splitlines(keepends=True) if "backtest" not in ln))
    _migrate(empty_db_dsn, old_sql)
    with psycopg.connect(empty_db_dsn, autocommit=True) as old:
        old.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, recheck_bars, scheduled)"
                    " VALUES (%s, '4h', 'swing', 50, false), (%s, '1h', 'baseline', 100, true)", (C, C))
        _migrate(empty_db_dsn)
        assert old.execute("SELECT timeframe, profile, recheck_bars, scheduled FROM signals.trend_jobs"
                           " ORDER BY profile").fetchall() == [
            ("1h", "baseline", 100, True), ("4h", "realtime", 50, False), ("4h", "swing", 50, False)]
        assert job_id(old, "realtime")


def sql_tree_before_0110(tmp_path: Path) -> Path:
    """The sql/ directory as it was before migration 0110 (one trend job per series), from git."""
    root = Path(__file__).resolve().parents[1]
    tar = subprocess.run(["git", "-C", str(root), "archive", BEFORE_0110, "sql"], capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(tar.stdout)) as archive:
        archive.extractall(tmp_path, filter="data")
    return tmp_path / "sql"


BEFORE_0110 = "62e912e"  # main before the trend jobs per timeframe


def test_upgrade_replaces_the_jobs_per_series(empty_db_dsn: str, tmp_path: Path) -> None:
    """Migration 0110 on a database with one job per series: those jobs and their plumbing in schema
    signals are gone, one job per timeframe and profile runs the same series, carrying on from their state."""
    other = "CON.F.US.MNQ.M25"
    rows = bars()
    _migrate(empty_db_dsn, sql_tree_before_0110(tmp_path))
    with psycopg.connect(empty_db_dsn, autocommit=True) as old:
        old.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, schedule_interval, scheduled)"
                    " VALUES (%s, '4h', 'swing', '1 hour', false), (%s, '4h', 'swing', '1 hour', false),"
                    " (%s, '1h', 'realtime', '1 minute', true)", (C, other, C))
        insert(old, rows[:200])
        copy_series(old, other)
        for (job,) in old.execute("SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = 'run_trend_job'"
                                  " AND config ->> 'timeframe' = '4h'").fetchall():
            old.execute("CALL run_job(%s)", (job,))
        before = old.execute("SELECT count(*) FROM signals.detected_signals").fetchone()[0]
        assert before > 0 and len(old.execute("SELECT * FROM signals.trend_job_status").fetchall()) == 3

        _migrate(empty_db_dsn)
        assert old.execute("SELECT count(*) FROM timescaledb_information.jobs WHERE proc_schema = 'signals'"
                           ).fetchone() == (0,)
        assert old.execute("SELECT count(*) FROM pg_proc WHERE pronamespace = 'signals'::regnamespace AND proname IN"
                           " ('run_trend_job', 'sync_trend_jobs', 'check_trend_job_config', 'trend_jobs_changed')"
                           ).fetchone() == (0,)
        assert [j[:4] for j in trend_jobs(old)] == [("1h", "realtime", "01:00:00", True),
                                                    ("4h", "swing", "01:00:00", False)]
        job = job_id(old, "swing")
        assert old.execute("SELECT contract_id, job_id, analysed_through IS NOT NULL FROM signals.trend_job_status"
                           " WHERE timeframe = '4h' ORDER BY 1").fetchall() == [(C, job, True), (other, job, True)]
        insert(old, rows[200:])
        copy_series(old, other)
        old.execute("CALL run_job(%s)", (job,))
        assert old.execute("SELECT count(*) FROM signals.detected_signals WHERE superseded_at IS NOT NULL"
                           ).fetchone() == (0,), "the new job carried on; nothing was recomputed differently"
        assert current(old, "swing") == recomputed(old, "swing")
        assert old.execute("SELECT runs FROM internal.trend_watermarks WHERE contract_id = %s AND timeframe = '4h'",
                           (other,)).fetchone() == (2,)
