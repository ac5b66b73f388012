"""docs/sql-api.md is exactly what ``python -m ingest.sql_api_doc`` writes from a freshly migrated
database, so the analysts' reference cannot drift from the comments in sql/."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).parent.parent / "docs" / "sql-api.md"


def test_sql_api_doc_matches_the_catalogue(db_dsn: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ingest.sql_api_doc", "--dsn", db_dsn],
        capture_output=True, text=True, timeout=120, check=True,
    )
    generated = result.stdout
    assert "### signals.trend_starts (function)" in generated
    diff = "".join(difflib.unified_diff(
        DOC.read_text().splitlines(keepends=True), generated.splitlines(keepends=True),
        "docs/sql-api.md", "generated", n=1,
    ))
    assert not diff, (
        "docs/sql-api.md differs from the catalogue: migrate an empty database, then run "
        f"python -m ingest.sql_api_doc --dsn URL > docs/sql-api.md\n{diff[:4000]}"
    )
