"""The fake market hub driven by a raw aiohttp WebSocket client: framing, invocations, keep-alive, faults F1-F17."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import WSMsgType

from ingest.fake_gateway import MALFORMED_KINDS, MES_M25, MES_U25, FakeGateway, default_tape

RS = "\x1e"
SUB = {"type": 1, "invocationId": "1", "target": "SubscribeContractTrades", "arguments": [MES_M25]}
TS7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$")


class RawHub:
    """A bare WebSocket client that speaks the JSON hub protocol by hand."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.pending: list[Any] = []
        self.frames: list[str] = []

    async def send(self, *records: Any) -> None:
        await self.ws.send_str("".join(json.dumps(r) + RS for r in records))

    async def record(self, timeout: float = 5.0) -> Any:
        """The next record (parsed), or the non-text WSMessage (close, error, ping) that arrived instead."""
        while not self.pending:
            msg = await self.ws.receive(timeout)
            if msg.type != WSMsgType.TEXT:
                return msg
            self.frames.append(msg.data)
            *records, rest = msg.data.split(RS)
            assert rest == "", f"record without terminator: {msg.data!r}"
            self.pending += [json.loads(r) for r in records]
        return self.pending.pop(0)

    async def until(self, pred: Callable[[Any], bool], timeout: float = 5.0) -> Any:
        while True:
            rec = await self.record(timeout)
            if pred(rec):
                return rec
            if isinstance(rec, aiohttp.WSMessage):
                raise AssertionError(f"connection ended first: {rec}")

    async def trades(self, timeout: float = 5.0) -> list:
        """The ``arguments`` of the next GatewayTrade."""
        rec = await self.until(lambda r: isinstance(r, dict) and r.get("target") == "GatewayTrade", timeout)
        return rec["arguments"]


async def open_hub(session: aiohttp.ClientSession, gw: FakeGateway, token: str | None = None,
                   handshake: bool = True, subscribe: bool = True, **kw: Any) -> RawHub:
    ws = await session.ws_connect(gw.hub_url_with_token(token or gw.login()), **kw)
    hub = RawHub(ws)
    if handshake:
        await hub.send({"protocol": "json", "version": 1})
        assert await hub.record() == {}
    if subscribe:
        await hub.send(SUB)
        assert await hub.until(lambda r: r.get("type") == 3) == {"type": 3, "invocationId": "1", "result": None}
    return hub


def run(scenario: Callable[[FakeGateway, aiohttp.ClientSession], Awaitable[Any]], **gw_kwargs: Any) -> Any:
    async def main() -> Any:
        async with FakeGateway(**gw_kwargs) as gw, aiohttp.ClientSession() as session:
            return await scenario(gw, session)
    return asyncio.run(main())


async def play_trades(gw: FakeGateway, contract_id: str = MES_M25, batches: int = 1) -> list:
    """Play until ``batches`` batches of ``contract_id`` went out; returns those trades."""
    out: list = []
    while batches:
        played = await gw.play(1)
        if played and played[0].contract_id == contract_id:
            out += played
            batches -= 1
    return out


def test_handshake_accepts_version_0_and_1_and_rejects_other_protocols() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        for version in (0, 1):
            hub = await open_hub(s, gw, handshake=False, subscribe=False)
            await hub.send({"protocol": "json", "version": version})
            assert await hub.record() == {}
            assert hub.frames == ["{}" + RS]
        for bad, error in (({"protocol": "messagepack", "version": 1}, "Requested protocol 'messagepack' is not "
                                                                          "available."),
                           ({"protocol": "json", "version": 2}, "The server does not support version 2 of the "
                                                                "'json' protocol.")):
            hub = await open_hub(s, gw, handshake=False, subscribe=False)
            await hub.send(bad)
            assert await hub.record() == {"error": error}
            assert (await hub.record()).type == WSMsgType.CLOSE
        gw.options.coalesce_handshake = True
        hub = await open_hub(s, gw, handshake=False, subscribe=False)
        await hub.send({"protocol": "json", "version": 1})
        assert await hub.record() == {} and await hub.record() == {"type": 6}
        assert hub.frames == ["{}" + RS + '{"type":6}' + RS]
    run(scenario)


