"""The fake gateway's tick tape (trades synthesized from real bars), its bar arithmetic, and the CLI entry."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from datetime import datetime
from pathlib import Path

from ingest.cli import build_parser
from ingest.fake_gateway import MES_M25, Tape, default_tape, load_bars
from ingest.fake_gateway.bars import Bar, bucket, iso
from ingest.fake_gateway.tape import TICKS, format_ticks

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "tests" / "data" / "mes"


def rows(bars: list[Bar]) -> list[tuple]:
    return [(b.t, b.o, b.h, b.l, b.c, b.v) for b in bars]


def test_trades_rebuild_the_real_5m_bars_exactly() -> None:
    tape = default_tape(MES_M25)
    src = load_bars()
    assert rows(tape.bars(2, 5, tape.trades[-1].ticks, partial=True)) == rows(src)
    per_bar = Counter(t.ticks // TICKS // 300 for t in tape.trades)
    assert min(per_bar.values()) >= 4 and max(per_bar.values()) <= 16
    assert [t.index for t in tape.trades] == list(range(len(tape.trades)))
    assert all(a.ticks <= b.ticks for a, b in zip(tape.trades, tape.trades[1:]))
    assert all(t.side in (0, 1) and t.volume > 0 and (t.price * 4).is_integer() for t in tape.trades)
    assert [tape.trades[s:e] for s, e in tape.batches[:3]] and sum(e - s for s, e in tape.batches) == len(tape.trades)


def test_synthesis_is_deterministic_per_seed_and_keeps_identical_prints_together() -> None:
    bars = load_bars()[:300]
    a, b, c = Tape.from_bars(MES_M25, bars, 1), Tape.from_bars(MES_M25, bars, 1), Tape.from_bars(MES_M25, bars, 2)
    assert a.trades == b.trades and a.batches == b.batches and a.trades != c.trades
    same_stamp = [(x, y) for x, y in zip(a.trades, a.trades[1:]) if x.ticks == y.ticks]
    assert same_stamp, "some prints share a timestamp, as real ones do"
    for s, e in a.batches:
        assert e == len(a.trades) or a.trades[e].ticks != a.trades[e - 1].ticks


def test_4h_and_1d_views_match_the_real_files_except_the_known_quirks() -> None:
    tape = default_tape(MES_M25)
    end = tape.trades[-1].ticks
    for unit, n, name in ((3, 4, "mes_m25_4h.csv"), (4, 1, "mes_m25_1d.csv")):
        ours = {b.t: b for b in tape.bars(unit, n, end, partial=False)}
        ref = [b for b in load_bars(DATA_DIR / name) if b.t in ours]
        assert len(ref) == len(ours)
        differ = {iso(b.t)[:10] for b in ref if rows([b]) != rows([ours[b.t]])}
        # 2025-04-04: the source's 5m volumes are short; 2025-05-01: a broken hourly bar (see data README)
        assert differ <= {"2025-04-04", "2025-05-01"}, differ


def test_buckets_follow_the_cme_session() -> None:
    def t(text: str) -> int:
        return int(datetime.fromisoformat(text).timestamp())
    assert iso(bucket(t("2025-05-12T23:59:00+00:00"), 3, 4)) == "2025-05-12T22:00:00+00:00"  # summer: 22:00Z
    assert iso(bucket(t("2025-01-13T23:59:00+00:00"), 3, 4)) == "2025-01-13T23:00:00+00:00"  # winter: 23:00Z
    assert iso(bucket(t("2025-05-12T22:30:00+00:00"), 4, 1)) == "2025-05-13T00:00:00+00:00"  # next trade date
    assert iso(bucket(t("2025-05-13T20:59:00+00:00"), 4, 1)) == "2025-05-13T00:00:00+00:00"
    assert iso(bucket(t("2025-05-11T22:30:00+00:00"), 5, 1)) == "2025-05-12T00:00:00+00:00"  # Sunday open
    assert iso(bucket(t("2025-05-13T20:59:00+00:00"), 6, 1)) == "2025-05-01T00:00:00+00:00"
    assert iso(bucket(t("2025-05-13T20:59:59+00:00"), 1, 15)) == "2025-05-13T20:59:45+00:00"


def test_timestamp_styles() -> None:
    ticks = 1747142126 * TICKS + 1199235
    assert format_ticks(ticks) == "2025-05-13T13:15:26.1199235+00:00"
    assert format_ticks(ticks, "Z") == "2025-05-13T13:15:26.1199235Z"
    assert format_ticks(ticks, "naive") == "2025-05-13T13:15:26.1199235"
    assert format_ticks(ticks, "3") == "2025-05-13T13:15:26.119+00:00"
    assert format_ticks(ticks, "0") == "2025-05-13T13:15:26+00:00"


def test_cli_keeps_migrate_and_serves_the_fake_gateway() -> None:
    parser = build_parser()
    assert parser.parse_args(["migrate", "--dry-run"]).dry_run
    args = parser.parse_args(["fake-gateway", "--speed", "0", "--port", "0"])
    assert args.speed == 0 and args.command == "fake-gateway"
    proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "fake-gateway", "--speed", "0", "--for", "30"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert proc.stdout is not None
        lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
        urls: dict[str, str] = {}
        while len(urls) < 2:
            word, _, value = lines.get(timeout=30).partition(" ")
            urls[word] = value.strip()
        request = urllib.request.Request(urls["rest"] + "/api/Auth/loginKey", method="POST",
                                         data=json.dumps({"userName": "demo", "apiKey": "demo-key"}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            assert json.load(resp)["success"] is True
        assert urls["hub"].endswith("/hubs/market")
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
