"""QC at sign time on the workbench's structured conclusions (`qc_signed_report`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from zhujian.domain.record import Record
from zhujian.examples import example_names, load_example
from zhujian.kb.loader import KnowledgeBase
from zhujian.kb.schema import CenterConfig, QcCenterSettings
from zhujian.pipeline.run import build_report
from zhujian.qc import blocking_issues, qc_signed_report
from zhujian.storage.edits import with_auto_provenance

ROOT = Path(__file__).resolve().parents[2]
RECORDS = {name: load_example(name) for name in example_names()} | {
    path.parent.name: json.loads(path.read_text(encoding="utf-8"))
    for path in sorted((ROOT / "tests" / "cases").glob("*/input.json"))
}


def _signed(kb: KnowledgeBase, record: Record) -> list[dict[str, Any]]:
    """The draft as the workbench stores it before any edit."""
    content = with_auto_provenance(build_report(kb, record).to_dict())
    conclusions: list[dict[str, Any]] = content["conclusions"]
    return conclusions


@pytest.mark.parametrize("name", sorted(RECORDS))
def test_the_unedited_draft_passes_qc(kb: KnowledgeBase, name: str) -> None:
    record = Record.model_validate(RECORDS[name])
    issues = qc_signed_report(record, _signed(kb, record), kb)
    assert issues == [], [i.to_dict() for i in issues]


def test_a_deleted_important_conclusion_is_missed(kb: KnowledgeBase) -> None:
    record = Record.model_validate(load_example("female_67_critical"))
    conclusions = [c for c in _signed(kb, record) if c["id"] != "breast_nodule_birads4"]
    issues = qc_signed_report(record, conclusions, kb)
    assert [(i.kind, i.conclusion) for i in issues] == [("missed", "乳腺结节（BI-RADS 4类及以上）")]


def test_an_edited_name_is_read_as_written(kb: KnowledgeBase) -> None:
    record = Record.model_validate(load_example("male_56_metabolic"))
    conclusions = _signed(kb, record)
    # A physician rewrites the kidney cyst (left on ultrasound) as a right one, and adds a uterine fibroid.
    for c in conclusions:
        if c["id"] == "abd_c_kidney_cyst":
            c["name"], c["provenance"] = "右肾囊肿", "edited"
    conclusions.append({"id": "gyn_myoma", "name": "子宫肌瘤", "advice": "", "follow_up": "", "provenance": "added"})
    kinds = {(i.kind, i.conclusion) for i in qc_signed_report(record, conclusions, kb)}
    assert ("side_mismatch", "右肾囊肿") in kinds
    assert ("sex_mismatch", "子宫肌瘤") in kinds


def test_structured_advice_counts_as_advice(kb: KnowledgeBase) -> None:
    record = Record.model_validate(load_example("female_67_critical"))
    conclusions = _signed(kb, record)
    for c in conclusions:
        if c["level"] in ("A", "B"):
            c["advice"], c["follow_up"] = "", ""
    kinds = [i.kind for i in qc_signed_report(record, conclusions, kb)]
    assert kinds and set(kinds) == {"missing_advice"}


def test_blocking_kinds_come_from_the_center(kb: KnowledgeBase) -> None:
    record = Record.model_validate(load_example("female_67_critical"))
    conclusions = [c for c in _signed(kb, record) if c["level"] != "A"]
    issues = qc_signed_report(record, conclusions, kb)
    assert issues and blocking_issues(issues, CenterConfig().qc) == []
    center = QcCenterSettings(blocking=["missed"])
    assert [i.kind for i in blocking_issues(issues, center)] == ["missed"] * len(blocking_issues(issues, center))
    assert blocking_issues(issues, center)
