"""The ProjectX REST client against the fake gateway over real sockets: tokens, retries, bad replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ingest.config import Credentials
from ingest.fake_gateway import MES_M25, FakeGateway, RateLimit
from ingest.projectx import GatewayError, ProjectXClient

ALL_HISTORY = "2025-05-14T00:00:00+00:00"  # every bar of the data set is history
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 4}
DEMO = Credentials("demo", "demo-key")


def run(scenario: Callable[[FakeGateway, ProjectXClient], Awaitable[Any]], *, client: dict | None = None,
        credentials: Credentials = DEMO, **gw_kwargs: Any) -> Any:
    async def main() -> Any:
        async with FakeGateway(replay_from=ALL_HISTORY, **gw_kwargs) as gw:
            async with ProjectXClient(gw.rest_url, credentials, clock=gw.clock.now, **{**FAST, **(client or {})}) as px:
                return await scenario(gw, px)
    return asyncio.run(main())


def calls(gw: FakeGateway) -> list[tuple[str, int]]:
    return [(c.endpoint, c.status) for c in gw.rest_calls]


def bearer(gw: FakeGateway, index: int) -> str:
    return gw.rest_calls[index].headers["Authorization"].removeprefix("Bearer ")


def test_contract_search_parses_decimals_and_flags() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        found = await px.search_contracts("MES")
        assert [c.id for c in found] == [MES_M25, "CON.F.US.MES.U25", "CON.F.US.MES.H25"]
        assert found[0].tick_size == Decimal("0.25") and found[0].tick_value == Decimal("1.25")
        assert [c.active for c in found] == [True, False, False]
        assert await px.search_contracts("nothing like it") == []
        assert gw.rest_calls[1].body == {"searchText": "MES", "live": False}
    run(scenario)


def test_bars_come_back_ascending_as_decimals() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        bars = await px.retrieve_bars(MES_M25, 2, 5, datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC),
                                      limit=10)
        assert len(bars) == 10 and [b.t for b in bars] == sorted(b.t for b in bars)
        assert bars[-1].t == datetime(2025, 5, 2, tzinfo=UTC)  # the newest 10 of the window, end included
        assert all(isinstance(b.open, Decimal) and isinstance(b.volume, int) for b in bars)
        body = gw.rest_calls[-1].body
        assert body["unit"] == 2 and body["unitNumber"] == 5 and body["includePartialBar"] is False
        assert body["startTime"] == "2025-05-01T00:00:00+00:00"
    run(scenario)


def test_token_is_refreshed_before_it_expires() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        await px.search_contracts("MES")
        gw.clock.advance(60)  # 40 s before exp: not yet within the margin (a quarter of the lifetime)
        await px.search_contracts("MES")
        gw.clock.advance(20)  # 20 s before exp: refresh now
        await px.search_contracts("MES")
        assert calls(gw) == [("auth/loginkey", 200), ("contract/search", 200), ("contract/search", 200),
                             ("auth/validate", 200), ("contract/search", 200)]
        assert bearer(gw, 4) != bearer(gw, 1) and px.stats["validations"] == 1 and px.stats["logins"] == 1
    run(scenario, token_lifetime_s=100)


def test_token_older_than_the_refresh_period_is_validated() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        await px.search_contracts("MES")
        gw.clock.advance(11)
        await px.search_contracts("MES")
        assert [e for e, _ in calls(gw)] == ["auth/loginkey", "contract/search", "auth/validate", "contract/search"]
    run(scenario, client={"token_refresh_s": 10})


def test_401_logs_in_again_once() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        await px.search_contracts("MES")
        gw.tokens.rotate()  # every token issued so far is now invalid
        assert len(await px.search_contracts("MES")) == 3
        assert calls(gw)[2:] == [("contract/search", 401), ("auth/loginkey", 200), ("contract/search", 200)]
    run(scenario)


def test_failed_validation_falls_back_to_login() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        await px.search_contracts("MES")
        gw.expire_tokens()  # expired: validate answers 401 (validate_expired is off)
        await px.search_contracts("MES")
        assert calls(gw)[2:] == [("auth/validate", 401), ("auth/loginkey", 200), ("contract/search", 200)]
    run(scenario)


def test_bad_credentials_are_a_clear_error_without_the_key(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        with pytest.raises(GatewayError) as err:
            await px.search_contracts("MES")
        assert err.value.error_code == 3
        assert "InvalidCredentials" in str(err.value) and "PROJECTX_API_KEY" in str(err.value)
        assert "wrong-secret-key" not in str(err.value)
    caplog.set_level(logging.DEBUG)
    run(scenario, credentials=Credentials("demo", "wrong-secret-key"))
    assert "wrong-secret-key" not in caplog.text


def test_secrets_never_reach_the_log(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> list[str]:
        await px.search_contracts("MES")
        gw.tokens.rotate()
        await px.retrieve_bars(MES_M25, 2, 5, datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC))
        return [c.headers["Authorization"].split()[1] for c in gw.rest_calls if "Authorization" in c.headers]
    caplog.set_level(logging.DEBUG)
    tokens = run(scenario)
    assert len(set(tokens)) == 2 and "logging in again" in caplog.text
    assert "demo-key" not in caplog.text and not any(t in caplog.text for t in tokens)


def test_429_waits_as_retry_after_says() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> float:
        await px.search_contracts("MES")
        gw.rest_fault("429", "Contract/search", retry_after="seconds")  # Retry-After: 1
        loop = asyncio.get_running_loop()
        began = loop.time()
        await px.search_contracts("MES")
        assert calls(gw)[2:] == [("contract/search", 429), ("contract/search", 200)]
        assert gw.rest_calls[2].status == 429 and px.stats["throttled"] == 1
        return loop.time() - began
    assert run(scenario) >= 0.95


@pytest.mark.parametrize("retry_after", ["date", None])
def test_429_with_an_http_date_or_without_retry_after_is_retried(retry_after: str | None) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        gw.rest_fault("429", "*", count=2, retry_after=retry_after)
        await px.search_contracts("MES")
        assert [s for _, s in calls(gw)] == [429, 429, 200, 200]
        assert px.stats["throttled"] == 2
    run(scenario)


def test_gateway_rate_limit_is_backed_off_and_the_client_budget_is_kept() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> float:
        start, end = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for _ in range(3):
            assert len(await px.retrieve_bars(MES_M25, 3, 1, start, end)) == 24
        assert [s for e, s in calls(gw) if e == "history/retrievebars"] == [200, 200, 429, 200]
        return loop.time() - began
    assert run(scenario, history_rate=RateLimit(2, 1.0)) >= 0.95  # Retry-After: 1 was honoured


def test_the_client_keeps_its_own_history_budget() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> float:
        start, end = datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC)
        loop = asyncio.get_running_loop()
        began = loop.time()
        for _ in range(3):
            await px.retrieve_bars(MES_M25, 3, 1, start, end)
        assert all(s == 200 for _, s in calls(gw))
        return loop.time() - began
    assert run(scenario, client={"history_per_30s": 2, "history_window_s": 0.5}) >= 0.45


def test_5xx_and_timeouts_are_retried() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        gw.rest_fault("500", "*")
        gw.rest_fault("502", "*")
        gw.rest_fault("hang", "*", seconds=5)
        assert len(await px.search_contracts("MES")) == 3
        # the login met all three; the hung call is still held by the fake (no status) when the client moved on
        assert calls(gw) == [("auth/loginkey", 500), ("auth/loginkey", 502), ("auth/loginkey", 0),
                             ("auth/loginkey", 200), ("contract/search", 200)]
        assert px.stats["retries"] == 3
    run(scenario, client={"request_timeout_s": 0.3})


def test_persistent_5xx_gives_up_with_a_clear_error() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        await px.search_contracts("MES")
        gw.rest_fault("503", "*", count=10)
        with pytest.raises(GatewayError, match=r"gave up after 4 attempts; last: HTTP 503"):
            await px.search_contracts("MES")
    run(scenario)


@pytest.mark.parametrize("kind, message", [
    ("malformed_json", "reply is not valid JSON"),
    ("null_list", "success with null 'bars' 3 times"),
    ("absent_list", "success with absent 'bars' 3 times"),
    ("false_code0", "success false with errorCode 0"),
])
def test_malformed_replies_end_in_a_clear_error(kind: str, message: str) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        await px.search_contracts("MES")
        gw.rest_fault(kind, count=10)
        with pytest.raises(GatewayError, match=message) as err:
            await px.retrieve_bars(MES_M25, 2, 5, datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC))
        assert err.value.endpoint == "History/retrieveBars"
    run(scenario)


def test_a_null_list_once_is_unknown_not_empty() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        gw.rest_fault("null_list")
        bars = await px.retrieve_bars(MES_M25, 3, 1, datetime(2025, 5, 1, tzinfo=UTC), datetime(2025, 5, 2, tzinfo=UTC))
        assert len(bars) == 24
    run(scenario)


def test_business_errors_are_not_retried() -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient) -> None:
        with pytest.raises(GatewayError, match=r"errorCode 1 \(ContractNotFound\)"):
            await px.retrieve_bars("CON.F.US.NOPE.Z99", 2, 5, datetime(2025, 5, 1, tzinfo=UTC),
                                   datetime(2025, 5, 2, tzinfo=UTC))
        assert [e for e, _ in calls(gw)] == ["auth/loginkey", "history/retrievebars"]
    run(scenario)
