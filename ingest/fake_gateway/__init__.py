"""A faithful local fake of the ProjectX Gateway (REST + SignalR market hub) with fault injection.

See ``shared/spec/projectx-gateway.md`` §5. Start it with ``async with FakeGateway() as gw`` (or
``BackgroundGateway`` from synchronous code), point a client at ``gw.rest_url`` / ``gw.hub_url``,
script faults through the methods listed in :data:`FAULTS`, and read ``gw.sent_trades``.
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
