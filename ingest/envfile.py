"""``.env`` in the working directory, and a warning for ``MECHTRADE_*`` variables nobody reads.

``.env`` holds ``NAME=value`` lines (``export`` and quotes allowed, ``#`` comments); a variable already
set in the environment wins, and an empty value counts as unset, as ``.env.example`` leaves most of
them empty.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
import re
from collections.abc import Iterable, MutableMapping
from pathlib import Path

from ingest import config

log = logging.getLogger(__name__)

# MECHTRADE_* variables read outside the MECHTRADE_<SECTION>_<KEY> scheme.
OTHER_VARIABLES = frozenset({
    "MECHTRADE_CHART_JS", "MECHTRADE_CONFIG", "MECHTRADE_CONTRACTS", "MECHTRADE_DEMO", "MECHTRADE_LOG_FORMAT",
    "MECHTRADE_PROJECTX_PY", "MECHTRADE_ROOTS", "MECHTRADE_SCREENSHOT",
    "MECHTRADE_TEST_DSN", "MECHTRADE_SCORER",
})
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


def parse(text: str) -> dict[str, str]:
    """``NAME=value`` pairs of a .env text; quotes around a value are removed, ``#`` starts a comment."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match or line.lstrip().startswith("#"):
            continue
        name, value = match.groups()
        if value[:1] in ("'", '"') and value.endswith(value[0]) and len(value) > 1:
            value = value[1:-1]
        else:
            value = re.sub(r"(^|\s+)#.*$", "", value)
        values[name] = value
    return values


def load(path: Path = Path(".env"), environ: MutableMapping[str, str] = os.environ) -> list[str]:
    """Set the non-empty variables of ``path`` that ``environ`` lacks; return their names."""
    if not path.is_file():
        return []
    values = parse(path.read_text())
    added = [name for name, value in values.items() if value and name not in environ]
    for name in added:
        environ[name] = values[name]
    log.debug("read %s: %s", path, ", ".join(added) or "nothing new")
    return added


def known_variables() -> frozenset[str]:
    """Every ``MECHTRADE_*`` variable mechtrade reads: one per key of every config section, and the others."""
    names = set(OTHER_VARIABLES)
    defaults = config.Config()
    for section in dataclasses.fields(config.Config):
        value = getattr(defaults, section.name)
        if dataclasses.is_dataclass(value) and section.name != "credentials":
            names |= {f"MECHTRADE_{section.name}_{f.name}".upper() for f in dataclasses.fields(value)}
    return frozenset(names)


def unknown_variables(names: Iterable[str]) -> list[tuple[str, str | None]]:
    """``(name, closest known name or None)`` for every ``MECHTRADE_*`` name mechtrade does not read."""
    known = known_variables()
    unknown = sorted(n for n in names if n.startswith("MECHTRADE_") and n not in known)
    return [(n, next(iter(difflib.get_close_matches(n, known, n=1, cutoff=0.8)), None)) for n in unknown]


def warn_unknown(environ: MutableMapping[str, str] = os.environ) -> None:
    for name, guess in unknown_variables(environ):
        log.warning("%s is not a mechtrade setting and is ignored%s", name,
                    f" (did you mean {guess}?)" if guess else "")
