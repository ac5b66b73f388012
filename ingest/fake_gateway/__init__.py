"""A faithful local fake of the ProjectX Gateway (REST + SignalR market hub) with fault injection.

Speaks the gateway's protocol, with the faults a client must survive. Real sockets on 127.0.0.1, ephemeral ports::

    async with FakeGateway(replay_from="2025-05-13T13:30:00Z", history_rate=RateLimit(30, 30)) as gw:
        gw.rest_url, gw.hub_url               # REST root; hub URL (add ?access_token=...)
        await gw.play(10)                     # play the next 10 trade batches now
        gw.start_replay(speed=200)            # or continuously: trades/s, or time_scale=60
        gw.inject("F2", code=1011)            # any fault by catalogue id or method name
        gw.schedule("F1", after_batches=50)   # ... or later
        await gw.wait_for(lambda: len(gw.sent_trades) >= 100)
        gw.sent_trades, gw.connections[0].received, gw.rest_calls

``BackgroundGateway(**same_kwargs)`` runs it in a thread for synchronous code (signalrcore), and
``mechtrade fake-gateway`` serves it from the command line. Trades are synthesized from the real MES
5-minute bars (``tests/data/mes``), so REST bars and the live stream agree.
"""

from ingest.fake_gateway.background import BackgroundGateway
from ingest.fake_gateway.catalog import MES_M25, MES_U25, Contract, default_catalog
from ingest.fake_gateway.faults import FAULTS
from ingest.fake_gateway.hub import MALFORMED_KINDS, SentTrade
from ingest.fake_gateway.options import GatewayOptions
from ingest.fake_gateway.rest import REST_FAULT_KINDS, RateLimit, RestFault
from ingest.fake_gateway.server import FakeGateway
from ingest.fake_gateway.tape import Tape, Trade, default_tape, load_bars

__all__ = ["FAULTS", "MALFORMED_KINDS", "MES_M25", "MES_U25", "REST_FAULT_KINDS", "BackgroundGateway", "Contract",
           "FakeGateway", "GatewayOptions", "RateLimit", "RestFault", "SentTrade", "Tape", "Trade", "default_catalog",
           "default_tape", "load_bars"]
