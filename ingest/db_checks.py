"""Named health checks read from the database in the background, merged into a service's ``/healthz``.

``ticks`` (the ingester): a subscribed contract without a stored tick for too long in session.
``trend_jobs`` (the coordinator): a trend job failing run after run, or not keeping up.
Each check is re-read every ``every_s``; ``/healthz`` answers from the last reading, so it stays cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ingest import db, status

log = logging.getLogger(__name__)

CHECKS = ("ticks", "trend_jobs")
Status = Callable[[], tuple[bool, dict[str, Any]]]


class DatabaseChecks:
    def __init__(self, dsn: str | None, names: tuple[str, ...], contracts: tuple[str, ...] = (),
                 roots: tuple[str, ...] = (), every_s: float = 30.0) -> None:
        unknown = set(names) - set(CHECKS)
        assert not unknown, unknown
        self.dsn, self.names, self.contracts, self.roots, self.every_s = dsn, names, contracts, roots, every_s
        self.started = datetime.now(UTC)
        self.problems: dict[str, list[str]] = {name: [] for name in names}
        self.checked_at: datetime | None = None
        self.error: str | None = None

    async def check_once(self) -> None:
        try:
            conn = await db.connect(self.dsn, timeout=10)
            try:
                contracts = await status.streamed(conn, self.contracts, self.roots)
                snap = await status.read(conn, contracts, everything=False)
            finally:
                await conn.close()
        except db.UNAVAILABLE as exc:
            self.error = f"could not read the database: {exc}"
            return
        found = []
        if "ticks" in self.names:
            found += status.tick_problems(snap.series, contracts, snap.at)
        if "trend_jobs" in self.names:
            found += status.job_problems(snap.jobs, snap.at, judged_since=self.started)
        problems = {name: [p.message for p in found if p.check == name] for name in self.names}
        for name, messages in problems.items():
            if messages and messages != self.problems[name]:
                log.warning("health check %s failing: %s", name, "; ".join(messages))
            elif self.problems[name] and not messages:
                log.info("health check %s ok again", name)
        self.problems, self.checked_at, self.error = problems, snap.at, None

    async def run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self.every_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name="health-checks")

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    def wrap(self, base: Status) -> Status:
        """``base`` (the service's own status) with these checks added: unhealthy if any check fails."""

        def combined() -> tuple[bool, dict[str, Any]]:
            healthy, details = base()
            failing = [f"{name}: {m}" for name, messages in self.problems.items() for m in messages]
            details = {**details, "checks": {name: messages or "ok" for name, messages in self.problems.items()},
                       "checked_at": self.checked_at}
            if self.error:
                details["checks_error"] = self.error
            if failing:
                details["unhealthy_because"] = failing
            return healthy and not failing, details

        return combined
