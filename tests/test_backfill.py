"""``mechtrade backfill`` against the fake gateway (real sockets) and the real database: paging without
overlap or hole, idempotent re-runs, resuming, REST faults (F18), gap repair end to end, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import psycopg
import pytest
from test_ingester import FAST as FAST_FEED

from ingest import backfill as B
from ingest.cli import main
from ingest.config import Backfill, Config, Credentials, Ingest
from ingest.fake_gateway import MES_M25, BackgroundGateway, FakeGateway, RateLimit
from ingest.gaps import Gap, GapRepairer
from ingest.ingester import Ingester
from ingest.metrics import Metrics
from ingest.projectx import GatewayError, ProjectXClient

ALL_HISTORY = "2025-05-14T00:00:00+00:00"
FAST = {"backoff_initial_s": 0.01, "backoff_max_s": 0.05, "max_attempts": 5}
UNITS = {"1m": (2, 1), "5m": (2, 5), "15m": (2, 15), "1h": (3, 1), "4h": (3, 4), "1d": (4, 1)}
SINCE, UNTIL = datetime(2025, 4, 7, tzinfo=UTC), datetime(2025, 4, 25, 20, tzinfo=UTC)  # both bar starts


def utc(t: int) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def source(gw: FakeGateway, timeframe: str, since: datetime = SINCE, until: datetime = UNTIL) -> list[tuple]:
    """The fake's own closed bars of the window, as the database should hold them."""
    unit, n = UNITS[timeframe]
    bars = gw.market.tapes[MES_M25].bars(unit, n, gw.market.now_for(MES_M25), False)
    return [(utc(b.t), Decimal(f"{b.o:.9f}"), Decimal(f"{b.h:.9f}"), Decimal(f"{b.l:.9f}"), Decimal(f"{b.c:.9f}"),
             b.v) for b in bars if since <= utc(b.t) <= until]


async def stored(conn: asyncpg.Connection, timeframe: str) -> list[tuple]:
    rows = await conn.fetch("SELECT bucket, open, high, low, close, volume FROM market.history_bars"
                            " WHERE contract_id = $1 AND timeframe = $2 ORDER BY bucket", MES_M25, timeframe)
    return [tuple(r) for r in rows]


def history_calls(gw: FakeGateway) -> list[Any]:
    return [c for c in gw.rest_calls if c.endpoint == "history/retrievebars"]


@asynccontextmanager
async def setup(dsn: str, client: dict | None = None, **gw_kwargs: Any,
                ) -> AsyncIterator[tuple[FakeGateway, ProjectXClient, asyncpg.Connection]]:
    async with FakeGateway(replay_from=ALL_HISTORY, **gw_kwargs) as gw:
        async with ProjectXClient(gw.rest_url, Credentials("demo", "demo-key"), **{**FAST, **(client or {})}) as px:
            conn = await asyncpg.connect(dsn)
            try:
                yield gw, px, conn
            finally:
                await conn.close()


def go(dsn: str, scenario: Callable[..., Awaitable[Any]], client: dict | None = None, **gw_kwargs: Any) -> Any:
    async def main_() -> Any:
        async with setup(dsn, client, **gw_kwargs) as (gw, px, conn):
            return await scenario(gw, px, conn)
    return asyncio.run(main_())


