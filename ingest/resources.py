"""Files the package ships: the SQL, the default configuration and the demo's MES tape.

A wheel carries them inside the package (``ingest/sql``, ``ingest/config``, ``ingest/data``, see
``pyproject.toml``), read through ``importlib.resources``; a source checkout (editable install, the
Docker image) reads the repository's own ``sql/``, ``config/`` and ``tests/data/``.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
# packaged name (inside the package) -> where a source checkout keeps it
SHIPPED = {
    "sql": "sql",
    "config/mechtrade.yaml": "config/mechtrade.yaml",
    "data/mes_m25_5m.csv": "tests/data/mes/mes_m25_5m.csv",
}


def path(name: str) -> Path:
    """The file or directory ``name`` (a key of ``SHIPPED``): packaged if present, else the checkout's."""
    packaged = files("ingest").joinpath(name)
    if packaged.is_file() or packaged.is_dir():
        return Path(str(packaged))
    return REPOSITORY / SHIPPED[name]


def sql_dir() -> Path:
    return path("sql")


def default_config() -> Path:
    return path("config/mechtrade.yaml")


def demo_tape() -> Path:
    return path("data/mes_m25_5m.csv")