def test_upgrade_auth_query_header_401_and_negotiate() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        token = gw.login()
        for url in (gw.hub_url, gw.hub_url + "?access_token=nonsense"):
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await s.ws_connect(url)
            assert err.value.status == 401
        ws = await s.ws_connect(gw.hub_url, headers={"Authorization": f"Bearer {token}"})
        await ws.close()
        gw.inject("F5", count=1)
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(gw.hub_url_with_token(token))
        assert err.value.status == 401
        neg = await (await s.post(gw.hub_url + "/negotiate", headers={"Authorization": f"Bearer {token}"})).json()
        assert neg["negotiateVersion"] == 0 and neg["availableTransports"][0]["transport"] == "WebSockets"
        ws = await s.ws_connect(gw.hub_url_with_token(token) + f"&id={neg['connectionId']}")
        await ws.close()
        neg1 = await (await s.post(gw.hub_url + f"/negotiate?negotiateVersion=1&access_token={token}")).json()
        assert neg1["negotiateVersion"] == 1 and neg1["connectionToken"]
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(gw.hub_url_with_token(token) + "&id=unknown")
        assert err.value.status == 404
        assert (await s.post(gw.hub_url + "/negotiate")).status == 401
        gw.expire_tokens()
        with pytest.raises(aiohttp.WSServerHandshakeError) as err:
            await s.ws_connect(gw.hub_url_with_token(token))
        assert err.value.status == 401
        assert [st for _, st in gw.upgrades] == [401, 401, 101, 401, 101, 404, 401]
    run(scenario)


def test_invocations_completions_and_errors() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw, subscribe=False)
        await hub.send({"type": 1, "invocationId": "7", "target": "SubscribeContractQuotes", "arguments": []},
                       {"type": 1, "invocationId": "7", "target": "SubscribeContractQuotes", "arguments": [1]},
                       {"type": 1, "invocationId": "8", "target": "NoSuchMethod", "arguments": [MES_M25]},
                       {"type": 1, "target": "SubscribeContractTrades", "arguments": [MES_M25],
                        "headers": {"Authorization": "Bearer x"}, "extra": True})
        failed = "Failed to invoke 'SubscribeContractQuotes' due to an error on the server."
        assert await hub.record() == {"type": 3, "invocationId": "7", "error": failed}
        assert await hub.record() == {"type": 3, "invocationId": "7", "error": failed}  # duplicate ids are fine
        assert await hub.record() == {"type": 3, "invocationId": "8", "error": "Unknown hub method 'NoSuchMethod'"}
        await gw.wait_for(lambda: gw.connections[0].subscriptions == {("trades", MES_M25)})  # non-blocking: no reply
        assert gw.received_invocations("SubscribeContractTrades")[0]["headers"] == {"Authorization": "Bearer x"}
        gw.options.new_unknown_method_wording = True
        gw.options.completion_result = False
        await hub.send({"type": 1, "invocationId": "9", "target": "Nope", "arguments": []},
                       {"type": 1, "invocationId": "10", "target": "unsubscribecontracttrades",
                        "arguments": [MES_M25]})
        assert (await hub.record())["error"] == ("Failed to invoke 'Nope' due to an error on the server. "
                                                 "HubException: Method does not exist.")
        assert await hub.record() == {"type": 3, "invocationId": "10"}
        assert gw.connections[0].subscriptions == set()
        assert gw.connections[0].received[0] == {"protocol": "json", "version": 1}
    run(scenario)


def test_trades_quotes_and_depth_on_the_wire_match_the_recording() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        await play_trades(gw)  # sets a quote state
        await hub.trades()
        await hub.send({"type": 1, "invocationId": "2", "target": "SubscribeContractQuotes", "arguments": [MES_M25]},
                       {"type": 1, "invocationId": "3", "target": "SubscribeContractMarketDepth",
                        "arguments": [MES_M25]})
        await gw.wait_for(lambda: len(gw.connections[0].subscriptions) == 3)
        played = await play_trades(gw, batches=20)
        received: list = []
        quotes: list = []
        depth: list = []
        while len(received) < len(played) or len(quotes) < 21 or len(depth) < 21:
            rec = await hub.until(lambda r: r.get("type") == 1)
            cid, payload = rec["arguments"]
            assert cid == MES_M25
            {"GatewayTrade": received, "GatewayQuote": quotes, "GatewayDepth": depth}[rec["target"]].append(payload)
            if rec["target"] == "GatewayTrade":
                received.pop()
                assert isinstance(payload, list)
                received += payload
        assert all(TS7.match(t["timestamp"]) and t["symbolId"] == "F.US.MES" for t in received)
        assert [(t["price"], t["volume"], t["type"]) for t in received] == [(t.price, t.volume, t.side)
                                                                            for t in played]
        sent = [st.item for st in gw.sent_trades if st.conn_id == gw.connections[0].id]
        assert sent[-len(received):] == received
        assert {"change", "open", "high", "low", "volume", "symbolName"} <= set(quotes[0])  # snapshot first
        assert "open" not in quotes[-1] and quotes[-1]["lastPrice"] == played[-1].price
        assert depth[0][0]["type"] == 6  # Reset first
    run(scenario)


