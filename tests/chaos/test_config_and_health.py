"""Rows 10, 11 and 14: configuration checked at load (one line per problem, exit 1), busy ports named as
such, health bound to loopback unless the platform routes from outside, metrics printed exactly."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from ingest import config, health
from ingest.config import InvalidConfig
from ingest.metrics import Metrics
from ingest.supervise import Fatal, Supervisor


def mechtrade(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "PROJECTX_USERNAME": "u", "PROJECTX_API_KEY": "k"}
    return subprocess.run([sys.executable, "-m", "ingest.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**base, **(env or {})})


def problems_of(text: str, tmp_path: Path, env: dict[str, str] | None = None) -> list[str]:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InvalidConfig) as caught:
        config.load(path, env=env or {})
    return caught.value.problems


def test_nonsense_batching_is_refused_with_one_line_per_problem(tmp_path: Path) -> None:
    """Row 10: these once made the ingester spin at 98% CPU, ignoring SIGTERM."""
    assert problems_of("ingest: {batch_rows: 0}", tmp_path) == ["ingest.batch_rows: must be >= 1, not 0"]
    assert problems_of("ingest: {batch_rows: -5, queue_rows: -1}", tmp_path) == [
        "ingest.batch_rows: must be >= 1, not -5", "ingest.queue_rows: must be >= ingest.batch_rows (-5), not -1"]
    assert problems_of("ingest: {queue_rows: 0}", tmp_path) == [
        "ingest.queue_rows: must be >= ingest.batch_rows (5000), not 0"]


def test_every_kind_of_bad_configuration_is_one_clear_line(tmp_path: Path) -> None:
    """Row 11: wrong types, ranges, JSON rules, ports and DSN are all reported at once."""
    found = problems_of(
        "ingest: [1, 2]\n"
        "gateway: {token_refresh_s: soon}\n"
        "coordinator: {health_port: 99999, poll_s: 0}\n"
        "backfill: {page_limit: 50000}\n",
        tmp_path, env={"MECHTRADE_COORDINATOR_RULES": "[{not json", "DATABASE_URL": "postgres://h:port/db"})
    assert found == [
        "gateway.token_refresh_s: cannot use 'soon' (could not convert string to float: 'soon')",
        "ingest: a mapping of keys is needed, not list [1, 2]",
        "coordinator.rules (MECHTRADE_COORDINATOR_RULES): not valid JSON "
        "(Expecting property name enclosed in double quotes: line 1 column 3 (char 2))",
        "coordinator.poll_s: must be > 0, not 0.0",
        "backfill.page_limit: must be 1..20000, not 50000",
        "coordinator.health_port: 99999 is not a TCP port (0-65535; PORT sets both)",
        "DATABASE_URL: not a PostgreSQL connection URL (Port could not be cast to integer value as 'port')",
    ]
    assert problems_of("ingest:\n  batch_rows: [\n", tmp_path)[0].endswith(
        "not valid YAML at line 3, column 1: expected the node content, but found '<stream end>'")


def test_a_retired_key_is_ignored_with_a_warning_and_an_unknown_one_refused(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A configuration copied from an older release still loads; a misspelt key does not."""
    old = tmp_path / "old.yaml"
    old.write_text("ingest: {repair_timeframe: 1m, batch_rows: 7}\n")
    assert config.load(old, env={}).ingest.batch_rows == 7
    assert "ingest.repair_timeframe is no longer read (feed gaps are repaired in every timeframe of " \
           "backfill.timeframes): delete it" in caplog.text
    assert problems_of("ingest: {repair_timeframes: [1m]}", tmp_path) == ["ingest: unknown key(s) repair_timeframes"]


def test_the_cli_exits_1_with_the_problems_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("ingest: {batch_rows: 0, health_port: 99999}\n")
    result = mechtrade("ingest", "--config", str(path))
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if "ERROR" in line]
    assert len(lines) == 2 and "ingest.batch_rows" in lines[0] and "ingest.health_port" in lines[1]
    assert "Traceback" not in result.stderr


