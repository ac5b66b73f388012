"""Split a SQL script into statements, respecting quotes, dollar quotes and comments.

Only needed for migrations marked ``-- migrate: no-transaction``: their statements must run one
by one, because a multi-statement query string is itself an implicit transaction.
"""

from __future__ import annotations

import re

_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def split_statements(script: str) -> list[str]:
    statements: list[str] = []
    start = i = 0
    n = len(script)
    while i < n:
        ch = script[i]
        if script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end == -1 else end + 1
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            i = n if end == -1 else end + 2
        elif ch in ("'", '"'):
            i = _skip_quoted(script, i, ch)
        elif ch == "$" and (tag := _DOLLAR_TAG.match(script, i)):
            end = script.find(tag.group(0), tag.end())
            i = n if end == -1 else end + len(tag.group(0))
        elif ch == ";":
            _append(statements, script[start:i])
            start = i = i + 1
        else:
            i += 1
    _append(statements, script[start:])
    return statements


def _skip_quoted(script: str, i: int, quote: str) -> int:
    """Index just past the quoted literal opening at i (a doubled quote is an escaped quote)."""
    i += 1
    while i < len(script):
        if script[i] == quote:
            if script.startswith(quote * 2, i):
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _append(statements: list[str], text: str) -> None:
    if _strip_comments(text).strip():
        statements.append(text.strip())


def _strip_comments(text: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", "", text, flags=re.S)
