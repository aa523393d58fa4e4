"""The alert loop and follow-up in storage, on SQLite and PostgreSQL, with a clock the tests move: alerts open when
a record is stored, are notified and closed with every step audited, turn overdue when the clock passes their due
time; signed conclusions open recheck tasks that the next visit's comparison closes."""

from __future__ import annotations

import datetime as dt

import pytest
from alerts_helpers import MovableClock
from sqlalchemy import select
from sqlalchemy.orm import Session

from db_testing import Team, load_case
from zhujian.alerts import followup
from zhujian.alerts import services as alerts
from zhujian.alerts.operations import operations, to_csv
from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.errors import InvalidEdit, InvalidTransition
from zhujian.storage.models import Alert
from zhujian.storage.services import report_audit, sign_report, submit_record

UTC = dt.UTC


def _record(case: str, *, visit_id: str, person: str = "P-001", exam_date: dt.date | None = None) -> Record:
    record = load_case(case)
    return record.model_copy(update={"visit_id": visit_id, "person_id": person, "exam_date": exam_date})


def _with_glucose(record: Record, value: float) -> Record:
    items = [i.model_copy(update={"value": value}) if i.name == "空腹血糖" else i for i in record.items]
    return record.model_copy(update={"items": items})


def test_a_critical_record_opens_a_class_a_alert_due_in_two_hours(
    session: Session, team: Team, kb: KnowledgeBase, clock: MovableClock
) -> None:
    stored = submit_record(session, _record("05_critical_potassium", visit_id="V1"), kb=kb, actor=team.manager)
    session.commit()
    found = alerts.list_alerts(session, actor=team.manager, status="open")
    assert [(a.report_id, a.visit_id, a.level) for a in found] == [(stored.report_id, "V1", "A")]
    alert = found[0]
    assert "血钾" in alert.reason
    assert alert.created_at == clock.now
    assert alert.due_at == clock.now + dt.timedelta(hours=2)
    assert alert.seconds_left == 7200


def test_a_record_without_critical_values_opens_no_alert(session: Session, team: Team, kb: KnowledgeBase) -> None:
    submit_record(session, _record("01_male_healthy", visit_id="V1"), kb=kb, actor=team.manager)
    session.commit()
    assert alerts.list_alerts(session, actor=team.manager) == []


def test_class_b_alerts_follow_the_center_setting(session: Session, team: Team, kb: KnowledgeBase) -> None:
    import dataclasses

    from zhujian.alerts.clock import POLICY_KEY

    submit_record(session, _record("04_new_grade2_hypertension", visit_id="V1"), kb=kb, actor=team.manager)
    levels = [a.level for a in alerts.list_alerts(session, actor=team.manager)]
    assert levels == ["B", "B"]  # systolic and diastolic grade 2, one alert per result, no class A
    session.info[POLICY_KEY] = dataclasses.replace(session.info[POLICY_KEY], alert_class_b=False)
    submit_record(session, _record("04_new_grade2_hypertension", visit_id="V2"), kb=kb, actor=team.manager)
    session.commit()
    assert len(alerts.list_alerts(session, actor=team.manager)) == 2  # V2 opened none


def test_resubmitting_the_same_result_opens_no_second_alert(session: Session, team: Team, kb: KnowledgeBase) -> None:
    record = _record("05_critical_potassium", visit_id="V1")
    submit_record(session, record, kb=kb, actor=team.manager)
    submit_record(session, record, kb=kb, actor=team.manager)
    session.commit()
    assert len(alerts.list_alerts(session, actor=team.manager)) == 1


