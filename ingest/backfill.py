"""Backfill: page the gateway's REST history backwards into ``market.history_bars``.

``retrieveBars`` returns the newest ``limit`` bars of a window, newest first (spec §2.4, Q13). A
window is read from its end: each next page ends just below the oldest bar of the previous one, so
pages neither overlap nor leave a hole, until a page comes back empty (a short page does not end
the window: the gateway may return fewer bars than asked; an empty page that follows a full one, or
comes first, is asked for again before it is believed, so one spurious empty reply leaves no hole).
Edge inclusivity is undocumented, so requests reach half a second beyond each edge and bars outside
the window are dropped here.

:func:`fetch_into_history` fetches one window (the gap repair's entry point); :func:`backfill`
does the same for ``mechtrade backfill`` and records its progress per page in
``internal.backfill_runs``, so an interrupted run resumes below the oldest bar it stored.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from ingest import db
from ingest.errors import MechtradeError
from ingest.projectx import BARS, MAX_BARS, GatewayError, HistoryBar, ProjectXClient

log = logging.getLogger(__name__)

EDGE = timedelta(milliseconds=500)  # bar starts are whole seconds: +-0.5 s selects the same bars either way

UNIT_SQL = "SELECT gateway_unit, gateway_unit_number FROM market.timeframes WHERE timeframe = $1"
UPSERT_SQL = "SELECT market.upsert_history_bars($1, $2, $3, $4, $5, $6, $7, $8)"
FIND_RUN_SQL = """
SELECT run_id, until, oldest_bucket FROM internal.backfill_runs
WHERE contract_id = $1 AND timeframe = $2 AND since = $3 AND finished_at IS NULL
ORDER BY run_id DESC LIMIT 1
"""
NEW_RUN_SQL = """
INSERT INTO internal.backfill_runs (contract_id, timeframe, since, until) VALUES ($1, $2, $3, $4) RETURNING run_id
"""
PAGE_DONE_SQL = """
UPDATE internal.backfill_runs SET oldest_bucket = coalesce($2, oldest_bucket), pages = pages + 1,
    bars_received = bars_received + $3, bars_written = bars_written + $4, updated_at = now(), last_error = NULL
