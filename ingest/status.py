"""What ``mechtrade status`` prints and the health checks judge: ticks, bars, feed gaps, trend jobs,
worker slots and tick storage, read from the database; thresholds say when that is a problem.

Trend jobs are judged by their own record of success (``signals.trend_job_status``), not by
TimescaleDB's job statistics, which on some builds count every run as failed after it committed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ingest.session import market_open
from ingest.text_table import table

MAX_JOB_FAILURES = 3  # consecutive failed runs of a trend job before it counts as failing
MAX_BARS_BEHIND = 3  # closed bars a trend job may have left unanalysed ...
STALL_S = 600.0  # ... once it has had this long (since its last success, or our start) to catch up
STALE_TICKS_S = 900.0  # in session, a subscribed contract without a stored tick for this long is stale

SERIES_SQL = """
SELECT c.contract_id,
       market.latest_tick_time(c.contract_id) AS last_tick,
       (SELECT max(b.bucket) FROM market.bars AS b WHERE b.contract_id = c.contract_id AND b.timeframe = '1m'
          AND b.is_closed) AS last_closed_1m,
       (SELECT count(*) FROM market.feed_gaps AS g WHERE g.contract_id = c.contract_id
          AND g.finalized_at IS NULL) AS open_gaps
FROM unnest($1::text[]) AS c (contract_id) ORDER BY 1"""
STORAGE_SQL = """
SELECT (SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = 'market'
          AND hypertable_name = 'ticks') AS chunks,
       (SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_schema = 'market'
          AND hypertable_name = 'ticks' AND is_compressed) AS compressed,
       hypertable_size('market.ticks') AS bytes,
       (SELECT config ->> 'compress_after' FROM timescaledb_information.jobs WHERE hypertable_schema = 'market'
          AND hypertable_name = 'ticks' AND proc_name = 'policy_compression') AS compress_after,
       (SELECT config ->> 'drop_after' FROM timescaledb_information.jobs WHERE hypertable_schema = 'market'
          AND hypertable_name = 'ticks' AND proc_name = 'policy_retention') AS drop_after"""


@dataclass(frozen=True)
class Problem:
    check: str  # the named check it belongs to: ticks, trend_jobs, worker_slots
    message: str


@dataclass
class Snapshot:
    at: datetime
    series: list[asyncpg.Record] = field(default_factory=list)
    jobs: list[asyncpg.Record] = field(default_factory=list)
    slots: asyncpg.Record | None = None
    storage: asyncpg.Record | None = None


async def streamed(conn: asyncpg.Connection, contracts: tuple[str, ...], roots: tuple[str, ...]) -> tuple[str, ...]:
    """The configured contracts and each configured root's active (front) contract."""
    fronts = await conn.fetch("SELECT contract_id FROM market.contracts WHERE active AND root = ANY($1::text[])"
                              " ORDER BY root", list(roots))
    return tuple(dict.fromkeys([*contracts, *(f["contract_id"] for f in fronts)]))


async def read(conn: asyncpg.Connection, contracts: tuple[str, ...] = (), *, everything: bool = True) -> Snapshot:
    """The state of ``contracts`` (and of every contract with a trend job); ``everything``: slots and storage too."""
    jobs = await conn.fetch("SELECT * FROM signals.trend_job_status ORDER BY contract_id, timeframe, profile")
    names = sorted(set(contracts) | {j["contract_id"] for j in jobs})
    snap = Snapshot(at=await conn.fetchval("SELECT now()"), series=await conn.fetch(SERIES_SQL, names), jobs=jobs)
    if everything:
        snap.slots = await conn.fetchrow("SELECT * FROM internal.worker_slots()")
        snap.storage = await conn.fetchrow(STORAGE_SQL)
    return snap


def slot_problems(slots: asyncpg.Record | None) -> list[Problem]:
    if slots is None:
        return []
    out = []
    if slots["needed"] > slots["available"]:
        out.append(Problem("worker_slots", (
            f"TimescaleDB may not start every job: up to {slots['needed']} background workers are needed "
            f"(this database's scheduler and {slots['jobs']} jobs), {slots['available']} free "
            f"(timescaledb.max_background_workers = {slots['max_background_workers']}, "
            f"{slots['other_schedulers']} taken by other databases' schedulers); raise "
            "timescaledb.max_background_workers and restart PostgreSQL")))
    if slots["max_worker_processes"] < slots["processes_needed"]:
        out.append(Problem("worker_slots", (
            f"max_worker_processes = {slots['max_worker_processes']} is below "
            f"timescaledb.max_background_workers + max_parallel_workers + 1 = {slots['processes_needed']}: "
            "raise it and restart PostgreSQL")))
    return out


def worker_budget(s: Mapping[str, Any]) -> str:
    """The background workers this database's jobs need against the server's settings (status and migrate)."""
    trend = f", {s['trend_jobs']} of them trend jobs" if "trend_jobs" in s.keys() else ""  # before migration 0110
    short = s["needed"] > s["available"]
    advice = f"; set it to {s['needed'] + s['other_schedulers']} or more" if short else ""
    return (f"worker slots: {s['needed']} needed at most (scheduler + {s['jobs']} jobs{trend}), {s['available']} "
            f"available (timescaledb.max_background_workers {s['max_background_workers']}, "
            f"{s['other_schedulers']} used by other databases{advice}); "
            f"max_worker_processes {s['max_worker_processes']}, {s['processes_needed']} needed")


