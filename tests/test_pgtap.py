"""Run every pgTAP file in tests/pgtap with pg_prove, each against a fresh migrated database."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from helpers import skip_or_fail

PGTAP_FILES = sorted((Path(__file__).parent / "pgtap").glob("*.sql"))


@pytest.mark.parametrize("path", PGTAP_FILES, ids=[p.stem for p in PGTAP_FILES])
def test_pgtap(path: Path, db_dsn: str) -> None:
    if shutil.which("pg_prove") is None:
        skip_or_fail("pg_prove is not installed (Debian: libtap-parser-sourcehandler-pgtap-perl)")
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgtap")
    parts = urlsplit(db_dsn)
    env = {
        **os.environ,
        "PGHOST": parts.hostname or "",
        "PGPORT": str(parts.port or 5432),
        "PGUSER": parts.username or "",
        "PGDATABASE": parts.path.lstrip("/"),
    }
    if parts.password:
        env["PGPASSWORD"] = parts.password
    result = subprocess.run(["pg_prove", "--verbose", str(path)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
