"""Cost of verifying one model answer on one core, on the bundled examples and every golden case.

For each report, a faithful answer is built from the report's own conclusion names and evidence values (every
conclusion explained, as a model that covers everything would write), and the script times:

- `verify`: checking a parsed answer against a prepared digest context (what a retry repeats);
- `verify_text`: parsing the JSON text and checking it;
- `context`: preparing the digest context once per report (allowed terms, numbers, drugs);
- `digest`: building the de-identified digest from the report JSON.

Each figure is the median (and, for verify, the minimum) of `--repeat` timed runs after a warm-up, per report. The
minimum is the cost without interference from other processes on a shared machine. Also reported: json.loads of
the answer text, as the machine-speed reference (see docs/measurements.md).

    python benchmarks/verifier_speed.py [--repeat 200]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests" / "narration"))

from llm_stand_in import dumps, faithful_answer  # noqa: E402

from zhujian.domain.record import Record  # noqa: E402
from zhujian.examples import example_names, load_example  # noqa: E402
from zhujian.kb.loader import default_kb  # noqa: E402
from zhujian.narration.answer import parse_answer  # noqa: E402
from zhujian.narration.digest import build_digest  # noqa: E402
from zhujian.narration.verify import default_verifier  # noqa: E402
from zhujian.pipeline.run import build_report  # noqa: E402


def _times_us(fn: Callable[[], Any], repeat: int) -> list[float]:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1e6)
    return times


def _median_us(fn: Callable[[], Any], repeat: int) -> float:
    return statistics.median(_times_us(fn, repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    kb = default_kb()
    verifier = default_verifier(kb)
    records = [(f"example {n}", load_example(n)) for n in example_names()]
    for case in sorted((ROOT / "tests" / "cases").iterdir()):
        if (case / "input.json").is_file():
            records.append((case.name, json.loads((case / "input.json").read_text(encoding="utf-8"))))
    rows = []
    for label, record in records:
        report = build_report(kb, Record.model_validate(record)).to_dict()
        digest = build_digest(report)
        context = verifier.context(digest)
        text = dumps(faithful_answer(report))
        answer, problems = parse_answer(text)
        assert answer is not None, problems
        verdict = verifier.verify(answer, context)
        assert verdict.passed, verdict
        rows.append(
            {
                "report": label,
                "conclusions": len(report["conclusions"]),
                "answer_chars": len(text),
                "verify_times": _times_us(lambda a=answer, c=context: verifier.verify(a, c), args.repeat),
                "verify_text_us": _median_us(lambda t=text, c=context: verifier.verify_text(t, c), args.repeat),
                "context_us": _median_us(lambda d=digest: verifier.context(d), max(20, args.repeat // 10)),
                "digest_us": _median_us(lambda r=report: build_digest(r), max(20, args.repeat // 10)),
                "json_loads_us": _median_us(lambda t=text: json.loads(t), args.repeat),
            }
        )
    for row in rows:
        row["verify_us"] = statistics.median(row["verify_times"])
        row["verify_min_us"] = min(row["verify_times"])
    print(
        "| report | conclusions | answer chars | verify µs (min) | parse + verify µs | context µs | digest µs "
        "| json.loads µs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['report']} | {row['conclusions']} | {row['answer_chars']} | "
            f"{row['verify_us']:.0f} ({row['verify_min_us']:.0f}) | "
            f"{row['verify_text_us']:.0f} | {row['context_us']:.0f} | {row['digest_us']:.0f} | "
            f"{row['json_loads_us']:.0f} |"
        )
    for key in ("verify_us", "verify_min_us", "verify_text_us", "context_us", "digest_us"):
        values = [r[key] for r in rows]
        print(f"{key}: median {statistics.median(values):.0f} µs, max {max(values):.0f} µs over {len(rows)} reports")


if __name__ == "__main__":
    main()
