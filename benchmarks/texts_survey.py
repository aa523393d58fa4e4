"""Survey the extractor on ../shared/data/meinian/texts_dev.csv: per table_id, the share of distinct texts (and of
occurrences) with a finding, the top findings, and samples of texts with no finding (to spot misses) or with a
given finding (to spot false positives).

    python benchmarks/texts_survey.py                      # summary for every table_id
    python benchmarks/texts_survey.py --table 0113 --misses 40
    python benchmarks/texts_survey.py --table 0102 --finding fatty_liver --show 30
    python benchmarks/texts_survey.py --out docs/measurements/texts_dev_survey.md
"""

from __future__ import annotations

import argparse
import collections
import csv
import random
import sys
from pathlib import Path

from zhujian.evaluation import ITEM_OF_TABLE
from zhujian.kb.loader import load_kb
from zhujian.pipeline.extract import extract_text

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "meinian" / "texts_dev.csv"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--table", help="only this table_id")
    parser.add_argument("--misses", type=int, default=0, help="print N texts without findings (most frequent first)")
    parser.add_argument("--random-misses", type=int, default=0, help="print N random texts without findings")
    parser.add_argument("--finding", help="print texts that produced this finding id")
    parser.add_argument("--show", type=int, default=20)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--out", type=Path, help="write the summary as Markdown")
    args = parser.parse_args()
    if not args.data.exists():
        print(f"data not found: {args.data}", file=sys.stderr)
        return 2
    kb = load_kb()
    rows = list(csv.DictReader(args.data.open(encoding="utf-8")))
    if args.table:
        rows = [r for r in rows if r["table_id"] == args.table]
    per_table: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0, 0, 0, 0])
    top: collections.Counter[str] = collections.Counter()
    top_icd: dict[str, str] = {}
    misses: list[tuple[int, str, str]] = []
    shown = 0
    for r in rows:
        item = ITEM_OF_TABLE.get(r["table_id"], r["table_id"])
        result = extract_text(kb, item, r["text"])
        count = int(r["count"] or 1)
        stats = per_table[r["table_id"]]
        stats[0] += 1
        stats[1] += count
        if result.findings:
            stats[2] += 1
            stats[3] += count
        if result.incomplete:
            stats[4] += 1
        for f in result.findings:
            top[f.name] += 1
            top_icd[f.name] = f.icd10
        if not result.findings:
            misses.append((count, r["table_id"], r["text"]))
        if args.finding and any(f.finding_id == args.finding for f in result.findings) and shown < args.show:
            shown += 1
            desc = "; ".join(f"{f.name}{f.attrs}" for f in result.findings)
            print(f"[{r['table_id']} x{count}] {r['text']}\n    -> {desc}")
    lines = [
        "| table_id | item | distinct texts | with finding | share | occurrences | share (weighted) | incomplete |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for table, (n, occ, nf, occf, inc) in sorted(per_table.items()):
        lines.append(
            f"| {table} | {ITEM_OF_TABLE.get(table, '')} | {n} | {nf} | {nf / n:.1%} | {occ} | "
            f"{occf / occ:.1%} | {inc} |"
        )
    lines += ["", f"Top {args.top} findings (distinct texts):", "", "| finding | ICD-10 | texts |", "|---|---|---:|"]
    for name, c in top.most_common(args.top):
        lines.append(f"| {name} | {top_icd[name]} | {c} |")
    summary = "\n".join(lines)
    print(summary)
    if args.misses:
        print("\nMost frequent texts without a finding:")
        for count, table, text in sorted(misses, reverse=True)[: args.misses]:
            print(f"[{table} x{count}] {text}")
    if args.random_misses:
        print("\nRandom texts without a finding:")
        rng = random.Random(7)
        for count, table, text in rng.sample(misses, min(args.random_misses, len(misses))):
            print(f"[{table} x{count}] {text}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(summary + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
