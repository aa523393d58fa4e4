"""Engine speed on one core.

- engine time per realistic record (the bundled example `male_56_metabolic`: 94 items, 13 texts, questionnaire,
  a prior visit), p50 and p99 over many runs, compared with the time to `json.loads` the same record; measured
  cold (text-result cache cleared before every run: every text parsed from scratch) and warm (same record again);
- a stream of realistic records: the example's items with values varied by ±15 %, and one real text per exam
  (0113–0118, three 0101, 0102, 1001, 1308) drawn from ../shared/data/meinian/texts_dev.csv by how often each
  text occurs — the mix a checkup center's day actually has; p50/p99 after a warm-up of the same size;
- `extract` throughput in texts per second over the distinct texts of texts_dev.csv (no cache hits: each distinct
  text is seen once);
- `--new-texts N`: a stream of N realistic records in which every text is new (distinct texts drawn without
  replacement, never seen before in the process), each with a prior visit whose values and two texts are new too;
  per record, side by side in the same loop: `json.loads` of the record's JSON, pydantic validation, the engine,
  and the report's serialization (CPU time and wall time on alternate records);
- `--long`: time of one long text without sentence breaks as it grows (the cyst description repeated).
- `--stages`: with `--new-texts`, a second pass over further new records giving the CPU time of each engine stage
  per record (item evaluation, text extraction, rules, risk section, comparison with the prior visit; the prior
  visit's own report is counted in its stages).

- `--against REV`: the engine of git revision REV and this checkout's, in one process, record by record in
  alternating order on the every-text-new stream (`--new-texts N` records, default 1000): the before/after ratio on
  a shared, noisy machine. REV's `src/zhujian` is exported and renamed to the package `zhujian_before`; each engine
  keeps its own text cache, so both see every text new; their reports are compared for equality.

After the KB is loaded and compiled, the long-lived objects are moved out of the collector's reach (`gc.freeze()`,
as a batch worker does); `--no-gc-freeze` leaves the collector as it is.

    python benchmarks/engine_speed.py [--runs 2000] [--stream 5000] [--texts 0] [--new-texts 2000] [--long]
    python benchmarks/engine_speed.py --only-new --new-texts 1000 [--stages] [--no-gc-freeze]
    python benchmarks/engine_speed.py --against 25fc2e2 --new-texts 1000
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import statistics
import time
from pathlib import Path
from typing import Any

from zhujian.domain.record import Record
from zhujian.evaluation import ITEM_OF_TABLE
from zhujian.examples import load_example
from zhujian.kb.loader import load_kb
from zhujian.pipeline.extract import clear_extraction_cache, extract_text
from zhujian.pipeline.run import build_report

try:
    from zhujian.pipeline.build_info import engine_build
except ImportError:  # an earlier revision's source on the path (engine_instructions.py --pythonpath)

    def engine_build() -> str:
        return "engine: plain Python (a revision without build_info)"

_ROOT = Path(__file__).resolve().parents[1]
# The shared data folder sits beside the checkout, or further up for a worktree.
DATA = next(
    (p / "shared" / "data" / "meinian" / "texts_dev.csv" for p in _ROOT.parents if (p / "shared" / "data").is_dir()),
    _ROOT.parent / "shared" / "data" / "meinian" / "texts_dev.csv",
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--texts", type=int, default=0, help="limit the number of texts (0 = all)")
    parser.add_argument("--stream", type=int, default=5000, help="records in the realistic stream (0 = skip)")
    parser.add_argument("--new-texts", type=int, default=0, help="records in the every-text-new stream (0 = skip)")
    parser.add_argument("--long", action="store_true", help="long-text scaling")
    parser.add_argument(
        "--only-new", action="store_true", help="run only --new-texts, --long and (with --texts N) text throughput"
    )
    parser.add_argument("--stages", action="store_true", help="with --new-texts: CPU time per engine stage")
    parser.add_argument("--no-gc-freeze", action="store_true", help="do not gc.freeze() after loading the KB")
    parser.add_argument("--against", metavar="REV", help="interleave with the engine of git revision REV")
    args = parser.parse_args()
    if args.against:
        return _against(args.against, args.new_texts or 1000, args.stages)
    global _GC_FREEZE
    _GC_FREEZE = not args.no_gc_freeze
    if args.only_new:
        kb = load_kb()
        if args.new_texts and DATA.exists():
            _new_text_stream(kb, args.new_texts, args.stages)
        if args.long:
            _long_texts(kb)
        if args.texts and DATA.exists():
            _extract_throughput(kb, args.texts)
        return 0

    started = time.perf_counter()
    kb = load_kb()
    load_s = time.perf_counter() - started
    raw = json.dumps(load_example("male_56_metabolic"), ensure_ascii=False)
    record = Record.model_validate_json(raw)
    build_report(kb, record)  # warm caches (compiled lexicon and rules)
    _freeze()

    # The same record without its prior visit: the plain ~100-item record of the target, with no comparison.
    plain = record.model_copy(update={"prior_visits": []})
    plain_warm: list[float] = []
    plain_cold: list[float] = []
    build_report(kb, plain)
    for _ in range(args.runs):
        t0 = time.perf_counter()
        build_report(kb, plain)
        t1 = time.perf_counter()
        clear_extraction_cache()
        t2 = time.perf_counter()
        build_report(kb, plain)
        t3 = time.perf_counter()
        plain_warm.append(t1 - t0)
        plain_cold.append(t3 - t2)
    engine: list[float] = []
    engine_cold: list[float] = []
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
        clear_extraction_cache()
        t4 = time.perf_counter()
        build_report(kb, rec)
        t5 = time.perf_counter()
        parse.append(t1 - t0)
        validate.append(t2 - t1)
        engine.append(t3 - t2)
        engine_cold.append(t5 - t4)
    ms = 1000.0
    print(f"KB load (cold, includes YAML parsing): {load_s * ms:.0f} ms")
    print(f"record: {len(record.items)} items, {len(record.texts)} texts, {len(raw.encode())} bytes of JSON")
    print("| step | p50 ms | p99 ms | mean ms |")
    print("|---|---:|---:|---:|")
    for name, values in (
        ("json.loads", parse),
        ("Record validation (pydantic)", validate),
        ("engine, no prior visit, texts parsed from scratch (cold)", plain_cold),
        ("engine, no prior visit, same record again (warm text cache)", plain_warm),
        ("engine with the prior visit, texts parsed from scratch (cold)", engine_cold),
        ("engine with the prior visit, same record again (warm text cache)", engine),
    ):
        print(
            f"| {name} | {statistics.median(values) * ms:.3f} | {_percentile(values, 0.99) * ms:.3f} | "
            f"{statistics.fmean(values) * ms:.3f} |"
        )
    print(f"cold engine p50 / json.loads p50 = {statistics.median(engine_cold) / statistics.median(parse):.1f}x")
    if DATA.exists() and args.stream:
        _stream(kb, args.stream)

    if DATA.exists():
        rows = list(csv.DictReader(DATA.open(encoding="utf-8")))
        if args.texts:
            rows = rows[: args.texts]
        clear_extraction_cache()
        t0 = time.perf_counter()
        for row in rows:
            extract_text(kb, ITEM_OF_TABLE.get(row["table_id"], row["table_id"]), row["text"])
        elapsed = time.perf_counter() - t0
        print(f"extract: {len(rows)} distinct texts in {elapsed:.2f} s = {len(rows) / elapsed:,.0f} texts/s (one core)")
    if args.new_texts and DATA.exists():
        _new_text_stream(kb, args.new_texts, args.stages)
    if args.long:
        _long_texts(kb)
    return 0


_GC_FREEZE = True


def _freeze() -> None:
    """Move the KB, the compiled lexicon and rules out of the collector's generations, as a batch worker does."""
    if _GC_FREEZE:
        gc.collect()
        gc.freeze()


