"""Secrets never reach the logs, even with signalrcore logging every frame at DEBUG."""

from __future__ import annotations

import asyncio
import importlib
import io
import json
import logging
import pkgutil
from collections.abc import Iterator

import pytest

import ingest
from ingest import logs
from ingest.fake_gateway import MES_M25, FakeGateway
from ingest.feed import FeedSettings, HubFeed
from ingest.metrics import Metrics


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """JSON logs at DEBUG, signalrcore's included, written to a buffer."""
    out = io.StringIO()
    logs.configure("DEBUG", "json", stream=out)
    logging.getLogger("SignalRCoreClient").setLevel(logging.DEBUG)
    yield out
    logging.getLogger().handlers.clear()


def test_session_token_is_redacted_everywhere(debug_logs: io.StringIO) -> None:
    async def go() -> str:
        async with FakeGateway(ping_interval_s=0.2) as gw:
            token = gw.login()
            received: list = []
            feed = HubFeed(gw.hub_url, lambda: asyncio.sleep(0, token), lambda: None, [MES_M25],
                           lambda burst, _connection: received.extend(burst), Metrics(),
                           FeedSettings(check_every_s=0.05))
            stop = asyncio.Event()
            task = asyncio.create_task(feed.run(stop))
            await gw.wait_for(lambda: any(c.subscriptions for c in gw.connections))
            await gw.play(3)
            await gw.wait_for(lambda: received)
            stop.set()
            await asyncio.wait_for(task, 10)
            return token

    token = asyncio.run(go())
    err = debug_logs.getvalue()
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert any("SubscribeContractTrades" in line["msg"] for line in lines), "signalrcore's frames were logged"
    assert token not in err and token.split(".")[2] not in err
    assert "[redacted]" in err


def test_redact_covers_urls_headers_and_keys() -> None:
    assert logs.redact("wss://h/hubs/market?access_token=abc.def&x=1") == "wss://h/hubs/market?access_token=[redacted]&x=1"
    assert "k3y" not in logs.redact('{"userName": "u", "apiKey": "k3y"}')
    assert "xyz" not in logs.redact("Authorization: Bearer xyz")


def test_every_module_logs_under_its_own_name_and_on_railway_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """One logger tree (``ingest.*``, named by ``__name__``), all of it routed by ``logs.configure``."""
    monkeypatch.delenv("MECHTRADE_LOG_FORMAT", raising=False)
    monkeypatch.setenv("RAILWAY_ENVIRONMENT", "production")
    out = io.StringIO()
    logs.configure("INFO", None, stream=out)
    try:
        names = [info.name for info in pkgutil.walk_packages(ingest.__path__, "ingest.")
                 if not info.name.endswith(".__main__")]
        loggers = {name: module.log for name in names
                   if isinstance(getattr(module := importlib.import_module(name), "log", None), logging.Logger)}
        assert {"ingest.cli", "ingest.cli.migrate", "ingest.feed", "ingest.web.server"} <= set(loggers)
        for name, log in loggers.items():
            assert log.name == name
            log.info("hello from %s", name)
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line["msg"]) for line in lines] == [(n, f"hello from {n}") for n in loggers]