WHERE run_id = $1
RETURNING pages, bars_received, bars_written
"""


class BackfillError(MechtradeError):
    """A backfill cannot run as asked; the message says why."""


class UnknownTimeframe(BackfillError):
    """The timeframe is not in ``market.timeframes``."""


@dataclass(frozen=True)
class BackfillResult:
    """What one ``backfill`` of a contract and timeframe did (counters cover resumed runs in full)."""

    run_id: int
    contract_id: str
    timeframe: str
    since: datetime
    until: datetime
    resumed: bool
    oldest: datetime | None  # start of the oldest bar stored (None: the gateway had none)
    pages: int
    bars_received: int
    bars_written: int
    seconds: float


async def gateway_unit(conn: asyncpg.Connection, timeframe: str) -> tuple[int, int]:
    """The ``retrieveBars`` unit and unitNumber of a timeframe (from ``market.timeframes``)."""
    row = await conn.fetchrow(UNIT_SQL, timeframe)
    if row is None:
        raise UnknownTimeframe(f"unknown timeframe {timeframe!r} (market.timeframes has 1m, 5m, 15m, 1h, 4h, 1d)")
    return int(row[0]), int(row[1])


async def pages(client: ProjectXClient, contract_id: str, unit: int, unit_number: int, start: datetime,
                end: datetime, *, limit: int = MAX_BARS, below: datetime | None = None,
                ) -> AsyncIterator[list[HistoryBar]]:
    """Pages of the bars starting in ``[start, end]`` (or ``[start, below)``), newest page first, each ascending."""
    believe_empty = False  # after a short reply an empty page ends the window; otherwise it is asked twice
    while below is None or below > start:
        request_end = end + EDGE if below is None else below - EDGE
        got = await client.retrieve_bars(contract_id, unit, unit_number, start - EDGE, request_end, limit=limit)
        page: dict[datetime, HistoryBar] = {}
        for bar in got:
            inside = start <= bar.t and (bar.t <= end if below is None else bar.t < below)
            if inside and page.setdefault(bar.t, bar) != bar:
                raise GatewayError(BARS, None, f"two different {contract_id} bars at {bar.t.isoformat()}")
        if len(page) < len(got):
            log.warning("%s: dropped %d bars outside the requested window or repeated", contract_id,
                        len(got) - len(page))
        if not page:
            if believe_empty:
                return
            believe_empty = True
            log.debug("%s: empty page below %s; asking once more", contract_id, below or end)
            continue
        bars = sorted(page.values(), key=lambda b: b.t)
        yield bars
        below, believe_empty = bars[0].t, len(got) < limit


async def store(conn: asyncpg.Connection, contract_id: str, timeframe: str, bars: list[HistoryBar]) -> int:
    """Upsert bars into ``market.history_bars``; returns how many were inserted or changed."""
    return await conn.fetchval(
        UPSERT_SQL, contract_id, timeframe, [b.t for b in bars], [b.open for b in bars], [b.high for b in bars],
        [b.low for b in bars], [b.close for b in bars], [b.volume for b in bars],
    )


async def fetch_into_history(conn: asyncpg.Connection, client: ProjectXClient, contract_id: str, timeframe: str,
                             start: datetime, end: datetime, *, page_limit: int = MAX_BARS) -> int:
    """Fetch the closed bars starting in ``[start, end]`` into ``market.history_bars``; returns bars written."""
    unit, unit_number = await gateway_unit(conn, timeframe)
    written = 0
    async for bars in pages(client, contract_id, unit, unit_number, start, end, limit=page_limit):
        written += await store(conn, contract_id, timeframe, bars)
    return written


async def backfill(conn: asyncpg.Connection, client: ProjectXClient, contract_id: str, timeframe: str,
                   since: datetime, until: datetime, *, page_limit: int = MAX_BARS) -> BackfillResult:
    """Fetch ``[since, until]`` page by page, newest first, resuming an unfinished run of the same
    contract, timeframe and ``since``; one progress log line per page."""
    if since > until:
        raise BackfillError(f"since {since.isoformat()} is after until {until.isoformat()}")
    unit, unit_number = await gateway_unit(conn, timeframe)
    started = time.monotonic()
    run = await conn.fetchrow(FIND_RUN_SQL, contract_id, timeframe, since)
    # (start, end, below, moves oldest_bucket): windows to fetch, newest first
    windows: list[tuple[datetime, datetime, datetime | None, bool]]
    if run is None:
        run_id = await conn.fetchval(NEW_RUN_SQL, contract_id, timeframe, since, until)
        windows, top = [(since, until, None, True)], until
    else:
        run_id, top, oldest = run["run_id"], max(until, run["until"]), run["oldest_bucket"]
        log.info("%s %s: resuming run %d, stored so far %s .. %s", contract_id, timeframe, run_id,
                 utc_text(oldest), utc_text(run["until"]))
        windows = [(run["until"], until, None, False)] if until > run["until"] else []
        windows.append((since, run["until"], oldest, True))
    try:
        for start, end, below, moves_oldest in windows:
            async for bars in pages(client, contract_id, unit, unit_number, start, end, limit=page_limit,
                                    below=below):
                async with conn.transaction():
                    written = await store(conn, contract_id, timeframe, bars)
                    counts = tuple(await conn.fetchrow(PAGE_DONE_SQL, run_id, bars[0].t if moves_oldest else None,
                                                       len(bars), written))
                _progress(contract_id, timeframe, run_id, counts, bars, written, since, top)
            if not moves_oldest:
                await conn.execute("UPDATE internal.backfill_runs SET until = $2 WHERE run_id = $1", run_id, until)
        row = await conn.fetchrow(
            "UPDATE internal.backfill_runs SET finished_at = now(), updated_at = now(), last_error = NULL"
            " WHERE run_id = $1 RETURNING oldest_bucket, pages, bars_received, bars_written", run_id)
    except BaseException as exc:
        await _record_error(conn, run_id, exc)
        raise
    return BackfillResult(run_id, contract_id, timeframe, since, top, run is not None,
                          row["oldest_bucket"], row["pages"], row["bars_received"],
                          row["bars_written"], time.monotonic() - started)


def _progress(contract_id: str, timeframe: str, run_id: int, counts: tuple, bars: list[HistoryBar], written: int,
              since: datetime, until: datetime) -> None:
    span = (until - since).total_seconds()
    done = 100.0 if span <= 0 else min(100.0, 100.0 * (until - bars[0].t).total_seconds() / span)
    page_no, received, total_written = counts
    log.info("%s %s page %d: %d bars %s .. %s, %d new or changed (%.0f%% of the range; %d bars, %d written so far)",
             contract_id, timeframe, page_no, len(bars), utc_text(bars[0].t), utc_text(bars[-1].t), written, done,
             received, total_written,
             extra={"event": "backfill_page", "run_id": run_id, "contract_id": contract_id, "timeframe": timeframe,
                    "page": page_no, "bars": len(bars), "written": written, "oldest": bars[0].t.isoformat(),
                    "newest": bars[-1].t.isoformat(), "percent": round(done, 1)})


async def _record_error(conn: asyncpg.Connection, run_id: int, exc: BaseException) -> None:
    """Best effort: note why the run stopped (it stays unfinished, to be resumed)."""
    reason = "interrupted" if not isinstance(exc, Exception) else f"{type(exc).__name__}: {exc}"
    try:
        if conn.is_in_transaction():
            return  # the connection is mid-statement; the unfinished row says enough
        await conn.execute("UPDATE internal.backfill_runs SET last_error = $2, updated_at = now() WHERE run_id = $1",
                           run_id, reason[:500])
    except db.UNAVAILABLE as err:
        log.debug("could not record the error of backfill run %d: %s", run_id, err)


def utc_text(t: datetime | None) -> str:
    return "-" if t is None else t.astimezone(UTC).strftime("%Y-%m-%d %H:%MZ")
