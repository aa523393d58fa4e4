"""Editing a stored report: optimistic locking, versions, provenance, and what may not be edited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from db_testing import Team, load_case
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.edits import AddConclusion, DeleteConclusion, EditConclusion, MergeConclusions, ReorderConclusions
from zhujian.storage.errors import InvalidEdit, InvalidTransition, NotFound, VersionConflict
from zhujian.storage.models import Report
from zhujian.storage.services import (
    edit_report,
    get_report,
    regenerate_report,
    report_audit,
    report_history,
    report_version_content,
    sign_report,
    submit_record,
)


@pytest.fixture
def report_id(session: Session, team: Team, kb: KnowledgeBase) -> int:
    """Case 17 stored and committed: a draft (version 1) with ten conclusions."""
    summary = submit_record(session, load_case("17_elderly_woman_many_findings"), kb=kb, actor=team.chief)
    session.commit()
    return summary.report_id


def test_edit_with_the_current_version_saves_a_new_version(
    session: Session, team: Team, kb: KnowledgeBase, report_id: int
) -> None:
    detail = edit_report(
        session,
        report_id,
        [EditConclusion("carotid_atherosclerosis_plaque", advice="心内科就诊，强化降脂。")],
        expected_version=1,
        actor=team.chief,
    )
    session.commit()
    assert (detail.version, detail.status) == (2, "edited")
    plaque = next(c for c in detail.conclusions if c["id"] == "carotid_atherosclerosis_plaque")
    assert (plaque["advice"], plaque["provenance"]) == ("心内科就诊，强化降脂。", "edited")
    history = report_history(session, report_id, actor=team.chief)
    assert [(v.version, v.change, v.actor) for v in history] == [(1, "auto_draft", None), (2, "edit", "李主检")]
    saved = report_version_content(session, report_id, 2, actor=team.chief)
    assert saved == detail.content
    first = report_version_content(session, report_id, 1, actor=team.chief)
    assert next(c for c in first["conclusions"] if c["id"] == "carotid_atherosclerosis_plaque")["provenance"] == "auto"
    edit_entry = report_audit(session, report_id, actor=team.auditor)[-1]
    assert edit_entry.action == "report.edit"
    assert edit_entry.actor_username == "chief"
    assert edit_entry.before is not None and edit_entry.after is not None
    assert (edit_entry.before["version"], edit_entry.after["version"]) == (1, 2)
    advice_after = next(c for c in edit_entry.after["conclusions"] if c["id"] == "carotid_atherosclerosis_plaque")["advice"]
    assert advice_after == "心内科就诊，强化降脂。"


def test_stale_version_raises_conflict_and_writes_nothing(
    session_factory: sessionmaker[Session], team: Team, report_id: int
) -> None:
    with session_factory() as first:
        edit_report(first, report_id, [DeleteConclusion("thyroid_nodule")], expected_version=1, actor=team.chief)
        first.commit()
    with session_factory() as second:
        stored_before = get_report(second, report_id, actor=team.chief)
        audit_before = len(report_audit(second, report_id, actor=team.auditor))
        with pytest.raises(VersionConflict) as caught:
            edit_report(second, report_id, [DeleteConclusion("carotid_atherosclerosis_plaque")], expected_version=1, actor=team.chief)
        assert (caught.value.expected, caught.value.actual) == (1, 2)
        second.rollback()
    with session_factory() as fresh:
        stored = get_report(fresh, report_id, actor=team.chief)
        assert stored.version == 2
        assert stored.content == stored_before.content
        assert "carotid_atherosclerosis_plaque" in [c["id"] for c in stored.conclusions]
        assert len(report_history(fresh, report_id, actor=team.chief)) == 2
        assert len(report_audit(fresh, report_id, actor=team.auditor)) == audit_before


def test_a_concurrent_write_is_refused_by_the_version_column(
    session_factory: sessionmaker[Session], team: Team, report_id: int
) -> None:
    """Two editors read version 1; the one who writes second must not overwrite the first (lost update)."""
    with session_factory() as late:
        stale = late.get(Report, report_id)
        assert stale is not None and stale.version == 1
        late.commit()  # releases the SQLite read lock; the object keeps its version-1 state
        with session_factory() as early:
            edit_report(early, report_id, [DeleteConclusion("thyroid_nodule")], expected_version=1, actor=team.chief)
            early.commit()
        stale.summary = "overwritten"
        stale.version = 2
        with pytest.raises(StaleDataError):
            late.flush()
        late.rollback()
    with session_factory() as fresh:
        assert fresh.scalar(select(Report.summary).where(Report.id == report_id)) != "overwritten"


def test_add_delete_merge_reorder_in_one_save(session: Session, team: Team, kb: KnowledgeBase, report_id: int) -> None:
    before = [c["id"] for c in get_report(session, report_id, actor=team.chief).conclusions]
    detail = edit_report(
        session,
        report_id,
        [
            AddConclusion("abd_c_liver_cyst"),
            DeleteConclusion("ecg_c_sinus_brady"),
            MergeConclusions(("abd_c_gallbladder_stone", "abd_c_fatty_liver"), name="脂肪肝、胆囊结石"),
            ReorderConclusions(
                (
                    "abd_c_gallbladder_stone",
                    *[
                        i
                        for i in before
                        if i not in ("abd_c_gallbladder_stone", "abd_c_fatty_liver", "ecg_c_sinus_brady")
                    ],
                    "abd_c_liver_cyst",
                )
            ),
        ],
        expected_version=1,
        actor=team.chief,
        kb=kb,
    )
    ids = [c["id"] for c in detail.conclusions]
    assert ids[0] == "abd_c_gallbladder_stone" and ids[-1] == "abd_c_liver_cyst"
    assert "ecg_c_sinus_brady" not in ids and "abd_c_fatty_liver" not in ids
    assert len(ids) == 7 - 1 - 1 + 1
    provenance = {c["id"]: c["provenance"] for c in detail.conclusions}
    assert provenance["abd_c_gallbladder_stone"] == "merged"
    assert provenance["abd_c_liver_cyst"] == "added"
    assert detail.conclusions[0]["name"] == "脂肪肝、胆囊结石"
    assert detail.version == 2  # one save, one version, however many operations


def test_invalid_operation_writes_nothing(session: Session, team: Team, report_id: int) -> None:
    with pytest.raises(InvalidEdit, match="第 2 项修改"):
        edit_report(
            session,
            report_id,
            [DeleteConclusion("thyroid_nodule"), DeleteConclusion("no_such_conclusion")],
            expected_version=1,
            actor=team.chief,
        )
    session.rollback()
    detail = get_report(session, report_id, actor=team.chief)
    assert (detail.version, detail.status, len(detail.conclusions)) == (1, "draft", 7)


def test_edit_that_changes_nothing_keeps_the_version(session: Session, team: Team, report_id: int) -> None:
    name = get_report(session, report_id, actor=team.chief).conclusions[0]["name"]
    conclusion_id = get_report(session, report_id, actor=team.chief).conclusions[0]["id"]
    detail = edit_report(
        session, report_id, [EditConclusion(conclusion_id, name=name)], expected_version=1, actor=team.chief
    )
    assert (detail.version, detail.status) == (1, "draft")


def test_signed_reports_are_not_editable(session: Session, team: Team, report_id: int) -> None:
    sign_report(session, report_id, actor=team.chief)
    with pytest.raises(InvalidTransition, match="已签署"):
        edit_report(session, report_id, [DeleteConclusion("thyroid_nodule")], expected_version=2, actor=team.chief)


def test_unknown_report(session: Session, team: Team) -> None:
    with pytest.raises(NotFound, match="未找到报告"):
        edit_report(session, 999_999, [DeleteConclusion("x")], expected_version=1, actor=team.chief)


def test_regenerate_rebuilds_the_auto_draft(session: Session, team: Team, kb: KnowledgeBase, report_id: int) -> None:
    edit_report(session, report_id, [DeleteConclusion("thyroid_nodule")], expected_version=1, actor=team.chief)
    detail = regenerate_report(session, report_id, kb=kb, expected_version=2, actor=team.chief)
    assert (detail.version, detail.status) == (3, "draft")
    assert "thyroid_nodule" in [c["id"] for c in detail.conclusions]
    assert {c["provenance"] for c in detail.conclusions} == {"auto"}
