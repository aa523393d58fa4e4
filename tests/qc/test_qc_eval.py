"""A bounded run of benchmarks/qc_eval.py: the QC goal (each kind ≥ 0.95 detected, false alarms on ≤ 5 % of clean
lists) on the bundled examples and golden cases, plus 80 Tianchi rows (half with real Meinian texts) when
../shared/data is present. The clean lists and the injected errors come from the benchmark's own phrasing table."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qc_eval", ROOT / "benchmarks" / "qc_eval.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["qc_eval"] = module  # dataclasses resolve their annotations through the module
    spec.loader.exec_module(module)
    return module


def test_qc_goal_on_a_bounded_set() -> None:
    bench = _benchmark()
    records, counts = bench.load_records(80, seed=11)
    table = {k: list(v) for k, v in bench.DEV.items()}
    for key, values in bench.HELDOUT.items():
        table.setdefault(key, []).extend(values)
    result = bench.evaluate(records, table, seed=11)
    report = "\n".join(bench.summary(result))
    assert result.clean == len(records) >= 28, counts
    assert result.false_alarm_lists <= 0.05 * result.clean, report
    for kind in bench.KINDS:
        injected, detected = result.injected[kind], result.detected[kind]
        if kind != "side_mismatch" or "Tianchi rows + Meinian texts" in counts:
            assert injected >= 5, f"too few {kind} injections to measure\n{report}"
        if injected:
            assert detected >= 0.95 * injected, f"{kind}: {detected}/{injected}\n{report}"