def _new_text_stream(kb: object, n: int, stages: bool = False) -> None:
    """Every text new: records composed like `_stream`, texts drawn without replacement from the distinct texts."""
    from zhujian.kb.loader import KnowledgeBase

    assert isinstance(kb, KnowledgeBase)
    raws = _new_text_records(2 * n if stages else n)
    base = load_example("male_56_metabolic")
    stage_raws, raws = raws[n:], raws[:n]
    # Compile the lexicon and rules first (once per process), then forget every text result.
    build_report(kb, Record.model_validate(base))
    clear_extraction_cache()
    _freeze()
    # The machine may be shared: CPU time of this process (time.process_time) is the primary measure, wall time
    # (perf_counter) is given beside it.
    clocks = {"cpu": time.process_time, "wall": time.perf_counter}
    steps = (
        "json.loads of the record",
        "Record validation (pydantic)",
        "engine (build_report)",
        "report to_dict + json.dumps",
    )
    measured: dict[str, dict[str, list[float]]] = {c: {step: [] for step in steps} for c in clocks}
    for i, raw in enumerate(raws):
        clock_name = "cpu" if i % 2 == 0 else "wall"
        clock = clocks[clock_name]
        t0 = clock()
        data = json.loads(raw)
        t1 = clock()
        record = Record.model_validate(data)
        t2 = clock()
        report = build_report(kb, record)
        t3 = clock()
        json.dumps(report.to_dict(), ensure_ascii=False)
        t4 = clock()
        for step, value in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            measured[clock_name][step].append(value)
    ms = 1000.0
    size = statistics.median(len(r.encode()) for r in raws)
    print(f"every text new: {n} records (94 items, 12 texts, a prior visit with 2 texts, all new; {size:.0f} B JSON)")
    print(engine_build())
    print("records alternate between the CPU-time and the wall-time clock")
    print("| step | clock | p50 ms | p95 ms | p99 ms | mean ms |")
    print("|---|---|---:|---:|---:|---:|")
    for step in steps:
        for clock_name, by_step in measured.items():
            values = by_step[step]
            print(
                f"| {step} | {clock_name} | {statistics.median(values) * ms:.3f} | "
                f"{_percentile(values, 0.95) * ms:.3f} | {_percentile(values, 0.99) * ms:.3f} | "
                f"{statistics.fmean(values) * ms:.3f} |"
            )
    for clock_name, by_step in measured.items():
        engine, loads = by_step[steps[2]], by_step[steps[0]]
        ratios = [e / max(x, 1e-9) for e, x in zip(engine, loads, strict=True)]
        print(
            f"{clock_name}: engine p50 / json.loads p50 = {statistics.median(engine) / statistics.median(loads):.1f}x; "
            f"median per-record ratio {statistics.median(ratios):.1f}x; "
            f"{14 * len(engine) / sum(engine):,.0f} texts/s through the whole engine (14 texts per record)"
        )
    if stage_raws:
        _stage_times(kb, [Record.model_validate(json.loads(raw)) for raw in stage_raws])


