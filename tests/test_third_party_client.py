"""The fake gateway against a ProjectX client we did not write: project-x-py (PyPI) logs in (loginKey, then
Account/search), searches contracts, looks one up by id (Contract/searchById), reads bars and receives
trades over its own SignalR client (pysignalr, negotiating first).

project-x-py needs Python >= 3.12, so it lives in an environment of its own, ``.venv-pxp`` (``.ci/run``
builds it; by hand: ``python3.12 -m venv .venv-pxp && .venv-pxp/bin/pip install project-x-py==4.4.1``),
or wherever ``MECHTRADE_PROJECTX_PY`` points (its python). Without it the test skips; under CI=true it fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

from helpers import skip_or_fail

from ingest.fake_gateway import MES_M25, FakeGateway

ROOT = Path(__file__).resolve().parents[1]
CLIENT = Path(__file__).with_name("projectx_py_client.py")
TRADES = 20


def sdk_python() -> str:
    python = os.environ.get("MECHTRADE_PROJECTX_PY") or str(ROOT / ".venv-pxp" / "bin" / "python")
    found = Path(python).exists() and subprocess.run([python, "-c", "import project_x_py"], capture_output=True,
                                                     check=False).returncode == 0
    if not found:
        skip_or_fail(f"project-x-py is not installed for {python} (see this module's docstring)")
    return python


def test_project_x_py_logs_in_searches_reads_bars_and_receives_trades() -> None:
    python = sdk_python()

    async def go() -> dict:
        async with FakeGateway(ping_interval_s=1.0) as gw:
            proc = await asyncio.create_subprocess_exec(
                python, str(CLIENT), gw.rest_url, gw.hub_url.removesuffix("/hubs/market"), MES_M25,
                "2025-05-12T13:30:00+00:00", "2025-05-13T13:30:00+00:00", str(TRADES),
                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            await gw.wait_for(lambda: any(("trades", MES_M25) in c.subscriptions for c in gw.connections), 60)
            gw.start_replay(speed=100)
            out, err = await asyncio.wait_for(proc.communicate(), 90)
            assert proc.returncode == 0, err.decode()[-2000:]
            endpoints = [c.endpoint for c in gw.rest_calls]
            assert endpoints[:2] == ["auth/loginkey", "account/search"]
            assert {"contract/search", "contract/searchbyid", "history/retrievebars"} <= set(endpoints)
            assert all(c.status == 200 for c in gw.rest_calls)
            market = [c for c in gw.connections if c.request.path == "/hubs/market"]
            assert market and all(c.request.query.get("id") for c in market), "pysignalr negotiates first"
            return json.loads(out.decode().strip().splitlines()[-1])

    seen = asyncio.run(go())
    assert seen["account"] == "PRAC-V2-7001-0001"
    assert MES_M25 in seen["found"] and seen["instrument"] == MES_M25 and seen["tick_size"] == 0.25
    assert seen["bars"] >= 250  # a day of 5-minute bars, session break excluded
    assert seen["connected"] and seen["subscribed"] and seen["trades"] >= TRADES
