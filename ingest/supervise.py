"""Supervised long-lived tasks: none ends unnoticed.

A task that returns or raises before its ``until`` event is set is logged with its error and
started again after a backoff (doubling, with jitter, capped), unless its error is :class:`Fatal`
or it failed ``give_up_after`` times in a row without a healthy run in between (a crash loop no
restart here cures): then ``failed`` is set, the owner stops and re-raises it (:meth:`Supervisor.raise_fatal`), the CLI
exits non-zero and the platform restarts the service. Each task's state is one named health check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ingest.errors import MechtradeError
from ingest.metrics import Metrics
from ingest.retry import Backoff
from ingest.waiting import first_set

log = logging.getLogger(__name__)


class Fatal(MechtradeError):
    """An error no restart can cure (bad configuration, a broken install): end the process."""


@dataclass
class TaskState:
    name: str
    running: bool = False
    restarts: int = 0
    last_error: str = ""

    def check(self) -> tuple[bool, str]:
        """(ok, reason) for ``/healthz``."""
        if self.running:
            restarted = f" (restarted {self.restarts}x, last: {self.last_error})" if self.restarts else ""
            return True, "running" + restarted
        return False, f"down: {self.last_error or 'not started'}"


class Supervisor:
    """``sup.add(name, factory, until)`` for each task, then ``sup.start()``; watch ``sup.failed``."""

    def __init__(self, metrics: Metrics, *, backoff_initial_s: float = 0.5, backoff_max_s: float = 30.0,
                 healthy_after_s: float = 60.0, give_up_after: int = 20) -> None:
        self.metrics = metrics
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.healthy_after_s, self.give_up_after = healthy_after_s, give_up_after
        self.states: dict[str, TaskState] = {}
        self._factories: dict[str, tuple[Callable[[], Awaitable[None]], asyncio.Event]] = {}
        self.fatal: Fatal | None = None
        self.failed = asyncio.Event()
        metrics.describe("task_restarts_total", "counter", "supervised tasks that ended unexpectedly, by task")
        metrics.describe("task_up", "gauge", "1 while a supervised task runs, by task")

    def add(self, name: str, factory: Callable[[], Awaitable[None]], until: asyncio.Event) -> None:
        """Supervise ``factory()``; it may end once ``until`` is set."""
        self.states[name] = TaskState(name)
        self._factories[name] = (factory, until)

    def checks(self) -> dict[str, tuple[bool, str]]:
        return {name: state.check() for name, state in self.states.items()}

    def start(self) -> dict[str, asyncio.Task]:
        """Start every task under supervision; returns the supervising tasks (each ends after its ``until``)."""
        return {name: asyncio.create_task(self._keep(name), name=f"supervise-{name}") for name in self._factories}

    def raise_fatal(self) -> None:
        if self.fatal is not None:
            raise self.fatal

    async def _keep(self, name: str) -> None:
        (factory, stop), state = self._factories[name], self.states[name]
        backoff = Backoff(self.backoff_initial_s, self.backoff_max_s)
        in_a_row = 0
        while True:
            started = time.monotonic()
            state.running = True
            self.metrics.set("task_up", 1, task=name)
            try:
                await factory()
                if stop.is_set():
                    return
                error = "ended unexpectedly"
                log.error("task %s ended unexpectedly; restarting", name)
            except asyncio.CancelledError:
                raise
            except Fatal as exc:
                self._give_up(state, exc)
                return
            except Exception as exc:  # anything else: log it whole, restart
                if stop.is_set():
                    log.warning("task %s failed while stopping: %s", name, exc)
                    return
                error = f"{type(exc).__name__}: {exc}"
                log.error("task %s failed (%s); restarting", name, error, exc_info=exc)
            self._down(state, error)
            healthy_run = time.monotonic() - started >= self.healthy_after_s
            in_a_row = 1 if healthy_run else in_a_row + 1
            if in_a_row >= self.give_up_after:
                self._give_up(state, Fatal(f"task {name} failed {in_a_row} times in a row; last: {error}"))
                return
            state.restarts += 1
            self.metrics.inc("task_restarts_total", task=name)
            if healthy_run:
                backoff.reset()
            if await first_set(stop, timeout=backoff.next()):
                return

    def _give_up(self, state: TaskState, exc: Fatal) -> None:
        self._down(state, str(exc))
        log.error("task %s cannot recover: %s", state.name, exc)
        self.fatal = exc
        self.failed.set()

    def _down(self, state: TaskState, error: str) -> None:
        state.running, state.last_error = False, error[:300]
        self.metrics.set("task_up", 0, task=state.name)
