"""Score every trend profile against the hand labels: hindsight F1, actionable F1 and delays.

    .venv/bin/python bench/trend_scores.py [--dsn postgresql://.../postgres] [--scorer PATH] [--out DIR]

Loads the MES 1d/4h and MNQ 1d bars into a fresh migrated database. For each profile and label
set it writes two detection CSVs and runs the scoring tool (``score_trend_starts.py``, by default
``tests/tools/``, or ``--scorer`` / ``MECHTRADE_SCORER``) on each:

* hindsight: every start of ``signals.trend_starts``, scored where it was drawn, however late it
  became known (the tool's exact-match F1);
* actionable: only ``signals.actionable_starts``: not FORCED, confirming bar at most 3 bars after
  the start bar. Labels it misses count against it as usual.

It also prints the F1 of the starts that are not FORCED (any delay) and the distribution of
confirmation delays (bars from start bar to confirming bar) of the detections inside the label
window, then one Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psycopg
from scratch import ROOT, scratch_database_sync

DEFAULT_SCORER = ROOT / "tests" / "tools" / "score_trend_starts.py"  # the labels' own tool, copied unchanged
MAX_DELAY = 3
MES_ID = "CON.F.US.MES.M25"
MNQ_ID = "CON.F.US.MNQ.U19"
MES = ROOT / "tests" / "data" / "mes"
MNQ = ROOT / "tests" / "data" / "mnq"


@dataclass(frozen=True)
class LabelSet:
    name: str
    contract: str
    timeframe: str
    bars: Path
    labels: Path


SETS = [
    LabelSet("1d", MES_ID, "1d", MES / "mes_m25_1d.csv", MES / "mes_m25_1d_labels.csv"),
    LabelSet("4h", MES_ID, "4h", MES / "mes_m25_4h.csv", MES / "mes_m25_4h_labels.csv"),
    LabelSet("4h extended", MES_ID, "4h", MES / "mes_m25_4h.csv", MES / "mes_m25_4h_labels_extended.csv"),
    LabelSet("MNQ 1d", MNQ_ID, "1d", MNQ / "mnq_2019_1d.csv", MNQ / "mnq_2019_1d_labels.csv"),
]

ISO = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"
STARTS_SQL = (
    f"SELECT {ISO.format('start_ts')}, direction, price, {ISO.format('confirmed_at')}, rule"
    " FROM signals.trend_starts(%s, %s, NULL, NULL, %s)"
)
ACTIONABLE_SQL = (
    f"SELECT {ISO.format('start_ts')}, direction, price, {ISO.format('confirmed_at')}, rule"
    " FROM signals.actionable_starts(%s, %s, NULL, NULL, %s, %s)"
)


@dataclass(frozen=True)
class Score:
    hindsight: float
    actionable: float
    not_forced: float
    median_delay: float | None  # bars, over the detections in the label window
    delays: Counter[int]


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def load_bars(conn: psycopg.Connection, contract: str, timeframe: str, rows: list[dict[str, str]]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO market.history_bars (contract_id, timeframe, bucket, open, high, low, close, volume)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(contract, timeframe, r["timestamp"], r["open"], r["high"], r["low"], r["close"],
              round(float(r["volume"]))) for r in rows],
        )


def load_label_sets(conn: psycopg.Connection) -> None:
    for s in SETS:
        load_bars(conn, s.contract, s.timeframe, read_rows(s.bars))


def run_scorer(scorer: Path, labels: Path, detections: Path, bars: Path) -> float:
    cmd = [sys.executable, str(scorer), str(labels), str(detections), "--bars", str(bars)]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return float([ln for ln in text.splitlines() if ln.startswith("F1=")][-1][3:])


def write_detections(path: Path, rows: list[tuple]) -> Path:
    with path.open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["timestamp", "direction", "price", "confirmed_at", "rule"])
        w.writerows(rows)
    return path


def score_set(conn: psycopg.Connection, scorer: Path, out: Path, profile: str, s: LabelSet) -> Score:
    """The three F1 scores of one profile on one label set, and its delays inside the label window."""
    stem = f"{profile}_{s.name.replace(' ', '_')}"
    every = conn.execute(STARTS_SQL, (s.contract, s.timeframe, profile)).fetchall()
    actionable = conn.execute(ACTIONABLE_SQL, (s.contract, s.timeframe, profile, MAX_DELAY)).fetchall()
    files = {
        "hindsight": write_detections(out / f"{stem}_hindsight.csv", every),
        "actionable": write_detections(out / f"{stem}_actionable.csv", actionable),
        "not_forced": write_detections(out / f"{stem}_not_forced.csv", [r for r in every if r[4] != "FORCED"]),
    }
    f1 = {k: run_scorer(scorer, s.labels, path, s.bars) for k, path in files.items()}
    position = {r["timestamp"]: n for n, r in enumerate(read_rows(s.bars))}
    label_ts = [r["timestamp"] for r in read_rows(s.labels)]
    lo, hi = min(label_ts), max(label_ts)
    delays = [position[c] - position[t] for t, _, _, c, _ in every if lo <= t <= hi]
    return Score(f1["hindsight"], f1["actionable"], f1["not_forced"],
                 statistics.median(delays) if delays else None, Counter(delays))


def profiles(conn: psycopg.Connection) -> list[str]:
    return [p for (p,) in conn.execute("SELECT profile FROM signals.trend_profiles ORDER BY profile")]


def delay_text(delays: Counter[int]) -> str:
    return " ".join(f"{d}:{n}" for d, n in sorted(delays.items()))


def score(server_dsn: str | None, scorer: Path, out: Path) -> None:
    with scratch_database_sync(server_dsn, prefix="mechtrade_scores") as dsn, \
            psycopg.connect(dsn, autocommit=True) as conn:
        load_label_sets(conn)
        results = {(p, s.name): score_set(conn, scorer, out, p, s) for p in profiles(conn) for s in SETS}
    print(f"scorer: {scorer}; actionable = not FORCED and confirmed at most {MAX_DELAY} bars after the start")
    print("delays: bars from start bar to confirming bar -> number of starts, inside each label window\n")
    for (p, s), r in results.items():
        print(f"{p:<10} {s:<12} hindsight {r.hindsight:.4f}  actionable {r.actionable:.4f}  "
              f"not forced {r.not_forced:.4f}  median delay {r.median_delay}  delays {delay_text(r.delays)}")
    print("\nF1 as hindsight / not forced / actionable:")
    print("\n| profile | " + " | ".join(s.name for s in SETS)
          + " | median delay (bars) " + " / ".join(s.name for s in SETS) + " |")
    print("|---" * (len(SETS) + 2) + "|")
    for p in dict.fromkeys(p for p, _ in results):
        cells = [f"{results[p, s.name].hindsight:.3f} / {results[p, s.name].not_forced:.3f} / "
                 f"{results[p, s.name].actionable:.3f}" for s in SETS]
        med = " / ".join(f"{results[p, s.name].median_delay:g}" for s in SETS)
        print(f"| `{p}` | " + " | ".join(cells) + f" | {med} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", default=os.environ.get("MECHTRADE_TEST_DSN"))
    ap.add_argument("--scorer", type=Path, default=Path(os.environ.get("MECHTRADE_SCORER", DEFAULT_SCORER)),
                    help="score_trend_starts.py (default: tests/tools/)")
    ap.add_argument("--out", type=Path, help="keep the detection CSVs here")
    args = ap.parse_args(argv)
    if not args.scorer.is_file():
        ap.error(f"scoring tool not found: {args.scorer} (give --scorer)")
    out = args.out or Path(tempfile.mkdtemp(prefix="trend-scores-"))
    out.mkdir(parents=True, exist_ok=True)
    score(args.dsn, args.scorer, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
