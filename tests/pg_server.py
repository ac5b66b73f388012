"""A throw-away PostgreSQL server with TimescaleDB preloaded, for tests and benchmarks.

PostgreSQL refuses to run as root, and our machines run everything as root, so when we are
root the server runs as the ``postgres`` system user (``runuser``). Without root, use
pytest-postgresql's own ``postgresql_proc`` instead (see ``conftest.py``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

SERVER_SETTINGS = {
    "shared_preload_libraries": "timescaledb",
    "timescaledb.telemetry_level": "off",
    "max_connections": "200",
    "timescaledb.max_background_workers": "16",
    "max_worker_processes": "32",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str | None = None

    def dsn(self, dbname: str) -> str:
        auth = self.user if self.password is None else f"{self.user}:{self.password}"
        return f"postgresql://{auth}@{self.host}:{self.port}/{dbname}"


def pg_bindir() -> Path:
    """The bin directory of the newest installed PostgreSQL (Debian layout, or pg_config)."""
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=True)
        candidate = Path(out.stdout.strip())
        if (candidate / "pg_ctl").exists():
            return candidate
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise FileNotFoundError("no PostgreSQL server binaries (pg_ctl) found")
    return versions[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RootServer:
    """initdb + pg_ctl as the ``postgres`` user in a temporary directory on a loopback port."""

    def __init__(self, run_as: str = "postgres", without: tuple[str, ...] = ()) -> None:
        self.run_as = run_as
        self.settings = {k: v for k, v in SERVER_SETTINGS.items() if k not in without}
        self.bindir = pg_bindir()
        self.workdir = Path(tempfile.mkdtemp(prefix="mechtrade-pg-"))
        self.datadir = self.workdir / "data"
        self.port = free_port()

    def _run(self, *args: str) -> None:
        cmd = ["runuser", "-u", self.run_as, "--", *args]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {result.stderr.strip() or result.stdout.strip()}")

    def start(self) -> Server:
        shutil.chown(self.workdir, user=self.run_as)
        self._run(str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "postgres",
                  "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8")
        self._pg_ctl_start()
        return Server(host="127.0.0.1", port=self.port, user="postgres")

    def _pg_ctl_start(self) -> None:
        preloaded = "timescaledb" in self.settings.get("shared_preload_libraries", "")
        options = " ".join(f"-c {k}={v}" for k, v in self.settings.items()
                           if not k.startswith("timescaledb.") or preloaded)
        options += f" -p {self.port} -c listen_addresses=127.0.0.1 -k {self.workdir}"
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-w", "-t", "60",
                  "-l", str(self.workdir / "server.log"), "-o", options, "start")

    def restart(self) -> None:
        """Stop the server (fast: sessions are cut, as in a crash or a failover) and start it again."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop")
        self._pg_ctl_start()

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.workdir, ignore_errors=True)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def run_with_database(command: list[str]) -> int:
    """Run ``command`` with ``DATABASE_URL`` naming a fresh database, then drop it (and stop the server).

    The server is ``MECHTRADE_TEST_DSN``'s when set, else a throw-away one (root only).
    """
    import uuid

    import psycopg

    if dsn := os.environ.get("MECHTRADE_TEST_DSN"):
        from urllib.parse import urlsplit

        parts = urlsplit(dsn)
        server, root_server = Server(parts.hostname or "127.0.0.1", parts.port or 5432,
                                     parts.username or "postgres", parts.password), None
    else:
        root_server = RootServer()
        server = root_server.start()
    name = f"mechtrade_run_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            return subprocess.run(command, env={**os.environ, "DATABASE_URL": server.dsn(name)}).returncode
        finally:
            with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        if root_server:
            root_server.stop()


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 2:
        sys.exit("usage: python tests/pg_server.py COMMAND [ARG...]  (runs it with DATABASE_URL set)")
    sys.exit(run_with_database(sys.argv[1:]))
