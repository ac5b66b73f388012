"""The SQL cookbook of README.md's trend section runs and finds something on the real MES bars."""

from __future__ import annotations

import re
from pathlib import Path

import psycopg

from test_trend_incremental import bars, configure, insert, run

README = Path(__file__).resolve().parents[1] / "README.md"


def cookbook() -> list[str]:
    section = README.read_text().split("## Trend starts (SQL cookbook)", 1)[1]
    block = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    return [s.strip() for s in block.split(";") if s.strip()]


def test_cookbook_queries_return_rows(sql: psycopg.Connection) -> None:
    for timeframe in ("1d", "4h"):
        insert(sql, bars(timeframe), timeframe=timeframe)
        run(sql, configure(sql, "realtime", timeframe=timeframe))
    queries = cookbook()
    assert len(queries) == 3
    latest, in_range, agreement = (sql.execute(q).fetchall() for q in queries)
    assert {row[0] for row in latest} == {"1d", "4h"}
    assert in_range and all(str(r[0]) >= "2025-04-01" for r in in_range)
    assert agreement, "some daily starts have a 4h start of the same direction in their session"
