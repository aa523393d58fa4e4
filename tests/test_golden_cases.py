"""Golden end-to-end cases: tests/cases/<id>/input.json is a record, expected.json states what the guidelines
require of its report (see each case's `description`). Conclusions are matched by ICD-10 category, level and
evidence, not by the exact wording of the KB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zhujian.domain.record import Record
from zhujian.kb.loader import default_kb
from zhujian.pipeline.run import build_report

CASES = sorted(p for p in (Path(__file__).parent / "cases").iterdir() if p.is_dir())


def _category(code: str) -> str:
    return code[:3]


def _matches(conclusion: dict[str, Any], spec: dict[str, Any]) -> bool:
    cat = _category(conclusion["icd10"])
    if "icd10" in spec and cat != spec["icd10"]:
        return False
    if "icd10_any" in spec and cat not in spec["icd10_any"]:
        return False
    if "icd10_range" in spec:
        lo, hi = spec["icd10_range"]
        if not (lo <= cat <= hi):
            return False
    if "name_contains" in spec and spec["name_contains"] not in conclusion["name"]:
        return False
    if "name_contains_any" in spec and not any(s in conclusion["name"] for s in spec["name_contains_any"]):
        return False
    if "level" in spec and conclusion["level"] != spec["level"]:
        return False
    if "critical" in spec and conclusion["critical"] != spec["critical"]:
        return False
    if "evidence_items" in spec:
        have = {e.get("item_id") for e in conclusion["evidence"]}
        if not set(spec["evidence_items"]) <= have:
            return False
    return True


@pytest.mark.parametrize("case", CASES, ids=[p.name for p in CASES])
def test_golden_case(case: Path) -> None:
    record = Record.model_validate(json.loads((case / "input.json").read_text(encoding="utf-8")))
    expected = json.loads((case / "expected.json").read_text(encoding="utf-8"))
    report = build_report(default_kb(), record).to_dict()
    conclusions = report["conclusions"]
    summary = [(c["name"], c["icd10"], c["level"], c["critical"]) for c in conclusions]
    problem_codes = {p["code"] for p in report["problems"]}

    if "conclusion_count" in expected:
        assert len(conclusions) == expected["conclusion_count"], summary
    if "critical_count" in expected:
        assert len(report["critical"]) == expected["critical_count"], report["critical"]
    for spec in expected.get("include", []):
        assert any(_matches(c, spec) for c in conclusions), f"missing {spec} in {summary}"
    for code in expected.get("exclude_icd10", []):
        assert all(_category(c["icd10"]) != code for c in conclusions), f"unexpected {code} in {summary}"
    for text in expected.get("exclude_name_contains", []):
        assert all(text not in c["name"] for c in conclusions), f"unexpected {text} in {summary}"
    for code, n in expected.get("count_icd10", {}).items():
        assert sum(1 for c in conclusions if _category(c["icd10"]) == code) == n, summary
    if "critical_first" in expected:
        spec = expected["critical_first"]
        assert report["critical"], "no critical entry"
        first = report["critical"][0]
        assert first["level"] == spec["level"], report["critical"]
        if "item_id" in spec:
            assert first["item_id"] == spec["item_id"], report["critical"]
        if "item_id_any" in spec:
            assert first["item_id"] in spec["item_id_any"], report["critical"]
    if expected.get("first_conclusion_critical"):
        assert conclusions and conclusions[0]["critical"], summary
    if "critical_has_level" in expected:
        assert any(a["level"] == expected["critical_has_level"] for a in report["critical"]), report["critical"]
    for item_id in expected.get("critical_items", []):
        assert any(a["item_id"] == item_id for a in report["critical"]), report["critical"]
    for code in expected.get("problem_codes", []):
        assert code in problem_codes, report["problems"]
    for code in expected.get("no_problem_codes", []):
        assert code not in problem_codes, report["problems"]
    for text in expected.get("problem_mentions", []):
        assert any(text in p["message"] or text == p["item"] for p in report["problems"]), report["problems"]
    by_id = {i["item_id"]: i for i in report["items"] if i["item_id"] and i["value"] is not None}
    for item_id, checks in expected.get("items", {}).items():
        assert item_id in by_id, f"{item_id} not evaluated: {sorted(by_id)}"
        item = by_id[item_id]
        if "flag" in checks:
            assert item["flag"] == checks["flag"], item
        if "value" in checks:
            assert item["value"] == pytest.approx(checks["value"]), item
        if "value_between" in checks:
            lo, hi = checks["value_between"]
            assert lo <= item["value"] <= hi, item
    for item_id in expected.get("item_missing_value", []):
        assert item_id not in by_id, by_id.get(item_id)
