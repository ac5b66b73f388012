"""``mechtrade serve`` driven by headless Chromium (Debian's chromium and chromium-driver).

A real server process on a migrated database with the real MES 4h bars: the page must draw every
bar and marker the database has, show a rule on hover, take a live bar and a forming bar's change
from NOTIFY without reload, and turn clicks into rows of signals.labels. Set
MECHTRADE_SCREENSHOT=docs/chart.png to keep the screenshot (the README's picture comes from here).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from bar_data import CONTRACT, read_bars
from helpers import skip_or_fail
from ingest.web.server import ServeError, chart_js_path
from pg_server import free_port


ROOT = Path(__file__).resolve().parents[1]
LIVE_CONTRACT = "CON.F.US.MES.U25"
WAIT_S = 20


def load_4h(sql: psycopg.Connection) -> None:
    with sql.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, '4h', %s, %s, %s, %s, %s, %s)",
            [(CONTRACT, b.ts, *b.ohlcv) for b in read_bars("4h")],
        )


@pytest.fixture(scope="module")
def webdriver_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Any]]:
    """Starts headless Chromium sessions, each with a fresh profile; quits them at the end."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        skip_or_fail("the browser tests need selenium (pip install -e '.[dev]')")
    if not chromium or not driver_path:
        skip_or_fail("the browser tests need Debian's chromium and chromium-driver (apt-get install chromium "
                     "chromium-driver; .ci/run installs them)")
    drivers = []

    def start() -> Any:
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                     "--window-size=1400,800", "--force-device-scale-factor=1",
                     f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        drivers.append(driver)
        return driver

    yield start
    for d in drivers:
        d.quit()


class Served:
    """A ``mechtrade serve`` process on a test database."""

    def __init__(self, dsn: str, *args: str) -> None:
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": dsn, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ingest.cli", "serve", "--port", str(self.port), "--author", "tester", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output: list[str] = []
        ready = threading.Event()

        def read() -> None:
            for line in self.proc.stdout:  # type: ignore[union-attr]
                self.output.append(line)
                if line.startswith("serving http://"):
                    ready.set()
            ready.set()

        threading.Thread(target=read, daemon=True).start()
        if not ready.wait(WAIT_S) or self.proc.poll() is not None:
            self.stop()
            raise AssertionError("mechtrade serve did not start:\n" + "".join(self.output))
        self.url = f"http://127.0.0.1:{self.port}/"

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT_S)


@pytest.fixture
def served(db_dsn: str) -> Iterator[Served]:
    try:
        chart_js_path()
    except ServeError as exc:
        skip_or_fail(str(exc))
    s = Served(db_dsn)
    yield s
    assert s.stop() == 0, "".join(s.output)


def open_page(driver: Any, url: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script(
        "return window.mechtrade && window.mechtrade.state.ready && window.mechtrade.state.live"),
        message="the page did not load and connect: " + str(driver.execute_script(
            "return document.getElementById('status') && document.getElementById('status').textContent")))


def wait_for(driver: Any, script: str, message: str) -> Any:
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, WAIT_S).until(lambda d: d.execute_script(script))
    except TimeoutException:
        seen = driver.execute_script("const m = window.mechtrade; return JSON.stringify({status: "
                                     "document.getElementById('status').textContent, click: m.lastClick, "
                                     "labels: m.state.labels})")
        raise AssertionError(f"{message}; the page: {seen}") from None


def chart_point(driver: Any, bar: datetime, price: float) -> tuple[int, int]:
    """Where on the chart element a bar's time and a price are drawn (pixels from its top left).

    New markers can rescale the price axis on the next frame: two frames are awaited first.
    """
    driver.execute_async_script("const done = arguments[0]; requestAnimationFrame(() => requestAnimationFrame(done));")
    x, y = driver.execute_script(
        "const m = window.mechtrade, t = m.state.shownAt.get(arguments[0]);"
        "return [m.chart.timeScale().timeToCoordinate(t), m.candles.priceToCoordinate(arguments[1])];",
        int(bar.timestamp()), price)
    assert x is not None and y is not None, "bar not on screen"
    return round(x), round(y)


