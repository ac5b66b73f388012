"""Chaos probes inside one process: the ingester's tasks, its input limits, its dedup key and its disk,
each checked with the dump-and-compare invariant (nothing lost outside a recorded gap, nothing twice)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from chaos.harness import REPLAY_FROM, audit, ingesting, key_of, play_ours, produced, until
from pg_server import Server
from ingest.config import Credentials
from ingest.fake_gateway import MES_M25, FakeGateway
from ingest.fake_gateway.hub import Outgoing, record
from ingest.projectx import ProjectXClient
from tcp_proxy import TcpProxy


def gaps(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT gap_start, gap_end, reason FROM market.feed_gaps ORDER BY gap_id").fetchall()


def problems(metrics: object) -> dict[str, float]:
    return {dict(labels)["reason"]: v for (name, labels), v in metrics.counters.items()  # type: ignore[attr-defined]
            if name == "trade_problems_total"}


async def settle(run: object, dsn: str) -> None:
    """Print a few more trades and wait until the last is stored, counted, and every gap entry written."""
    await play_ours(run.gw, 3)  # type: ignore[attr-defined]
    await run.stored_through(dsn, produced(run.gw)[-1])  # type: ignore[attr-defined]
    ingester = run.ingester  # type: ignore[attr-defined]
    await until(lambda: ingester.writer.idle.is_set() and not ingester.gaps.pending)


def admin_execute(dsn: str, statement: str) -> None:
    """One autocommit statement; tests run it off the event loop (the fake gateway and the ingester share it:
    a CREATE DATABASE that holds the loop for seconds under load starves both)."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(statement)


def send_trades(gw: FakeGateway, items: list[object]) -> None:
    """A GatewayTrade message of our own making to every connection (not part of the market's record)."""
    for c in gw.open_connections():
        c.put(Outgoing(record({"type": 1, "target": "GatewayTrade", "arguments": [MES_M25, items]})))


def test_a_crashing_writer_is_restarted_and_loses_nothing(db_dsn: str, tmp_path: Path) -> None:
    """Item 1: an unexpected error ends the writer task: logged, restarted, shown in /healthz, no tick lost."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw, \
                ingesting(gw, db_dsn, tmp_path / "spill") as run:
            await run.subscribed()
            writer = run.ingester.writer
            real_write, failures = writer._write, []

            async def broken_once(ticks: list) -> None:
                if not failures:
                    failures.append(len(ticks))
                    raise RuntimeError("a bug in the writer")
                await real_write(ticks)

            writer._write = broken_once  # type: ignore[method-assign]
            await play_ours(gw, 20)
            await settle(run, db_dsn)
            state = run.ingester.supervisor.states["writer"]
            assert failures and state.restarts == 1 and "a bug in the writer" in state.last_error
            assert run.metrics.value("task_restarts_total", task="writer") == 1
            healthy, details = run.ingester.status()
            assert healthy and details["checks"]["writer"]["ok"]
            result = audit(gw, db_dsn)
            assert result.ok and result.stored == result.sent, str(result)

    asyncio.run(go())


def test_a_gap_is_in_the_database_as_soon_as_the_feed_drops(db_dsn: str, tmp_path: Path) -> None:
    """Item 2 / row 8: the gap row exists (open) before any trade follows, and survives a stop while down."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw:
            async with ingesting(gw, db_dsn, tmp_path / "spill") as run:
                await run.subscribed()
                await play_ours(gw, 10)
                last_heard = produced(gw)[-1]
                await run.stored_through(db_dsn, last_heard)
                await gw.outage(30)  # the hub refuses connections from now on
                await until(lambda: any(end is None for _, end, _ in gaps(db_dsn)))
                await play_ours(gw, 10)  # printed while we are away; then we stop (SIGTERM) before the hub is back
            [(start, end, reason)] = gaps(db_dsn)
            assert end is None and start == key_of(last_heard)[0] and reason.startswith("closed")
            result = audit(gw, db_dsn)
            assert result.ok and result.in_gaps == len(produced(gw)) - produced(gw).index(last_heard) - 1, \
                str(result)

    asyncio.run(go())