def test_notify_and_close_are_in_the_reports_audit_trail(
    session: Session, team: Team, kb: KnowledgeBase, clock: MovableClock
) -> None:
    stored = submit_record(session, _record("05_critical_potassium", visit_id="V1"), kb=kb, actor=team.manager)
    alert_id = alerts.list_alerts(session, actor=team.manager)[0].id
    clock.advance(minutes=30)
    notified = alerts.notify_alert(
        session, alert_id, actor=team.manager, channel="phone", reached="本人", note="已告知立即到急诊复查血钾"
    )
    assert (notified.status, notified.notified_by, notified.channel, notified.reached) == (
        "notified",
        "钱健管",
        "phone",
        "本人",
    )
    assert notified.notified_at == clock.now and notified.notified_in_time is True
    clock.advance(hours=5)
    closed = alerts.close_alert(session, alert_id, actor=team.chief, outcome="seen_at_ed", note="急诊补钾")
    session.commit()
    assert (closed.status, closed.outcome) == ("closed", "seen_at_ed")
    trail = report_audit(session, stored.report_id, actor=team.auditor)
    assert [e.action for e in trail] == ["record.submit", "alert.open", "alert.notify", "alert.close"]
    notify_entry = trail[2]
    assert notify_entry.actor_username == "manager"
    assert notify_entry.after is not None and notify_entry.after["channel"] == "phone"
    assert notify_entry.after["note"] == "已告知立即到急诊复查血钾"
    assert trail[3].after is not None and trail[3].after["outcome"] == "seen_at_ed"
    assert alerts.list_alerts(session, actor=team.auditor, status="closed")[0].id == alert_id


def test_failed_attempts_are_recorded_and_allow_closing_as_unreachable(
    session: Session, team: Team, kb: KnowledgeBase
) -> None:
    stored = submit_record(session, _record("05_critical_potassium", visit_id="V1"), kb=kb, actor=team.manager)
    alert_id = alerts.list_alerts(session, actor=team.manager)[0].id
    with pytest.raises(InvalidTransition, match="先记录通知"):
        alerts.close_alert(session, alert_id, actor=team.manager, outcome="referred")
    for attempt in range(3):
        info = alerts.notify_alert(
            session, alert_id, actor=team.manager, channel="phone", success=False, note=f"第{attempt + 1}次无人接听"
        )
        assert info.status == "open"
        if attempt == 1:
            with pytest.raises(InvalidTransition, match="至少 3 次"):
                alerts.close_alert(session, alert_id, actor=team.manager, outcome="unreachable")
    closed = alerts.close_alert(session, alert_id, actor=team.manager, outcome="unreachable")
    session.commit()
    assert closed.failed_attempts == 3 and closed.status == "closed"
    assert [a.success for a in alerts.get_alert(session, alert_id, actor=team.auditor).attempts] == [False] * 3
    actions = [e.action for e in report_audit(session, stored.report_id, actor=team.auditor)]
    assert actions.count("alert.attempt_failed") == 3


def test_a_message_does_not_count_as_notifying_a_class_a_result(
    session: Session, team: Team, kb: KnowledgeBase
) -> None:
    submit_record(session, _record("05_critical_potassium", visit_id="V1"), kb=kb, actor=team.manager)
    alert_id = alerts.list_alerts(session, actor=team.manager)[0].id
    info = alerts.notify_alert(session, alert_id, actor=team.manager, channel="sms", result="HTTP 200: queued")
    assert info.status == "open"  # sent, recorded, but nobody has been reached yet
    assert [(a.channel, a.success, a.result) for a in info.attempts] == [("sms", True, "HTTP 200: queued")]
    with pytest.raises(InvalidEdit, match="outcome"):
        alerts.close_alert(session, alert_id, actor=team.manager, outcome="went_home")


def test_an_alert_turns_overdue_when_the_clock_passes_its_due_time(
    session: Session, team: Team, kb: KnowledgeBase, clock: MovableClock
) -> None:
    submit_record(session, _record("05_critical_potassium", visit_id="V1"), kb=kb, actor=team.manager)
    clock.advance(hours=1)
    submit_record(session, _record("04_new_grade2_hypertension", visit_id="V2"), kb=kb, actor=team.manager)
    session.commit()
    clock.advance(hours=1, seconds=-1)  # one second before the class A deadline
    assert [a.status for a in alerts.list_alerts(session, actor=team.manager)] == ["open", "open", "open"]
    assert alerts.list_alerts(session, actor=team.manager, status="overdue") == []
    clock.advance(seconds=1)  # exactly the deadline: overdue
    listed = alerts.list_alerts(session, actor=team.manager)
    assert [(a.level, a.status) for a in listed] == [("A", "overdue"), ("B", "open"), ("B", "open")]
    assert listed[0].escalated_to == "chief_physician" and listed[0].seconds_left == 0
    assert [a.visit_id for a in alerts.list_alerts(session, actor=team.manager, status="overdue")] == ["V1"]
    # Notified late: no longer overdue, but the record says it was late.
    clock.advance(minutes=20)
    late = alerts.notify_alert(session, listed[0].id, actor=team.chief, channel="phone", reached="家属")
    assert (late.status, late.notified_in_time) == ("notified", False)