def click_at(driver: Any, x: int, y: int) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    el = driver.find_element("id", "chart")
    size = el.size
    actions = ActionChains(driver).move_to_element_with_offset(el, x - size["width"] // 2, y - size["height"] // 2)
    actions.click().perform()


def test_page_draws_bars_markers_and_hover(db_dsn: str, sql: psycopg.Connection, served: Served,
                                          webdriver_factory: Callable[[], Any], tmp_path: Path) -> None:
    load_4h(sql)
    sql.execute("INSERT INTO signals.labels (contract_id, timeframe, bar, direction, author)"
                " VALUES (%s, '4h', '2025-04-21T18:00:00Z', 'up', 'person')", (CONTRACT,))
    # One decision, on a stored signal, to be drawn where it became known.
    signal_id = sql.execute(
        "INSERT INTO signals.detected_signals (contract_id, timeframe, profile, signal_type, timestamp,"
        " signal_price, confirmed_at, details) VALUES (%s, '1h', 'swing', 'uptrend_start', '2025-05-06T14:00Z',"
        " 5580, '2025-05-06T16:00Z', '{\"rule\": \"D2\"}') RETURNING signal_id", (CONTRACT,)).fetchone()[0]
    sql.execute(
        "INSERT INTO signals.decisions (rule, contract_id, profile, direction, timeframes, starts, inputs,"
        " trigger_signal_id, price, reason, consumer) VALUES ('test_rule', %s, 'swing', 'long', '{1h,15m}',"
        " '{2025-05-06T14:00Z,2025-05-06T14:15Z}', ARRAY[%s, %s]::bigint[], %s, 5580, 'a test decision', 'test')",
        (CONTRACT, signal_id, signal_id, signal_id))
    starts = sql.execute("SELECT start_ts, direction, rule, actionable"
                         " FROM signals.series_starts(%s, '4h', NULL, NULL, 'swing')",
                         (CONTRACT,)).fetchall()
    forced = sum(1 for s in starts if s[2] == "FORCED")
    assert 0 < forced < len(starts)

    driver = webdriver_factory()
    open_page(driver, served.url + f"?contract={CONTRACT}&timeframe=4h&profile=swing")
    state = driver.execute_script("const s = window.mechtrade.state; return {bars: s.bars.length, "
                                  "starts: s.starts.length, decisions: s.decisions.length, labels: s.labels.length}")
    assert state == {"bars": 316, "starts": len(starts), "decisions": 1, "labels": 1}
    shapes = driver.execute_script("return window.mechtrade.shownMarkers.map(m => m.shape + ' ' + m.color)")
    assert len(shapes) == len(starts) + 2
    assert sum(1 for s in shapes if s.startswith("circle")) == forced  # forced starts look different
    assert sum(1 for s in shapes if s.startswith("square")) == 1

    # Hover over a start bar: the tooltip names its rule and when it was confirmed.
    start = next(s for s in starts if s[2] != "FORCED" and s[0] > datetime(2025, 5, 1, tzinfo=UTC))
    high = sql.execute("SELECT high FROM market.bars WHERE contract_id = %s AND timeframe = '4h' AND bucket = %s",
                       (CONTRACT, start[0])).fetchone()[0]
    from selenium.webdriver.common.action_chains import ActionChains

    x, y = chart_point(driver, start[0], float(high))
    el = driver.find_element("id", "chart")
    ActionChains(driver).move_to_element_with_offset(el, x - el.size["width"] // 2,
                                                     y - el.size["height"] // 2).perform()
    tip = wait_for(driver, "const t = document.getElementById('tooltip'); return !t.hidden && t.textContent",
                   "no tooltip over a start bar")
    assert f"rule {start[2]}" in tip and "confirmed by the bar of" in tip

    # The screenshot is a chart: many pixels in the candle colours, not a blank page.
    png = tmp_path / "chart.png"
    # Pointer off the chart: no crosshair or tooltip in the picture.
    ActionChains(driver).move_to_element(driver.find_element("tag name", "header")).perform()
    wait_for(driver, "return document.getElementById('tooltip').hidden", "the tooltip stays")
    driver.save_screenshot(str(png))
    from PIL import Image

    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    def near(rgb: tuple[int, int, int], target: tuple[int, int, int]) -> bool:
        return all(abs(a - b) <= 12 for a, b in zip(rgb, target, strict=True))

    up = sum(n for n, c in colours if near(c, (0x26, 0xA6, 0x9A)))
    down = sum(n for n, c in colours if near(c, (0xEF, 0x53, 0x50)))
    assert up > 2000 and down > 2000, (up, down)
    assert len(colours) > 50
    if target := os.environ.get("MECHTRADE_SCREENSHOT"):
        shutil.copy(png, ROOT / target)


def test_live_bar_and_forming_bar(db_dsn: str, sql: psycopg.Connection, served: Served,
                                  webdriver_factory: Callable[[], Any]) -> None:
    t0 = datetime(2025, 6, 2, 14, 0, tzinfo=UTC)

    def tick(ts: datetime, price: float, size: int = 1) -> None:
        sql.execute("INSERT INTO market.ticks (contract_id, ts, price, size, side) VALUES (%s, %s, %s, %s, 0)",
                    (LIVE_CONTRACT, ts, price, size))

    tick(t0 + timedelta(seconds=5), 5900.0)
    tick(t0 + timedelta(seconds=30), 5901.25)
    driver = webdriver_factory()
    open_page(driver, served.url + f"?contract={LIVE_CONTRACT}&timeframe=1m")
    assert driver.execute_script("return window.mechtrade.state.bars.length") == 1
    loads = driver.execute_script("return window.mechtrade.state.loads")

    tick(t0 + timedelta(minutes=1, seconds=2), 5902.5, 3)
    wait_for(driver, "const b = window.mechtrade.state.bars; return b.length === 2 && b[1].close === 5902.5",
             "the new bar did not arrive")
    tick(t0 + timedelta(minutes=1, seconds=40), 5904.75, 2)
    last = wait_for(driver, "const b = window.mechtrade.state.bars; return b.length === 2 && b[1].high === 5904.75"
                    " && b[1]", "the forming bar did not update")
    assert (last["open"], last["close"], last["volume"]) == (5902.5, 5904.75, 5)
    assert driver.execute_script("return window.mechtrade.state.loads") == loads  # no reload
    drawn = driver.execute_script("return window.mechtrade.candles.data().map(b => b.close)")
    assert drawn == [5901.25, 5904.75]

    # A detector run's NOTIFY for this series makes the page reload its markers.
    events = driver.execute_script("return window.mechtrade.state.liveEvents")
    sql.execute("SELECT pg_notify('trend_signals_v1',"
                " json_build_object('contract_id', %s::text, 'timeframe', '1m')::text)",
                (LIVE_CONTRACT,))
    wait_for(driver, f"return window.mechtrade.state.liveEvents > {events}", "the signals event did not arrive")


def test_copy_into_ticks_notifies(db_dsn: str) -> None:
    """The ingester writes ticks by COPY: that too must wake the live chart, once per statement."""
    import asyncio

    import asyncpg

    async def go() -> list[str]:
        listener, writer = await asyncpg.connect(db_dsn), await asyncpg.connect(db_dsn)
        got: asyncio.Queue[str] = asyncio.Queue()
        try:
            await listener.add_listener("market_bars_v1", lambda *a: got.put_nowait(a[3]))
            t0 = datetime(2025, 6, 2, 14, tzinfo=UTC)
            rows = [(LIVE_CONTRACT, t0 + timedelta(seconds=i), 5900 + i / 4, 1, 0) for i in range(500)]
            await writer.copy_records_to_table("ticks", schema_name="market", records=rows,
                                               columns=["contract_id", "ts", "price", "size", "side"])
            first = await asyncio.wait_for(got.get(), WAIT_S)
            await writer.execute("SELECT 1")  # a round trip: any second notification would be here by now
            await listener.execute("SELECT 1")
            return [first, *[got.get_nowait() for _ in range(got.qsize())]]
        finally:
            await listener.close()
            await writer.close()

    assert asyncio.run(go()) == ["market.ticks"]


def test_clicks_add_and_remove_labels(db_dsn: str, sql: psycopg.Connection, served: Served,
                                      webdriver_factory: Callable[[], Any]) -> None:
    load_4h(sql)
    bar = datetime(2025, 5, 7, 14, tzinfo=UTC)
    high, low = (float(v) for v in sql.execute(
        "SELECT high, low FROM market.bars WHERE contract_id = %s AND timeframe = '4h' AND bucket = %s",
        (CONTRACT, bar)).fetchone())
    driver = webdriver_factory()
    open_page(driver, served.url + f"?contract={CONTRACT}&timeframe=4h")
    driver.find_element("id", "label-mode").click()

    def current() -> list[tuple]:
        return sql.execute("SELECT bar, direction, author FROM signals.labels WHERE removed_at IS NULL"
                           " ORDER BY direction").fetchall()

    x, y = chart_point(driver, bar, low + (high - low) * 0.1)
    click_at(driver, x, y)
    wait_for(driver, "return window.mechtrade.state.labels.length === 1", "no label after a click")
    assert current() == [(bar, "up", "tester")]

    x, y = chart_point(driver, bar, high - (high - low) * 0.1)
    click_at(driver, x, y)
    wait_for(driver, "return window.mechtrade.state.labels.length === 2", "no second label")
    assert current() == [(bar, "down", "tester"), (bar, "up", "tester")]

    x, y = chart_point(driver, bar, low + (high - low) * 0.1)
    click_at(driver, x, y)
    wait_for(driver, "return window.mechtrade.state.labels.length === 1", "the label was not removed")
    assert current() == [(bar, "down", "tester")]
    assert sql.execute("SELECT removed_by FROM signals.labels WHERE direction = 'up'").fetchone() == ("tester",)
    score = wait_for(driver, "return document.getElementById('score').textContent", "no score shown")
    assert "hindsight F1" in score and "actionable F1" in score


def test_serve_needs_its_role(db_dsn: str, sql: psycopg.Connection) -> None:
    sql.execute("DO $$ BEGIN CREATE ROLE chart_viewer LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    dsn = db_dsn.replace("postgres@", "chart_viewer@", 1)
    env = {**os.environ, "DATABASE_URL": dsn}
    result = subprocess.run([sys.executable, "-m", "ingest.cli", "serve", "--port", str(free_port())],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=WAIT_S)
    assert result.returncode == 2
    assert "GRANT mechtrade_web TO" in result.stderr
