"""Score every trend profile against the hand labels with shared/tools/score_trend_starts.py.

    .venv/bin/python bench/trend_scores.py [--dsn postgresql://.../postgres] [--out DIR]

Loads the MES 1d/4h and MNQ 1d bars into a fresh migrated database, writes each profile's
signals.trend_starts output as a detections CSV (timestamp, direction, price, confirmed_at,
rule) and runs the scoring tool on it with --bars, so confirmation delays are in bars. Prints
one line per (profile, label set): the tool's F1 line and its delay line.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

import trend  # noqa: E402

SCORER = Path(os.environ.get("MECHTRADE_SCORER", "/work/shared/tools/score_trend_starts.py"))
MES = ROOT / "tests" / "data" / "mes"
MNQ = ROOT / "tests" / "data" / "mnq"
# (label set, contract, timeframe, bars file, labels file)
SETS = [
    ("1d", "CON.F.US.MES.M25", "1d", MES / "mes_m25_1d.csv", MES / "mes_m25_1d_labels.csv"),
    ("4h", "CON.F.US.MES.M25", "4h", MES / "mes_m25_4h.csv", MES / "mes_m25_4h_labels.csv"),
    ("4h extended", "CON.F.US.MES.M25", "4h", MES / "mes_m25_4h.csv", MES / "mes_m25_4h_labels_extended.csv"),
    ("MNQ 1d", "MNQ.2019", "1d", MNQ / "mnq_2019_1d.csv", MNQ / "mnq_2019_1d_labels.csv"),
]


def load(conn: psycopg.Connection) -> None:
    done = set()
    for _, contract, timeframe, bars, _ in SETS:
        if (contract, timeframe) in done:
            continue
        done.add((contract, timeframe))
        with bars.open(newline="") as fh, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                [(contract, timeframe, r["timestamp"], r["open"], r["high"], r["low"], r["close"],
                  round(float(r["volume"]))) for r in csv.DictReader(fh)],
            )


def score(server_dsn: str, out: Path) -> None:
    name = f"mechtrade_scores_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = server_dsn.rsplit("/", 1)[0] + "/" + name
    try:
        asyncio.run(trend._migrate(dsn))
        with psycopg.connect(dsn, autocommit=True) as conn:
            load(conn)
            profiles = [p for (p,) in conn.execute("SELECT profile FROM signals.trend_profiles ORDER BY profile")]
            default = conn.execute(
                "SELECT pg_get_function_arguments('signals.trend_starts(text, text, timestamptz, timestamptz, text)'"
                "::regprocedure)"
            ).fetchone()[0]
            print(f"signature: signals.trend_starts({default})")
            for profile in profiles:
                for label, contract, timeframe, bars, labels in SETS:
                    rows = conn.execute(
                        "SELECT to_char(start_ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), direction,"
                        " price, to_char(confirmed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), rule"
                        " FROM signals.trend_starts(%s, %s, NULL, NULL, %s)",
                        (contract, timeframe, profile),
                    ).fetchall()
                    path = out / f"{profile}_{contract}_{timeframe}.csv"
                    with path.open("w", newline="") as fh:
                        w = csv.writer(fh, lineterminator="\n")
                        w.writerow(["timestamp", "direction", "price", "confirmed_at", "rule"])
                        w.writerows(rows)
                    cmd = [sys.executable, str(SCORER), str(labels), str(path), "--bars", str(bars)]
                    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
                    f1 = [ln for ln in text.splitlines() if ln.startswith("F1=")][-1]
                    total = [ln for ln in text.splitlines() if ln.startswith("total")][-1].split()
                    delay = [ln for ln in text.splitlines() if ln.startswith("confirmation delay")]
                    delay_txt = delay[0].split(": ", 1)[1] if delay else "n/a"
                    print(f"{profile:<12} {label:<12} {f1}  P={total[6]} R={total[7]}  delay (bars) {delay_txt}")
                    print(f"    $ {' '.join(cmd[1:])}")
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=os.environ.get("MECHTRADE_TEST_DSN"))
    ap.add_argument("--out", type=Path, help="keep the detection CSVs here")
    args = ap.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="trend-scores-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.dsn:
        score(args.dsn, out)
        return 0
    from pg_server import RootServer

    server = RootServer()
    try:
        score(server.start().dsn("postgres"), out)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
