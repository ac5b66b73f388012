"""Helpers the tests import (fixtures stay in conftest.py, which no test imports)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pytest_postgresql.janitor import DatabaseJanitor

from pg_server import Server

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def skip_or_fail(reason: str) -> None:
    """Skip a test this machine cannot run; under CI=true, fail it instead: CI never skips silently."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def janitor(server: Server, dbname: str, **kwargs: object) -> DatabaseJanitor:
    """pytest-postgresql's creator and dropper of database ``dbname`` on ``server``."""
    return DatabaseJanitor(
        user=server.user, host=server.host, port=server.port, password=server.password, dbname=dbname, **kwargs
    )


@contextmanager
def fresh_database(server: Server, template: str | None = None) -> Iterator[str]:
    """A new database (a clone of ``template`` if given), dropped afterwards; yields its DSN."""
    name = f"mechtrade_test_{uuid.uuid4().hex[:10]}"
    database = janitor(server, name, template_dbname=template)
    database.init()
    try:
        yield server.dsn(name)
    finally:
        database.drop()
