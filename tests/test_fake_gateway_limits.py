"""The fake gateway is no more lenient than the real one: the documented history budget (30 per 30 s), the
account endpoint a third-party SDK calls at login, searchById as documented, and a front-month roll at a
configured replay time."""

from __future__ import annotations

from test_fake_gateway_rest import BARS, Client, run

from ingest.fake_gateway import MES_M25, MES_U25, FakeGateway

ROLL_AT = "2025-05-13T14:00:00+00:00"


def test_history_budget_is_the_documented_30_per_30_s() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        statuses = [(await c.post("/api/History/retrieveBars", {**BARS, "limit": 1})).status for _ in range(31)]
        assert statuses == [200] * 30 + [429]
    run(scenario)


def test_account_search_lists_the_tradable_accounts() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        assert (await c.post("/api/Account/search", {"onlyActiveAccounts": True})).status == 401
        await c.login()
        resp = await c.post("/api/Account/search", {"onlyActiveAccounts": True})
        body = await resp.json()
        assert body["success"] and [a["name"] for a in body["accounts"]] == ["PRAC-V2-7001-0001"]
        assert set(body["accounts"][0]) == {"id", "name", "balance", "canTrade", "isVisible", "simulated"}
        assert (await c.post("/api/account/search", {})).status == 400
    run(scenario)


def test_search_by_id_answers_one_contract_object() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()
        body = await (await c.post("/api/Contract/searchById", {"contractId": MES_M25})).json()
        assert body["contract"]["id"] == MES_M25 and "contracts" not in body
    run(scenario)


def test_the_front_month_rolls_at_the_configured_replay_time_and_the_old_one_trades_on() -> None:
    async def scenario(gw: FakeGateway, c: Client) -> None:
        await c.login()

        async def active() -> list[str]:
            body = await (await c.post("/api/Contract/search", {"searchText": "MES", "live": False})).json()
            return [x["id"] for x in body["contracts"] if x["activeContract"]]

        assert await active() == [MES_M25]
        before = await gw.play_until("2025-05-13T13:59:59+00:00")
        assert await active() == [MES_M25] and gw.rolled == []
        after = await gw.play_until("2025-05-13T14:30:00+00:00")
        assert await active() == [MES_U25] and [r[:2] for r in gw.rolled] == [(MES_M25, MES_U25)]
        for trades in (before, after):
            assert {t.contract_id for t in trades} == {MES_M25, MES_U25}, "both trade on both sides of the roll"
    run(scenario, rolls=[(MES_M25, MES_U25, ROLL_AT)])
