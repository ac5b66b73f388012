"""Parsing ``GatewayTrade`` payloads: every bad item counted by reason, limits, identical prints numbered."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ingest.trades import NO_LIMITS, Limits, Tick, parse_gateway_trade

MES = "CON.F.US.MES.M25"
NOW = datetime(2025, 6, 2, 14, tzinfo=UTC).timestamp()


def trade(ts: str = "2025-06-02T13:59:59.1234567+00:00", price: object = 6000.25, volume: object = 2,
          side: object = 0) -> dict:
    return {"symbolId": "F.US.MES", "timestamp": ts, "price": price, "volume": volume, "type": side}


def test_good_trades_become_rows_in_copy_order_and_bad_items_are_counted_by_first_bad_field() -> None:
    items = [trade(), None, trade(ts="yesterday", price="x"), trade(price=float("nan")), trade(price=True),
             trade(price=-1.0), trade(volume=0), trade(volume=2.5), trade(side=2), "a string",
             trade(ts=None), trade(ts="2025-06-02 13:59:59", price=6000, volume=3.0, side=1)]
    parsed = parse_gateway_trade([MES, items], {MES})
    assert parsed.ticks == [
        (MES, datetime(2025, 6, 2, 13, 59, 59, 123456, tzinfo=UTC), Decimal("6000.25"), 2, 0, 0),
        (MES, datetime(2025, 6, 2, 13, 59, 59, tzinfo=UTC), Decimal("6000"), 3, 1, 0),
    ]
    assert all(type(t) is Tick for t in parsed.ticks)
    assert dict(parsed.problems) == {"null_item": 1, "bad_timestamp": 2, "bad_price": 3, "bad_volume": 2,
                                     "bad_type": 1, "bad_trade": 1}
    assert parsed.detail == "timestamp: not ISO 8601: 'yesterday'"
    assert not parsed.single and not parsed.rejected


def test_a_cached_price_is_the_same_decimal_and_bad_prices_stay_bad() -> None:
    for _ in range(2):  # the second time from the cache
        parsed = parse_gateway_trade([MES, [trade(price=5000.0), trade(price=5000), trade(price=0.1),
                                            trade(price=float("inf")), trade(price=-0.0)]], {MES})
        assert [str(t.price) for t in parsed.ticks] == ["5000.0", "5000", "0.1"]
        assert parsed.problems == {"bad_price": 2}


def test_identical_prints_in_one_message_are_numbered_in_the_order_sent() -> None:
    a, b = trade(), trade(side=1)
    parsed = parse_gateway_trade([MES, [a, b, a, dict(a), b, trade(price=6000.5)]], {MES})
    assert [(t.side, t.price, t.seq) for t in parsed.ticks] == [
        (0, Decimal("6000.25"), 0), (1, Decimal("6000.25"), 0), (0, Decimal("6000.25"), 1),
        (0, Decimal("6000.25"), 2), (1, Decimal("6000.25"), 1), (0, Decimal("6000.5"), 0)]
    again = parse_gateway_trade([MES, [a, b, a]], {MES})  # a redelivery maps onto the same keys
    assert again.ticks == parsed.ticks[:3]


def test_limits_reject_implausible_trades_and_keep_them() -> None:
    limits = Limits(max_future_s=300, max_age_s=3600, price_bands={"MES": (Decimal(1000), Decimal(9000)),
                                                                   MES: (Decimal(5000), Decimal(7000))})
    items = [trade(ts="2025-06-02T14:05:00+00:00"), trade(ts="2025-06-02T14:05:00.000001+00:00"),
             trade(ts="2025-06-02T13:00:00+00:00"), trade(ts="2025-06-02T12:59:59.999999+00:00"),
             trade(price=7000.0), trade(price=7000.25), trade(price=4999.75)]
    parsed = parse_gateway_trade([MES, items], {MES}, limits, NOW)
    assert [t.ts.isoformat() for t in parsed.ticks] == ["2025-06-02T14:05:00+00:00", "2025-06-02T13:00:00+00:00",
                                                         "2025-06-02T13:59:59.123456+00:00"]
    assert dict(parsed.problems) == {"ts_future": 1, "ts_too_old": 1, "price_out_of_band": 2}
    assert [(reason, item) for reason, item in parsed.rejected] == [
        ("ts_future", items[1]), ("ts_too_old", items[3]), ("price_out_of_band", items[5]),
        ("price_out_of_band", items[6])]
    assert parsed.detail == "ts_future: 2025-06-02T14:05:00.000001+00:00 at 6000.25"
    other = "CON.F.US.MES.U25"  # the root's band
    assert len(parse_gateway_trade([other, [trade(price=8999.0)]], {other}, limits, NOW).ticks) == 1


def test_no_limits_take_any_time_and_a_single_object_or_wrapped_payload() -> None:
    far = trade(ts="9999-12-31T23:59:59+00:00")
    assert len(parse_gateway_trade([MES, {"data": [far]}], {MES}, NO_LIMITS, NOW).ticks) == 1
    single = parse_gateway_trade([MES, trade()], {MES}, Limits(max_future_s=1e300, max_age_s=1e300), NOW)
    assert single.single and len(single.ticks) == 1


def test_bad_arguments_and_unknown_contracts_are_counted() -> None:
    assert parse_gateway_trade("nonsense", {MES}).problems == {"bad_arguments": 1}
    assert parse_gateway_trade(["CON.F.US.MNQ.M25", [trade()]], {MES}).problems == {"unknown_contract": 1}
    assert parse_gateway_trade([MES, []], {MES}).problems == {"empty": 1}


def test_integers_past_64_bits_are_refused_as_ints_or_as_floats() -> None:
    for big in (123456789012345678901234567890, 1.2345678901234568e29):
        parsed = parse_gateway_trade([MES, [trade(volume=big), trade(side=big), trade(price=big)]], {MES},
                                     Limits(), NOW)
        assert parsed.problems == {"bad_volume": 1, "bad_type": 1, "price_out_of_band": 1}
