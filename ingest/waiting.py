"""Waiting for the first of several asyncio events, with an optional time limit."""

from __future__ import annotations

import asyncio


async def first_set(*events: asyncio.Event, timeout: float | None = None) -> bool:
    """Wait until any of ``events`` is set or ``timeout`` seconds pass (None: no limit); True if one is set."""
    if any(e.is_set() for e in events):
        return True
    if len(events) == 1:  # the common case, without a task per call
        try:
            async with asyncio.timeout(timeout):
                await events[0].wait()
        except TimeoutError:
            return False
        return True
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
    return bool(done)
