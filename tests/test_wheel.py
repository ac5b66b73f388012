"""The built wheel carries what the demo needs: the SQL, the default config and the MES tape.

Installed (without its dependencies, which this venv has) into a directory of its own and run from
another working directory, so nothing of the source checkout can be found by accident.
(.ci/run also installs it into a clean venv with its dependencies and runs the whole demo.)
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]


def pip(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "pip", "-q", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr


def test_wheel_installed_elsewhere_runs_the_demo(empty_db_dsn: str, tmp_path: Path) -> None:
    pip("wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(ROOT))
    [wheel] = (tmp_path / "dist").glob("mechtrade-*.whl")
    pip("install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel))
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MECHTRADE_")}
    env |= {"PYTHONPATH": str(tmp_path / "site"), "DATABASE_URL": empty_db_dsn, "MECHTRADE_LOG_FORMAT": "text"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, *args], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=600)

    where = run("-c", "import ingest.resources as r; print(r.sql_dir()); print(r.default_config()); "
                      "print(r.demo_tape())")
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(tmp_path / "site" / "ingest")) for line in where.stdout.split()), where.stdout
    demo = run("-m", "ingest.cli", "demo", "--speed", "0", "--hours", "2")
    assert demo.returncode == 0, demo.stderr
    ticks = int(re.search(r"^ticks +(\d+)$", demo.stdout, re.MULTILINE).group(1))
    with psycopg.connect(empty_db_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM market.ticks").fetchone() == (ticks,)
        migrations = conn.execute("SELECT count(*) FROM internal.schema_migrations").fetchone()[0]
    assert ticks > 0 and migrations == len(list((ROOT / "sql" / "migrations").glob("*.sql")))
