"""The one backoff and the one wait for the first of several events."""

from __future__ import annotations

import asyncio

from ingest.retry import Backoff
from ingest.waiting import first_set


def test_backoff_doubles_jitters_into_the_upper_half_and_caps() -> None:
    backoff = Backoff(0.5, 4.0)
    for step in range(200):
        ceiling = min(4.0, 0.5 * 2**step)
        delay = backoff.next()
        assert ceiling / 2 <= delay < ceiling, (step, delay)
    assert backoff.failures == 200
    backoff.reset()
    assert 0.25 <= backoff.next() < 0.5


def test_backoff_never_overflows_after_a_long_outage() -> None:
    assert 30.0 <= Backoff(1.0, 60.0).delay(100_000) < 60.0


def test_backoff_is_jittered() -> None:
    assert len({Backoff(1.0, 60.0).delay(3) for _ in range(20)}) > 1


def test_first_set_returns_on_the_first_event_or_false_at_the_timeout() -> None:
    async def go() -> None:
        a, b = asyncio.Event(), asyncio.Event()
        assert await first_set(a, b, timeout=0.01) is False
        assert await first_set(a, timeout=0.01) is False
        asyncio.get_running_loop().call_soon(b.set)
        assert await first_set(a, b) is True
        assert await first_set(b, timeout=0) is True  # already set
        waiter = asyncio.create_task(first_set(a))
        await asyncio.sleep(0)
        assert not waiter.done()
        a.set()
        assert await waiter is True
        others = asyncio.all_tasks() - {asyncio.current_task()}
        await asyncio.sleep(0)
        assert all(t.done() for t in others)  # no waiter left behind

    asyncio.run(go())
