"""The hand-off of trade messages from signalrcore's thread to the event loop: order, chunks, fair turns."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ingest.feed import _Handoff


def test_a_backlog_arrives_in_order_in_chunks_and_lets_other_work_run_between_turns() -> None:
    async def scenario() -> tuple[list[Any], list[str]]:
        loop = asyncio.get_running_loop()
        seen: list[Any] = []
        order: list[str] = []
        done, expected = asyncio.Event(), [25]

        def sink(burst: list[tuple[Any, float]], connection: int) -> None:
            assert connection == 7 and 1 <= len(burst) <= _Handoff.CHUNK
            seen.extend(arguments for arguments, _ in burst)
            order.append("chunk")
            if len(seen) == expected[0]:
                done.set()

        handoff = _Handoff(loop, sink, 7)
        handoff.TURN_S = 0.0  # every chunk its own loop turn
        sender = threading.Thread(target=lambda: [handoff.put(i) for i in range(25)])
        sender.start()
        sender.join()  # the whole backlog is pending before the loop drains any of it
        loop.call_soon(order.append, "other")  # queued after the drain: runs before its second chunk
        await asyncio.wait_for(done.wait(), 5)
        done.clear()
        expected[0] = 26
        handoff.put(25)  # a new message after the backlog: drained on its own
        await asyncio.wait_for(done.wait(), 5)
        return seen, order

    seen, order = asyncio.run(scenario())
    assert seen == list(range(26))
    assert order == ["chunk", "other", "chunk", "chunk", "chunk"]