def test_pings_on_outbound_silence_and_client_timeout() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw, subscribe=False)
        assert await hub.record() == {"type": 6}
        assert await hub.until(lambda r: isinstance(r, dict) and r.get("type") == 7) == {
            "type": 7, "error": "Server timeout elapsed without receiving a message from the client."}
        assert (await hub.record()).type == WSMsgType.CLOSE
    run(scenario, ping_interval_s=0.1, client_timeout_s=0.5)


def test_f1_tcp_reset_and_fin_without_close_frame() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        for rst in (True, False):
            hub = await open_hub(s, gw)
            gw.reset(rst=rst)
            msg = await hub.record()
            assert msg.type in (WSMsgType.CLOSED, WSMsgType.ERROR) and msg.type != WSMsgType.CLOSE
            assert gw.connections[-1].close_reason == ("rst" if rst else "fin")
    run(scenario)


def test_f2_websocket_close_codes_and_f3_signalr_close() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        for code in (1000, 1001, 1011):
            hub = await open_hub(s, gw)
            gw.inject("F2", code=code)
            msg = await hub.record()
            assert (msg.type, msg.data) == (WSMsgType.CLOSE, code)
        for flag in (True, False, None):
            hub = await open_hub(s, gw)
            gw.signalr_close("bye", allow_reconnect=flag)
            expected = {"type": 7, "error": "bye"} | ({} if flag is None else {"allowReconnect": flag})
            assert await hub.record() == expected
            assert (await hub.record()).type == WSMsgType.CLOSE
    run(scenario)


def test_f4_outage_refuses_connections_then_recovers() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        await gw.outage(0.5)
        assert not gw.hub_up
        assert (await hub.record()).type in (WSMsgType.CLOSED, WSMsgType.ERROR)
        with pytest.raises(aiohttp.ClientConnectorError):
            await s.ws_connect(gw.hub_url_with_token(gw.login()))
        assert (await s.post(gw.rest_url + "/api/Contract/available", json={"live": False})).status == 401  # REST up
        await gw.wait_for(lambda: gw.hub_up, 5)
        await open_hub(s, gw)
    run(scenario)


def test_f6_handshake_error_and_silence_then_handshake_timeout() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        gw.handshake_fault("error")
        hub = await open_hub(s, gw, handshake=False, subscribe=False)
        await hub.send({"protocol": "json", "version": 1})
        assert await hub.record() == {"error": "Handshake was canceled."}
        assert (await hub.record()).type == WSMsgType.CLOSE
        gw.inject("F6", mode="silent")
        hub = await open_hub(s, gw, handshake=False, subscribe=False)
        await hub.send({"protocol": "json", "version": 1})
        assert (await hub.record()).type == WSMsgType.CLOSE  # nothing but the timeout close
        assert hub.frames == [] and gw.connections[-1].close_reason == "handshake timeout"
    run(scenario, handshake_timeout_s=0.3)


def test_f7_half_open_sends_nothing_at_all() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        gw.half_open()
        await play_trades(gw, batches=3)
        with pytest.raises(asyncio.TimeoutError):
            await hub.record(timeout=0.4)  # four ping intervals of silence
        assert not gw.connections[0].closed
    run(scenario, ping_interval_s=0.1)


def test_f8_stall_one_contract_while_pings_and_other_contracts_continue() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        await hub.send({**SUB, "invocationId": "2", "arguments": [MES_U25]})
        await hub.until(lambda r: r.get("type") == 3)
        gw.inject("F8", contract_id=MES_M25)
        await play_trades(gw, MES_U25, batches=2)
        seen = [await hub.until(lambda r: r.get("type") in (1, 6)) for _ in range(3)]
        assert all(r.get("arguments", [MES_U25])[0] == MES_U25 for r in seen)
        await gw.wait_for(lambda: any(r == '{"type":6}' + RS for r in gw.connections[0].sent))
        assert MES_M25 not in {st.trade.contract_id for st in gw.sent_trades}
        assert any(cid == MES_M25 for cid, _ in gw.played)  # the market moved on
        gw.stall(MES_M25, on=False)
        played = await play_trades(gw, MES_M25)
        assert (await hub.until(lambda r: r.get("arguments", [""])[0] == MES_M25))["arguments"][1][0]["price"] == \
            played[0].price
    run(scenario, ping_interval_s=0.1)