@pytest.mark.parametrize("start_inclusive, end_inclusive", [(True, True), (False, False), (True, False)])
def test_pages_have_no_overlap_and_no_hole(db_dsn: str, start_inclusive: bool, end_inclusive: bool) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        want = source(gw, "1h")
        assert want[0][0] == SINCE and want[-1][0] == UNTIL and len(want) > 300
        result = await B.backfill(conn, px, MES_M25, "1h", SINCE, UNTIL, page_limit=100)
        assert await stored(conn, "1h") == want  # no hole, edges included
        assert result.bars_received == len(want)  # no bar fetched twice: no overlap
        assert result.bars_written == len(want) and result.oldest == SINCE and not result.resumed
        assert result.pages == -(-len(want) // 100)
        ends = [c.body["endTime"] for c in history_calls(gw)]
        assert ends[0] == "2025-04-25T20:00:00.500000+00:00"
        assert len(ends) == result.pages  # the last page reached since: no request below it
    go(db_dsn, scenario, start_inclusive=start_inclusive, end_inclusive=end_inclusive)


def test_rerun_writes_nothing_and_changes_nothing(db_dsn: str) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        first = await B.backfill(conn, px, MES_M25, "4h", SINCE, UNTIL, page_limit=30)
        before = await conn.fetch("SELECT * FROM market.history_bars ORDER BY bucket")
        second = await B.backfill(conn, px, MES_M25, "4h", SINCE, UNTIL, page_limit=30)
        assert await conn.fetch("SELECT * FROM market.history_bars ORDER BY bucket") == before  # fetched_at too
        assert second.bars_written == 0 and second.bars_received == first.bars_received > 0
        assert second.run_id != first.run_id and not second.resumed
        runs = await conn.fetch("SELECT finished_at, last_error FROM internal.backfill_runs")
        assert len(runs) == 2 and all(r["finished_at"] and r["last_error"] is None for r in runs)
    go(db_dsn, scenario)


def test_changed_bars_are_updated(db_dsn: str) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        await B.backfill(conn, px, MES_M25, "1d", SINCE, UNTIL)
        await conn.execute("UPDATE market.history_bars SET volume = volume + 1 WHERE bucket = $1", SINCE)
        again = await B.backfill(conn, px, MES_M25, "1d", SINCE, UNTIL)
        assert again.bars_written == 1 and await stored(conn, "1d") == source(gw, "1d")
    go(db_dsn, scenario)


def test_an_interrupted_run_resumes_below_what_it_stored(db_dsn: str) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        want = source(gw, "15m")
        gw.rest_fault("slow", count=3, seconds=0.001)  # three pages pass ...
        gw.rest_fault("error", code=1)  # ... then the gateway fails for good (ContractNotFound)
        with pytest.raises(GatewayError, match="ContractNotFound"):
            await B.backfill(conn, px, MES_M25, "15m", SINCE, UNTIL, page_limit=400)
        run = await conn.fetchrow("SELECT * FROM internal.backfill_runs")
        assert run["finished_at"] is None and run["pages"] == 3 and "ContractNotFound" in run["last_error"]
        assert run["oldest_bucket"] == want[-1200][0] and await stored(conn, "15m") == want[-1200:]

        seen = len(history_calls(gw))
        result = await B.backfill(conn, px, MES_M25, "15m", SINCE, UNTIL, page_limit=400)
        assert result.resumed and result.run_id == run["run_id"]
        assert history_calls(gw)[seen].body["endTime"] == (want[-1200][0] - timedelta(seconds=0.5)).isoformat()
        assert await stored(conn, "15m") == want
        assert result.bars_received == len(want) and result.bars_written == len(want)  # nothing fetched twice
        assert result.oldest == SINCE
    go(db_dsn, scenario)


def test_a_resumed_run_also_fetches_a_later_until(db_dsn: str) -> None:
    later = UNTIL + timedelta(days=3)

    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        gw.rest_fault("slow", count=1, seconds=0.001)
        gw.rest_fault("error", code=1)
        with pytest.raises(GatewayError):
            await B.backfill(conn, px, MES_M25, "1h", SINCE, UNTIL, page_limit=100)
        result = await B.backfill(conn, px, MES_M25, "1h", SINCE, later, page_limit=100)
        assert result.resumed and result.until == later
        assert await stored(conn, "1h") == source(gw, "1h", SINCE, later)
        assert await conn.fetchval("SELECT until FROM internal.backfill_runs") == later
    go(db_dsn, scenario)


def test_rest_faults_during_backfill_leave_no_hole_and_no_duplicate(db_dsn: str) -> None:
    """F18: 429 (with and without Retry-After), 5xx, a hung request, empty/short/null pages, bad JSON."""
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        want = source(gw, "1h")
        for kind, kw in [("slow", {"seconds": 0.001}), ("429", {}), ("500", {}), ("slow", {"seconds": 0.001}),
                         ("empty", {}), ("502", {}), ("short", {"keep": 7}), ("null_list", {}),
                         ("429", {"retry_after": None}), ("hang", {"seconds": 5}), ("malformed_json", {}),
                         ("slow", {"seconds": 0.001}), ("empty", {}), ("absent_list", {})]:
            gw.rest_fault(kind, **kw)
        result = await B.backfill(conn, px, MES_M25, "1h", SINCE, UNTIL, page_limit=60)
        assert not gw.rest_faults, "every fault was met"
        assert await stored(conn, "1h") == want
        assert result.bars_received == len(want) and px.stats["throttled"] == 2
        statuses = [c.status for c in history_calls(gw)]
        assert {429, 500, 502} <= set(statuses)
    go(db_dsn, scenario, client={"request_timeout_s": 0.3})


def test_the_gateway_rate_limit_is_waited_out(db_dsn: str) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        result = await B.backfill(conn, px, MES_M25, "1h", SINCE, UNTIL, page_limit=100)
        assert await stored(conn, "1h") == source(gw, "1h") and result.bars_received == len(source(gw, "1h"))
        assert [c.status for c in history_calls(gw)].count(429) >= 1 and px.stats["throttled"] >= 1
    go(db_dsn, scenario, history_rate=RateLimit(3, 1.0))


def test_the_ingest_role_may_backfill(db_dsn: str) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        await conn.execute("SET ROLE mechtrade_ingest")
        result = await B.backfill(conn, px, MES_M25, "1d", SINCE, UNTIL)
        assert result.bars_written == len(source(gw, "1d")) > 10
        written = await B.fetch_into_history(conn, px, MES_M25, "4h", SINCE, UNTIL)
        assert written == len(source(gw, "4h"))
    go(db_dsn, scenario)


def test_unknown_timeframe_is_refused(db_dsn: str) -> None:
    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        with pytest.raises(B.UnknownTimeframe, match="unknown timeframe '2h'"):
            await B.backfill(conn, px, MES_M25, "2h", SINCE, UNTIL)
        assert not history_calls(gw)
    go(db_dsn, scenario)


def test_a_feed_gap_is_repaired_from_rest_and_market_bars_prefers_it(db_dsn: str, tmp_path: Path) -> None:
    """Disconnect during trading: the gap's 1m buckets get REST bars (real client) and market.bars uses them."""
    async def scenario() -> None:
        async with FakeGateway(ping_interval_s=0.2) as gw:
            cfg = Config(contracts=(MES_M25,), backfill=Backfill(timeframes=("1m",)),
                         ingest=Ingest(batch_rows=50, batch_ms=20, spill_dir=str(tmp_path / "spill")))
            cfg = dataclasses.replace(cfg, gateway=dataclasses.replace(cfg.gateway, hub_url=gw.hub_url))
            async with ProjectXClient(gw.rest_url, Credentials("demo", "demo-key"), **FAST) as px:
                async def fetch(conn, contract_id, timeframe, start, end):  # type: ignore[no-untyped-def]
                    return await B.fetch_into_history(conn, px, contract_id, timeframe, start, end)

                metrics = Metrics()
                ingester = Ingester(cfg, db_dsn, px, fetch, metrics=metrics, is_market_open=lambda: True,
                                    feed_settings=FAST_FEED, repair_interval_s=0.1)
                stop = asyncio.Event()
                task = asyncio.create_task(ingester.run(stop))
                try:
                    await gw.wait_for(lambda: any(c.subscriptions for c in gw.connections), 15)
                    await gw.play(30)
                    gw.rest_fault("error", code=1)  # the first repair attempt fails; a later round succeeds
                    gw.reset()
                    lost = await gw.play(30)  # nobody hears these
                    await gw.wait_for(lambda: sum(1 for c in gw.connections if c.subscriptions) >= 2, 15)
                    await gw.play(30)
                    with psycopg.connect(db_dsn, autocommit=True) as sql:
                        async with asyncio.timeout(20):
                            while not sql.execute("SELECT 1 FROM market.feed_gaps WHERE bars_repaired > 0").fetchone():
                                await asyncio.sleep(0.05)
                        gap_start, gap_end = sql.execute("SELECT gap_start, gap_end FROM market.feed_gaps").fetchone()
                        bars = sql.execute(
                            "SELECT bucket, open, high, low, close, volume, source FROM market.bars"
                            " WHERE contract_id = %s AND timeframe = '1m' AND bucket >= %s AND bucket <= %s"
                            " ORDER BY bucket", (MES_M25, gap_start.replace(second=0, microsecond=0), gap_end),
                        ).fetchall()
                        ticks_1m = dict(sql.execute(
                            "SELECT bucket, volume FROM market.bars_1m WHERE contract_id = %s", (MES_M25,)).fetchall())
                finally:
                    stop.set()
                    await asyncio.wait_for(task, 30)
            assert px.stats["logins"] == 1, "the hub and REST share the client's session"
            assert metrics.total("gap_repair_errors_total") >= 1, "the failed attempt was counted, then retried"
            closed = {row[0]: row[1:] for row in source(gw, "1m", gap_start - timedelta(minutes=1), gap_end)}
            assert closed, "the gap touched closed 1m bars"
            by_bucket = {b[0]: b for b in bars}
            for bucket, ohlcv in closed.items():
                if bucket >= gap_start.replace(second=0, microsecond=0):
                    assert by_bucket[bucket][6] == "history" and by_bucket[bucket][1:6] == ohlcv
            lost_minutes = {utc(t.ticks // 10_000_000).replace(second=0) for t in lost}
            assert any(ticks_1m.get(m, 0) < closed[m][4] for m in lost_minutes if m in closed), \
                "the tick-built bars are incomplete where trades were lost"

    asyncio.run(scenario())


def cli(monkeypatch: pytest.MonkeyPatch, gw: BackgroundGateway, dsn: str | None, *args: str) -> int:
    monkeypatch.setenv("PROJECTX_USERNAME", "demo")
    monkeypatch.setenv("PROJECTX_API_KEY", "demo-key")
    monkeypatch.setenv("MECHTRADE_GATEWAY_REST_URL", gw.rest_url)
    if dsn:
        monkeypatch.setenv("DATABASE_URL", dsn)
    return main(list(args))


def test_backfill_command_shows_progress_and_a_summary(db_dsn: str, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    with BackgroundGateway(replay_from=ALL_HISTORY) as gw:
        args = ["--log-format", "json", "backfill", "--contract", MES_M25, "--timeframe", "1d", "--timeframe", "4h",
                "--since", "2025-04-07", "--until", "2025-04-25T20:00Z", "--page-limit", "40"]
        assert cli(monkeypatch, gw, db_dsn, *args) == 0
        out, err = capsys.readouterr()
        pages = [json.loads(line) for line in err.splitlines() if '"backfill_page"' in line]
        assert {p["timeframe"] for p in pages} == {"1d", "4h"} and len(pages) > 3
        assert [p["percent"] for p in pages if p["timeframe"] == "1d"][-1] == 100.0  # 2025-04-07 is a 1d bar
        assert [line.split()[:2] for line in out.splitlines()[1:3]] == [[MES_M25, "1d"], [MES_M25, "4h"]]
        assert "2025-04-07 00:00Z" in out and "2 done, 0 failed" in out
        assert "demo-key" not in out + err

        assert cli(monkeypatch, gw, db_dsn, *args) == 0  # again: nothing new
        out, _ = capsys.readouterr()
        assert "2 done, 0 failed; 0 bars written" in out
        with psycopg.connect(db_dsn) as sql:
            assert sql.execute("SELECT count(*) FROM market.history_bars").fetchone()[0] == \
                len(source(gw.gw, "1d")) + len(source(gw.gw, "4h"))

        assert cli(monkeypatch, gw, db_dsn, "backfill", "--contract", MES_M25, "--timeframe", "2h",
                   "--since", "2025-04-07") == 2


def test_backfill_command_reports_failures_and_exits_1(db_dsn: str, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with BackgroundGateway(replay_from=ALL_HISTORY) as gw:
        assert cli(monkeypatch, gw, db_dsn, "backfill", "--contract", "CON.F.US.NOPE.Z99", "--contract", MES_M25,
                   "--timeframe", "1d", "--since", "2025-04-07", "--until", "2025-04-25") == 1
        out, err = capsys.readouterr()
        assert "FAILED CON.F.US.NOPE.Z99 1d" in out and "ContractNotFound" in out and "1 done, 1 failed" in out
        assert "run it again to resume" in err


def test_contracts_command_prints_a_table(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                          ) -> None:
    with BackgroundGateway() as gw:
        assert cli(monkeypatch, gw, None, "contracts", "mnq") == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split() == ["id", "name", "description", "tick", "size", "tick", "value"]
        assert lines[1].split()[:3] == ["*", "CON.F.US.MNQ.M25", "MNQM5"] and lines[1].split()[-2:] == ["0.25", "0.5"]
        assert lines[2].startswith("   CON.F.US.MNQ.U25")
        assert cli(monkeypatch, gw, None, "contracts", "zzz") == 0
        assert "no contract matches 'zzz'" in capsys.readouterr().out
        assert [c.body for c in gw.rest_calls if c.endpoint == "contract/search"][-1] == \
            {"searchText": "zzz", "live": False}
        monkeypatch.setenv("PROJECTX_API_KEY", "")
        assert main(["contracts", "mnq", "--live"]) == 2


def test_a_gap_in_the_evening_session_repairs_the_daily_bar_of_the_next_trading_date(db_dsn: str) -> None:
    """A gap 22:30-22:40Z on 12 May belongs to trading date 13 May, whose 1d bar is labelled 13 May 00:00Z."""

    async def scenario(gw: FakeGateway, px: ProjectXClient, conn: asyncpg.Connection) -> None:
        async def fetch(conn, contract_id, timeframe, start, end):  # type: ignore[no-untyped-def]
            return await B.fetch_into_history(conn, px, contract_id, timeframe, start, end)

        repairer = GapRepairer(db_dsn, fetch, [MES_M25], ["1d", "4h", "5m"], Metrics(), interval_s=60)
        evening = datetime(2025, 5, 12, 22, 30, tzinfo=UTC)
        repairer.record(Gap(MES_M25, evening, evening + timedelta(minutes=10), "test"))
        stop = asyncio.Event()
        task = asyncio.create_task(repairer.run(stop))
        await asyncio.wait_for(repairer.round_done.wait(), 20)
        stop.set()
        await asyncio.wait_for(task, 10)
        day = datetime(2025, 5, 13, tzinfo=UTC)
        assert await stored(conn, "1d") == source(gw, "1d", day, day)
        assert [r[0] for r in await stored(conn, "4h")] == [datetime(2025, 5, 12, 22, tzinfo=UTC)]
        assert [r[0] for r in await stored(conn, "5m")] == [datetime(2025, 5, 12, 22, 30, tzinfo=UTC),
                                                             datetime(2025, 5, 12, 22, 35, tzinfo=UTC),
                                                             datetime(2025, 5, 12, 22, 40, tzinfo=UTC)]
    go(db_dsn, scenario)