def test_class_b_deadline_across_the_shanghai_day_boundary(
    session: Session, team: Team, kb: KnowledgeBase, clock: MovableClock
) -> None:
    # Stored at 23:30 in Shanghai (15:30 UTC): due at the end of the 7th Shanghai day after, 16:00 UTC.
    clock.now = dt.datetime(2026, 3, 18, 15, 30, tzinfo=UTC)
    submit_record(session, _record("04_new_grade2_hypertension", visit_id="V1"), kb=kb, actor=team.manager)
    session.commit()
    due = alerts.list_alerts(session, actor=team.manager)[0].due_at
    assert due == dt.datetime(2026, 3, 25, 16, 0, tzinfo=UTC)
    clock.now = dt.datetime(2026, 3, 25, 15, 59, tzinfo=UTC)  # 23:59 on the last Shanghai day
    assert alerts.list_alerts(session, actor=team.manager, status="overdue") == []
    clock.now = dt.datetime(2026, 3, 25, 16, 0, tzinfo=UTC)  # Shanghai midnight, still the 25th in UTC
    assert len(alerts.list_alerts(session, actor=team.manager, status="overdue")) == 2


# ------------------------------------------------------------------------------------------------ follow-up


def test_signing_opens_recheck_tasks_due_from_the_exam_date(
    session: Session, team: Team, kb: KnowledgeBase, clock: MovableClock
) -> None:
    record = _record("10_impaired_fasting_glucose", visit_id="V1", exam_date=dt.date(2026, 3, 16))
    stored = submit_record(session, record, kb=kb, actor=team.manager)
    assert followup.list_tasks(session, actor=team.manager) == []  # nothing before the signature
    sign_report(session, stored.report_id, actor=team.chief)
    session.commit()
    tasks = followup.list_tasks(session, actor=team.manager)
    # 空腹血糖受损: "3-6个月复查，建议行OGTT" → six months after the exam.
    assert [(t.conclusion_id, t.due_date, t.state) for t in tasks] == [("ifg", dt.date(2026, 9, 16), "upcoming")]
    assert tasks[0].provenance == "auto"


def test_task_states_move_with_the_clock_in_the_centers_local_date(
    session: Session, team: Team, kb: KnowledgeBase, clock: MovableClock
) -> None:
    record = _record("10_impaired_fasting_glucose", visit_id="V1", exam_date=dt.date(2026, 3, 16))
    sign_report(session, submit_record(session, record, kb=kb, actor=team.manager).report_id, actor=team.chief)
    session.commit()
    # Due 16 September; contact lead time 14 days → "due" from 2 September.
    clock.now = dt.datetime(2026, 9, 1, 15, 59, tzinfo=UTC)  # 23:59 on 1 September in Shanghai
    assert followup.list_tasks(session, actor=team.manager)[0].state == "upcoming"
    clock.now = dt.datetime(2026, 9, 1, 16, 0, tzinfo=UTC)  # 2 September in Shanghai, still 1 September in UTC
    assert followup.list_tasks(session, actor=team.manager)[0].state == "due"
    clock.now = dt.datetime(2026, 9, 16, 15, 59, tzinfo=UTC)  # last minute of the due day in Shanghai
    assert followup.list_tasks(session, actor=team.manager, state="overdue") == []
    clock.now = dt.datetime(2026, 9, 16, 16, 0, tzinfo=UTC)
    overdue = followup.list_tasks(session, actor=team.manager, state="overdue")
    assert [(t.conclusion_id, t.days_left) for t in overdue] == [("ifg", -1)]


