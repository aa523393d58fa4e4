"""Follow-up (随访): every signed conclusion whose follow-up text gives a recheck window becomes a task due on exam
date + window. Health managers record contact attempts and the outcome; the person's next visit closes the matching
tasks through the longitudinal comparison of `zhujian.pipeline.compare` (persistent / worse / improved: the
conclusion held; resolved: it did not).

The outcome is kept as a label (`held`: did the conclusion the engine or physician signed hold up on recheck?) for
later evaluation of the engine. Task states shown to users: upcoming, due (within the contact lead time), overdue
(past the due date in the center's time zone), closed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from zhujian.alerts.clock import now_of, policy_of
from zhujian.alerts.policy import followup_window
from zhujian.domain.record import Record, VisitData
from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.run import build_report
from zhujian.storage.audit import append_audit
from zhujian.storage.errors import InvalidEdit, InvalidTransition, NotFound
from zhujian.storage.models import FollowUpContact, FollowUpTask, RawRecord, Report, Visit
from zhujian.storage.permissions import authorize
from zhujian.storage.queries import display_names, with_visit
from zhujian.storage.values import Actor

logger = logging.getLogger("zhujian.alerts.followup")
TaskState = Literal["upcoming", "due", "overdue", "closed"]
TASK_STATE_LABELS: dict[str, str] = {"overdue": "已逾期", "due": "待联系", "upcoming": "未到期", "closed": "已完成"}
# Outcomes a person records by hand; the others come from the next visit's comparison.
MANUAL_OUTCOMES = ("confirmed_diagnosis", "normal_on_recheck", "declined", "unreachable")
COMPARISON_OUTCOMES = ("persistent", "worse", "improved", "resolved")


@dataclasses.dataclass(frozen=True, slots=True)
class FollowUpTaskInfo:
    id: int
    report_id: int
    visit_id: str
    person_pseudonym: str | None
    conclusion_id: str
    conclusion_name: str
    icd10: str | None
    provenance: str | None
    follow_up: str
    exam_date: dt.date
    due_date: dt.date
    state: TaskState
    days_left: int
    contact_attempts: int
    outcome: str | None
    held: bool | None
    closed_at: dt.datetime | None
    closed_by: str | None
    closed_by_report_id: int | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, dt.date | dt.datetime):
                data[key] = value.isoformat()
        return data


def task_state(due_date: dt.date, today: dt.date, lead_days: int, closed: bool) -> TaskState:
    if closed:
        return "closed"
    if today > due_date:
        return "overdue"
    if today >= due_date - dt.timedelta(days=lead_days):
        return "due"
    return "upcoming"


def create_tasks_for_signed_report(session: Session, report_id: int, *, actor: Actor | None = None) -> list[int]:
    """One task per signed conclusion with a datable follow-up window (policy categories only), unless the
    conclusion of this report already has one (a report signed again after being sent back). Called by the storage
    services when a report is signed."""
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound("report", report_id)
    visit = session.get(Visit, report.visit_pk)
    assert visit is not None  # guaranteed by the foreign key
    policy = policy_of(session)
    rules = policy.rules.followup
    now = now_of(session)
    # Without an exam date the day of signature is the best known start.
    start = visit.exam_date or policy.local_date(now)
    existing = set(session.scalars(select(FollowUpTask.conclusion_id).where(FollowUpTask.report_id == report_id)))
    created: list[FollowUpTask] = []
    for conclusion in report.content.get("conclusions") or []:
        conclusion_id = str(conclusion.get("id") or "")
        if not conclusion_id or conclusion_id in existing:
            continue
        if conclusion.get("category") not in rules.categories:
            continue
        text = conclusion.get("follow_up")
        window = followup_window(text if isinstance(text, str) else None, rules)
        if window is None:
            continue
        existing.add(conclusion_id)
        task = FollowUpTask(
            report_id=report_id,
            person_id=visit.person_id,
            conclusion_id=conclusion_id[:128],
            conclusion_name=str(conclusion.get("name") or conclusion_id)[:300],
            icd10=conclusion.get("icd10"),
            provenance=conclusion.get("provenance"),
            follow_up=str(text),
            exam_date=start,
            due_date=window.due_date(start),
            status="open",
            contact_attempts=0,
            created_at=now,
        )
        session.add(task)
        created.append(task)
    if not created:
        return []
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="followup.create",
        object_type="report",
        object_id=report_id,
        before=None,
        after={
            "tasks": [
                {"task_id": t.id, "conclusion_id": t.conclusion_id, "due_date": t.due_date.isoformat()} for t in created
            ]
        },
    )
    return [t.id for t in created]


# ------------------------------------------------------------------------------------------------ next visit


def _prior_visit(raw: dict[str, Any]) -> VisitData:
    record = Record.model_validate(raw)
    return VisitData(
        visit_id=record.visit_id,
        exam_date=record.exam_date,
        age=record.age_years(),
        items=record.items,
        texts=record.texts,
        questionnaire=record.questionnaire,
    )


def _comparison_statuses(conclusions: list[dict[str, Any]], resolved: list[dict[str, Any]]) -> dict[str, str]:
    """Earlier conclusion id (or name, for one that turned into another conclusion) → comparison outcome."""
    statuses: dict[str, str] = {}
    for c in conclusions:
        status = c.get("status") or "persistent"
        if status == "new":
            status = "persistent"  # compared with another visit; present now, so it persists
        statuses.setdefault(str(c.get("id")), status)
        for detail in c.get("status_detail") or []:
            # "上次(2025-03)为“空腹血糖受损”": the earlier conclusion continued under a new name.
            if "为“" in detail and detail.endswith("”"):
                statuses.setdefault("name:" + detail.split("为“", 1)[1][:-1], status)
    for r in resolved:
        statuses.setdefault(str(r.get("id")), "resolved")
    return statuses


def close_tasks_by_next_visit(
    session: Session, report_id: int, *, kb: KnowledgeBase, actor: Actor | None = None
) -> list[int]:
    """When a later visit of the same person is stored, compare it with each earlier visit that has open tasks
    (the engine's longitudinal comparison) and close the tasks whose conclusion is now persistent, worse, improved
    or resolved. Tasks whose conclusion the new visit did not examine stay open."""
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound("report", report_id)
    visit = session.get(Visit, report.visit_pk)
    assert visit is not None  # guaranteed by the foreign key
    if visit.person_id is None:
        return []
    query = (
        select(FollowUpTask, Visit)
        .join(Report, FollowUpTask.report_id == Report.id)
        .join(Visit, Report.visit_pk == Visit.id)
        .where(FollowUpTask.person_id == visit.person_id, FollowUpTask.status == "open", Visit.id != visit.id)
    )
    if visit.exam_date is not None:
        query = query.where(FollowUpTask.exam_date < visit.exam_date)
    rows = session.execute(query.order_by(FollowUpTask.id)).all()
    if not rows:
        return []
    new_raw = session.scalars(select(RawRecord.record).where(RawRecord.id == report.raw_record_id)).one()
    record = Record.model_validate(new_raw)
    by_visit: dict[int, list[FollowUpTask]] = {}
    for task, task_visit in rows:
        by_visit.setdefault(task_visit.id, []).append(task)
    now = now_of(session)
    outcomes = {o.id: o for o in policy_of(session).rules.outcomes}
    closed: list[FollowUpTask] = []
    for visit_pk, tasks in by_visit.items():
        prior_raw = session.scalars(
            select(RawRecord.record).where(RawRecord.visit_pk == visit_pk).order_by(RawRecord.version.desc()).limit(1)
        ).one()
        try:
            prior = _prior_visit(prior_raw)
        except ValidationError:
            # A record stored under an older record schema: its tasks stay open for a person to close; storing the
            # new visit must not fail because of it.
            logger.warning("follow-up: stored record of visit pk %s no longer validates; tasks left open", visit_pk)
            continue
        compared = build_report(kb, record.model_copy(update={"prior_visits": [prior]})).to_dict()
        resolved = (compared.get("comparison") or {}).get("resolved") or []
        statuses = _comparison_statuses(compared.get("conclusions") or [], resolved)
        for task in tasks:
            outcome = statuses.get(task.conclusion_id) or statuses.get("name:" + task.conclusion_name)
            if outcome is None:
                continue
            task.status = "closed"
            task.outcome = outcome
            task.held = outcomes[outcome].held if outcome in outcomes else None
            task.closed_at = now
            task.closed_by_report_id = report_id
            closed.append(task)
    if not closed:
        return []
    session.flush()
    for task in closed:
        append_audit(
            session,
            actor=actor,
            action="followup.close_by_visit",
            object_type="report",
            object_id=task.report_id,
            before={"task_id": task.id, "status": "open"},
            after={
                "task_id": task.id,
                "status": "closed",
                "outcome": task.outcome,
                "held": task.held,
                "by_visit": visit.visit_id,
            },
        )
    return [t.id for t in closed]


# ------------------------------------------------------------------------------------------------ reading


def list_tasks(
    session: Session, *, actor: Actor, state: TaskState | None = None, limit: int = 500
) -> list[FollowUpTaskInfo]:
    """Tasks, overdue first, then due, upcoming, closed; within each the earliest due date first. States are
    computed with the center's local date of the injected clock."""
    authorize(session, actor, "read_alerts")
    if state is not None and state not in TASK_STATE_LABELS:
        raise InvalidEdit(f"字段 state 的值 {state!r} 不正确，应为 upcoming、due、overdue 或 closed")
    policy = policy_of(session)
    today = policy.local_date(now_of(session))
    lead = policy.rules.followup.contact_lead_days
    query = (
        with_visit(FollowUpTask, FollowUpTask.report_id)
    )
    if state == "closed":
        query = query.where(FollowUpTask.status == "closed")
    elif state == "overdue":
        query = query.where(FollowUpTask.status == "open", FollowUpTask.due_date < today)
    elif state == "due":
        query = query.where(
            FollowUpTask.status == "open",
            FollowUpTask.due_date >= today,
            FollowUpTask.due_date <= today + dt.timedelta(days=lead),
        )
    elif state == "upcoming":
        query = query.where(FollowUpTask.status == "open", FollowUpTask.due_date > today + dt.timedelta(days=lead))
    rows = session.execute(
        query.order_by(FollowUpTask.status.desc(), FollowUpTask.due_date, FollowUpTask.id).limit(limit)
    ).all()
    names = display_names(session, {t.closed_by_id for t, _, _ in rows if t.closed_by_id})
    return [_task_info(t, v, p, today, lead, names) for t, v, p in rows]



def _task_info(
    task: FollowUpTask, visit_id: str, pseudonym: str | None, today: dt.date, lead: int, names: dict[int, str]
) -> FollowUpTaskInfo:
    return FollowUpTaskInfo(
        id=task.id,
        report_id=task.report_id,
        visit_id=visit_id,
        person_pseudonym=pseudonym,
        conclusion_id=task.conclusion_id,
        conclusion_name=task.conclusion_name,
        icd10=task.icd10,
        provenance=task.provenance,
        follow_up=task.follow_up,
        exam_date=task.exam_date,
        due_date=task.due_date,
        state=task_state(task.due_date, today, lead, task.status == "closed"),
        days_left=(task.due_date - today).days,
        contact_attempts=task.contact_attempts,
        outcome=task.outcome,
        held=task.held,
        closed_at=task.closed_at,
        closed_by=names.get(task.closed_by_id) if task.closed_by_id else None,
        closed_by_report_id=task.closed_by_report_id,
        note=task.note,
    )


def get_task(session: Session, task_id: int, *, actor: Actor) -> FollowUpTaskInfo:
    authorize(session, actor, "read_alerts")
    return _load_info(session, task_id)


def _load_info(session: Session, task_id: int) -> FollowUpTaskInfo:
    row = session.execute(
        with_visit(FollowUpTask, FollowUpTask.report_id)
        .where(FollowUpTask.id == task_id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotFound("followup_task", task_id)
    task, visit_id, pseudonym = row
    policy = policy_of(session)
    today = policy.local_date(now_of(session))
    names = display_names(session, {task.closed_by_id} if task.closed_by_id else set())
    return _task_info(task, visit_id, pseudonym, today, policy.rules.followup.contact_lead_days, names)


# ------------------------------------------------------------------------------------------------ writing


def _open_task(session: Session, task_id: int, action: str) -> FollowUpTask:
    task = session.get(FollowUpTask, task_id, populate_existing=True, with_for_update=True)
    if task is None:
        raise NotFound("followup_task", task_id)
    if task.status == "closed":
        raise InvalidTransition(task.report_id, task.status, action, "该随访任务已完成")
    return task


def record_contact(
    session: Session, task_id: int, *, actor: Actor, channel: str, reached: bool, note: str | None = None
) -> FollowUpTaskInfo:
    """One contact attempt (a call, a message) and whether the person was reached."""
    authorize(session, actor, "act_followup")
    channel = (channel or "").strip()
    if not channel or len(channel) > 32:
        raise InvalidEdit(f"字段 channel 的值 {channel!r} 不正确：需为 1–32 个字符")
    cleaned = (note or "").strip() or None
    if cleaned and len(cleaned) > 2000:
        raise InvalidEdit("字段 note 不能超过 2000 字")
    task = _open_task(session, task_id, "contact")
    now = now_of(session)
    session.add(
        FollowUpContact(
            task_id=task.id, occurred_at=now, actor_id=actor.user_id, channel=channel, reached=reached, note=cleaned
        )
    )
    task.contact_attempts += 1
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="followup.contact",
        object_type="report",
        object_id=task.report_id,
        before=None,
        after={"task_id": task.id, "channel": channel, "reached": reached, "note": cleaned},
    )
    return _load_info(session, task.id)


def close_task(
    session: Session, task_id: int, *, actor: Actor, outcome: str, note: str | None = None
) -> FollowUpTaskInfo:
    """Close a task with a recorded outcome (confirmed_diagnosis, normal_on_recheck, declined, unreachable); the
    outcome's `held` label comes from the policy."""
    authorize(session, actor, "act_followup")
    outcomes = {o.id: o for o in policy_of(session).rules.outcomes}
    if outcome not in MANUAL_OUTCOMES or outcome not in outcomes:
        raise InvalidEdit(f"字段 outcome 的值 {outcome!r} 不正确，可选：{'、'.join(MANUAL_OUTCOMES)}")
    cleaned = (note or "").strip() or None
    if cleaned and len(cleaned) > 2000:
        raise InvalidEdit("字段 note 不能超过 2000 字")
    task = _open_task(session, task_id, "close")
    task.status = "closed"
    task.outcome = outcome
    task.held = outcomes[outcome].held
    task.note = cleaned
    task.closed_at = now_of(session)
    task.closed_by_id = actor.user_id
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="followup.close",
        object_type="report",
        object_id=task.report_id,
        before={"task_id": task.id, "status": "open"},
        after={"task_id": task.id, "status": "closed", "outcome": outcome, "held": task.held, "note": cleaned},
    )
    return _load_info(session, task.id)


def outcome_labels(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """The evaluation labels: one row per closed task (conclusion, ICD-10, provenance, outcome, held)."""
    authorize(session, actor, "read_alerts")
    rows = session.scalars(select(FollowUpTask).where(FollowUpTask.status == "closed").order_by(FollowUpTask.id))
    return [
        {
            "task_id": t.id,
            "report_id": t.report_id,
            "conclusion_id": t.conclusion_id,
            "icd10": t.icd10,
            "provenance": t.provenance,
            "outcome": t.outcome,
            "held": t.held,
        }
        for t in rows
    ]
