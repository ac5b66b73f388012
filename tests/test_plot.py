"""``mechtrade plot``: the candles drawn are the bars, starts and decisions sit on the right bars.

The real MES daily bars go into ``market.history_bars``. The chart is checked twice: through the
matplotlib artists (each candle's body and wick against its bar) and through the PNG's pixels (the
body colour at each candle's centre, the background beside it).
"""

from __future__ import annotations

import asyncio
import csv
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import matplotlib.colors as mcolors
import psycopg
import pytest
from matplotlib.collections import LineCollection
from matplotlib.image import imread
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from ingest import plot
from ingest.cli import main


DATA = Path(__file__).parent / "data" / "mes"
CONTRACT = "CON.F.US.MES.M25"
START, END = datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 6, 1, tzinfo=UTC)
CRASH_LOW = datetime(2025, 4, 7, tzinfo=UTC)  # hand-labelled up start, low 4832.5


def read_bars() -> list[dict[str, str]]:
    with (DATA / "mes_m25_1d.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def bars(sql: psycopg.Connection) -> list[dict[str, str]]:
    rows = read_bars()
    with sql.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, '1d', %s, %s, %s, %s, %s, %s)",
            [(CONTRACT, r["timestamp"], r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows],
        )
    return rows


def chart_of(dsn: str, start: datetime = START, end: datetime = END) -> plot.Chart:
    async def go() -> plot.Chart:
        conn = await asyncpg.connect(dsn)
        try:
            return await plot.load(conn, CONTRACT, "1d", start, end)
        finally:
            await conn.close()

    return asyncio.run(go())


def by_gid(fig, kind: type) -> dict[str, object]:  # type: ignore[no-untyped-def]
    ax = fig.axes[0]
    artists = [*ax.patches, *ax.collections, *ax.lines]
    return {a.get_gid(): a for a in artists if isinstance(a, kind) and a.get_gid()}


def pixel(png, ax, x: float, y: float) -> tuple[float, float, float]:  # type: ignore[no-untyped-def]
    """RGB at data point (x, y) of the written PNG (its rows run top-down)."""
    px, py = ax.transData.transform((x, y))
    return tuple(png[png.shape[0] - 1 - round(py), round(px)][:3])


def close_to(rgb: tuple[float, float, float], color: str) -> bool:
    return all(abs(a - b) < 0.02 for a, b in zip(rgb, mcolors.to_rgb(color), strict=True))


def test_candles_match_the_bars(db_dsn: str, bars: list[dict[str, str]], tmp_path: Path) -> None:
    chart = chart_of(db_dsn)
    assert [b.strftime("%Y-%m-%dT%H:%M:%SZ") for b in chart.buckets] == [r["timestamp"] for r in bars]
    out = tmp_path / "mes.png"
    fig = plot.render(chart, out)
    bodies, wicks = by_gid(fig, Rectangle), by_gid(fig, LineCollection)
    assert len(bodies) == len(wicks) == len(bars) == 51
    for i, r in enumerate(bars):
        o, h, low, c = (float(r[k]) for k in ("open", "high", "low", "close"))
        color = plot.UP if c >= o else plot.DOWN
        body = bodies[f"body-{i}"]
        assert body.get_x() + body.get_width() / 2 == pytest.approx(i)
        assert body.get_y() == pytest.approx(min(o, c))
        if c != o:
            assert body.get_height() == pytest.approx(abs(c - o))
        assert mcolors.to_hex(body.get_facecolor()) == color
        [segment] = wicks[f"wick-{i}"].get_segments()
        assert segment.tolist() == [[i, low], [i, h]]
        assert mcolors.to_hex(wicks[f"wick-{i}"].get_color()[0]) == color

    png = imread(out)
    ax = fig.axes[0]
    checked = 0
    for i, r in enumerate(bars):
        o, c, h = float(r["open"]), float(r["close"]), float(r["high"])
        if abs(c - o) < 20:  # a body a few pixels tall
            continue
        assert close_to(pixel(png, ax, i, (o + c) / 2), plot.UP if c > o else plot.DOWN), r
        assert close_to(pixel(png, ax, i + 0.5, (o + c) / 2), "white"), r  # between two candles
        checked += 1
    assert checked >= 15


