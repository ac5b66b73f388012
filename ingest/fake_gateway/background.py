"""Run a :class:`FakeGateway` on its own event loop in a thread, for synchronous callers (e.g. signalrcore)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable

from ingest.fake_gateway.server import FakeGateway


class BackgroundGateway:
    """A :class:`FakeGateway` on its own event loop in a daemon thread, for synchronous callers.

    ``with BackgroundGateway(speed=None) as gw:`` — attributes read through to the gateway; methods run on
    its loop (coroutines are awaited) and return their result; ``gw.wait_for(pred, timeout)`` blocks.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-gateway", daemon=True)
        self.gw: FakeGateway | None = None
        self._error: BaseException | None = None

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.gw = FakeGateway(**self._kwargs)
            self.loop.run_until_complete(self.gw.start())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.gw.stop())
        self.loop.close()

    def start(self) -> BackgroundGateway:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def __enter__(self) -> BackgroundGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` on the gateway's loop and return its (awaited) result."""
        async def run() -> Any:
            result = fn(*args, **kwargs)
            return await result if asyncio.iscoroutine(result) else result
        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        assert self.gw is not None
        return self.gw.changes.wait_for_sync(predicate, timeout)

    def __getattr__(self, name: str) -> Any:
        gw = self.__dict__.get("gw")
        if gw is None:
            raise AttributeError(name)
        value = getattr(gw, name)
        if callable(value) and not isinstance(value, type):
            return lambda *a, **k: self.call(value, *a, **k)
        return value
