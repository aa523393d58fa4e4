"""False rejections of the narration verifier on records built from real checkup data.

Builds N records from ../shared/data/meinian: each takes the blood pressure and lipid values of one real row of
meinian_round1_train_20180408.csv (GB18030; dirty values included) and six real texts of different tables from
texts_dev.csv (ultrasound, ECG, eye, physical examination…), with a random sex and age. For each record it runs the
engine, builds the digest and a faithful answer from the report's own conclusion names and evidence values
(tests/narration/llm_stand_in.py), and verifies it. A faithful answer must pass: every rejection is a false one.
Engine errors on a record are counted too (they must be zero).

    python benchmarks/narration_real_texts.py [--records 1000] [--seed 7] [--data ../shared/data/meinian]
"""

from __future__ import annotations

import argparse
import collections
import csv
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "narration"))

from llm_stand_in import dumps, faithful_answer  # noqa: E402

from zhujian.domain.record import Record  # noqa: E402
from zhujian.evaluation import ITEM_OF_TABLE  # noqa: E402
from zhujian.kb.loader import default_kb  # noqa: E402
from zhujian.narration.digest import build_digest  # noqa: E402
from zhujian.narration.verify import default_verifier  # noqa: E402
from zhujian.pipeline.run import build_report  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "meinian"
LAB_ITEMS = (("收缩压", "mmHg"), ("舒张压", "mmHg"), ("甘油三酯", "mmol/L"), ("高密度脂蛋白胆固醇", "mmol/L"),
             ("低密度脂蛋白胆固醇", "mmol/L"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data", type=Path, default=DATA, help="the meinian folder of the shared data")
    args = parser.parse_args()
    data: Path = args.data
    if not data.is_dir():
        sys.exit(f"real data not found at {data}")
    rng = random.Random(args.seed)
    texts: dict[str, list[str]] = collections.defaultdict(list)
    with (data / "texts_dev.csv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["table_id"] in ITEM_OF_TABLE:
                texts[row["table_id"]].append(row["text"])
    with (data / "meinian_round1_train_20180408.csv").open(encoding="gb18030") as fh:
        reader = csv.reader(fh)
        next(reader)
        labs = list(reader)
    kb = default_kb()
    verifier = default_verifier(kb)
    problems: collections.Counter[str] = collections.Counter()
    engine_errors = 0
    rejected = 0
    conclusions = 0
    examples: list[str] = []
    started = time.perf_counter()
    for i in range(args.records):
        lab = rng.choice(labs)
        record = {
            "person_id": f"p{i}",
            "visit_id": lab[0],
            "sex": rng.choice(["male", "female"]),
            "age": rng.randint(25, 80),
            "items": [{"name": n, "value": v, "unit": u} for (n, u), v in zip(LAB_ITEMS, lab[1:], strict=False) if v],
            "texts": [
                {"item": ITEM_OF_TABLE[t], "text": rng.choice(texts[t])} for t in rng.sample(sorted(texts), 6)
            ],
        }
        try:
            report = build_report(kb, Record.model_validate(record)).to_dict()
        except Exception:  # counted: the engine must not fail on real data
            engine_errors += 1
            continue
        conclusions += len(report["conclusions"])
        digest = build_digest(report)
        _answer, verdict = verifier.verify_text(dumps(faithful_answer(report)), verifier.context(digest))
        if not verdict.passed:
            rejected += 1
            for p in verdict.problems:
                problems[p.kind] += 1
                if len(examples) < 10:
                    examples.append(f"{p.kind}: {p.detail}")
    elapsed = time.perf_counter() - started
    print(f"records: {args.records}; conclusions: {conclusions}; engine errors: {engine_errors}")
    print(f"faithful answers rejected (false rejections): {rejected}; problems: {dict(problems)}")
    for line in examples:
        print("  ", line)
    print(f"elapsed {elapsed:.1f} s (engine, digest, verification)")


if __name__ == "__main__":
    main()
