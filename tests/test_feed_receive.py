"""Receiving trades: JSON records as signalrcore parsed them, the hand-off to the event loop (order, chunks)."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from typing import Any

import pytest
from signalrcore.messages.invocation_message import InvocationMessage
from signalrcore.protocol.json_hub_protocol import JsonHubProtocol

from ingest.feed import _Handoff, _SizeLimitedProtocol


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


def test_records_parse_as_signalrcore_parses_them_and_json_takes_what_orjson_refuses() -> None:
    ours, theirs = _SizeLimitedProtocol(1 << 20, lambda *_: None), JsonHubProtocol()
    trade = '{"type":1,"target":"GatewayTrade","arguments":["CON.F.US.MES.M25",[{"price":5000.25,"volume":%s}]]}'
    raw = "\x1e".join([trade % "3", trade % "NaN", trade % "123456789012345678901234567890", '{"type":6}', ""])
    parsed, expected = ours.parse_messages(raw), theirs.parse_messages(raw)
    assert [type(m) for m in parsed] == [type(m) for m in expected]
    assert isinstance(parsed[0], InvocationMessage)
    volumes = [m.arguments[1][0]["volume"] for m in parsed[:3]]
    assert volumes[0] == 3 and math.isnan(volumes[1]) and volumes[2] == 1.2345678901234568e29  # refused either way
    with pytest.raises(json.JSONDecodeError):
        ours.parse_messages('{"type":1,')


def test_a_flush_hands_on_the_whole_backlog_at_once_and_the_drain_then_finds_nothing() -> None:
    async def scenario() -> list[list[Any]]:
        loop = asyncio.get_running_loop()
        bursts: list[list[Any]] = []
        handoff = _Handoff(loop, lambda burst, _: bursts.append([a for a, _ in burst]), 7)
        handoff.TURN_S = 0.0
        sender = threading.Thread(target=lambda: [handoff.put(i) for i in range(25)])
        sender.start()
        sender.join()
        await asyncio.sleep(0)  # one loop turn: the first chunk only
        handoff.flush()  # the connection ended: the rest now, before its disconnect is handled
        for _ in range(3):
            await asyncio.sleep(0)  # the drain already scheduled runs and hands on nothing
        return bursts

    bursts = asyncio.run(scenario())
    assert bursts == [list(range(10)), list(range(10, 25))]
