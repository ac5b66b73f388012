"""Job health you can see: ``mechtrade status``, the ``/healthz`` checks and the migrate warning, on a
server whose worker processes are too few (every trend job run fails to start, as measured in the
field) and on a healthy one (where this build records every run as failed after it committed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from helpers import fresh_database, skip_or_fail
from ingest import status
from pg_server import RootServer, Server, free_port, is_root

CONTRACT = "CON.F.US.MES.M25"


def mechtrade(dsn: str, *args: str, config: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": dsn, "MECHTRADE_LOG_FORMAT": "text"}
    return subprocess.run([sys.executable, "-m", "ingest.cli", *args, *(("--config", str(config)) if config else ())],
                          capture_output=True, text=True, env=env, timeout=120)


def wait_for(sql: psycopg.Connection, query: str, timeout: float = 90.0) -> tuple:
    """Poll ``query`` until its first column is true; return the row."""
    deadline = time.monotonic() + timeout
    while True:
        row = sql.execute(query).fetchone()
        if row and row[0]:
            return row
        assert time.monotonic() < deadline, f"timed out waiting for: {query}"
        time.sleep(0.5)


@pytest.fixture
def no_contracts(tmp_path: Path) -> Path:
    path = tmp_path / "mechtrade.yaml"
    path.write_text("contracts: []\n")
    return path


@pytest.fixture(scope="module")
def starved_server() -> Iterator[Server]:
    """A server with max_worker_processes = 3: TimescaleDB's scheduler runs, its jobs fail to start."""
    if not is_root():
        skip_or_fail("starting a server with few worker processes needs root here")
    server = RootServer()
    server.settings["max_worker_processes"] = "3"
    try:
        yield server.start()
    finally:
        server.stop()


# The trend job runs each minute: here every second, to see several runs soon.
EVERY_SECOND = ("SELECT alter_job(job_id, schedule_interval => '1 second', fixed_schedule => false)"
                " FROM signals.trend_job_status")


def test_failing_jobs_show_in_migrate_status_and_healthz(starved_server: Server, no_contracts: Path) -> None:
    with fresh_database(starved_server) as dsn, psycopg.connect(dsn, autocommit=True) as sql:
        migrated = mechtrade(dsn, "migrate", config=None)
        assert migrated.returncode == 0, migrated.stderr
        assert "WARNING" in migrated.stderr and "max_worker_processes = 3 is below" in migrated.stderr
        sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile) VALUES (%s, '1m', 'swing')",
                    (CONTRACT,))
        sql.execute(EVERY_SECOND)
        job_id, = wait_for(sql, "SELECT job_id FROM signals.trend_job_status"
                                f" WHERE failures_since_success >= {status.MAX_JOB_FAILURES}")

        report = mechtrade(dsn, "status", config=no_contracts)
        assert report.returncode == 1, report.stderr
        assert "health: " in report.stdout and "problem(s)" in report.stdout
        line = next(x for x in report.stdout.splitlines() if x.strip().startswith(f"trend_jobs: trend job {job_id}"))
        assert f"({CONTRACT} 1m swing)" in line and "since it was created (it never succeeded)" in line
        assert "last error: failed to start job" in line
        assert "worker_slots: max_worker_processes = 3 is below" in report.stdout

        # The coordinator's /healthz says so too, with the reason.
        port = free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "MECHTRADE_LOG_FORMAT": "text"}
        proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "coordinate", "--health-port", str(port)],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            body = healthz_until(port, lambda code, body: code == 503 and "unhealthy_because" in body)
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert any(f"trend job {job_id}" in reason and "failed to start job" in reason
                   for reason in body["unhealthy_because"])
        assert body["checks"]["trend_jobs"] != "ok" and body["connected"] is True


def healthz_until(port: int, done, timeout: float = 60.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
                code, text = r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            code, text = exc.code, exc.read().decode()
        except OSError:
            code, text = 0, "{}"
        if done(code, text):
            return json.loads(text)
        assert time.monotonic() < deadline, f"/healthz never got there: {code} {text}"
        time.sleep(0.3)


def test_jobs_that_commit_are_healthy_whatever_timescaledb_records(sql: psycopg.Connection, db_dsn: str,
                                                                      no_contracts: Path) -> None:
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile) VALUES (%s, '1m', 'swing')",
                (CONTRACT,))
    sql.execute(EVERY_SECOND)
    # A cloned database waits for the launcher's next look for a scheduler: start it now, and the job too.
    sql.execute("SELECT _timescaledb_functions.start_background_workers()")
    sql.execute("SELECT alter_job(job_id, next_start => now()) FROM signals.trend_job_status")
    job_id, = wait_for(sql, "SELECT s.job_id FROM internal.job_runs AS r"
                            " JOIN timescaledb_information.job_stats AS s USING (job_id) WHERE s.total_runs >= 1")
    row = sql.execute("SELECT failures_since_success, last_success IS NOT NULL, last_error"
                      " FROM signals.trend_job_status WHERE job_id = %s", (job_id,)).fetchone()
    assert row == (0, True, None)
    # On this build TimescaleDB records that run as failed (cannot drop portal "" ...) after it committed;
    # the status counts it as the success it was.
    report = mechtrade(db_dsn, "status", config=no_contracts)
    row = next(x for x in report.stdout.splitlines() if x.strip().startswith(str(job_id)))
    assert f"{CONTRACT} 1m swing" in row and row.split()[8] == "0", report.stdout  # failures column
    assert "trend_jobs:" not in report.stdout


def test_stale_ticks_only_count_in_session() -> None:
    wednesday = datetime(2025, 5, 14, 15, tzinfo=UTC)  # market open
    saturday = datetime(2025, 5, 17, 15, tzinfo=UTC)
    series = [{"contract_id": CONTRACT, "last_tick": wednesday - timedelta(seconds=status.STALE_TICKS_S + 1)},
              {"contract_id": "CON.F.US.MNQ.M25", "last_tick": None},
              {"contract_id": "CON.F.US.MYM.M25", "last_tick": wednesday - timedelta(seconds=5)}]
    found = status.tick_problems(series, (CONTRACT, "CON.F.US.MNQ.M25", "CON.F.US.MYM.M25"), wednesday)
    assert [p.message.split(":")[0] for p in found] == [CONTRACT, "CON.F.US.MNQ.M25"]
    assert "no tick stored yet" in found[1].message
    assert status.tick_problems(series, (CONTRACT,), saturday) == []
    assert status.tick_problems(series, (), wednesday) == [], "only subscribed contracts"


def test_the_worker_budget_says_what_to_set_only_when_the_pool_is_short() -> None:
    slots = {"needed": 12, "jobs": 11, "trend_jobs": 2, "available": 15, "max_background_workers": 16,
             "other_schedulers": 1, "max_worker_processes": 32, "processes_needed": 25}
    enough = status.worker_budget(slots)
    assert enough == ("worker slots: 12 needed at most (scheduler + 11 jobs, 2 of them trend jobs), 15 available "
                      "(timescaledb.max_background_workers 16, 1 used by other databases); "
                      "max_worker_processes 32, 25 needed")
    short = status.worker_budget({**slots, "available": 7, "max_background_workers": 8})
    assert "7 available (timescaledb.max_background_workers 8, 1 used by other databases; set it to 13 or more)" \
        in short
