"""Engine speed on one core.

- engine time per realistic record (the bundled example `male_56_metabolic`: 94 items, 13 texts, questionnaire,
  a prior visit), p50 and p99 over many runs, compared with the time to `json.loads` the same record;
- `extract` throughput in texts per second over ../shared/data/meinian/texts_dev.csv (distinct texts).

    python benchmarks/engine_speed.py [--runs 2000] [--texts 20000]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import time
from pathlib import Path

from zhujian.domain.record import Record
from zhujian.evaluation import ITEM_OF_TABLE
from zhujian.examples import load_example
from zhujian.kb.loader import load_kb
from zhujian.pipeline.extract import extract_text
from zhujian.pipeline.run import build_report

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "meinian" / "texts_dev.csv"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--texts", type=int, default=0, help="limit the number of texts (0 = all)")
    args = parser.parse_args()

    started = time.perf_counter()
    kb = load_kb()
    load_s = time.perf_counter() - started
    raw = json.dumps(load_example("male_56_metabolic"), ensure_ascii=False)
    record = Record.model_validate_json(raw)
    build_report(kb, record)  # warm caches (compiled lexicon and rules)

    engine: list[float] = []
    parse: list[float] = []
    validate: list[float] = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        data = json.loads(raw)
        t1 = time.perf_counter()
        rec = Record.model_validate(data)
        t2 = time.perf_counter()
        build_report(kb, rec)
        t3 = time.perf_counter()
        parse.append(t1 - t0)
        validate.append(t2 - t1)
        engine.append(t3 - t2)
    ms = 1000.0
    print(f"KB load (cold, includes YAML parsing): {load_s * ms:.0f} ms")
    print(f"record: {len(record.items)} items, {len(record.texts)} texts, {len(raw.encode())} bytes of JSON")
    print("| step | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|")
    for name, values in (
        ("json.loads", parse),
        ("Record validation (pydantic)", validate),
        ("engine (build_report)", engine),
    ):
        print(
            f"| {name} | {statistics.median(values) * ms:.3f} | {_percentile(values, 0.99) * ms:.3f} | "
            f"{statistics.fmean(values) * ms:.3f} |"
        )
    print(f"engine p50 / json.loads p50 = {statistics.median(engine) / statistics.median(parse):.1f}x")

    if DATA.exists():
        rows = list(csv.DictReader(DATA.open(encoding="utf-8")))
        if args.texts:
            rows = rows[: args.texts]
        t0 = time.perf_counter()
        for row in rows:
            extract_text(kb, ITEM_OF_TABLE.get(row["table_id"], row["table_id"]), row["text"])
        elapsed = time.perf_counter() - t0
        print(f"extract: {len(rows)} distinct texts in {elapsed:.2f} s = {len(rows) / elapsed:,.0f} texts/s (one core)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