def test_a_torn_spill_line_is_quarantined_not_fatal(db_dsn: str, tmp_path: Path) -> None:
    """Row 2: a spill file whose last line was cut short (power loss) is replayed up to that line."""
    async def go() -> None:
        spill = tmp_path / "spill"
        spill.mkdir()
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw:
            good = [[MES_M25, "2025-04-28T13:00:00.000001+00:00", "5600.25", 1, 0, 0],
                    [MES_M25, "2025-04-28T13:00:00.000002+00:00", "5600.5", 2, 1, 0]]
            (spill / "ticks-00000000000000000001-0001.jsonl").write_text(
                json.dumps(good) + "\n" + json.dumps(good)[:30])
            async with ingesting(gw, db_dsn, spill) as run:
                await run.subscribed()
                await until(lambda: run.metrics.total("ticks_replayed_total") == 2)
                await play_ours(gw, 10)
                await settle(run, db_dsn)
                assert run.metrics.total("spill_lines_quarantined_total") == 1
                assert not run.ingester.writer.spill.pending()
            [quarantined] = (spill / "quarantine.jsonl").read_text().splitlines()
            assert json.loads(quarantined)["line"] == json.dumps(good)[:30]
            result = audit(gw, db_dsn)
            assert result.lost == 0 and result.doubled == 2, str(result)  # the two spilled by "another run"

    asyncio.run(go())


