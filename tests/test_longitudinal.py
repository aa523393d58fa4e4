"""Golden longitudinal cases: statuses new / persistent / worse / improved / resolved against prior visits, with
the thresholds of compare.yaml (2 mm nodule growth; guideline class cut-offs)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zhujian.domain.record import Record
from zhujian.kb.loader import default_kb
from zhujian.narrate import get_narrator
from zhujian.pipeline.run import build_report

HERE = Path(__file__).parent / "longitudinal"
CASES = sorted(p.name[: -len("_input.json")] for p in HERE.glob("*_input.json"))


def _run(name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    record = Record.model_validate(json.loads((HERE / f"{name}_input.json").read_text(encoding="utf-8")))
    expected = json.loads((HERE / f"{name}_expected.json").read_text(encoding="utf-8"))
    report = build_report(default_kb(), record)
    return report.to_dict(), expected, get_narrator().narrate(report)


@pytest.mark.parametrize("name", CASES)
def test_longitudinal_case(name: str) -> None:
    report, expected, text = _run(name)
    by_cat: dict[str, list[dict[str, Any]]] = {}
    for c in report["conclusions"]:
        by_cat.setdefault(c["icd10"][:3], []).append(c)
    summary = [(c["name"], c["icd10"], c["status"], c["status_detail"]) for c in report["conclusions"]]
    for cat, status in expected.get("status_by_icd10", {}).items():
        assert cat in by_cat, f"{cat} missing: {summary}"
        assert any(c["status"] == status for c in by_cat[cat]), summary
    if "glucose_status" in expected:
        glucose = [c for c in report["conclusions"] if c["icd10"][:3] in ("R73", "E10", "E11", "E12", "E13", "E14")]
        assert glucose, summary
        assert all(c["status"] == expected["glucose_status"] for c in glucose), summary
    resolved = {r["icd10"][:3] for r in report["comparison"]["resolved"]}
    for cat in expected.get("resolved_icd10", []):
        assert cat in resolved, report["comparison"]
    for cat in expected.get("not_resolved_icd10", []):
        assert cat not in resolved, report["comparison"]
    items = {i["item_id"]: i for i in report["items"] if i["item_id"]}
    for item_id, words in expected.get("item_change", {}).items():
        assert words in (items[item_id]["change"] or ""), items[item_id]
        assert len(items[item_id]["previous"]) == 2
    if "worse_rank_before" in expected:
        names = [c["icd10"][:3] for c in report["conclusions"]]
        first_worse = next(i for i, c in enumerate(report["conclusions"]) if c["status"] == "worse")
        assert first_worse < names.index(expected["worse_rank_before"]), summary
    assert "【与上次体检比较】" in text
