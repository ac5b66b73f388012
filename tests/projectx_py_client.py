"""Drive the fake gateway with project-x-py, a ProjectX client we did not write (run by test_third_party_client.py
in a Python >= 3.12 environment of its own). Prints one JSON object: what the SDK saw.

Usage: python projectx_py_client.py REST_URL HUB_BASE_URL CONTRACT_ID BARS_FROM BARS_TO TRADES_WANTED
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import datetime

from project_x_py import ProjectX
from project_x_py.models import ProjectXConfig
from project_x_py.realtime import ProjectXRealtimeClient


async def main(rest_url: str, hub_base: str, contract_id: str, bars_from: str, bars_to: str,
               trades_wanted: int) -> dict:
    config = ProjectXConfig(api_url=f"{rest_url}/api", user_hub_url=f"{hub_base}/hubs/user",
                            market_hub_url=f"{hub_base}/hubs/market", timeout_seconds=10)
    async with ProjectX("demo", "demo-key", config=config) as client:
        await client.authenticate()
        account = client.account_info
        found = await client.search_instruments(contract_id.split(".")[3])
        instrument = await client.get_instrument(contract_id)  # Contract/searchById
        bars = await client.get_bars(contract_id, interval=5, start_time=datetime.fromisoformat(bars_from),
                                     end_time=datetime.fromisoformat(bars_to))
        trades: list[dict] = []
        got_enough = asyncio.Event()

        async def on_trade(event: dict) -> None:
            trades.append(event)
            if len(trades) >= trades_wanted:
                got_enough.set()

        realtime = ProjectXRealtimeClient(client.session_token, str(account.id), config=config)
        await realtime.add_callback("market_trade", on_trade)
        connected = await realtime.connect()
        subscribed = await realtime.subscribe_market_data([instrument.id])
        print("ready", file=sys.stderr, flush=True)
        await asyncio.wait_for(got_enough.wait(), 60)
        await realtime.disconnect()
    return {"account": account.name, "found": [i.id for i in found], "instrument": instrument.id,
            "tick_size": instrument.tickSize, "bars": len(bars), "connected": connected, "subscribed": subscribed,
            "trades": len(trades)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(*sys.argv[1:6], int(sys.argv[6])))))