def test_a_busy_health_port_is_reported_as_such(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(InvalidConfig, match=f"ingest.health_port: port {port} on 127.0.0.1 is already in use"):
            asyncio.run(health.serve(port, Metrics(), lambda: (True, {}), "127.0.0.1", "ingest.health_port"))
        path = tmp_path / "c.yaml"
        path.write_text(f"ingest: {{health_port: {port}}}\ncontracts: [CON.F.US.MES.M25]\n")
        result = mechtrade("ingest", "--config", str(path), "--fake-gateway",
                           env={"DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "database" not in result.stderr


def test_health_listens_on_loopback_unless_the_platform_sets_port(tmp_path: Path) -> None:
    """Row 14: 127.0.0.1 by default; 0.0.0.0 where PORT is set (Railway), unless health_host says otherwise."""
    assert config.load(env={}).ingest.health_host == "127.0.0.1"
    on_railway = config.load(env={"PORT": "9000"})
    assert (on_railway.ingest.health_host, on_railway.ingest.health_port) == ("0.0.0.0", 9000)
    assert on_railway.coordinator.health_host == "0.0.0.0"
    path = tmp_path / "c.yaml"
    path.write_text("ingest: {health_host: 127.0.0.1}\n")
    assert config.load(path, env={"PORT": "9000"}).ingest.health_host == "127.0.0.1"
    assert config.load(env={"MECHTRADE_INGEST_HEALTH_HOST": "::1"}).ingest.health_host == "::1"


def test_metrics_print_whole_numbers_exactly() -> None:
    """Row 14: counters past 10^6 once printed as 1.23457e+06."""
    m = Metrics()
    m.inc("ticks_written_total", 1_234_567)
    m.inc("ticks_written_total", 10**12)
    m.set("feed_lag_seconds", 0.125)
    m.set("hub_connected", 1.0)
    text = m.render()
    assert "mechtrade_ticks_written_total 1000001234567\n" in text
    assert "mechtrade_feed_lag_seconds 0.125\n" in text and "mechtrade_hub_connected 1\n" in text


def test_a_fatal_task_error_ends_the_run_and_others_restart() -> None:
    """Item 1: an ordinary error restarts the task with backoff; a Fatal one stops everything."""
    async def go() -> None:
        sup = Supervisor(Metrics(), backoff_initial_s=0.01)
        stop = asyncio.Event()
        calls: list[str] = []

        async def flaky() -> None:
            calls.append("flaky")
            if len(calls) < 3:
                raise ValueError("transient")
            await stop.wait()

        async def doomed() -> None:
            await asyncio.sleep(0.2)
            raise Fatal("cannot go on")

        sup.add("flaky", flaky, stop)
        sup.add("doomed", doomed, stop)
        tasks = sup.start()
        await asyncio.wait_for(sup.failed.wait(), 5)
        assert sup.checks()["doomed"] == (False, "down: cannot go on")
        assert calls == ["flaky"] * 3 and sup.states["flaky"].restarts == 2
        assert sup.checks()["flaky"][0]
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks.values()), 5)
        with pytest.raises(Fatal):
            sup.raise_fatal()

    asyncio.run(go())


def test_a_crash_loop_ends_in_a_fatal_error() -> None:
    async def go() -> None:
        sup = Supervisor(Metrics(), backoff_initial_s=0.001, give_up_after=5)

        async def broken() -> None:
            raise KeyError("always")

        sup.add("broken", broken, asyncio.Event())
        sup.start()
        await asyncio.wait_for(sup.failed.wait(), 5)
        assert sup.states["broken"].restarts == 4
        with pytest.raises(Fatal, match="failed 5 times in a row; last: KeyError: 'always'"):
            sup.raise_fatal()

    asyncio.run(go())