def test_an_unknown_database_at_start_recovers_once_it_exists(pg_server: Server, migrated_template: str,
                                                            tmp_path: Path) -> None:
    """Row 3: the database named does not exist yet; the ingester waits (503, reason shown), then writes."""
    name = f"mechtrade_test_later_{uuid.uuid4().hex[:8]}"
    later = pg_server.dsn(name)

    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw, \
                ingesting(gw, later, tmp_path / "spill") as run:
            await run.subscribed()
            await play_ours(gw, 10)
            await until(lambda: run.metrics.total("db_errors_total") >= 1)
            healthy, details = run.ingester.status()
            assert not healthy and "InvalidCatalogName" in details["checks"]["database"]["reason"]
            await asyncio.to_thread(admin_execute, pg_server.dsn("postgres"),
                                    f'CREATE DATABASE "{name}" TEMPLATE "{migrated_template}"')
            await play_ours(gw, 10)
            await settle(run, later)
            assert run.ingester.status()[0]
            result = audit(gw, later)
            assert result.ok and result.stored == result.sent, str(result)

    try:
        asyncio.run(go())
    finally:
        with psycopg.connect(pg_server.dsn("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_refused_credentials_at_start_recover_once_fixed(db_dsn: str, tmp_path: Path) -> None:
    """Row 3: the database refuses our login (a role that does not exist yet, as with a wrong password)."""
    role = f"late_{tmp_path.name[-12:].replace('-', '_').lower()}"
    parts = urlsplit(db_dsn)
    as_role = urlunsplit(parts._replace(netloc=f"{role}@{parts.hostname}:{parts.port}"))

    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw, \
                ingesting(gw, as_role, tmp_path / "spill") as run:
            await run.subscribed()
            await play_ours(gw, 10)
            await until(lambda: run.metrics.total("db_errors_total") >= 1)
            healthy, details = run.ingester.status()
            assert not healthy and "InvalidAuthorizationSpecification" in details["checks"]["database"]["reason"]
            await asyncio.to_thread(admin_execute, db_dsn, f"CREATE ROLE {role} LOGIN SUPERUSER")
            await play_ours(gw, 10)
            await settle(run, db_dsn)
            result = audit(gw, db_dsn)
            assert result.ok and result.stored == result.sent, str(result)

    try:
        asyncio.run(go())
    finally:
        with psycopg.connect(db_dsn, autocommit=True) as admin:
            admin.execute(f"DROP ROLE IF EXISTS {role}")


def test_login_errors_and_a_rest_outage_during_refresh_are_retried(db_dsn: str, tmp_path: Path) -> None:
    """Row 4: a loginKey error reply, then REST failing while the token is refreshed: the feed keeps trying."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw:
            gw.options.account_errors["demo"] = 7
            async with ProjectXClient(gw.rest_url, Credentials("demo", "demo-key"), token_refresh_s=0.5,
                                      backoff_initial_s=0.01, backoff_max_s=0.05, max_attempts=2) as client, \
                    ingesting(gw, db_dsn, tmp_path / "spill", gateway=client) as run:
                await until(lambda: run.metrics.value("hub_connect_failures_total", reason="token") >= 2)
                healthy, details = run.ingester.status()
                assert not healthy and "token" in details["checks"]["hub"]["reason"]
                del gw.options.account_errors["demo"]
                await run.subscribed()
                await play_ours(gw, 10)
                await run.stored_through(db_dsn, produced(gw)[-1])
                failures = run.metrics.value("hub_connect_failures_total", reason="token")
                await until(client._needs_refresh)  # the token is due for its refresh ...
                for endpoint in ("Auth/validate", "Auth/loginKey"):  # ... and REST answers 503 for a while
                    gw.rest_fault("503", endpoint=endpoint, count=6)
                gw.reset()
                await until(lambda: run.metrics.value("hub_connect_failures_total", reason="token") > failures)
                await run.subscribed(connections=2)
                await play_ours(gw, 10)
                await settle(run, db_dsn)
                assert run.ingester.supervisor.states["feed"].restarts == 0, "failures stay inside the feed"
                result = audit(gw, db_dsn)
                assert result.ok, str(result)

    asyncio.run(go())


def test_implausible_trades_are_rejected_kept_and_break_no_later_start(db_dsn: str, tmp_path: Path) -> None:
    """Rows 5 and 6: year 9999, a 2030 print, prices 1e308 and 1e-300 are refused and kept; gaps still close
    after three disconnects, and a restart streams again."""
    spill = tmp_path / "spill"

    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw:
            async with ingesting(gw, db_dsn, spill, price_bands=(("MES", 1000, 20000),)) as run:
                await run.subscribed()
                await play_ours(gw, 5)
                bad = [{"symbolId": "F.US.MES", "price": 5600.25, "timestamp": "9999-12-31T23:59:59.9999999+00:00",
                        "type": 0, "volume": 1},
                       {"symbolId": "F.US.MES", "price": 5600.25, "timestamp": "2030-01-02T14:30:00.0000000+00:00",
                        "type": 0, "volume": 1},
                       {"symbolId": "F.US.MES", "price": 1e308, "timestamp": "2025-04-28T13:30:00.1+00:00",
                        "type": 0, "volume": 1},
                       {"symbolId": "F.US.MES", "price": 1e-300, "timestamp": "2025-04-28T13:30:00.2+00:00",
                        "type": 1, "volume": 1}]
                send_trades(gw, bad)
                await until(lambda: sum(problems(run.metrics).values()) >= 4)
                assert problems(run.metrics) == {"ts_future": 2, "price_out_of_band": 2}
                for n in range(2, 5):  # three disconnects, each a gap that closes
                    gw.reset()
                    await run.subscribed(connections=n)
                    await play_ours(gw, 5)
                await settle(run, db_dsn)
                assert [end is not None for *_, end, _ in gaps(db_dsn)] == [True] * 3
            kept = [json.loads(line) for line in (spill / "rejected.jsonl").read_text().splitlines()]
            assert [k["reason"] for k in kept] == ["ts_future", "ts_future", "price_out_of_band", "price_out_of_band"]
            async with ingesting(gw, db_dsn, spill) as run:  # a restart reads the stored tape's end
                await run.subscribed()
                await play_ours(gw, 5)
                await settle(run, db_dsn)
                assert run.metrics.total("ticks_written_total") >= 5
            with psycopg.connect(db_dsn) as conn:
                assert conn.execute("SELECT max(ts) < now(), max(price) < 20000 FROM market.ticks").fetchone() == \
                    (True, True)
            result = audit(gw, db_dsn)
            assert result.ok and result.gaps == 4, str(result)

    asyncio.run(go())


def next_batch_spans_times(gw: FakeGateway) -> bool:
    tape = gw.market.tapes[MES_M25]
    start, end = tape.batches[gw.market.next_batch[MES_M25]]
    return len({t.ticks for t in tape.trades[start:end]}) >= 2


def test_dedup_keeps_identical_prints_and_stores_a_redelivery_once(db_dsn: str, tmp_path: Path) -> None:
    """Item 4 / row 7, one trade object per message (spec Q9): identical prints in separate messages are all
    kept; a batch delivered twice (F9) and a replay after resubscribing (F9) are stored once."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM, trade_payload="object") as gw, \
                ingesting(gw, db_dsn, tmp_path / "spill") as run:
            await run.subscribed()
            await play_ours(gw, 150)
            for _ in range(3):
                while not next_batch_spans_times(gw):
                    await gw.play(1)
                gw.duplicate_batch(1)
                await gw.play(1)
            gw.replay_on_subscribe(12)
            gw.reset()
            await run.subscribed(connections=2)
            await play_ours(gw, 20)
            await settle(run, db_dsn)
            repeats = Counter(s.repeat for s in gw.sent_trades)
            assert repeats["dup_batch"] >= 6 and repeats["replay"] == 12
            identical = Counter(key_of(t) for t in produced(gw))
            assert sum(n for n in identical.values() if n > 1) >= 4, "the tape has identical prints to keep"
            result = audit(gw, db_dsn)
            assert result.ok and result.stored == result.sent, str(result)

    asyncio.run(go())


def test_a_print_repeated_inside_one_message_is_kept_as_the_gateway_sent_it(db_dsn: str, tmp_path: Path) -> None:
    """Row 7, F9 'same record twice in one batch': indistinguishable from a genuine split print (the tape has
    those, byte-identical), so it is stored as sent, never dropped: the documented choice."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw, \
                ingesting(gw, db_dsn, tmp_path / "spill") as run:
            await run.subscribed()
            gw.duplicate_trade(1)
            await play_ours(gw, 10)
            await settle(run, db_dsn)
            [twice] = [s.trade for s in gw.sent_trades if s.repeat == "dup_item"]
            with psycopg.connect(db_dsn) as conn:
                seqs = conn.execute("SELECT seq FROM market.ticks WHERE ts = %s AND price = %s ORDER BY seq",
                                    key_of(twice)[:2]).fetchall()
            assert len(seqs) == Counter(key_of(t) for t in produced(gw))[key_of(twice)] + 1
            assert audit(gw, db_dsn).doubled == 1

    asyncio.run(go())


def test_an_unwritable_spill_directory_with_the_database_down_loses_nothing_silently(
        db_dsn: str, tmp_path: Path) -> None:
    """Row 9: the overflow cannot be parked on disk: it is dropped, counted and recorded as gaps."""
    parts = urlsplit(db_dsn)
    (tmp_path / "a-file").write_text("")

    async def go() -> None:
        proxy = await TcpProxy(parts.hostname, parts.port).up()
        via_proxy = db_dsn.replace(f"{parts.hostname}:{parts.port}", f"127.0.0.1:{proxy.port}")
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw, \
                ingesting(gw, via_proxy, tmp_path / "a-file" / "spill", queue_rows=60) as run:
            await run.subscribed()
            await play_ours(gw, 10)
            await run.stored_through(db_dsn, produced(gw)[-1])
            await proxy.down()
            await play_ours(gw, 100)
            await until(lambda: run.metrics.total("ticks_dropped_total") > 0)
            assert not run.ingester.status()[0]
            await proxy.up()
            await settle(run, db_dsn)
            dropped = run.metrics.total("ticks_dropped_total")
            assert dropped >= 50 and run.metrics.total("gap_journal_errors_total") >= 1
            assert any(reason == "spill failed" for *_, reason in gaps(db_dsn))
            result = audit(gw, db_dsn)
            # a batch cut off mid-commit is stored and may be dropped (and in a gap) as well
            assert result.ok and 0 < result.in_gaps <= dropped, str(result)
        await proxy.down()

    asyncio.run(go())


def test_an_oversized_message_is_dropped_unparsed_and_its_loss_lies_in_a_gap(db_dsn: str, tmp_path: Path) -> None:
    """Row 12: a frame over ingest.max_message_bytes is refused before parsing; the connection is rebuilt."""
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM) as gw, \
                ingesting(gw, db_dsn, tmp_path / "spill", max_message_bytes=64 * 1024) as run:
            await run.subscribed()
            await play_ours(gw, 10)
            await run.stored_through(db_dsn, produced(gw)[-1])
            item = {"symbolId": "F.US.MES", "price": 5600.25, "timestamp": "2025-04-28T13:30:00.1+00:00",
                    "type": 0, "volume": 1}
            send_trades(gw, [item] * 20_000)  # ~2 MB
            await run.subscribed(connections=2)
            await play_ours(gw, 10)
            await settle(run, db_dsn)
            assert run.metrics.total("hub_messages_too_large_total") == 1
            [kept] = (tmp_path / "spill" / "rejected.jsonl").read_text().splitlines()
            assert "message too large" in json.loads(kept)["reason"]
            assert len(gaps(db_dsn)) == 1
            result = audit(gw, db_dsn)
            assert result.ok and result.stored == result.sent, str(result)

    asyncio.run(go())


@pytest.mark.parametrize("payload", ["array", "object"])
def test_clean_stream_in_both_payload_forms_is_stored_exactly(db_dsn: str, tmp_path: Path, payload: str) -> None:
    async def go() -> None:
        async with FakeGateway(ping_interval_s=0.2, replay_from=REPLAY_FROM, trade_payload=payload) as gw, \
                ingesting(gw, db_dsn, tmp_path / "spill") as run:
            await run.subscribed()
            await play_ours(gw, 200)
            await settle(run, db_dsn)
            result = audit(gw, db_dsn)
            assert result.ok and result.stored == result.sent and result.sent > 150, str(result)

    asyncio.run(go())
