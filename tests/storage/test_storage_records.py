"""Storing records: visits, raw record versions, auto drafts, resubmission rules, UTC timestamps."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db_testing import Team, load_case
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.edits import DeleteConclusion
from zhujian.storage.models import Person, RawRecord, Report, ReportVersion, Visit
from zhujian.storage.services import edit_report, get_report, report_history, sign_report, submit_record


def _count(session: Session, column: object) -> int:
    return session.scalar(select(func.count(column))) or 0  # type: ignore[arg-type]


def test_new_record_creates_visit_raw_record_and_auto_draft(session: Session, team: Team, kb: KnowledgeBase) -> None:
    record = load_case("05_critical_potassium")
    summary = submit_record(session, record, kb=kb, actor=team.chief)
    session.commit()

    assert (summary.created, summary.status, summary.version, summary.raw_record_version) == (True, "draft", 1, 1)
    # Potassium 2.5 mmol/L is a class-A critical value (critical.yaml: ≤ 2.8).
    assert (summary.highest_level, summary.critical) == ("A", True)
    detail = get_report(session, summary.report_id, actor=team.chief)
    assert detail.visit_id == "05_critical_potassium"
    assert [c["id"] for c in detail.conclusions] == ["hypokalemia_critical"]
    assert detail.conclusions[0]["provenance"] == "auto"
    assert detail.content["kb_version"] == kb.version
    raw = session.scalars(select(RawRecord)).one()
    assert raw.record == record.model_dump(mode="json")
    assert len(raw.record_hash) == 64


def test_same_visit_twice_is_one_visit_with_two_raw_versions(session: Session, team: Team, kb: KnowledgeBase) -> None:
    record = load_case("04_new_grade2_hypertension")
    first = submit_record(session, record, kb=kb, actor=team.chief)
    second = submit_record(session, record, kb=kb, actor=team.chief)
    session.commit()

    assert _count(session, Visit.id) == 1
    assert _count(session, Report.id) == 1
    assert session.scalars(select(RawRecord.version).order_by(RawRecord.version)).all() == [1, 2]
    hashes = session.scalars(select(RawRecord.record_hash)).all()
    assert hashes[0] == hashes[1]  # the same content, received twice
    assert second.report_id == first.report_id
    assert (second.created, second.draft_replaced, second.version, second.raw_record_version) == (False, True, 2, 2)
    assert [v.change for v in report_history(session, first.report_id, actor=team.chief)] == [
        "auto_draft",
        "auto_update",
    ]


def test_resubmission_replaces_an_edited_draft_but_keeps_the_history(
    session: Session, team: Team, kb: KnowledgeBase
) -> None:
    record = load_case("17_elderly_woman_many_findings")
    summary = submit_record(session, record, kb=kb, actor=team.chief)
    auto_ids = [c["id"] for c in get_report(session, summary.report_id, actor=team.chief).conclusions]
    assert len(auto_ids) >= 2
    edited = edit_report(
        session, summary.report_id, [DeleteConclusion(auto_ids[0])], expected_version=1, actor=team.chief
    )
    assert [c["id"] for c in edited.conclusions] == auto_ids[1:]

    again = submit_record(session, record, kb=kb, actor=team.chief)
    detail = get_report(session, summary.report_id, actor=team.chief)
    assert (again.status, again.version, again.draft_replaced) == ("draft", 3, True)
    assert [c["id"] for c in detail.conclusions] == auto_ids
    history = report_history(session, summary.report_id, actor=team.chief)
    assert [(v.version, v.change, v.status) for v in history] == [
        (1, "auto_draft", "draft"),
        (2, "edit", "edited"),
        (3, "auto_update", "draft"),
    ]


def test_resubmission_keeps_a_signed_report_and_flags_newer_data(
    session: Session, team: Team, kb: KnowledgeBase
) -> None:
    record = load_case("04_new_grade2_hypertension")
    summary = submit_record(session, record, kb=kb, actor=team.chief)
    signed = sign_report(session, summary.report_id, actor=team.chief)
    changed = record.model_copy(update={"exam_date": dt.date(2026, 5, 6)})

    again = submit_record(session, changed, kb=kb, actor=team.chief)
    session.commit()

    assert (again.status, again.version, again.has_newer_data, again.draft_replaced) == ("signed", 2, True, False)
    assert again.raw_record_version == 2
    detail = get_report(session, summary.report_id, actor=team.chief)
    assert detail.content == signed.content
    assert detail.content_hash == signed.content_hash
    assert detail.has_newer_data is True
    assert detail.raw_record_version == 1  # the signed report still says which data it was built from
    assert session.scalars(select(RawRecord.version).order_by(RawRecord.version)).all() == [1, 2]


def test_visits_of_one_person_share_the_pseudonymous_person(session: Session, team: Team, kb: KnowledgeBase) -> None:
    first = load_case("01_male_healthy").model_copy(update={"person_id": "P-0001", "visit_id": "V-1"})
    second = load_case("01_male_healthy").model_copy(update={"person_id": "P-0001", "visit_id": "V-2"})
    submit_record(session, first, kb=kb, actor=team.chief)
    submit_record(session, second, kb=kb, actor=team.chief)
    session.commit()
    assert session.scalars(select(Person.pseudonym)).all() == ["P-0001"]
    assert _count(session, Visit.id) == 2
    assert session.scalars(select(Report.status)).all() == ["draft", "draft"]
    assert _count(session, ReportVersion.id) == 2


def test_timestamps_come_back_aware_in_utc(
    session_factory: sessionmaker[Session], team: Team, kb: KnowledgeBase
) -> None:
    before = dt.datetime.now(dt.UTC)
    with session_factory() as session:
        summary = submit_record(session, load_case("01_male_healthy"), kb=kb, actor=team.chief)
        session.commit()
    with session_factory() as fresh:
        detail = get_report(fresh, summary.report_id, actor=team.chief)
    assert detail.created_at.tzinfo is not None
    assert detail.created_at.utcoffset() == dt.timedelta(0)
    assert before - dt.timedelta(seconds=1) <= detail.created_at <= dt.datetime.now(dt.UTC)