def test_contacts_and_a_recorded_outcome_become_labels(session: Session, team: Team, kb: KnowledgeBase) -> None:
    record = _record("10_impaired_fasting_glucose", visit_id="V1", exam_date=dt.date(2026, 3, 16))
    stored = submit_record(session, record, kb=kb, actor=team.manager)
    sign_report(session, stored.report_id, actor=team.chief)
    task_id = followup.list_tasks(session, actor=team.manager)[0].id
    followup.record_contact(session, task_id, actor=team.manager, channel="phone", reached=False)
    followup.record_contact(session, task_id, actor=team.manager, channel="phone", reached=True, note="已约复查")
    with pytest.raises(InvalidEdit, match="outcome"):
        followup.close_task(session, task_id, actor=team.manager, outcome="resolved")  # only a next visit says so
    done = followup.close_task(session, task_id, actor=team.manager, outcome="normal_on_recheck", note="OGTT 正常")
    session.commit()
    assert (done.state, done.contact_attempts, done.held, done.closed_by) == ("closed", 2, False, "钱健管")
    assert followup.outcome_labels(session, actor=team.auditor) == [
        {
            "task_id": task_id,
            "report_id": stored.report_id,
            "conclusion_id": "ifg",
            "icd10": done.icd10,
            "provenance": "auto",
            "outcome": "normal_on_recheck",
            "held": False,
        }
    ]
    actions = [e.action for e in report_audit(session, stored.report_id, actor=team.auditor)]
    assert actions[-4:] == ["followup.create", "followup.contact", "followup.contact", "followup.close"]


@pytest.mark.parametrize(("glucose", "outcome", "held"), [(6.6, "persistent", True), (5.0, "resolved", False)])
def test_the_next_visit_closes_the_task_through_the_comparison(
    session: Session, team: Team, kb: KnowledgeBase, glucose: float, outcome: str, held: bool
) -> None:
    first = _record("10_impaired_fasting_glucose", visit_id="V1", exam_date=dt.date(2026, 3, 16))
    stored = submit_record(session, first, kb=kb, actor=team.manager)
    sign_report(session, stored.report_id, actor=team.chief)
    # Another person's visit closes nothing.
    other = _record("10_impaired_fasting_glucose", visit_id="X1", person="P-999", exam_date=dt.date(2026, 9, 1))
    submit_record(session, _with_glucose(other, glucose), kb=kb, actor=team.manager)
    assert followup.list_tasks(session, actor=team.manager, state="closed") == []
    second = _record("10_impaired_fasting_glucose", visit_id="V2", exam_date=dt.date(2026, 9, 10))
    later = submit_record(session, _with_glucose(second, glucose), kb=kb, actor=team.manager)
    session.commit()
    closed = followup.list_tasks(session, actor=team.manager, state="closed")
    assert [(t.conclusion_id, t.outcome, t.held, t.closed_by_report_id) for t in closed] == [
        ("ifg", outcome, held, later.report_id)
    ]


def test_operations_count_per_day_and_physician(
    session: Session, team: Team, kb: KnowledgeBase, clock: MovableClock
) -> None:
    # Exam on 16 March; record stored 18 March 09:00 Shanghai; alert notified in time; signed 10:00 Shanghai.
    record = _record("05_critical_potassium", visit_id="V1", exam_date=dt.date(2026, 3, 16))
    stored = submit_record(session, record, kb=kb, actor=team.manager)
    alert_id = alerts.list_alerts(session, actor=team.manager)[0].id
    clock.advance(minutes=30)
    alerts.notify_alert(session, alert_id, actor=team.manager, channel="phone", reached="本人")
    submit_record(session, _record("01_male_healthy", visit_id="V2"), kb=kb, actor=team.manager)
    session.commit()
    # The report's signature time comes from the storage service's own clock: read it back.
    sign_report(session, stored.report_id, actor=team.chief)
    session.commit()
    today = dt.datetime.now(UTC).astimezone(view_zone()).date()
    view = operations(session, actor=team.admin, date_from=dt.date(2026, 3, 1), date_to=today + dt.timedelta(days=1))
    by_user = {(r.day, r.user): r for r in view.rows}
    drafted = sum(r.drafted for r in view.rows)
    assert drafted == 2
    signer = by_user[(today, "李主检")]
    assert signer.signed == 1 and len(signer.turnaround_hours) == 1
    assert signer.turnaround_hours[0] > 48  # from 16 March 00:00 Shanghai to a signature after that
    manager = by_user[(dt.date(2026, 3, 18), "钱健管")]
    assert (manager.alerts, manager.alerts_in_time, manager.alerts_in_time_rate) == (1, 1, 1.0)
    csv_text = to_csv(view)
    assert csv_text.splitlines()[0].startswith("day,user,drafted,signed,reviewed,median_turnaround_hours")
    assert "qc_issue_rate" not in csv_text  # no QC table in this schema: the column is left out


