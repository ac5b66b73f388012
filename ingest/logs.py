"""Logging set-up: readable text on a terminal, one JSON object per line on Railway."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import TextIO

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


# signalrcore puts the session token in the hub URL and in every invocation's headers.
_SECRETS = re.compile(
    r"(access_token=)[^&\s'\"]+"
    r"|(Bearer\s+)[\w.~+/=-]+"
    r"|eyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]+"
    r"|(['\"](?:apiKey|token|newToken|Authorization)['\"]\s*:\s*['\"])[^'\"]+",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    """The text with tokens, bearer headers and API keys replaced by ``[redacted]``."""
    return _SECRETS.sub(lambda m: (m.group(1) or m.group(2) or m.group(3) or "") + "[redacted]", text)


class RedactingFilter(logging.Filter):
    """Applied to every handler: no secret reaches a log line, whoever logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


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


def configure(level: str = "INFO", log_format: str | None = None, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr by default) through the redacting filter, as text or JSON lines."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if wants_json(log_format):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # signalrcore logs every frame at DEBUG and configures its own handler; route it through ours.
    signalr = logging.getLogger("SignalRCoreClient")
    signalr.handlers[:] = []
    signalr.propagate = True
    signalr.setLevel(max(logging.WARNING, root.level))
