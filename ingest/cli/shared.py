"""What several commands share: argument types."""

from __future__ import annotations

import argparse
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
