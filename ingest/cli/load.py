"""``mechtrade load``: history from CSV files into the database, idempotently, with progress.

``bars``: rows of ``timestamp, open, high, low, close, volume`` (the test data's format; ProjectX's
short names ``t, o, h, l, c, v`` too) go to ``market.history_bars`` for one ``--timeframe``.
``ticks``: rows of ``timestamp, price, size, side`` (or ``t, price, volume, type`` as the gateway
names them) go to ``market.ticks``; then the bars over the loaded span are refreshed at every level.
The contract comes from a ``contract_id`` (or ``contract``, ``symbol``) column or ``--contract``.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

import asyncpg

from ingest import db
from ingest.bars import refresh_bars
from ingest.errors import MechtradeError
from ingest.trades import BadField, parse_timestamp

log = logging.getLogger(__name__)

BATCH_ROWS = 5000
SHOWN_PROBLEMS = 5
ALIASES = {
    "contract": ("contract_id", "contract", "contractid", "symbol"),
    "timestamp": ("timestamp", "ts", "time", "t", "datetime", "date"),
    "open": ("open", "o"), "high": ("high", "h"), "low": ("low", "l"), "close": ("close", "c"),
    "volume": ("volume", "v", "vol"),
    "price": ("price", "p"), "size": ("size", "volume", "v", "qty", "quantity"), "side": ("side", "type"),
    "seq": ("seq",),
}
NEEDED = {"bars": ("timestamp", "open", "high", "low", "close", "volume"),
          "ticks": ("timestamp", "price", "size", "side")}
SIDES = {"0": 0, "1": 1, "buy": 0, "b": 0, "sell": 1, "s": 1}

DESCRIPTION = """\
Import history from CSV files (a header row names the columns, in any order):
  bars:  timestamp, open, high, low, close, volume   (or t, o, h, l, c, v)  -> market.history_bars
  ticks: timestamp, price, size, side                 (or t, price, volume, type; side 0/buy, 1/sell)
         -> market.ticks, then the bars over the loaded span are refreshed at every level.
Timestamps are ISO 8601 (UTC when they carry no offset; a bare date for daily bars). The contract
is a contract_id column or --contract. Loading a file again stores nothing twice: bars already
stored with the same values are left alone, and identical prints with the same timestamp are told
apart by their order in the file (seq), so a reload maps onto the rows it wrote. Rows that cannot
be used are counted, the first few shown, and the exit status is 1."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("load", help="import bars or ticks from CSV files", description=DESCRIPTION,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("bars", "ticks"), help="what the files hold")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="CSV file(s); - for standard input")
    p.add_argument("--contract", help="contract id for files without a contract_id column")
    p.add_argument("--timeframe", help="bars: 1m, 5m, 15m, 1h, 4h or 1d (required)")
    p.set_defaults(run=run)


class LoadError(MechtradeError):
    """A file or an option cannot be used at all; the message says which and why."""


@dataclass
class Outcome:
    rows: int = 0
    stored: int = 0  # new ticks, or bars written (new or changed)
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None

    def reject(self, where: str, why: str) -> None:
        self.rejected += 1
        if len(self.problems) < SHOWN_PROBLEMS:
            self.problems.append(f"{where}: {why}")

    def saw(self, ts: datetime) -> None:
        self.first = ts if self.first is None else min(self.first, ts)
        self.last = ts if self.last is None else max(self.last, ts)


def _columns(header: list[str], kind: str, contract: str | None, name: str) -> dict[str, int]:
    lowered = [h.strip().lower() for h in header]
    found = {}
    for key in (*NEEDED[kind], "contract", "seq"):
        index = next((lowered.index(a) for a in ALIASES[key] if a in lowered), None)
        if index is not None:
            found[key] = index
    if missing := [k for k in NEEDED[kind] if k not in found]:
        raise LoadError(f"{name}: no {', '.join(missing)} column in the header {header}")
    if "contract" not in found and not contract:
        raise LoadError(f"{name}: no contract_id column; name the contract with --contract")
    return found


def _timestamp(text: str) -> datetime:
    text = text.strip()
    return parse_timestamp(f"{text}T00:00:00" if len(text) == 10 else text)


