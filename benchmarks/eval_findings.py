"""Score `extract` against the hand-labelled gold sets in tests/data/gold (texts from ../shared/data).

python benchmarks/eval_findings.py              # metrics overall and per table_id
python benchmarks/eval_findings.py --errors 40  # also list disagreements
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from zhujian.evaluation import gold_half, load_gold, load_texts, score_gold
from zhujian.kb.loader import load_kb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "meinian" / "texts_dev.csv"
GOLD = sorted((ROOT / "tests" / "data" / "gold").glob("*.jsonl"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--errors", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--half",
        choices=("dev", "test", "all"),
        default="all",
        help="score only the dev or the test half of the gold set (tune on dev, report test)",
    )
    args = parser.parse_args()
    if not args.data.exists():
        print(f"data not found: {args.data}", file=sys.stderr)
        return 2
    gold = load_gold(GOLD)
    if args.half != "all":
        gold = [g for g in gold if gold_half(g["key"]) == args.half]
    scores = score_gold(load_kb(), gold, load_texts(args.data))
    if args.json:
        print(json.dumps({k: v.as_dict() for k, v in scores.items()}, ensure_ascii=False, indent=2))
    else:
        print("| table | texts | abnormal | normal | sensitivity | specificity | ICD-10 P | ICD-10 R | ICD-10 F1 |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name, s in sorted(scores.items(), key=lambda kv: (kv[0] != "all", kv[0])):
            d = s.as_dict()
            print(
                f"| {name} | {d['texts']} | {d['abnormal_texts']} | {d['normal_texts']} | {d['sensitivity']:.3f} | "
                f"{d['specificity']:.3f} | {d['icd10_precision']:.3f} | {d['icd10_recall']:.3f} | {d['icd10_f1']:.3f} |"
            )
    for err in scores["all"].errors[: args.errors]:
        print(f"\n[{err['key']}] {err['text']}\n  gold: {err['expected']}\n  got : {err['predicted']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
