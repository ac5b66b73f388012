"""Every example of the README runs against what ``mechtrade demo`` leaves in the database, and
returns something: the SQL blocks and the ``plot`` and ``load`` commands."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from helpers import fresh_database
from ingest.cli import main
from ingest.sqlsplit import split_statements
from pg_server import Server

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.fixture(scope="module")
def demo_dsn(pg_server: Server, migrated_template: str) -> Iterator[str]:
    with fresh_database(pg_server, migrated_template) as dsn:
        env = {**os.environ, "DATABASE_URL": dsn, "MECHTRADE_LOG_FORMAT": "text"}
        demo = subprocess.run([sys.executable, "-m", "ingest.cli", "demo", "--hours", "6", "--speed", "0"],
                              env=env, capture_output=True, text=True, timeout=600)
        assert demo.returncode == 0, demo.stderr
        yield dsn


def sql_examples() -> list[str]:
    blocks = re.findall(r"```sql\n(.*?)```", README, re.DOTALL)
    return [s for block in blocks for s in split_statements(block)]


@pytest.mark.parametrize("statement", sql_examples(), ids=lambda s: s.splitlines()[0][:50])
def test_readme_sql_example_returns_rows(demo_dsn: str, statement: str) -> None:
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        rows = conn.execute(statement).fetchall()
    assert rows, f"no rows from the README example:\n{statement}"


def test_cookbook_finds_what_it_says(demo_dsn: str) -> None:
    section = README.split("## Trend starts (SQL cookbook)", 1)[1]
    block = re.search(r"```sql\n(.*?)```", section, re.DOTALL).group(1)
    with psycopg.connect(demo_dsn, autocommit=True) as conn:
        latest, in_range, agreement = (conn.execute(q).fetchall() for q in split_statements(block))
    assert {row[0] for row in latest} == {"15m", "1h"}, "the demo's jobs: swing on 15m and 1h"
    assert in_range and all("2025-05-06" <= str(r[0]) < "2025-05-13" for r in in_range)
    assert agreement and all(r[0] <= r[2] for r in agreement), "15m starts inside their 1h start's hour"


def commands(name: str) -> list[list[str]]:
    lines = re.findall(rf"^(mechtrade {name} .*)$", README, re.MULTILINE)
    return [shlex.split(line.split("#")[0])[1:] for line in lines]


def test_readme_plot_and_load_examples_run(demo_dsn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    monkeypatch.setenv("DATABASE_URL", demo_dsn)
    monkeypatch.chdir(ROOT)
    [plot] = commands("plot")
    out = tmp_path / "chart.png"
    assert main([*plot[:plot.index("--out")], "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    loads = [c for c in commands("load") if not any("*" in a for a in c)]
    assert loads and all(main(c) == 0 for c in loads)