def _new_text_records(n: int) -> list[str]:
    """JSON of n records: the example's items varied ±15 %, one real text per exam and a prior visit with varied
    values and two texts, every text distinct (drawn without replacement from the distinct texts)."""
    import random

    rng = random.Random(12)
    by_table: dict[str, list[str]] = {}
    with DATA.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            by_table.setdefault(row["table_id"], []).append(row["text"])
    for texts in by_table.values():
        rng.shuffle(texts)
    base = load_example("male_56_metabolic")

    def take(table: str) -> str:
        # Pancreas (0115, 92 distinct texts) and spleen (0116, 481) run out first: their slots then get a new
        # general ultrasound finding (0101) or conclusion (0102), so that no text is ever seen twice.
        for source in (table, "0101", "0102"):
            if by_table[source]:
                return by_table[source].pop()
        raise SystemExit(f"{n} records with every text new: not enough distinct texts")

    def vary(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            value = item["value"]
            with contextlib.suppress(ValueError):
                value = f"{float(value) * rng.uniform(0.85, 1.15):.2f}"
            out.append({**item, "value": value})
        return out

    raws: list[str] = []
    for i in range(n):
        items = vary(base["items"])
        texts = [{"item": ITEM_OF_TABLE[t], "text": take(t)} for t in STREAM_TABLES]
        # The prior visit is new too: its values varied and its two texts never seen before.
        priors = []
        for visit in base["prior_visits"]:
            prior_items = vary(visit["items"])
            prior_texts = [{"item": ITEM_OF_TABLE[t], "text": take(t)} for t in ("0113", "0101")]
            priors.append({**visit, "items": prior_items, "texts": prior_texts})
        record = {**base, "visit_id": f"N{i}", "items": items, "texts": texts, "prior_visits": priors}
        raws.append(json.dumps(record, ensure_ascii=False))
    return raws


def _against(rev: str, n: int, stages: bool = False) -> int:
    """Before/after in one process: REV's engine (renamed package) and this checkout's, alternating per record."""
    import importlib
    import io
    import re
    import subprocess
    import sys
    import tarfile
    import tempfile

    archive = subprocess.run(
        ["git", "-C", str(_ROOT), "archive", rev, "src/zhujian"], check=True, capture_output=True
    ).stdout
    workdir = Path(tempfile.mkdtemp(prefix="zhujian-before-"))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(workdir, filter="data")
    package = workdir / "zhujian_before"
    (workdir / "src" / "zhujian").rename(package)
    for source in package.rglob("*.py"):
        renamed = re.sub(r"\bzhujian\b", "zhujian_before", source.read_text(encoding="utf-8"))
        source.write_text(renamed, encoding="utf-8")
    sys.path.insert(0, str(workdir))
    before_record = importlib.import_module("zhujian_before.domain.record").Record
    before_kb = importlib.import_module("zhujian_before.kb.loader").load_kb()
    before_build = importlib.import_module("zhujian_before.pipeline.run").build_report
    before_clear = importlib.import_module("zhujian_before.pipeline.extract").clear_extraction_cache
    kb = load_kb()
    raws = _new_text_records(n)
    base = load_example("male_56_metabolic")
    build_report(kb, Record.model_validate(base))
    before_build(before_kb, before_record.model_validate(base))
    clear_extraction_cache()
    before_clear()
    _freeze()
    stage_spent = {name: dict.fromkeys(STAGE_NAMES, 0.0) for name in ("before", "after")}
    if stages:
        from zhujian.pipeline import run as after_run

        _time_stages(importlib.import_module("zhujian_before.pipeline.run"), stage_spent["before"])
        _time_stages(after_run, stage_spent["after"])
    clock = time.process_time
    loads: list[float] = []
    spent: dict[str, list[float]] = {"before": [], "after": [], "before validation": [], "after validation": []}
    identical = 0
    for i, raw in enumerate(raws):
        t0 = clock()
        data = json.loads(raw)
        loads.append(clock() - t0)
        docs = {}
        for name in ("before", "after") if i % 2 == 0 else ("after", "before"):
            model, build, engine_kb = (
                (before_record, before_build, before_kb) if name == "before" else (Record, build_report, kb)
            )
            t0 = clock()
            record = model.model_validate(data)
            t1 = clock()
            report = build(engine_kb, record)
            t2 = clock()
            spent[f"{name} validation"].append(t1 - t0)
            spent[name].append(t2 - t1)
            # The version fields name the package and its install, not the report's content.
            doc = {k: v for k, v in report.to_dict().items() if k not in ("engine_version", "kb_version")}
            docs[name] = json.dumps(doc, ensure_ascii=False, sort_keys=True)
        identical += docs["before"] == docs["after"]
    ms = 1000.0
    loads_p50 = statistics.median(loads)
    print(f"{n} records, every text new, before = {rev}, after = this checkout, alternating per record (CPU time)")
    print(f"reports identical: {identical} of {n}")
    print("| code | engine p50 ms | engine p90 ms | × json.loads p50 | Record validation p50 ms |")
    print("|---|---:|---:|---:|---:|")
    for name in ("before", "after"):
        engine = spent[name]
        validation = statistics.median(spent[f"{name} validation"])
        print(
            f"| {name} | {statistics.median(engine) * ms:.3f} | {_percentile(engine, 0.9) * ms:.3f} | "
            f"{statistics.median(engine) / loads_p50:.1f}× | {validation * ms:.3f} |"
        )
    print(f"json.loads p50 {loads_p50 * ms:.3f} ms (same records, same loop)")
    ratios = [a / b for a, b in zip(spent["after"], spent["before"], strict=True)]
    print(
        f"after / before: median per record {statistics.median(ratios):.3f}, "
        f"total {sum(spent['after']) / sum(spent['before']):.3f}"
    )
    if stages:
        print("| stage (CPU ms per record, mean, timers included) | before | after | after / before |")
        print("|---|---:|---:|---:|")
        rows = [(label, stage_spent["before"][name], stage_spent["after"][name]) for name, label in STAGE_NAMES.items()]
        rows.append(
            (
                "rest of build_report",
                sum(spent["before"]) - sum(stage_spent["before"].values()),
                sum(spent["after"]) - sum(stage_spent["after"].values()),
            )
        )
        rows.append(("whole engine", sum(spent["before"]), sum(spent["after"])))
        for label, before, after in rows:
            print(f"| {label} | {before * ms / n:.3f} | {after * ms / n:.3f} | {after / before:.2f} |")
    return 0 if identical == n else 1


STAGE_NAMES = {
    "evaluate_items": "item evaluation",
    "extract_text": "text extraction",
    "derive_conclusions": "rules (derive_conclusions)",
    "assess_risks": "risk section",
    "apply_comparison": "comparison with the prior visit",
}


def _time_stages(run: Any, spent: dict[str, float]) -> dict[str, Any]:
    """Wrap each stage function `build_report` calls (in the module `run`) in a CPU timer adding to `spent`; returns
    the original functions, to put back with `setattr`."""
    originals = {name: getattr(run, name) for name in STAGE_NAMES}

    def timed(name: str, original: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                spent[name] += time.process_time() - t0

        return call

    for name, original in originals.items():
        setattr(run, name, timed(name, original))
    return originals


def _stage_times(kb: object, records: list[Record]) -> None:
    """CPU time per engine stage and record: each stage function of `build_report` wrapped in a timer."""
    from zhujian.kb.loader import KnowledgeBase
    from zhujian.pipeline import run

    assert isinstance(kb, KnowledgeBase)
    stage_names = STAGE_NAMES
    spent = dict.fromkeys(stage_names, 0.0)
    originals = _time_stages(run, spent)
    try:
        t0 = time.process_time()
        for record in records:
            build_report(kb, record)
        total = time.process_time() - t0
    finally:
        for name, original in originals.items():
            setattr(run, name, original)
    ms = 1000.0 / len(records)
    print(f"stages: {len(records)} further records, every text new; CPU ms per record (timers included)")
    print("| stage | CPU ms per record | share |")
    print("|---|---:|---:|")
    for name, label in stage_names.items():
        print(f"| {label} | {spent[name] * ms:.3f} | {spent[name] / total:.0%} |")
    rest = total - sum(spent.values())
    print(f"| rest of build_report (facts, alerts, ranking, report) | {rest * ms:.3f} | {rest / total:.0%} |")
    print(f"| whole engine | {total * ms:.3f} | 100% |")


def _extract_throughput(kb: object, n: int) -> None:
    """Texts per second over the first n distinct texts, each seen once (CPU time and wall time)."""
    from zhujian.kb.loader import KnowledgeBase

    assert isinstance(kb, KnowledgeBase)
    with DATA.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))[:n]
    extract_text(kb, "肝脏", "肝脏大小形态正常")
    clear_extraction_cache()
    _freeze()
    c0, w0 = time.process_time(), time.perf_counter()
    for row in rows:
        extract_text(kb, ITEM_OF_TABLE.get(row["table_id"], row["table_id"]), row["text"])
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    print(f"extract: {len(rows)} distinct texts: {len(rows) / cpu:,.0f} texts/s CPU time, {len(rows) / wall:,.0f} wall")


