"""``mechtrade labels``: import, export and score hand labels of trend starts (signals.labels)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ingest import config, db, labels

log = logging.getLogger(__name__)

DESCRIPTION = """\
Hand labels of trend starts live in signals.labels (made on the chart page of `mechtrade serve`
or imported here). CSV format: timestamp,direction,price (bar open time in UTC, up or down, the
bar's low or high); import also takes date/trend_start_type columns and uptrendStart-style words."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("labels", help="import, export and score hand labels of trend starts",
                            description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="labels_command", required=True, metavar="ACTION")

    def series(q: argparse.ArgumentParser) -> None:
        q.add_argument("--contract", required=True, help="contract id, e.g. CON.F.US.MES.M25")
        q.add_argument("--timeframe", required=True, help="bar timeframe, e.g. 4h")

    imp = sub.add_parser("import", help="add the labels of a CSV file (labels already there stay as they are)")
    imp.add_argument("file", type=Path, help="CSV file, or - for standard input")
    series(imp)
    imp.add_argument("--author", required=True, help="recorded as the labels' author")
    imp.set_defaults(run=run_import)

    exp = sub.add_parser("export", help="write the current labels as CSV")
    series(exp)
    exp.add_argument("--author", help="only this author's labels (default: everyone's)")
    exp.add_argument("--out", type=Path, help="file to write (default: standard output)")
    exp.set_defaults(run=run_export)

    score = sub.add_parser("score", help="hindsight and actionable F1 of a profile (signals.score_labels)")
    series(score)
    score.add_argument("--profile", default=config.DEFAULT_PROFILE, help="detector profile (default %(default)s)")
    score.add_argument("--author", help="only this author's labels (default: everyone's)")
    score.set_defaults(run=run_score)


async def run_import(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
    try:
        rows = labels.read_csv(text, str(args.file))
    except labels.LabelError as exc:
        log.error("%s", exc)
        return 2
    conn = await db.connect()
    try:
        result = await labels.add(conn, args.contract, args.timeframe, rows, args.author)
    finally:
        await conn.close()
    log.info("%s: %d label(s) read, %d added, %d already there", args.file, result.read, result.added,
             result.already_there)
    if result.without_bar:
        log.warning("%d label(s) are on no %s bar of %s in market.bars (load the bars, or check the timeframe)",
                    result.without_bar, args.timeframe, args.contract)
    return 0


async def run_export(args: argparse.Namespace) -> int:
    conn = await db.connect()
    try:
        text = await labels.export_csv(conn, args.contract, args.timeframe, args.author)
    finally:
        await conn.close()
    if args.out:
        args.out.write_text(text)
        log.info("wrote %s: %d label(s)", args.out, len(text.splitlines()) - 1)
    else:
        sys.stdout.write(text)
    return 0


async def run_score(args: argparse.Namespace) -> int:
    conn = await db.connect()
    try:
        rows = await conn.fetch("SELECT * FROM signals.score_labels($1, $2, $3, $4)",
                                args.profile, args.contract, args.timeframe, args.author)
    finally:
        await conn.close()
    print(f"{args.profile} on {args.contract} {args.timeframe}, labels by {args.author or 'everyone'}")
    print(f"{'score':<11} {'dir':<6} {'labels':>6} {'detect':>6} {'match':>6} {'precision':>9} {'recall':>7} "
          f"{'F1':>7} {'delay':>6}")
    for r in rows:
        delay = "" if r["median_delay_bars"] is None else f"{r['median_delay_bars']:g}"
        print(f"{r['score']:<11} {r['direction']:<6} {r['labels']:>6} {r['detections']:>6} {r['matched']:>6} "
              f"{r['precision']:>9.4f} {r['recall']:>7.4f} {r['f1']:>7.4f} {delay:>6}")
    return 0