def test_f9_duplicates_and_replay_after_resubscribe() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        gw.duplicate_trade()
        played = await play_trades(gw)
        items = (await hub.trades())[1]
        assert items[0] == items[1] and len(items) == len(played) + 1
        gw.inject("F9")  # duplicate batch
        await play_trades(gw)
        first, second = (await hub.trades())[1], (await hub.trades())[1]
        assert first == second
        assert [st.repeat for st in gw.sent_trades].count("dup_batch") == len(second)
        gw.replay_on_subscribe(5)
        await hub.send({**SUB, "invocationId": "3"})
        replayed = (await hub.trades())[1]
        assert len(replayed) == 5 and replayed[-1] == second[-1]
        assert len({(st.trade.contract_id, st.trade.index) for st in gw.sent_trades}) == len(gw.delivered_trades())
    run(scenario)


def test_f10_out_of_order_within_and_across_batches() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        stamps: list[str] = []
        while len(stamps) < 2:
            gw.reverse_batch()
            await play_trades(gw)
            stamps = [t["timestamp"] for t in (await hub.trades())[1]]
        assert stamps == sorted(stamps, reverse=True)
        gw.inject("F10")  # late batch
        late = await play_trades(gw)
        after = await play_trades(gw)
        first, second = (await hub.trades())[1], (await hub.trades())[1]
        assert first[0]["price"] == after[0].price and second[0]["price"] == late[0].price
        assert second[0]["timestamp"] < first[0]["timestamp"]
    run(scenario)


def test_f11_every_malformed_frame_kind_goes_out_verbatim() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        await play_trades(gw)
        await hub.trades()
        for kind in MALFORMED_KINDS:
            gw.inject("F11", kind=kind)
            msg = await hub.ws.receive(5)
            raw = msg.data if msg.type == WSMsgType.TEXT else None
            expected = gw.malformed_sent[-1][2]
            if kind == "invalid_utf8":
                assert msg.type == WSMsgType.ERROR  # aiohttp refuses it: proof the bytes were not UTF-8
                break
            assert raw is not None and raw.encode() == expected, kind
            if kind in ("truncated_json", "non_object", "missing_type", "missing_rs", "empty_record"):
                continue
            rec = json.loads(raw.rstrip(RS))
            if kind == "trade_missing_field":
                assert "price" not in rec["arguments"][1][0]
            if kind == "unknown_trade_type":
                assert rec["arguments"][1][0]["type"] == 7
    run(scenario)


def test_f11_bad_item_in_batch_and_wellformed_variants() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        gw.corrupt_next_batch("trade_null_field")
        played = await play_trades(gw)
        items = (await hub.trades())[1]
        assert len(items) == len(played) + 1 and sum(i["price"] is None for i in items) == 1
        assert len([st for st in gw.sent_trades]) == len(played)  # the bad item is not a trade that was sent
        gw.trade_format(ts_style="Z", null_padding=True, data_wrapper=True)
        await play_trades(gw)
        payload = (await hub.trades())[1]["data"]
        assert payload[0] is None and payload[-1] is None and payload[1]["timestamp"].endswith("Z")
        gw.trade_format(ts_style="naive", null_padding=False, data_wrapper=False, trade_payload="object")
        played = await play_trades(gw)
        for t in played:
            obj = (await hub.trades())[1]
            assert isinstance(obj, dict) and obj["price"] == t.price and obj["timestamp"][-6] != "+"
    run(scenario)


def test_f12_quote_flood_with_trades_interleaved() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        await hub.send({"type": 1, "target": "SubscribeContractQuotes", "arguments": [MES_M25]},
                       {"type": 1, "target": "SubscribeContractMarketDepth", "arguments": [MES_M25]})
        await gw.wait_for(lambda: len(gw.connections[0].subscriptions) == 3)
        task = gw.inject("F12", rate=4000, seconds=0.4)
        played = await play_trades(gw, batches=5)
        flooded = await task
        counts = {"GatewayQuote": 0, "GatewayDepth": 0, "GatewayTrade": 0}
        while not (counts["GatewayTrade"] == 5 and counts["GatewayQuote"] == flooded + 5):
            rec = await hub.record()
            if isinstance(rec, dict) and rec.get("type") == 1:
                counts[rec["target"]] += 1
        assert counts["GatewayQuote"] >= 1000 and counts["GatewayDepth"] >= 1000
        assert len([st for st in gw.sent_trades]) == len(played)
    run(scenario)


