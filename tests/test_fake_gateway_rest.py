"""The fake gateway's REST half over real sockets: auth, contracts, history paging, rate limits, REST faults."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import pytest

from ingest.fake_gateway import MES_M25, FakeGateway, RateLimit, load_bars
from ingest.fake_gateway.bars import iso

ALL_HISTORY = "2025-05-14T00:00:00+00:00"  # after the last bar: every bar of the data set is history
BARS = {"contractId": MES_M25, "live": False, "startTime": "2025-03-01T00:00:00Z",
        "endTime": "2025-06-01T00:00:00Z", "unit": 2, "unitNumber": 5, "limit": 20000, "includePartialBar": False}


class Client:
    """A tiny REST client speaking to the fake like the ingester will."""

    def __init__(self, session: aiohttp.ClientSession, gw: FakeGateway) -> None:
        self.session, self.gw, self.token = session, gw, ""

    async def post(self, path: str, body: Any = None, token: str | None = None,
                   headers: dict | None = None) -> aiohttp.ClientResponse:
        hdrs = {"accept": "text/plain", **(headers or {})}
        tok = self.token if token is None else token
        if tok:
            hdrs["Authorization"] = f"Bearer {tok}"
        resp = await self.session.post(self.gw.rest_url + path, json=body, headers=hdrs)
        await resp.read()
        return resp

    async def login(self, user: str = "demo", key: str = "demo-key") -> dict:
        resp = await self.post("/api/Auth/loginKey", {"userName": user, "apiKey": key}, token="")
        data = await resp.json()
        self.token = data.get("token") or ""
        return data

    async def bars(self, **change: Any) -> tuple[int, Any]:
        resp = await self.post("/api/History/retrieveBars", {**BARS, **change})
        return resp.status, (await resp.json() if resp.status == 200 else None)


def run(scenario: Any, **gw_kwargs: Any) -> Any:
    async def main() -> Any:
        async with FakeGateway(**gw_kwargs) as gw, aiohttp.ClientSession() as session:
            return await scenario(gw, Client(session, gw))
    return asyncio.run(main())


def test_login_token_is_an_hs256_jwt_with_exp_and_msd() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        resp = await c.post("/api/Auth/loginKey", {"userName": "demo", "apiKey": "demo-key"})
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
        data = await resp.json()
        assert data["success"] is True and data["errorCode"] == 0 and data["errorMessage"] is None
        head, claims = (json.loads(base64.urlsafe_b64decode(p + "==")) for p in data["token"].split(".")[:2])
        assert head["alg"] == "HS256"
        assert claims["msd"] == ["CMEGROUP_TOB", "CME_TOB"]
        assert 0 < claims["exp"] - gw.clock.now() <= 60
    run(scenario, token_lifetime_s=60)


def test_login_failures_are_http_200_with_codes_and_missing_fields_are_400() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        assert await c.login("demo", "wrong") == {"token": None, "success": False, "errorCode": 3,
                                                  "errorMessage": None}
        assert (await c.login("nobody", "x"))["errorCode"] == 3
        signed = await c.login("unsigned", "k")
        assert signed["errorCode"] == 7 and signed["errorMessage"]
        assert (await c.login("nosub", "k"))["errorCode"] == 9
        assert (await c.login("disabled", "k"))["errorCode"] == 10
        assert (await c.post("/api/Auth/loginKey", {"userName": "demo"})).status == 400
        assert (await c.post("/api/Auth/loginKey", None)).status == 400
    run(scenario, account_errors={"unsigned": 7, "nosub": 9, "disabled": 10})


def test_bearer_is_checked_and_validate_returns_a_new_token() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        body = {"searchText": "MES", "live": False}
        assert (await c.post("/api/Contract/search", body)).status == 401
        assert (await c.post("/api/Contract/search", body, token="garbage")).status == 401
        await c.login()
        resp = await c.post("/api/Auth/validate")
        data = await resp.json()
        assert data["success"] and gw.tokens.claims(data["newToken"]) is not None
        gw.expire_tokens()
        assert (await c.post("/api/Contract/search", body)).status == 401
        assert (await c.post("/api/Auth/validate")).status == 401
        gw.options.validate_expired = True
        fresh = (await (await c.post("/api/Auth/validate")).json())["newToken"]
        assert (await c.post("/api/Contract/search", body, token=fresh)).status == 200
        assert (await c.post("/api/Auth/logout", token=fresh)).status == 200
        assert (await c.post("/api/Contract/search", body, token=fresh)).status == 401
    run(scenario)


def test_routing_is_case_insensitive_and_post_only() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        for path in ("/api/contract/search", "/API/CONTRACT/SEARCH", "/api/Contract/Search"):
            resp = await c.post(path, {"searchText": "mnq", "live": False})
            assert resp.status == 200
            assert [x["id"] for x in (await resp.json())["contracts"]] == ["CON.F.US.MNQ.M25", "CON.F.US.MNQ.U25"]
        resp = await c.session.get(gw.rest_url + "/api/Contract/search")
        assert resp.status == 405
        assert (await c.post("/api/Nope/nothing", {})).status == 404
    run(scenario)


def test_contract_search_caps_at_20_and_search_by_id_has_both_shapes() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        gw.catalog += [type(gw.catalog[0])(f"CON.F.US.ZZ{i}.M25", f"ZZ{i}M5", "filler", 0.25, 1.0, True, "F.US.ZZ")
                       for i in range(30)]
        found = (await (await c.post("/api/Contract/search", {"searchText": "zz", "live": True})).json())
        assert len(found["contracts"]) == 20
        one = await (await c.post("/api/Contract/searchById", {"contractId": "CON.F.US.MES.H25"})).json()
        assert one["contract"]["activeContract"] is False and one["contract"]["symbolId"] == "F.US.MES"
        missing = await (await c.post("/api/Contract/searchById", {"contractId": "CON.F.US.XX.Z99"})).json()
        assert missing["success"] is False and missing["errorCode"] == 1
        gw.options.search_by_id_array = True
        many = await (await c.post("/api/Contract/searchById", {"contractId": MES_M25})).json()
        assert [x["id"] for x in many["contracts"]] == [MES_M25]
        available = await (await c.post("/api/Contract/available", {"live": False})).json()
        assert len(available["contracts"]) == len(gw.catalog)
    run(scenario)


def test_bars_are_newest_first_with_nine_decimals_and_equal_the_real_5m_bars() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        resp = await c.post("/api/History/retrieveBars", {**BARS, "limit": 2})
        text = await resp.text()
        assert re.search(r'"o":\d+\.\d{9},"h":\d+\.\d{9},"l":\d+\.\d{9},"c":\d+\.\d{9},"v":\d+}', text)
        bars = (await resp.json())["bars"]
        src = load_bars()
        assert [b["t"] for b in bars] == [iso(src[-1].t), iso(src[-2].t)]
        got = (await c.bars())[1]["bars"]
        assert len(got) == len(src)
        expected = [{"t": iso(b.t), "o": b.o, "h": b.h, "l": b.l, "c": b.c, "v": b.v} for b in reversed(src)]
        assert got == expected
    run(scenario, replay_from=ALL_HISTORY)


def test_paging_backwards_with_limit_has_no_overlaps_or_holes() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        end, seen = "2025-05-14T00:00:00Z", []
        while True:
            status, data = await c.bars(endTime=end, limit=1000)
            assert status == 200 and data["success"]
            page = data["bars"]
            if not page:
                break
            assert len(page) <= 1000
            ts = [b["t"] for b in page]
            assert ts == sorted(ts, reverse=True)
            seen += ts
            oldest = datetime.fromisoformat(ts[-1])
            end = (oldest - timedelta(seconds=1)).isoformat()
        assert len(seen) == len(set(seen)) == len(load_bars())
    run(scenario, replay_from=ALL_HISTORY)


def test_bar_units_edges_partial_bar_and_error_codes() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        window = {"startTime": "2025-05-12T22:00:00Z", "endTime": "2025-05-13T14:00:00Z"}
        h4 = (await c.bars(unit=3, unitNumber=4, **window))[1]["bars"]
        assert [b["t"][11:16] for b in h4] == ["06:00", "02:00", "22:00"]  # session-anchored; 10:00 is forming
        d1 = (await c.bars(unit=4, unitNumber=1, startTime="2025-05-12T00:00:00Z"))[1]["bars"]
        assert [b["t"] for b in d1] == ["2025-05-12T00:00:00+00:00"]  # 2025-05-13 is still forming
        partial = (await c.bars(unit=4, unitNumber=1, startTime="2025-05-12T00:00:00Z",
                                includePartialBar=True))[1]["bars"]
        assert partial[0]["t"] == "2025-05-13T00:00:00+00:00" and partial[1] == d1[0]
        sec = (await c.bars(unit=1, unitNumber=30, startTime="2025-05-13T13:00:00Z"))[1]["bars"]
        assert sec and all(datetime.fromisoformat(b["t"]).second in (0, 30) for b in sec)
        edge = (await c.bars(startTime="2025-05-13T13:00:00Z", endTime="2025-05-13T13:10:00Z"))[1]["bars"]
        assert [b["t"][11:16] for b in edge] == ["13:10", "13:05", "13:00"]  # inclusive at both ends
        gw.options.end_inclusive = False
        edge = (await c.bars(startTime="2025-05-13T13:00:00Z", endTime="2025-05-13T13:10:00Z"))[1]["bars"]
        assert [b["t"][11:16] for b in edge] == ["13:05", "13:00"]
        assert (await c.bars(startTime="2026-01-01T00:00:00Z"))[1] == {
            "bars": [], "success": True, "errorCode": 0, "errorMessage": None}
        assert (await c.bars(contractId="CON.F.US.MNQ.M25"))[1]["bars"] == []
        for change, code in (({"contractId": "CON.F.US.NOPE.Z99"}, 1), ({"unit": 7}, 2), ({"unit": 0}, 2),
                             ({"unitNumber": 0}, 3), ({"limit": 20001}, 4), ({"limit": 0}, 4)):
            status, data = await c.bars(**change)
            assert (status, data["success"], data["errorCode"]) == (200, False, code), change
        incomplete = {k: v for k, v in BARS.items() if k != "includePartialBar"}
        assert (await c.post("/api/History/retrieveBars", incomplete)).status == 400
        assert (await c.bars(startTime="yesterday"))[0] == 400
        gw.options.history_delay_s = 900  # sim (live: false) bars 15 minutes late
        assert (await c.bars(limit=1))[1]["bars"][0]["t"] == "2025-05-13T13:05:00+00:00"
        assert (await c.bars(limit=1, live=True))[1]["bars"][0]["t"] == "2025-05-13T13:20:00+00:00"
        gw.options.history_delay_s = 0
        gw.options.minute_lookback_s = 3600
        m1 = (await c.bars(unit=2, unitNumber=1))[1]["bars"]
        assert m1[-1]["t"] >= "2025-05-13T12:29:00+00:00" and len(m1) <= 60
    run(scenario)


def test_history_rate_limit_is_a_sliding_window_with_retry_after() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        statuses = [(await c.post("/api/History/retrieveBars", {**BARS, "limit": 1})).status for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        resp = await c.post("/api/History/retrieveBars", {**BARS, "limit": 1})
        assert resp.status == 429 and int(resp.headers["Retry-After"]) >= 1
        assert (await c.post("/api/Contract/available", {"live": False})).status == 200  # separate budget
        gw.options.retry_after = "date"
        resp = await c.post("/api/History/retrieveBars", {**BARS, "limit": 1})
        assert parsedate_to_datetime(resp.headers["Retry-After"]) > datetime.now(UTC) - timedelta(seconds=1)
        gw.options.retry_after = None
        resp = await c.post("/api/History/retrieveBars", {**BARS, "limit": 1})
        assert resp.status == 429 and "Retry-After" not in resp.headers
    run(scenario, history_rate=RateLimit(3, 30.0))


def test_rest_faults_happen_on_the_wire() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        gw.inject("F18", kind="429", retry_after=None)
        resp = await c.post("/api/History/retrieveBars", BARS)
        assert resp.status == 429 and "Retry-After" not in resp.headers
        gw.rest_fault("429")
        assert (await c.post("/api/History/retrieveBars", BARS)).headers["Retry-After"] == "1"
        for kind in ("500", "502", "503"):
            gw.rest_fault(kind)
            assert (await c.bars())[0] == int(kind)
        gw.rest_fault("empty")
        assert (await c.bars())[1]["bars"] == []
        gw.rest_fault("null_list")
        assert (await c.bars())[1] == {"bars": None, "success": True, "errorCode": 0, "errorMessage": None}
        gw.rest_fault("absent_list")
        assert (await c.bars())[1] == {"success": True, "errorCode": 0, "errorMessage": None}
        gw.rest_fault("false_code0")
        assert (await c.bars())[1] == {"bars": None, "success": False, "errorCode": 0, "errorMessage": None}
        gw.rest_fault("short", keep=3)
        assert len((await c.bars())[1]["bars"]) == 3
        gw.rest_fault("malformed_json")
        with pytest.raises(json.JSONDecodeError):
            json.loads(await (await c.post("/api/History/retrieveBars", BARS)).text())
        gw.rest_fault("error", endpoint="Auth/validate", code=3)
        assert (await (await c.post("/api/Auth/validate")).json())["errorCode"] == 3
        gw.rest_fault("hang", seconds=5)
        with pytest.raises(asyncio.TimeoutError):
            await c.session.post(gw.rest_url + "/api/History/retrieveBars", json=BARS,
                                 headers={"Authorization": f"Bearer {c.token}"},
                                 timeout=aiohttp.ClientTimeout(total=0.3))
        assert (await c.bars())[0] == 200  # the fault was used up
    run(scenario)


def test_control_endpoint_injects_faults() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        resp = await c.session.post(gw.rest_url + "/_fake/inject", json={"fault": "rest_fault", "kind": "503"})
        assert (await resp.json())["ok"] is True
        assert (await c.bars())[0] == 503
        resp = await c.session.post(gw.rest_url + "/_fake/inject", json={"fault": "F99"})
        assert resp.status == 400
    run(scenario)
