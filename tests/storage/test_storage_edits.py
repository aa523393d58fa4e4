"""Physician edits on the report JSON (pure functions, no database): provenance, KB additions, merge, reorder."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from db_testing import load_case
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


@pytest.fixture(scope="module")
def many_findings(kb: KnowledgeBase) -> dict[str, Any]:
    """Case 17 (elderly woman): nine conclusions (plaque and IMT merged), none of class A or B."""
    return with_auto_provenance(build_report(kb, load_case("17_elderly_woman_many_findings")).to_dict())


def _ids(content: dict[str, Any]) -> list[str]:
    return [c["id"] for c in content["conclusions"]]


def _by_id(content: dict[str, Any], conclusion_id: str) -> dict[str, Any]:
    return next(c for c in content["conclusions"] if c["id"] == conclusion_id)


def test_auto_draft_marks_every_conclusion_auto(many_findings: dict[str, Any]) -> None:
    assert len(many_findings["conclusions"]) == 9
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
    # Class A goes before the ten unclassified conclusions.
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
    # An unclassified conclusion goes after the ten unclassified ones, a class-B one before them.
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
    parts = ["abd_c_gallbladder_stone", "abd_c_gallbladder_wall"]
    originals = [_by_id(many_findings, i) for i in parts]
    result = apply_operations(many_findings, [MergeConclusions(tuple(parts))], kb=None)
    assert len(result["conclusions"]) == 8
    merged = _by_id(result, "abd_c_gallbladder_stone")
    assert "abd_c_gallbladder_wall" not in _ids(result)
    # At the place of the first part.
    assert _ids(result).index("abd_c_gallbladder_stone") == _ids(many_findings).index("abd_c_gallbladder_stone")
    assert merged["provenance"] == "merged"
    assert merged["merged_from"] == parts
    assert merged["name"] == "胆囊结石、胆囊壁毛糙/增厚"
    assert merged["evidence"] == originals[0]["evidence"] + originals[1]["evidence"]
    assert set(merged["rules"]) == set(originals[0]["rules"]) | set(originals[1]["rules"])
    assert "胆囊壁毛糙/增厚" in merged["merged"]
    assert merged["advice"] == "\n".join([originals[0]["advice"], originals[1]["advice"]])
    assert merged["edited_fields"] == []


def test_merge_with_wording_and_level_of_the_most_urgent_part(many_findings: dict[str, Any], kb: KnowledgeBase) -> None:
    result = apply_operations(
        many_findings,
        [
            AddConclusion("thyroid_nodule_tirads4", position=9),
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
