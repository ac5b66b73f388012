"""Logging set-up: readable text on a terminal, one JSON object per line on Railway."""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; fields passed with ``extra=`` become keys."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def wants_json(explicit: str | None) -> bool:
    """JSON when asked, or when running on Railway (it sets RAILWAY_ENVIRONMENT)."""
    choice = explicit or os.environ.get("MECHTRADE_LOG_FORMAT")
    if choice:
        return choice == "json"
    return "RAILWAY_ENVIRONMENT" in os.environ


def configure(level: str = "INFO", log_format: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if wants_json(log_format):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