def view_zone() -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def test_alert_rows_keep_the_report_link(session: Session, team: Team, kb: KnowledgeBase) -> None:
    stored = submit_record(session, _record("05_critical_potassium", visit_id="V1"), kb=kb, actor=team.manager)
    session.commit()
    row = session.scalars(select(Alert)).one()
    assert row.report_id == stored.report_id and row.source_key.startswith("k_low:")


def test_qc_issue_rate_column_when_a_qc_table_exists(session: Session, team: Team, kb: KnowledgeBase) -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert

    # A stand-in for the QC helper's table: only its report_id column is read.
    qc = Table(
        "qc_issues",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("report_id", Integer),
        Column("kind", String(32)),
    )
    qc.create(session.connection())
    session.commit()
    try:
        first = submit_record(session, _record("01_male_healthy", visit_id="Q1"), kb=kb, actor=team.manager)
        second = submit_record(
            session, _record("10_impaired_fasting_glucose", visit_id="Q2"), kb=kb, actor=team.manager
        )
        sign_report(session, first.report_id, actor=team.chief)
        sign_report(session, second.report_id, actor=team.chief)
        # Two issues on one of the two signed reports: half the signed reports have issues.
        session.execute(insert(qc), [{"report_id": second.report_id, "kind": "missed"}] * 2)
        session.commit()
        # Signatures carry the storage service's own time: a range wide enough for any day of the year.
        today = dt.datetime.now(UTC).date()
        view = operations(
            session,
            actor=team.auditor,
            qc_table=qc,
            date_from=today - dt.timedelta(days=1),
            date_to=today + dt.timedelta(days=1),
        )
        signer = next(r for r in view.rows if r.user == "李主检")
        assert (signer.signed, signer.qc_reports_with_issues, signer.qc_issue_rate) == (2, 1, 0.5)
        assert to_csv(view).splitlines()[0].endswith(",qc_issue_rate")
    finally:
        session.rollback()
        qc.drop(session.connection())
        session.commit()


def test_an_earlier_record_that_no_longer_validates_leaves_its_tasks_open(
    session: Session, team: Team, kb: KnowledgeBase
) -> None:
    from sqlalchemy import text, update

    from zhujian.storage.models import RawRecord

    first = _record("10_impaired_fasting_glucose", visit_id="V1", exam_date=dt.date(2026, 3, 16))
    stored = submit_record(session, first, kb=kb, actor=team.manager)
    sign_report(session, stored.report_id, actor=team.chief)
    # As if the record schema had changed since the first visit was stored.
    broken = {**first.model_dump(mode="json"), "sex": "unknown-value"}
    # Raw records are append-only (triggers): a schema change is simulated by someone who may lift them.
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ALTER TABLE raw_records DISABLE TRIGGER USER"))
    else:
        session.execute(text("DROP TRIGGER raw_records_no_update"))
    session.execute(update(RawRecord).values(record=broken))
    second = _record("10_impaired_fasting_glucose", visit_id="V2", exam_date=dt.date(2026, 9, 10))
    later = submit_record(session, second, kb=kb, actor=team.manager)  # stores without an error
    session.commit()
    assert later.created
    assert [t.state for t in followup.list_tasks(session, actor=team.manager)] == ["upcoming"]
