"""Fuzzing at length: the properties of tests/fuzz (engine, value parser, every reader) with many examples.

Every generated case runs to the end: a crash (an exception other than the domain errors the code documents, or a
broken property) is counted and recorded, and generation goes on, so the figure is "cases run, crashes" per target.
No shrinking and no example database: the run measures, the CI tests (tests/fuzz) keep the failures small.

    python benchmarks/fuzz.py --examples 20000                  # every target
    python benchmarks/fuzz.py --examples 20000 --targets engine,values --crashes crashes.jsonl
    python benchmarks/fuzz.py --examples 200                    # a bounded run (about a minute)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, seed, settings

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))

from fuzz_targets import TARGETS, Target, workspace


def run_target(target: Target, examples: int, run_seed: int, crash_log: list[dict[str, Any]]) -> tuple[int, int]:
    """Run `examples` generated cases of one target; return (cases run, crashes)."""
    space = workspace() if target.needs_workspace else None
    counts = {"cases": 0, "crashes": 0}

    @seed(run_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy())
    def prop(case: Any) -> None:
        counts["cases"] += 1
        try:
            if space is not None:
                target.check(case, space)
            else:
                target.check(case)
        except Exception as exc:  # the point of the run: count every crash, keep going
            counts["crashes"] += 1
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            crash_log.append(
                {
                    "target": target.name,
                    "error": f"{type(exc).__name__}: {str(exc)[:300]}",
                    "where": f"{frame.filename}:{frame.lineno}",
                    "case": repr(case)[:600],
                }
            )

    prop()
    return counts["cases"], counts["crashes"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20000, help="generated cases per target")
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated, of: {', '.join(TARGETS)}")
    parser.add_argument("--seed", type=int, default=0, help="Hypothesis seed (runs with different seeds differ)")
    parser.add_argument("--crashes", type=Path, help="write every crash as JSON lines")
    args = parser.parse_args()
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    crash_log: list[dict[str, Any]] = []
    total_cases = total_crashes = 0
    print(f"{'target':<12} {'cases':>9} {'crashes':>8} {'seconds':>9}", flush=True)
    for name in names:
        started = time.perf_counter()
        cases, crashes = run_target(TARGETS[name], args.examples, args.seed, crash_log)
        total_cases += cases
        total_crashes += crashes
        print(f"{name:<12} {cases:>9} {crashes:>8} {time.perf_counter() - started:>9.1f}", flush=True)
    print(f"{'total':<12} {total_cases:>9} {total_crashes:>8}", flush=True)
    if args.crashes is not None:
        with args.crashes.open("w", encoding="utf-8") as out:
            for crash in crash_log:
                out.write(json.dumps(crash, ensure_ascii=False) + "\n")
    for crash in crash_log[:20]:
        print(json.dumps(crash, ensure_ascii=False), file=sys.stderr)


if __name__ == "__main__":
    main()
