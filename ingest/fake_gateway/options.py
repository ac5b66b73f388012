"""Every switchable behaviour of the fake gateway, with the defaults of the protocol sheet."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.fake_gateway.rest import RateLimit

ACCOUNT = {"id": 7001, "name": "PRAC-V2-7001-0001", "balance": 50000.0, "canTrade": True, "isVisible": True,
           "simulated": True}


@dataclass
class GatewayOptions:
    """Switchable behaviour; every [S]/[X]/[U] point of the protocol sheet that a client must tolerate."""

    credentials: dict[str, str] = field(default_factory=lambda: {"demo": "demo-key"})
    account_errors: dict[str, int] = field(default_factory=dict)  # userName -> loginKey errorCode (7, 9, 10)
    token_lifetime_s: float = 24 * 3600.0
    validate_expired: bool = False  # may /api/Auth/validate refresh an expired token?
    unauthorized_body: str = ""
    search_by_id_array: bool = False  # ``contracts: [..]`` instead of ``contract: {..}``
    accounts: list[dict] = field(default_factory=lambda: [ACCOUNT])  # what /api/Account/search lists
    # (old, new, market time): ``new`` becomes the active contract at that time; ``old`` trades on (F17 halts it)
    rolls: list[tuple[str, str, str]] = field(default_factory=list)
    start_inclusive: bool = True
    end_inclusive: bool = True
    minute_lookback_s: float | None = None  # shallower history for unit 1/2 with unitNumber 1
    history_delay_s: float = 0.0  # ``live: false`` bars lag the market by this much (the disputed sim delay)
    history_rate: RateLimit = field(default_factory=lambda: RateLimit(30, 30.0))  # the lower documented value
    other_rate: RateLimit = field(default_factory=lambda: RateLimit(200, 60.0))
    retry_after: str | None = "seconds"  # on 429: "seconds", "date" or None
    ping_interval_s: float = 15.0  # {"type":6} after this much outbound silence
    client_timeout_s: float | None = 30.0  # close after this long without any client record
    handshake_timeout_s: float = 15.0
    close_on_token_expiry: bool = False  # F14 mode B
    trade_payload: str = "array"  # "array" or "object" (one trade per message)
    null_padding: bool = False  # add ``null`` entries to trade arrays
    data_wrapper: bool = False  # wrap payloads as ``{"data": ...}``
    ts_style: str = "7"  # "7", "Z", "naive", "3" or "0" (see tape.format_ticks)
    completion_result: bool = True  # ``"result": null`` in completions (else omitted)
    new_unknown_method_wording: bool = False
    quote_snapshot: bool = True  # full GatewayQuote right after SubscribeContractQuotes
    replay_on_subscribe: int = 0  # F9: resend the last N trades on SubscribeContractTrades
    coalesce_handshake: bool = False  # send ``{}␞{"type":6}␞`` in one WebSocket message
    require_negotiate: bool = False  # upgrades must carry an ``id`` from /negotiate
    ws_close_timeout_s: float = 0.5  # how long a server-side close waits for the client's close frame
    tick_s: float = 0.02  # housekeeping period (pings, timeouts)
