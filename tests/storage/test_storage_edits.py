"""Physician edits on the report JSON (pure functions, no database): provenance, KB additions, merge, reorder."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from db_testing import load_case
from zhujian.alerts.policy import default_alerts_file, followup_urgency_days
from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.run import build_report
from zhujian.storage.edits import (
    AddConclusion,
    DeleteConclusion,
    EditConclusion,
    MergeConclusions,
    ReorderConclusions,
    apply_operations,
    conclusion_summary,
    report_level,
    with_auto_provenance,
    worklist_priority,
)
from zhujian.storage.errors import InvalidEdit

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def many_findings(kb: KnowledgeBase) -> dict[str, Any]:
    """Case 17 (elderly woman): seven conclusions (carotid plaque and IMT, gallbladder stone and wall, breast nodule
    and hyperplasia merged by the KB), none of class A or B."""
    return with_auto_provenance(build_report(kb, load_case("17_elderly_woman_many_findings")).to_dict())


def _ids(content: dict[str, Any]) -> list[str]:
    return [c["id"] for c in content["conclusions"]]


def _by_id(content: dict[str, Any], conclusion_id: str) -> dict[str, Any]:
    return next(c for c in content["conclusions"] if c["id"] == conclusion_id)


def test_auto_draft_marks_every_conclusion_auto(many_findings: dict[str, Any]) -> None:
    assert len(many_findings["conclusions"]) == 7
    assert {c["provenance"] for c in many_findings["conclusions"]} == {"auto"}
    assert all(c["edited_fields"] == [] and c["merged_from"] == [] for c in many_findings["conclusions"])


def test_edit_changes_wording_and_marks_it_edited(many_findings: dict[str, Any]) -> None:
    before = copy.deepcopy(many_findings)
    result = apply_operations(
        many_findings,
        [
            EditConclusion(
                "carotid_atherosclerosis_plaque", advice="  心内科随访，控制血脂。 ", follow_up="6个月复查颈动脉超声"
            )
        ],
        kb=None,
    )
    plaque = _by_id(result, "carotid_atherosclerosis_plaque")
    assert plaque["advice"] == "心内科随访，控制血脂。"  # trimmed
    assert plaque["follow_up"] == "6个月复查颈动脉超声"
    assert plaque["provenance"] == "edited"
    assert plaque["edited_fields"] == ["advice", "follow_up"]
    assert plaque["name"] == "颈动脉粥样硬化伴斑块形成"
    assert plaque["evidence"] == _by_id(before, "carotid_atherosclerosis_plaque")["evidence"]
    assert many_findings == before  # the input is never changed


def test_edit_with_the_same_text_is_not_an_edit(many_findings: dict[str, Any]) -> None:
    same = _by_id(many_findings, "carotid_atherosclerosis_plaque")["name"]
    result = apply_operations(many_findings, [EditConclusion("carotid_atherosclerosis_plaque", name=same)], kb=None)
    assert result == many_findings


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        (EditConclusion("carotid_atherosclerosis_plaque", name="   "), "名称不能为空"),
        (EditConclusion("carotid_atherosclerosis_plaque"), "没有给出要修改的内容"),
        (EditConclusion("no_such_id", advice="x"), "没有结论 'no_such_id'"),
        (DeleteConclusion("no_such_id"), "没有结论"),
        (MergeConclusions(("carotid_atherosclerosis_plaque",)), "至少需要两条"),
        (MergeConclusions(("carotid_atherosclerosis_plaque", "carotid_atherosclerosis_plaque")), "重复"),
        (ReorderConclusions(("carotid_atherosclerosis_plaque",)), "恰好包含"),
        (AddConclusion("bp_severe"), "需要知识库"),
    ],
)
def test_operations_that_do_not_fit_are_refused(many_findings: dict[str, Any], operation: Any, message: str) -> None:
    with pytest.raises(InvalidEdit, match=message):
        apply_operations(many_findings, [operation], kb=None)


def test_invalid_edit_names_the_failing_operation(many_findings: dict[str, Any]) -> None:
    with pytest.raises(InvalidEdit) as caught:
        apply_operations(
            many_findings, [DeleteConclusion("carotid_atherosclerosis_plaque"), DeleteConclusion("carotid_atherosclerosis_plaque")], kb=None
        )
    assert caught.value.operation_index == 1
    assert str(caught.value).startswith("第 2 项修改")


def test_add_from_kb_takes_kb_wording_and_ranks_by_level(many_findings: dict[str, Any], kb: KnowledgeBase) -> None:
    result = apply_operations(many_findings, [AddConclusion("bp_severe")], kb=kb)
    definition = kb.conclusions["bp_severe"]
    # Class A goes before the unclassified conclusions.
    assert _ids(result)[0] == "bp_severe"
    added = result["conclusions"][0]
    assert added["provenance"] == "added"
    assert (added["name"], added["advice"], added["follow_up"], added["level"]) == (
        definition.name,
        definition.advice,
        definition.follow_up,
        "A",
    )
    assert added["evidence"] == [] and added["critical"] is False
    assert _ids(result)[1:] == _ids(many_findings)


def test_add_places_by_level_unless_a_position_is_given(many_findings: dict[str, Any], kb: KnowledgeBase) -> None:
    # An unclassified conclusion goes after the unclassified ones, a class-B one before them.
    assert _ids(apply_operations(many_findings, [AddConclusion("abd_c_liver_cyst")], kb=kb)) == [
        *_ids(many_findings),
        "abd_c_liver_cyst",
    ]
    assert _ids(apply_operations(many_findings, [AddConclusion("abd_c_liver_mass")], kb=kb))[0] == "abd_c_liver_mass"
    result = apply_operations(many_findings, [AddConclusion("ecg_c_vt", position=3)], kb=kb)
    assert _ids(result)[3] == "ecg_c_vt"


def test_add_refuses_duplicates_unknown_ids_and_the_wrong_sex(many_findings: dict[str, Any], kb: KnowledgeBase) -> None:
    with pytest.raises(InvalidEdit, match="已有结论"):
        apply_operations(many_findings, [AddConclusion("dyslipidemia")], kb=kb)
    with pytest.raises(InvalidEdit, match="知识库中没有结论"):
        apply_operations(many_findings, [AddConclusion("no_such_conclusion")], kb=kb)
    # Case 17 is a woman: a prostate conclusion does not apply.
    with pytest.raises(InvalidEdit, match="仅适用于男性"):
        apply_operations(many_findings, [AddConclusion("abd_c_prostate_hyperplasia")], kb=kb)
    with pytest.raises(InvalidEdit, match="超出范围"):
        apply_operations(many_findings, [AddConclusion("ecg_c_vt", position=11)], kb=kb)


def test_delete_removes_only_that_conclusion(many_findings: dict[str, Any]) -> None:
    result = apply_operations(many_findings, [DeleteConclusion("thyroid_nodule")], kb=None)
    assert _ids(result) == [i for i in _ids(many_findings) if i != "thyroid_nodule"]


def test_merge_keeps_evidence_rules_and_ids(many_findings: dict[str, Any]) -> None:
    # The physician writes the lipids and the carotid atherosclerosis they drive as one line.
    parts = ["carotid_atherosclerosis_plaque", "dyslipidemia"]
    originals = [_by_id(many_findings, i) for i in parts]
    result = apply_operations(many_findings, [MergeConclusions(tuple(parts))], kb=None)
    assert len(result["conclusions"]) == 6
    merged = _by_id(result, "carotid_atherosclerosis_plaque")  # the handle is the first id ticked
    assert "dyslipidemia" not in _ids(result)
    # At the place of the earlier part (the lipids come first in the draft).
    assert _ids(result).index("carotid_atherosclerosis_plaque") == _ids(many_findings).index("dyslipidemia") == 0
    assert merged["provenance"] == "merged"
    assert merged["merged_from"] == parts
    # One name: both are diseases without a class, so the KB order decides (血脂异常 before 颈动脉粥样硬化); the
    # other part and the ones it had absorbed stay listed as merged.
    assert merged["name"] == originals[1]["name"] == "血脂异常（高胆固醇血症）"
    assert merged["merged"] == ["颈动脉粥样硬化伴斑块形成", "颈动脉斑块", "颈动脉内中膜增厚"]
    # The complaint: follow-ups were concatenated. The lipid recheck (3-6 months) comes before the carotid
    # ultrasound (6-12 months): it is the one kept.
    assert merged["follow_up"] == "3-6个月复查血脂"
    assert merged["evidence"] == originals[1]["evidence"] + originals[0]["evidence"]  # in report order
    assert set(merged["rules"]) == set(originals[0]["rules"]) | set(originals[1]["rules"])
    assert merged["advice"] == "\n".join([originals[1]["advice"], originals[0]["advice"]])
    for original in originals:
        assert merged["explanation"].count(original["explanation"]) == 1
    assert merged["edited_fields"] == []
    # Departments once each: 心内科/内分泌科 + 神经内科/心内科.
    assert merged["department"] == "心内科/内分泌科/神经内科"


@pytest.fixture(scope="module")
def critical_woman(kb: KnowledgeBase) -> dict[str, Any]:
    """The bundled 67-year-old woman: critical hypokalaemia, class-B findings and routine ones."""
    record = Record.model_validate(json.loads((ROOT / "src/zhujian/examples/female_67_critical.json").read_text("utf-8")))
    return with_auto_provenance(build_report(kb, record).to_dict())


def test_merge_with_a_critical_part_keeps_its_name_urgency_and_level(critical_woman: dict[str, Any], kb: KnowledgeBase) -> None:
    # 贫血 (1个月内复查血常规) merged with the critical hypokalaemia (立即就诊): the critical value names the line and
    # its immediate action is the follow-up, whatever order the physician ticked them in.
    result = apply_operations(critical_woman, [MergeConclusions(("anemia", "hypokalemia_critical"))], kb=kb)
    merged = _by_id(result, "anemia")
    assert _ids(result)[0] == "anemia"  # at the critical part's place: first
    assert merged["name"].startswith("严重低钾血症")
    assert (merged["follow_up"], merged["level"], merged["critical"]) == ("立即就诊", "A", True)
    assert merged["department"] == "急诊科/内科/血液科"
    assert {"贫血（轻度）", "U波异常", "QT间期延长"} <= set(merged["merged"])


def test_merge_of_a_disease_and_a_finding_follows_the_sooner_recheck(critical_woman: dict[str, Any], kb: KnowledgeBase) -> None:
    # eGFR G3 (3个月内复查肾功能) with proteinuria (1个月内复查尿常规): named after the disease, rechecked within a month.
    original = _by_id(critical_woman, "egfr_g3")
    merged = _by_id(apply_operations(critical_woman, [MergeConclusions(("proteinuria", "egfr_g3"))], kb=kb), "proteinuria")
    assert merged["name"] == original["name"]
    assert merged["follow_up"] == "1个月内复查尿常规"
    assert merged["department"] == "肾内科"
    assert {"尿蛋白阳性", "血肌酐升高"} <= set(merged["merged"])
    assert merged["icd10"] == original["icd10"]


def test_merge_named_by_the_kb_rule_that_covers_the_parts(many_findings: dict[str, Any], kb: KnowledgeBase) -> None:
    # 脂肪肝 + 转氨酶升高 is the KB's 一元化 脂肪肝伴肝酶升高 (rules/unify.yaml); the enzymes are rechecked first.
    result = apply_operations(
        many_findings,
        [AddConclusion("transaminase_elevated"), MergeConclusions(("abd_c_fatty_liver", "transaminase_elevated"))],
        kb=kb,
    )
    merged = _by_id(result, "abd_c_fatty_liver")
    assert merged["name"] == kb.conclusions["fatty_liver_with_liver_enzymes"].name == "脂肪肝伴肝酶升高"
    assert merged["follow_up"] == "1-3个月复查肝功能"
    assert {"脂肪肝", "转氨酶升高"} <= set(merged["merged"])


def test_a_physician_follow_up_wins_over_the_derived_one(critical_woman: dict[str, Any], kb: KnowledgeBase) -> None:
    merged = _by_id(
        apply_operations(critical_woman, [MergeConclusions(("proteinuria", "egfr_g3"), follow_up="2周内肾内科就诊")], kb=kb),
        "proteinuria",
    )
    assert merged["follow_up"] == "2周内肾内科就诊"
    assert merged["edited_fields"] == ["follow_up"]


def test_merge_with_wording_and_level_of_the_most_urgent_part(many_findings: dict[str, Any], kb: KnowledgeBase) -> None:
    result = apply_operations(
        many_findings,
        [
            AddConclusion("thyroid_nodule_tirads4", position=7),
            MergeConclusions(("thyroid_nodule", "thyroid_nodule_tirads4"), name="甲状腺结节", advice="甲状腺外科就诊"),
        ],
        kb=kb,
    )
    merged = _by_id(result, "thyroid_nodule")
    assert merged["level"] == "B"
    assert (merged["name"], merged["advice"]) == ("甲状腺结节", "甲状腺外科就诊")
    assert merged["edited_fields"] == ["name", "advice"]
    # A merged id cannot be added again: its KB conclusion is already in the report.
    with pytest.raises(InvalidEdit, match="已有结论"):
        apply_operations(result, [AddConclusion("thyroid_nodule_tirads4")], kb=kb)


def test_reorder_is_a_permutation(many_findings: dict[str, Any]) -> None:
    reversed_ids = tuple(reversed(_ids(many_findings)))
    result = apply_operations(many_findings, [ReorderConclusions(reversed_ids)], kb=None)
    assert tuple(_ids(result)) == reversed_ids
    with pytest.raises(InvalidEdit, match="恰好包含"):
        apply_operations(many_findings, [ReorderConclusions((*reversed_ids[:-1], reversed_ids[0]))], kb=None)


@pytest.mark.parametrize(
    ("levels", "expected"),
    [
        ([], (None, False)),
        ([(None, False), ("B", True)], ("B", False)),  # a class-B value is important, not a 危急值
        ([("B", False), ("A", False)], ("A", False)),
        ([("B", False), ("A", True)], ("A", True)),
    ],
)
def test_report_level(levels: list[tuple[str | None, bool]], expected: tuple[str | None, bool]) -> None:
    assert report_level([{"level": level, "critical": critical} for level, critical in levels]) == expected


def test_worklist_priority_orders_critical_a_b_rest() -> None:
    assert [worklist_priority("A", True), worklist_priority("A", False), worklist_priority("B", False)] == [0, 1, 2]
    assert worklist_priority(None, False) == 3


def test_summary_names_the_first_three() -> None:
    assert conclusion_summary([{"name": n} for n in ["甲", "乙"]]) == "甲；乙"
    assert conclusion_summary([{"name": n} for n in ["甲", "乙", "丙", "丁"]]) == "甲；乙；丙等"


def test_follow_up_texts_rank_by_urgency() -> None:
    """The ranking a merge uses: urgent words, then the recheck window (KB alerts.yaml), then texts without a time."""
    rules = default_alerts_file().followup
    texts = [
        "立即转急诊",
        "尽快眼科就诊",
        "2周内心内科就诊",
        "1个月内复查心电图",
        "遵医嘱定期随访，每1-3个月复诊评估血压",
        "3-6个月复查心电图",
        "每年眼底检查",
    ]
    days = [followup_urgency_days(t, rules) for t in texts]
    assert all(d is not None for d in days)
    assert days == sorted(days, key=lambda d: d or 0.0) and len(set(days)) == len(days)
    assert days[0] == 0
    assert followup_urgency_days("有症状时就诊", rules) is None