def _long_texts(kb: object) -> None:
    from zhujian.kb.loader import KnowledgeBase

    assert isinstance(kb, KnowledgeBase)
    unit = "肝内见无回声区大小约5x4mm "
    print("| repeats | characters | CPU ms | µs per character |")
    print("|---:|---:|---:|---:|")
    for k in (10, 40, 160, 640):
        text = unit * k
        best = float("inf")
        for _ in range(3 if k < 640 else 1):
            clear_extraction_cache()
            t0 = time.process_time()
            extract_text(kb, "肝脏", text)
            best = min(best, time.process_time() - t0)
        print(f"| {k} | {len(text)} | {best * 1000:.1f} | {best * 1e6 / len(text):.1f} |")


STREAM_TABLES = ("0113", "0114", "0115", "0116", "0117", "0118", "0101", "0101", "0101", "0102", "1001", "1308")


def _stream(kb: object, n: int) -> None:
    import random

    from zhujian.kb.loader import KnowledgeBase

    assert isinstance(kb, KnowledgeBase)
    rng = random.Random(11)
    by_table: dict[str, tuple[list[str], list[int]]] = {}
    with DATA.open(encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            texts, weights = by_table.setdefault(row["table_id"], ([], []))
            texts.append(row["text"])
            weights.append(int(row["count"] or 1))
    base = load_example("male_56_metabolic")

    def make(i: int) -> Record:
        items = []
        for item in base["items"]:
            value = item["value"]
            with contextlib.suppress(ValueError):
                value = f"{float(value) * rng.uniform(0.85, 1.15):.2f}"
            items.append({**item, "value": value})
        texts = [
            {"item": ITEM_OF_TABLE[t], "text": rng.choices(by_table[t][0], weights=by_table[t][1])[0]}
            for t in STREAM_TABLES
        ]
        return Record.model_validate({**base, "visit_id": f"S{i}", "items": items, "texts": texts})

    clear_extraction_cache()
    warm = [make(i) for i in range(n)]
    measured = [make(n + i) for i in range(n)]
    for rec in warm:
        build_report(kb, rec)
    times = []
    for rec in measured:
        t0 = time.perf_counter()
        build_report(kb, rec)
        times.append(time.perf_counter() - t0)
    ms = 1000.0
    print(
        f"realistic stream ({n} records after a warm-up of {n}; 94 items, 12 real texts and a prior visit each): "
        f"engine p50 {statistics.median(times) * ms:.3f} ms, p99 {_percentile(times, 0.99) * ms:.3f} ms"
    )


if __name__ == "__main__":
    raise SystemExit(main())
