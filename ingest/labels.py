"""Hand labels of trend starts (``signals.labels``): CSV import and export, adding and removing.

The CSV format is the one of the labelled test data: ``timestamp,direction,price`` with the bar's
open time in UTC (``2025-04-21T18:00:00Z``), ``up`` or ``down``, and the bar's low (up) or high
(down). Import also takes the person's older column names and direction words, like the scoring
tool does; ``price`` is ignored on import (the bar decides it) and filled from the bar on export.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Iterable

import asyncpg

from ingest.errors import MechtradeError

TIMESTAMP_COLUMNS = ("timestamp", "date", "ts", "time")
DIRECTION_COLUMNS = ("direction", "trend_start_type", "trend_type", "type", "signal_type")
UP_WORDS = {"up", "u", "uptrend", "uptrendstart", "uptrend_start", "cus", "long", "buy"}
DOWN_WORDS = {"down", "d", "downtrend", "downtrendstart", "downtrend_start", "cds", "short", "sell"}


class LabelError(MechtradeError):
    """A label file or a label request is unusable; the message says where."""


@dataclass(frozen=True)
class Label:
    bar: datetime
    direction: str


@dataclass(frozen=True)
class ImportResult:
    read: int
    added: int
    already_there: int
    without_bar: int


def parse_time(text: str) -> datetime:
    """ISO 8601 (no offset: UTC) or epoch seconds / milliseconds."""
    s = text.strip()
    if s.lstrip("-").isdigit():
        n = int(s)
        return datetime.fromtimestamp(n / 1000 if abs(n) >= 10**11 else n, tz=UTC)
    ts = datetime.fromisoformat(s.replace("z", "Z").replace("Z", "+00:00"))
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def parse_direction(text: str) -> str:
    word = text.strip().lower()
    if word in UP_WORDS:
        return "up"
    if word in DOWN_WORDS:
        return "down"
    raise ValueError(f"unknown direction {text!r} (up or down)")


def read_csv(text: str, name: str = "labels") -> list[Label]:
    """The labels of a CSV text; LabelError naming the line of the first bad row."""
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames:
        raise LabelError(f"{name}: empty file")
    columns = {c.strip().lower(): c for c in reader.fieldnames}
    ts_col = next((columns[c] for c in TIMESTAMP_COLUMNS if c in columns), None)
    dir_col = next((columns[c] for c in DIRECTION_COLUMNS if c in columns), None)
    if ts_col is None or dir_col is None:
        raise LabelError(f"{name}: needs a timestamp and a direction column (has {', '.join(reader.fieldnames)})")
    labels = []
    for line, row in enumerate(reader, start=2):
        try:
            labels.append(Label(parse_time(row[ts_col] or ""), parse_direction(row[dir_col] or "")))
        except (ValueError, TypeError) as exc:
            raise LabelError(f"{name} line {line}: {exc}") from None
    return labels


def write_csv(rows: Iterable[tuple[datetime, str, object]]) -> str:
    """CSV text in the test data's format from (bar, direction, price) rows."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["timestamp", "direction", "price"])
    for bar, direction, price in rows:
        w.writerow([bar.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), direction, "" if price is None else price])
    return out.getvalue()


ADD_SQL = """
INSERT INTO signals.labels (contract_id, timeframe, bar, direction, author)
SELECT $1, $2, n.bar, n.direction, $5
FROM unnest($3::timestamptz[], $4::text[]) AS n (bar, direction)
ON CONFLICT (coalesce(contract_id, root), timeframe, bar, direction) WHERE removed_at IS NULL DO NOTHING"""

REMOVE_SQL = """
UPDATE signals.labels SET removed_at = now(), removed_by = $5
WHERE contract_id = $1 AND timeframe = $2 AND bar = $3 AND direction = $4 AND removed_at IS NULL"""

WITHOUT_BAR_SQL = """
SELECT count(*) FROM unnest($3::timestamptz[]) AS n (bar)
WHERE NOT EXISTS (
    SELECT 1 FROM market.bars AS b WHERE b.contract_id = $1 AND b.timeframe = $2 AND b.bucket = n.bar
)"""

# Current labels with the price of their bar: low for up, high for down (up first on a shared bar).
CURRENT_SQL = """
SELECT l.bar, l.direction, CASE l.direction WHEN 'up' THEN b.low ELSE b.high END AS price, l.author
FROM signals.labels AS l
LEFT JOIN market.bars AS b ON b.contract_id = l.contract_id AND b.timeframe = l.timeframe AND b.bucket = l.bar
WHERE l.contract_id = $1 AND l.timeframe = $2 AND l.removed_at IS NULL
    AND ($3::text IS NULL OR l.author = $3)
    AND ($4::timestamptz IS NULL OR l.bar >= $4) AND ($5::timestamptz IS NULL OR l.bar < $5)
ORDER BY l.bar, l.direction DESC"""


def _check(author: str) -> None:
    if not author.strip():
        raise LabelError("an author is needed")


async def add(conn: asyncpg.Connection, contract_id: str, timeframe: str, labels: list[Label],
              author: str) -> ImportResult:
    """Add labels (those already current are left as they are); counts labels whose bar is not in market.bars."""
    _check(author)
    bars = [lab.bar for lab in labels]
    directions = [lab.direction for lab in labels]
    async with conn.transaction():
        status = await conn.execute(ADD_SQL, contract_id, timeframe, bars, directions, author)
        without_bar = await conn.fetchval(WITHOUT_BAR_SQL, contract_id, timeframe, bars)
    added = int(status.split()[-1])
    unique = len(set(labels))
    return ImportResult(read=len(labels), added=added, already_there=unique - added, without_bar=without_bar)


async def remove(conn: asyncpg.Connection, contract_id: str, timeframe: str, label: Label, author: str) -> bool:
    """Remove a current label (it stays in the table with removed_at); False if there was none."""
    _check(author)
    status = await conn.execute(REMOVE_SQL, contract_id, timeframe, label.bar, label.direction, author)
    return status != "UPDATE 0"


async def current(conn: asyncpg.Connection, contract_id: str, timeframe: str, author: str | None = None,
                  start: datetime | None = None, end: datetime | None = None) -> list[asyncpg.Record]:
    """Current labels (bar, direction, price, author), chronological, up before down on one bar."""
    return await conn.fetch(CURRENT_SQL, contract_id, timeframe, author, start, end)


async def export_csv(conn: asyncpg.Connection, contract_id: str, timeframe: str, author: str | None = None) -> str:
    rows = await current(conn, contract_id, timeframe, author)
    return write_csv((r["bar"], r["direction"], r["price"]) for r in rows)