def _decimal(text: str, name: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadField(name, f"not a number: {text[:40]!r}") from None
    if not value.is_finite() or value <= 0:
        raise BadField(name, f"not positive: {text[:40]!r}")
    return value


def _whole(text: str, name: str, low: int = 0) -> int:
    try:
        value = int(Decimal(text.strip()))
        if value != Decimal(text.strip()) or value < low:
            raise ValueError
    except (InvalidOperation, ValueError):
        raise BadField(name, f"not a whole number >= {low}: {text[:40]!r}") from None
    return value


def _rows(path: Path, kind: str, contract: str | None, out: Outcome) -> Iterator[tuple]:
    """Parsed rows of one file; bad ones are counted in ``out`` and skipped."""
    handle = sys.stdin if str(path) == "-" else path.open(newline="")
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        cols = _columns(header, kind, contract, str(path))
        group: tuple | None = None  # (contract, ts) of the prints seen last, and how often each print occurred
        seen: Counter[tuple] = Counter()
        for line, raw in enumerate(reader, start=2):
            if not raw or all(not c.strip() for c in raw):
                continue
            out.rows += 1
            try:
                if len(raw) < len(header):
                    raise BadField("row", f"{len(raw)} fields, the header has {len(header)}")
                cid = raw[cols["contract"]].strip() if "contract" in cols else contract
                if not cid:
                    raise BadField("contract_id", "empty")
                ts = _timestamp(raw[cols["timestamp"]])
                if kind == "bars":
                    o, h, lo, c = (_decimal(raw[cols[k]], k) for k in ("open", "high", "low", "close"))
                    if not (lo <= min(o, c) and max(o, c) <= h):
                        raise BadField("bar", f"open/close outside low..high ({o} {h} {lo} {c})")
                    row: tuple = (cid, ts, o, h, lo, c, _whole(raw[cols["volume"]], "volume"))
                else:
                    price, size = _decimal(raw[cols["price"]], "price"), _whole(raw[cols["size"]], "size", 1)
                    side = SIDES.get(raw[cols["side"]].strip().lower())
                    if side is None:
                        raise BadField("side", f"not 0/1/buy/sell: {raw[cols['side']][:20]!r}")
                    if (cid, ts) != group:
                        group, seen = (cid, ts), Counter()
                    key = (price, size, side)
                    seq = _whole(raw[cols["seq"]], "seq") if "seq" in cols else seen[key]
                    seen[key] += 1
                    row = (cid, ts, price, size, side, seq)
            except BadField as exc:
                out.reject(f"{path}:{line}", str(exc))
                continue
            out.saw(ts)
            yield row


def _batches(rows: Iterator[tuple]) -> Iterator[list[tuple]]:
    batch: list[tuple] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


async def _store(conn: asyncpg.Connection, kind: str, batch: list[tuple], timeframe: str | None) -> int:
    if kind == "ticks":
        return await conn.fetchval("SELECT market.insert_ticks($1, $2, $3, $4, $5, $6)",
                                   *(list(col) for col in zip(*batch, strict=True)))
    stored = 0
    for cid in sorted({r[0] for r in batch}):
        rows = [r for r in batch if r[0] == cid]
        stored += await conn.fetchval("SELECT market.upsert_history_bars($1, $2, $3, $4, $5, $6, $7, $8)",
                                      cid, timeframe, *(list(col) for col in list(zip(*rows, strict=True))[1:]))
    return stored


async def load(conn: asyncpg.Connection, kind: str, path: Path, contract: str | None = None,
               timeframe: str | None = None) -> Outcome:
    """Load one file; for ticks, refresh the bars of the span loaded. Returns what happened."""
    out = Outcome()
    for batch in _batches(_rows(path, kind, contract, out)):
        out.stored += await _store(conn, kind, batch, timeframe)
        log.info("%s: %d rows read, %d %s, %d rejected", path, out.rows, out.stored,
                 "new" if kind == "ticks" else "written", out.rejected,
                 extra={"event": "load_progress", "file": str(path), "rows": out.rows, "stored": out.stored})
    if kind == "ticks" and out.stored and out.first and out.last:
        log.info("%s: refreshing bars from %s to %s", path, out.first, out.last)
        await refresh_bars(conn, out.first, out.last)
    return out


async def run(args: argparse.Namespace) -> int:
    try:
        return await _run(args)
    except LoadError as exc:
        log.error("%s", exc)
        return 2


async def _run(args: argparse.Namespace) -> int:
    if args.kind == "bars" and not args.timeframe:
        raise LoadError("load bars needs --timeframe (1m, 5m, 15m, 1h, 4h or 1d)")
    conn = await db.connect(db.database_url())
    try:
        if args.kind == "bars":
            known = [r[0] for r in await conn.fetch("SELECT timeframe FROM market.timeframes ORDER BY bucket_width")]
            if args.timeframe not in known:
                raise LoadError(f"--timeframe {args.timeframe}: not one of {', '.join(known)}")
        rejected = 0
        for path in args.files:
            if str(path) != "-" and not path.is_file():
                raise LoadError(f"{path}: no such file")
            out = await load(conn, args.kind, path, args.contract, args.timeframe)
            rejected += out.rejected
            span = f", {out.first:%Y-%m-%d %H:%M} to {out.last:%Y-%m-%d %H:%M} UTC" if out.first and out.last else ""
            print(f"{path}: {out.rows} rows, {out.stored} {'new' if args.kind == 'ticks' else 'written'}, "
                  f"{out.rejected} rejected{span}")
            for problem in out.problems:
                print(f"  rejected {problem}")
            if out.rejected > len(out.problems):
                print(f"  ... and {out.rejected - len(out.problems)} more")
    finally:
        await conn.close()
    return 1 if rejected else 0
