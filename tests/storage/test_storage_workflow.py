"""The report life cycle: sign → reject with a reason → edit → sign → approve → publish, and what is refused."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from db_testing import Team, load_case
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.edits import EditConclusion
from zhujian.storage.errors import InvalidTransition, SelfReviewForbidden, VersionConflict
from zhujian.storage.models import AuditLogEntry
from zhujian.storage.services import (
    edit_report,
    get_person_identity,
    get_report,
    publish_report,
    report_audit,
    report_history,
    review_report,
    set_person_identity,
    sign_report,
    submit_record,
)
from zhujian.storage.users import update_user


@pytest.fixture
def report_id(session: Session, team: Team, kb: KnowledgeBase) -> int:
    record = load_case("04_new_grade2_hypertension").model_copy(update={"person_id": "P-4711"})
    return submit_record(session, record, kb=kb, actor=team.chief).report_id


def test_full_life_cycle(session: Session, team: Team, report_id: int) -> None:
    signed = sign_report(session, report_id, actor=team.chief, expected_version=1)
    assert (signed.status, signed.version, signed.signed_by) == ("signed", 2, "李主检")
    assert signed.signed_at is not None

    rejected = review_report(session, report_id, decision="reject", reason="  请补充复查时间 ", actor=team.reviewer)
    assert (rejected.status, rejected.rejection_reason, rejected.reviewed_by) == ("rejected", "请补充复查时间", None)

    edited = edit_report(
        session,
        report_id,
        [EditConclusion("bp_elevated_marked", follow_up="1周内心内科就诊")],
        expected_version=rejected.version,
        actor=team.chief,
    )
    assert edited.status == "edited"
    assert edited.rejection_reason == "请补充复查时间"  # still shown while the physician works on it

    resigned = sign_report(session, report_id, actor=team.chief)
    assert (resigned.status, resigned.rejection_reason) == ("signed", None)
    approved = review_report(session, report_id, decision="approve", actor=team.reviewer)
    assert (approved.status, approved.reviewed_by) == ("reviewed", "赵审核")
    published = publish_report(session, report_id, actor=team.manager)
    session.commit()
    assert (published.status, published.published_by, published.version) == ("published", "钱健管", 7)

    history = report_history(session, report_id, actor=team.chief)
    assert [(v.change, v.status) for v in history] == [
        ("auto_draft", "draft"),
        ("sign", "signed"),
        ("review_reject", "rejected"),
        ("edit", "edited"),
        ("sign", "signed"),
        ("review_approve", "reviewed"),
        ("publish", "published"),
    ]
    assert history[2].note == "请补充复查时间"
    # The alert loop (zhujian.alerts) adds its steps to the report's trail: the alert of the class A result, and
    # the recheck tasks of the first signature (the second signature adds none: the tasks exist).
    assert [e.action for e in report_audit(session, report_id, actor=team.auditor)] == [
        "record.submit",
        "alert.open",
        "report.sign",
        "followup.create",
        "report.review.reject",
        "report.edit",
        "report.sign",
        "report.review.approve",
        "report.publish",
    ]


@pytest.mark.parametrize("reason", [None, "", "   "])
def test_reject_needs_a_reason(session: Session, team: Team, report_id: int, reason: str | None) -> None:
    sign_report(session, report_id, actor=team.chief)
    with pytest.raises(InvalidTransition, match="退回原因"):
        review_report(session, report_id, decision="reject", reason=reason, actor=team.reviewer)
    assert get_report(session, report_id, actor=team.chief).status == "signed"


def test_illegal_transitions(session: Session, team: Team, report_id: int) -> None:
    with pytest.raises(InvalidTransition, match="草稿"):
        review_report(session, report_id, decision="approve", actor=team.reviewer)
    with pytest.raises(InvalidTransition, match="不能发布"):
        publish_report(session, report_id, actor=team.manager)
    sign_report(session, report_id, actor=team.chief)
    with pytest.raises(InvalidTransition, match="不能签署"):
        sign_report(session, report_id, actor=team.chief)
    with pytest.raises(InvalidTransition, match="不能发布"):
        publish_report(session, report_id, actor=team.manager)
    review_report(session, report_id, decision="approve", actor=team.reviewer)
    with pytest.raises(InvalidTransition):
        review_report(session, report_id, decision="approve", actor=team.reviewer)
    publish_report(session, report_id, actor=team.manager)
    with pytest.raises(InvalidTransition, match="已发布"):
        sign_report(session, report_id, actor=team.chief)
    with pytest.raises(InvalidTransition, match="已发布"):
        review_report(session, report_id, decision="reject", reason="x", actor=team.reviewer)
    with pytest.raises(InvalidTransition, match="已发布"):
        publish_report(session, report_id, actor=team.manager)


def test_sign_with_a_stale_version_is_a_conflict(session: Session, team: Team, report_id: int) -> None:
    edit_report(
        session, report_id, [EditConclusion("bp_elevated_marked", advice="x")], expected_version=1, actor=team.chief
    )
    with pytest.raises(VersionConflict):
        sign_report(session, report_id, actor=team.chief, expected_version=1)


def test_nobody_reviews_a_report_they_signed(session: Session, team: Team, report_id: int) -> None:
    sign_report(session, report_id, actor=team.chief2)
    # The signer later becomes a reviewing physician: the four-eyes rule still holds for this report.
    update_user(session, team.chief2.user_id, role="reviewing_physician", actor=team.admin)
    with pytest.raises(SelfReviewForbidden, match="不能审核本人签署的报告"):
        review_report(session, report_id, decision="approve", actor=team.chief2)
    assert review_report(session, report_id, decision="approve", actor=team.reviewer).status == "reviewed"


def test_no_name_or_phone_number_in_the_audit_log(session: Session, team: Team, report_id: int) -> None:
    name, phone = "王秀英", "13912345678"
    set_person_identity(session, "P-4711", name=name, phone=phone, actor=team.manager)
    identity = get_person_identity(session, "P-4711", actor=team.chief)
    assert (identity.name, identity.phone) == (name, phone)
    sign_report(session, report_id, actor=team.chief)
    review_report(session, report_id, decision="reject", reason="请核对血压", actor=team.reviewer)
    edit_report(
        session, report_id, [EditConclusion("bp_elevated_marked", advice="限盐")], expected_version=3, actor=team.chief
    )
    sign_report(session, report_id, actor=team.chief)
    review_report(session, report_id, decision="approve", actor=team.reviewer)
    publish_report(session, report_id, actor=team.manager)
    session.commit()

    entries = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id)).all()
    actions = [e.action for e in entries]
    assert "identity.set" in actions and "identity.read" in actions and "report.publish" in actions
    dumped = json.dumps(
        [[e.actor_username, e.action, e.object_type, e.object_id, e.before, e.after] for e in entries],
        ensure_ascii=False,
    )
    assert name not in dumped and phone not in dumped
    identity_set = next(e for e in entries if e.action == "identity.set")
    assert identity_set.after == {"changed_fields": ["name", "phone"]}
    assert identity_set.object_id == "P-4711"