def test_recomputed_starts_mark_the_start_bars(db_dsn: str, sql: psycopg.Connection,
                                               bars: list[dict[str, str]], tmp_path: Path) -> None:
    expected = sql.execute(
        "SELECT start_ts, direction = 'up', price FROM signals.trend_starts(%s, '1d', %s, %s) ORDER BY 1, 2",
        (CONTRACT, START, END),
    ).fetchall()
    chart = chart_of(db_dsn)
    assert chart.starts_source == "recomputed"
    assert chart.starts == [(ts, up, float(p)) for ts, up, p in expected]
    assert (CRASH_LOW, True, 4832.5) in chart.starts

    fig = plot.render(chart, tmp_path / "mes.png")
    marks = by_gid(fig, Line2D)
    i = chart.buckets.index(CRASH_LOW)
    crash = marks[f"start-up-{i}"]
    assert crash.get_xdata()[0] == i
    assert crash.get_ydata()[0] < 4832.5 == chart.ohlc[i][2]  # under the low of that very bar
    assert crash.get_marker() == "^"
    starts = {gid for gid in marks if gid.startswith("start-")}
    assert len(starts) == len(expected)


def test_stored_signals_and_decisions(db_dsn: str, sql: psycopg.Connection,
                                      bars: list[dict[str, str]], tmp_path: Path) -> None:
    # A job covers the series: its stored signals are the truth, even before it found any.
    sql.execute("INSERT INTO signals.trend_jobs (contract_id, timeframe, profile, scheduled)"
                " VALUES (%s, '1d', 'realtime', false)", (CONTRACT,))
    chart = chart_of(db_dsn)
    assert (chart.starts_source, chart.starts) == ("stored", [])

    confirmed = datetime(2025, 4, 9, tzinfo=UTC)
    signal_id = sql.execute(
        "INSERT INTO signals.detected_signals (contract_id, timeframe, profile, signal_type, timestamp,"
        " signal_price, confirmed_at, details) VALUES (%s, '1d', 'realtime', 'uptrend_start', %s, 4832.5, %s, '{}')"
        " RETURNING signal_id",
        (CONTRACT, CRASH_LOW, confirmed),
    ).fetchone()[0]
    chart = chart_of(db_dsn)
    assert (chart.starts_source, chart.starts, chart.decisions) == ("stored", [(CRASH_LOW, True, 4832.5)], [])

    # A decision of the coordinator: confirmed by the 2025-04-09 bar, which closes at the 16:00 Chicago halt
    # that day: acted on in the next bar.
    known = datetime(2025, 4, 9, 21, tzinfo=UTC)
    sql.execute(
        "INSERT INTO signals.decisions (rule, contract_id, profile, direction, action, timeframes, starts, inputs,"
        " trigger_signal_id, price, known_at, reason, consumer)"
        " VALUES ('test_rule', %s, 'realtime', 'long', 'enter', '{1d}', ARRAY[%s]::timestamptz[],"
        " ARRAY[%s]::bigint[], %s, 4900, %s, 'a test', 'test')",
        (CONTRACT, CRASH_LOW, signal_id, signal_id, known),
    )
    chart = chart_of(db_dsn)
    assert chart.decisions == [(known, "long", "test_rule")]
    fig = plot.render(chart, tmp_path / "mes.png")
    marks = by_gid(fig, Line2D)
    i = chart.buckets.index(datetime(2025, 4, 10, tzinfo=UTC))
    star = marks[f"decision-long-{i}"]
    assert star.get_xdata()[0] == i and star.get_marker() == "*"
    assert star.get_ydata()[0] > chart.ohlc[i][1]
    assert [gid for gid in marks if gid.startswith("decision-")] == [f"decision-long-{i}"]


def test_command(db_dsn: str, bars: list[dict[str, str]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", db_dsn)
    out = tmp_path / "chart.png"
    args = ["plot", "--contract", CONTRACT, "--timeframe", "1d", "--from", "2025-04-01", "--to", "2025-05-01"]
    assert main([*args, "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert imread(out).shape[1] >= 800
    assert main([*args[:-4], "--from", "2024-01-01", "--to", "2024-02-01", "--out", str(tmp_path / "x.png")]) == 1
    assert not (tmp_path / "x.png").exists()
