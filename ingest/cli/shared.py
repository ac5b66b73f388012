"""What several commands share: argument types and the aligned text table."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import UTC, datetime

TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")


def utc_time(text: str) -> datetime:
    """An argument time: ISO-8601 date or date-time, UTC unless it carries an offset."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO date or time: {text!r} (e.g. 2025-06-02 or 2025-06-02T14:30)") from None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows (the first is the header) as lines of left-aligned columns two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