def job_problems(jobs: list[asyncpg.Record], now: datetime, judged_since: datetime | None = None) -> list[Problem]:
    """Trend jobs failing repeatedly, or not keeping up although they have had time to."""
    out = []
    for j in jobs:
        name = f"trend job {j['job_id']} ({j['contract_id']} {j['timeframe']} {j['profile']})"
        if j["failures_since_success"] >= MAX_JOB_FAILURES:
            since = f"its last success at {j['last_success']:%Y-%m-%d %H:%M:%S} UTC" if j["last_success"] else \
                "it was created (it never succeeded)"
            out.append(Problem("trend_jobs", f"{name}: {j['failures_since_success']} failed runs since {since}; "
                                             f"last error: {j['last_error']}"))
        progress = max((t for t in (j["last_success"], judged_since) if t), default=None)
        stalled = progress is None or now - progress > timedelta(seconds=STALL_S)
        if j["scheduled"] and j["bars_behind"] > MAX_BARS_BEHIND and stalled:
            out.append(Problem("trend_jobs", f"{name}: {j['bars_behind']} closed bars not analysed (through "
                                             f"{_t(j['analysed_through'])}, last closed {_t(j['last_closed_bar'])})"))
    return out


def tick_problems(series: list[asyncpg.Record], contracts: tuple[str, ...], now: datetime) -> list[Problem]:
    """In session, subscribed contracts whose last stored tick is too old (or missing)."""
    if not market_open(now):
        return []
    out = []
    for s in series:
        if s["contract_id"] in contracts and (s["last_tick"] is None or
                                              (now - s["last_tick"]).total_seconds() > STALE_TICKS_S):
            out.append(Problem("ticks", f"{s['contract_id']}: no tick stored {_since(s['last_tick'])} "
                                        f"(stale after {STALE_TICKS_S:.0f} s in session)"))
    return out


def problems(snap: Snapshot, contracts: tuple[str, ...]) -> list[Problem]:
    return (tick_problems(snap.series, contracts, snap.at) + job_problems(snap.jobs, snap.at)
            + slot_problems(snap.slots))


def _t(ts: datetime | None) -> str:
    return "never" if ts is None else f"{ts:%Y-%m-%d %H:%M:%S}"


def _age(now: datetime, ts: datetime | None) -> str:
    if ts is None:
        return "-"
    s = int((now - ts).total_seconds())
    return f"{s}s" if abs(s) < 120 else f"{s // 60}m" if abs(s) < 7200 else f"{s // 3600}h" if abs(s) < 172800 \
        else f"{s // 86400}d"


def render(snap: Snapshot, found: list[Problem], config_file: str = "") -> str:
    """The report ``mechtrade status`` prints (times in UTC)."""
    now = snap.at
    lines = [f"mechtrade status at {now:%Y-%m-%d %H:%M:%S} UTC"
             f" (market {'open' if market_open(now) else 'closed'}){f'; config {config_file}' if config_file else ''}",
             "", "series"]
    rows = [("contract", "last tick", "lag", "last closed 1m bar", "open gaps")]
    rows += [(s["contract_id"], _t(s["last_tick"]), _age(now, s["last_tick"]), _t(s["last_closed_1m"]),
              str(s["open_gaps"])) for s in snap.series]
    lines += table(rows, "  ") if snap.series else ["  (no contracts configured and no trend jobs)"]
    lines += ["", "trend jobs"]
    rows = [("job", "series", "last run", "last success", "failures", "next start", "analysed through", "behind")]
    rows += [(str(j["job_id"]), f"{j['contract_id']} {j['timeframe']} {j['profile']}", _t(j["last_run"]),
              _t(j["last_success"]), str(j["failures_since_success"]), _t(j["next_start"]) if j["scheduled"]
              else "paused", _t(j["analysed_through"]), str(j["bars_behind"])) for j in snap.jobs]
    lines += table(rows, "  ") if snap.jobs else ["  (none: INSERT INTO signals.trend_jobs to add one)"]
    if snap.slots:
        lines += ["", worker_budget(snap.slots)]
    if snap.storage:
        st = snap.storage
        lines += [f"tick storage: {st['chunks']} chunks, {st['compressed']} compressed, "
                  f"{(st['bytes'] or 0) / 2**20:.1f} MB; compressed after {st['compress_after'] or 'never'}, "
                  f"dropped after {st['drop_after'] or 'never (kept)'}"]
    lines += ["", "health: ok" if not found else f"health: {len(found)} problem(s)"]
    lines += [f"  {p.check}: {p.message}" for p in found]
    return "\n".join(lines) + "\n"




def as_details(found: list[Problem]) -> dict[str, Any]:
    return {"problems": [f"{p.check}: {p.message}" for p in found]}


def _since(ts: datetime | None) -> str:
    return "yet" if ts is None else f"since {ts:%Y-%m-%d %H:%M:%S}"