def test_f13_websocket_level_pings() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw, autoping=False)
        gw.inject("F13", payload=b"hello")
        msg = await hub.record()
        assert (msg.type, msg.data) == (WSMsgType.PING, b"hello")
        gw.ws_ping(b"")
        msg = await hub.record()
        assert (msg.type, msg.data) == (WSMsgType.PING, b"")
    run(scenario)


def test_f14_token_expiry_keeps_or_closes_the_connection() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        gw.expire_tokens()  # mode A (default): keeps streaming
        played = await play_trades(gw)
        assert (await hub.trades())[1][0]["price"] == played[0].price
        gw.options.close_on_token_expiry = True  # mode B
        assert await hub.until(lambda r: r.get("type") == 7) == {"type": 7, "error": "Authentication expired."}
        assert (await hub.record()).type == WSMsgType.CLOSE
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await open_hub(s, gw, token=hub.ws._response.url.query["access_token"])  # reconnect needs a new token
    run(scenario)


def test_f15_gateway_logout_then_close() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        gw.inject("F15")
        assert await hub.until(lambda r: r.get("type") == 1) == {"type": 1, "target": "GatewayLogout",
                                                                 "arguments": []}
        assert (await hub.record()).type == WSMsgType.CLOSE
    run(scenario)


def test_f16_completion_errors_and_missing_completion() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw, subscribe=False)
        expected = {"binding": "Failed to invoke 'SubscribeContractTrades' due to an error on the server.",
                    "unknown": "Unknown hub method 'SubscribeContractTrades'",
                    "exception": "An unexpected error occurred invoking 'SubscribeContractTrades' on the server."}
        for mode, error in expected.items():
            gw.inject("F16", mode=mode)
            await hub.send(SUB)
            assert await hub.until(lambda r: r.get("type") == 3) == {"type": 3, "invocationId": "1", "error": error}
        assert gw.connections[0].subscriptions == set()
        gw.completion_fault("never", method="SubscribeContractTrades")
        await hub.send(SUB, {**SUB, "invocationId": "2", "target": "SubscribeContractQuotes"})
        assert await hub.until(lambda r: r.get("type") == 3) == {"type": 3, "invocationId": "2", "result": None}
        assert gw.connections[0].subscriptions == {("quotes", MES_M25)}
    run(scenario)


def test_f17_contract_roll() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        await hub.send({**SUB, "invocationId": "2", "arguments": [MES_U25]})
        await hub.until(lambda r: r.get("type") == 3)
        await play_trades(gw)
        gw.inject("F17")
        assert [c.activeContract for c in gw.catalog[:2]] == [False, True]
        halted_at = gw.market.now_ticks
        after = await gw.play(20)
        assert after and {t.contract_id for t in after} == {MES_U25}
        await gw.wait_for(lambda: gw.sent_trades[-1].trade == after[-1])
        assert max(st.trade.ticks for st in gw.sent_trades if st.trade.contract_id == MES_M25) <= halted_at
    run(scenario)


def test_faults_can_be_scheduled_by_batch_count_or_market_time() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        gw.schedule("F2", after_batches=3, code=1011)
        await gw.play(10)
        batches = 0
        while isinstance(rec := await hub.record(), dict):
            batches += rec.get("target") == "GatewayTrade"
        assert (batches, rec.type, rec.data) == (3, WSMsgType.CLOSE, 1011)
        hub = await open_hub(s, gw)
        gw.schedule("signalr_close", at="2025-05-13T14:00:00+00:00", error=None)
        await gw.play_until("2025-05-13T14:30:00+00:00")
        stamps = []
        while (rec := await hub.record()) != {"type": 7, "allowReconnect": True}:
            stamps += [t["timestamp"] for t in rec["arguments"][1]]
        assert min(stamps) < "2025-05-13T14:00" <= max(stamps) < "2025-05-13T14:05"
    run(scenario, tapes={MES_M25: default_tape(MES_M25)})


def test_replay_in_market_time() -> None:
    async def scenario(gw: FakeGateway, s: aiohttp.ClientSession) -> None:
        hub = await open_hub(s, gw)
        loop = asyncio.get_running_loop()
        started = loop.time()
        gw.start_replay(time_scale=3000.0)  # ten market minutes take 0.2 s
        stamps: list[str] = []
        while not stamps or stamps[-1] < "2025-05-13T13:40":
            stamps += [t["timestamp"] for t in (await hub.trades())[1]]
        gw.pause_replay()
        assert stamps == sorted(stamps) and loop.time() - started >= 0.15
    run(scenario, tapes={MES_M25: default_tape(MES_M25)})
