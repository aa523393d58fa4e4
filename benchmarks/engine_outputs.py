"""Output-equality harness: the engine's reports on a fixed, seeded input set, as digests to compare across changes.

Inputs (all seeded, so two runs see the same records):
- every golden case (tests/cases/*/input.json) and every bundled example record;
- composed realistic records: a bundled example's items with values varied, one real Meinian text per exam
  (0113–0118, three 0101, 0102, 1001, 1308 — as benchmarks/engine_speed.py composes them) drawn uniformly from the
  distinct texts of ../shared/data/meinian/texts_dev.csv, and a prior visit with varied items and two real texts;
- Tianchi diabetes rows (ingested with the wide-csv adapter) as records;
- every distinct text of texts_dev.csv through `extract_text` on its own (its table's exam item);
- long texts without sentence breaks (a repeated cyst description, and real texts joined by commas).

For each input the canonical JSON (sorted keys, `engine_version` / `kb_version` left out) is hashed with sha256.
The digests go to OUT (JSON), the canonical documents beside it (OUT + ".docs.jsonl.gz") so that a later
`--compare OUT` can name the first differing path of every input whose digest changed.

    python benchmarks/engine_outputs.py --out /tmp/outputs.json [--records 3000] [--texts 0] [--tianchi 0]
    python benchmarks/engine_outputs.py --compare /tmp/outputs.json
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import hashlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zhujian.adapters import ingest_file
from zhujian.domain.record import Record
from zhujian.evaluation import ITEM_OF_TABLE
from zhujian.examples import example_names, load_example
from zhujian.kb.loader import KnowledgeBase, load_kb
from zhujian.pipeline.build_info import engine_build
from zhujian.pipeline.extract import clear_extraction_cache, extract_text
from zhujian.pipeline.run import build_report

ROOT = Path(__file__).resolve().parents[1]
# The shared data folder sits beside the checkout (../shared/data) or one level further up for a worktree.
DATA = next((p / "shared" / "data" for p in ROOT.parents if (p / "shared" / "data").is_dir()), ROOT.parent / "shared")
TEXTS = DATA / "meinian" / "texts_dev.csv"
TIANCHI = DATA / "tianchi-diabetes" / "d_train_20180102.csv"
STREAM_TABLES = ("0113", "0114", "0115", "0116", "0117", "0118", "0101", "0101", "0101", "0102", "1001", "1308")
VOLATILE = ("engine_version", "kb_version")


def canonical(doc: dict[str, Any]) -> str:
    kept = {k: v for k, v in doc.items() if k not in VOLATILE}
    return json.dumps(kept, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _load_texts() -> dict[str, list[str]]:
    by_table: dict[str, list[str]] = {}
    with TEXTS.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_table.setdefault(row["table_id"], []).append(row["text"])
    return by_table


def _vary(items: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    out = []
    for item in items:
        value = item["value"]
        with contextlib.suppress(ValueError, TypeError):
            # Wide enough to cross reference limits and some critical values, not only to jitter.
            value = f"{float(value) * rng.uniform(0.6, 1.6):.2f}"
        out.append({**item, "value": value})
    return out


def composed_records(n: int, seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    rng = random.Random(seed)
    by_table = _load_texts()
    bases = [load_example(name) for name in example_names()]
    for i in range(n):
        base = bases[i % len(bases)]
        texts = [{"item": ITEM_OF_TABLE[t], "text": rng.choice(by_table[t])} for t in STREAM_TABLES]
        prior_items = _vary(base["items"][::3], rng)
        prior_tables = rng.sample(STREAM_TABLES, 2)
        prior_texts = [{"item": ITEM_OF_TABLE[t], "text": rng.choice(by_table[t])} for t in prior_tables]
        record = {
            **base,
            "visit_id": f"C{i}",
            "age": round(rng.uniform(25, 85), 1),
            "items": _vary(base["items"], rng),
            "texts": texts,
            "prior_visits": [
                {"visit_id": f"C{i}-prior", "exam_date": "2025-03-20", "items": prior_items, "texts": prior_texts}
            ],
        }
        record.pop("birth_date", None)
        yield f"composed:{i}", record


def long_texts(seed: int) -> Iterator[tuple[str, str, str]]:
    """(key, item, text): long texts without sentence breaks."""
    for k in (10, 40, 160):
        yield f"long:cyst:{k}", "肝脏", "肝内见无回声区大小约5x4mm " * k
    rng = random.Random(seed)
    by_table = _load_texts()
    tables = sorted(by_table)
    for j in range(40):
        table = rng.choice(tables)
        parts = [rng.choice(by_table[table]) for _ in range(rng.randint(5, 40))]
        joined = "，".join(parts)
        for stop in "。；;\n":
            joined = joined.replace(stop, "，")
        yield f"long:joined:{j}", ITEM_OF_TABLE.get(table, table), joined


def _extraction_doc(kb: KnowledgeBase, item: str, text: str) -> dict[str, Any]:
    result = extract_text(kb, item, text)
    return {
        "incomplete": result.incomplete,
        "site": result.site,
        "findings": [{**f.to_dict(), "conclusion": f.conclusion, "critical": f.critical} for f in result.findings],
    }


PARTS = ("case", "example", "composed", "tianchi", "text", "long")


def run(kb: KnowledgeBase, args: argparse.Namespace) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, doc in _run_all(kb, args):
        if key.split(":", 1)[0] in args.parts:
            yield key, doc


def _run_all(kb: KnowledgeBase, args: argparse.Namespace) -> Iterator[tuple[str, dict[str, Any]]]:
    parts = set(args.parts)
    for case in sorted((ROOT / "tests" / "cases").iterdir()):
        if (case / "input.json").exists():
            data = json.loads((case / "input.json").read_text(encoding="utf-8"))
            yield f"case:{case.name}", build_report(kb, Record.model_validate(data)).to_dict()
    for name in example_names():
        yield f"example:{name}", build_report(kb, Record.model_validate(load_example(name))).to_dict()
    if TEXTS.exists() and "composed" in parts:
        for key, data in composed_records(args.records, args.seed):
            yield key, build_report(kb, Record.model_validate(data)).to_dict()
    if TIANCHI.exists() and "tianchi" in parts:
        for i, record in enumerate(ingest_file(TIANCHI, kb=kb)):
            if args.tianchi and i >= args.tianchi:
                break
            yield f"tianchi:{record.visit_id}", build_report(kb, record).to_dict()
    if TEXTS.exists() and "text" in parts:
        clear_extraction_cache()
        with TEXTS.open(encoding="utf-8") as handle:
            for i, row in enumerate(csv.DictReader(handle)):
                if args.texts and i >= args.texts:
                    break
                item = ITEM_OF_TABLE.get(row["table_id"], row["table_id"])
                yield f"text:{i}", _extraction_doc(kb, item, row["text"])
    if TEXTS.exists() and "long" in parts:
        for key, item, text in long_texts(args.seed):
            yield key, _extraction_doc(kb, item, text)


def first_difference(a: Any, b: Any, path: str = "$") -> str | None:
    if type(a) is not type(b):
        return f"{path}: {json.dumps(a, ensure_ascii=False)[:120]} != {json.dumps(b, ensure_ascii=False)[:120]}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                return f"{path}.{key}: present only in the {'baseline' if key in a else 'new output'}"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        return None
    if a != b:
        return f"{path}: {json.dumps(a, ensure_ascii=False)[:120]} != {json.dumps(b, ensure_ascii=False)[:120]}"
    return None


def main() -> int:
    if os.environ.get("PYTHONHASHSEED") != "0":
        # Some outputs follow set iteration order (string hashing is randomized per process): pin it so that two
        # runs differ only where the code differs.
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the digests here (and the documents beside it)")
    target.add_argument("--compare", type=Path, help="compare against digests written earlier with --out")
    parser.add_argument("--records", type=int, default=3000, help="composed records")
    parser.add_argument("--seed", type=int, default=10)
    parser.add_argument("--texts", type=int, default=0, help="limit the distinct texts extracted alone (0 = all)")
    parser.add_argument("--tianchi", type=int, default=0, help="limit the Tianchi rows (0 = all)")
    parser.add_argument(
        "--parts",
        type=lambda v: tuple(v.split(",")),
        default=PARTS,
        help=f"comma-separated subset of {','.join(PARTS)} (with --compare: only those are compared)",
    )
    args = parser.parse_args()

    kb = load_kb()
    started = time.perf_counter()
    digests: dict[str, str] = {}
    docs: dict[str, str] = {}
    for key, doc in run(kb, args):
        text = canonical(doc)
        digests[key] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        docs[key] = text
    elapsed = time.perf_counter() - started
    print(f"{len(digests)} outputs in {elapsed:.1f} s; {engine_build()}", file=sys.stderr)

    if args.out is not None:
        meta = {"records": args.records, "seed": args.seed, "texts": args.texts, "tianchi": args.tianchi}
        args.out.write_text(json.dumps({"args": meta, "digests": digests}, indent=0), encoding="utf-8")
        with gzip.open(f"{args.out}.docs.jsonl.gz", "wt", encoding="utf-8") as sink:
            for key, text in docs.items():
                sink.write(json.dumps([key, text], ensure_ascii=False) + "\n")
        return 0

    baseline = json.loads(args.compare.read_text(encoding="utf-8"))
    if baseline["args"] != {"records": args.records, "seed": args.seed, "texts": args.texts, "tianchi": args.tianchi}:
        print(f"baseline was made with {baseline['args']}: run with the same options", file=sys.stderr)
        return 2
    old: dict[str, str] = baseline["digests"]
    changed = [k for k in old if k in digests and old[k] != digests[k]]
    missing = [k for k in old if k not in digests and k.split(":", 1)[0] in args.parts]
    added = [k for k in digests if k not in old]
    if changed:
        old_docs: dict[str, str] = {}
        wanted = set(changed)
        with gzip.open(f"{args.compare}.docs.jsonl.gz", "rt", encoding="utf-8") as source:
            for line in source:
                key, text = json.loads(line)
                if key in wanted:
                    old_docs[key] = text
        for key in changed:
            where = first_difference(json.loads(old_docs[key]), json.loads(docs[key])) if key in old_docs else "?"
            print(f"DIFFERENT {key}: {where}")
    for key in missing:
        print(f"MISSING {key}")
    for key in added:
        print(f"ADDED {key}")
    same = len(digests) - len(changed) - len(added)
    print(f"{same} identical, {len(changed)} different, {len(missing)} missing, {len(added)} added")
    return 1 if changed or missing or added else 0


if __name__ == "__main__":
    raise SystemExit(main())
