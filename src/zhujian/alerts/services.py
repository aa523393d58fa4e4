"""Alerts of important abnormal results: opened when a report is stored, notified, closed; overdue when the
center's deadline passes without a notification.

Life cycle (stored status; "overdue" is computed from the clock, never stored):

    open ──notify (a channel that counts for the level)──▶ notified ──close (outcome)──▶ closed
      │  ╰─ failed attempt / a message sent on a channel that does not count: recorded, stays open
      ╰──────────close as "unreachable" after N failed attempts──────────────────────────▶ closed

Each step is one `alert_attempts` row (for contacts) and one audit entry on the report (`object_type="report"`), so
the report's audit trail shows who told whom, when and how. Like the storage services, nothing here commits.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Literal

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from zhujian.alerts.clock import now_of, policy_of
from zhujian.storage.audit import append_audit
from zhujian.storage.errors import InvalidEdit, InvalidTransition, NotFound
from zhujian.storage.models import Alert, AlertAttempt, Report
from zhujian.storage.permissions import authorize
from zhujian.storage.queries import display_names, with_visit
from zhujian.storage.values import Actor

AlertStatus = Literal["open", "notified", "closed", "overdue"]
ALERT_STATUS_LABELS: dict[str, str] = {"open": "待通知", "overdue": "已超时", "notified": "已通知", "closed": "已闭环"}
CHANNEL_LABELS: dict[str, str] = {"phone": "电话", "in_person": "当面", "sms": "短信", "email": "电子邮件"}
MAX_NOTE = 2000
MAX_REACHED = 100


@dataclasses.dataclass(frozen=True, slots=True)
class AlertAttemptInfo:
    occurred_at: dt.datetime
    actor: str | None
    channel: str
    success: bool
    reached: str | None
    note: str | None
    result: str | None


@dataclasses.dataclass(frozen=True, slots=True)
class AlertInfo:
    id: int
    report_id: int
    visit_id: str
    person_pseudonym: str | None
    level: str
    reason: str
    status: AlertStatus  # "overdue" for an open alert past its due time
    created_at: dt.datetime
    due_at: dt.datetime
    seconds_left: int  # negative when overdue
    escalated_to: str | None  # the second role an overdue alert is shown to
    failed_attempts: int
    notified_at: dt.datetime | None
    notified_by: str | None
    notified_in_time: bool | None
    channel: str | None
    reached: str | None
    note: str | None
    closed_at: dt.datetime | None
    outcome: str | None
    attempts: tuple[AlertAttemptInfo, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key, value in data.items():
            if isinstance(value, dt.datetime):
                data[key] = value.isoformat()
        data["attempts"] = [{**a, "occurred_at": a["occurred_at"].isoformat()} for a in data["attempts"]]
        return data


def _effective_status(alert: Alert, now: dt.datetime) -> AlertStatus:
    if alert.status == "open" and alert.due_at <= now:
        return "overdue"
    status: AlertStatus = alert.status  # type: ignore[assignment]  # the column's check constraint
    return status


def _source_key(entry: dict[str, Any]) -> str:
    # The rule and the item say which result this is; a resubmitted draft with the same result maps to the same key.
    parts = [str(entry.get(k) or "") for k in ("rule_id", "conclusion_id", "item_id")]
    return ":".join(parts)[:200]


def open_alerts_for_report(session: Session, report_id: int, *, actor: Actor | None = None) -> list[int]:
    """Open one alert per class A result of the report's current content (and class B when the center says so),
    unless that result already has one. Called by the storage services when a report is stored; returns the ids of
    the alerts opened. No permission check: whoever may store a record triggers this."""
    report = session.get(Report, report_id)
    if report is None:
        raise NotFound("report", report_id)
    policy = policy_of(session)
    now = now_of(session)
    existing = set(session.scalars(select(Alert.source_key).where(Alert.report_id == report_id)))
    opened: list[Alert] = []
    for entry in report.content.get("critical") or []:
        level = entry.get("level")
        if level not in ("A", "B") or not policy.opens_alert(level):
            continue
        key = _source_key(entry)
        if key in existing:
            continue
        existing.add(key)
        alert = Alert(
            report_id=report_id,
            level=level,
            source_key=key,
            conclusion_id=entry.get("conclusion_id"),
            reason=str(entry.get("reason") or "重要异常结果"),
            status="open",
            created_at=now,
            due_at=policy.due_at(level, now),
            failed_attempts=0,
        )
        session.add(alert)
        opened.append(alert)
    if not opened:
        return []
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="alert.open",
        object_type="report",
        object_id=report_id,
        before=None,
        after={
            "alerts": [{"alert_id": a.id, "level": a.level, "reason": a.reason, "due_at": a.due_at} for a in opened]
        },
    )
    return [a.id for a in opened]


# ------------------------------------------------------------------------------------------------ reading



def _info(
    alert: Alert,
    visit_id: str,
    pseudonym: str | None,
    now: dt.datetime,
    names: dict[int, str],
    escalate_to: str,
    attempts: tuple[AlertAttemptInfo, ...] = (),
) -> AlertInfo:
    status = _effective_status(alert, now)
    in_time = None if alert.notified_at is None else alert.notified_at <= alert.due_at
    return AlertInfo(
        id=alert.id,
        report_id=alert.report_id,
        visit_id=visit_id,
        person_pseudonym=pseudonym,
        level=alert.level,
        reason=alert.reason,
        status=status,
        created_at=alert.created_at,
        due_at=alert.due_at,
        seconds_left=int((alert.due_at - now).total_seconds()),
        escalated_to=escalate_to if status == "overdue" else None,
        failed_attempts=alert.failed_attempts,
        notified_at=alert.notified_at,
        notified_by=names.get(alert.notified_by_id) if alert.notified_by_id else None,
        notified_in_time=in_time,
        channel=alert.channel,
        reached=alert.reached,
        note=alert.note,
        closed_at=alert.closed_at,
        outcome=alert.outcome,
        attempts=attempts,
    )


def list_alerts(
    session: Session, *, actor: Actor, status: AlertStatus | None = None, limit: int = 200
) -> list[AlertInfo]:
    """Alerts, most urgent first: overdue (longest overdue first), open (nearest deadline first, class A before B
    at the same time), notified, closed. `status` filters by the computed status (open excludes overdue)."""
    authorize(session, actor, "read_alerts")
    if status is not None and status not in ALERT_STATUS_LABELS:
        raise InvalidEdit(f"字段 status 的值 {status!r} 不正确，应为 open、notified、closed 或 overdue")
    now = now_of(session)
    policy = policy_of(session)
    query = (
        with_visit(Alert, Alert.report_id)
    )
    if status == "overdue":
        query = query.where(Alert.status == "open", Alert.due_at <= now)
    elif status == "open":
        query = query.where(Alert.status == "open", Alert.due_at > now)
    elif status is not None:
        query = query.where(Alert.status == status)
    stage = case((Alert.status == "open", 0), (Alert.status == "notified", 1), else_=2)
    rows = session.execute(query.order_by(stage, Alert.due_at, Alert.level, Alert.id).limit(limit)).all()
    names = display_names(session, {a.notified_by_id for a, _, _ in rows if a.notified_by_id})
    infos = [_info(a, v, p, now, names, policy.escalation_role(a.level)) for a, v, p in rows]
    # Within open alerts the query already puts the earliest deadline (so the overdue ones) first.
    return infos


def get_alert(session: Session, alert_id: int, *, actor: Actor) -> AlertInfo:
    authorize(session, actor, "read_alerts")
    return _load_info(session, alert_id)


def _load_info(session: Session, alert_id: int) -> AlertInfo:
    row = session.execute(
        with_visit(Alert, Alert.report_id)
        .where(Alert.id == alert_id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if row is None:
        raise NotFound("alert", alert_id)
    alert, visit_id, pseudonym = row
    attempt_rows = list(
        session.scalars(select(AlertAttempt).where(AlertAttempt.alert_id == alert_id).order_by(AlertAttempt.id))
    )
    ids = {a.actor_id for a in attempt_rows if a.actor_id} | ({alert.notified_by_id} if alert.notified_by_id else set())
    names = display_names(session, ids)
    attempts = tuple(
        AlertAttemptInfo(
            occurred_at=a.occurred_at,
            actor=names.get(a.actor_id) if a.actor_id else None,
            channel=a.channel,
            success=a.success,
            reached=a.reached,
            note=a.note,
            result=a.result,
        )
        for a in attempt_rows
    )
    policy = policy_of(session)
    return _info(alert, visit_id, pseudonym, now_of(session), names, policy.escalation_role(alert.level), attempts)


# ------------------------------------------------------------------------------------------------ writing


def _load(session: Session, alert_id: int) -> Alert:
    alert = session.get(Alert, alert_id, populate_existing=True, with_for_update=True)
    if alert is None:
        raise NotFound("alert", alert_id)
    return alert


def _clean(value: str | None, field: str, limit: int) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if len(cleaned) > limit:
        raise InvalidEdit(f"字段 {field} 不能超过 {limit} 字（现为 {len(cleaned)} 字）")
    return cleaned or None


def _state(alert: Alert) -> dict[str, Any]:
    return {
        "alert_id": alert.id,
        "level": alert.level,
        "status": alert.status,
        "failed_attempts": alert.failed_attempts,
        "due_at": alert.due_at,
    }


def notify_alert(
    session: Session,
    alert_id: int,
    *,
    actor: Actor,
    channel: str,
    note: str | None = None,
    reached: str | None = None,
    success: bool = True,
    result: str | None = None,
) -> AlertInfo:
    """Record one attempt to reach the examinee. A successful attempt on a channel that counts for the alert's level
    (policy `notified_by`) marks the alert notified (who, when, channel, whom they reached, note); a failed attempt
    counts towards "unreachable"; a successful message on a channel that does not count (an e-mail for class A) is
    recorded and leaves the alert open. `result` is what an automatic notifier answered."""
    authorize(session, actor, "act_alerts")
    channel = (channel or "").strip()
    if not channel or len(channel) > 32:
        raise InvalidEdit(f"字段 channel 的值 {channel!r} 不正确：需为 1–32 个字符（如 phone、sms、email、in_person）")
    note = _clean(note, "note", MAX_NOTE)
    reached = _clean(reached, "reached", MAX_REACHED)
    alert = _load(session, alert_id)
    if alert.status == "closed":
        raise InvalidTransition(alert.report_id, alert.status, "notify", "该提醒已闭环，不能再记录通知")
    policy = policy_of(session)
    now = now_of(session)
    before = _state(alert)
    session.add(
        AlertAttempt(
            alert_id=alert.id,
            occurred_at=now,
            actor_id=actor.user_id,
            channel=channel,
            success=success,
            reached=reached,
            note=note,
            result=_clean(result, "result", MAX_NOTE),
        )
    )
    counts = success and policy.counts_as_notified(alert.level, channel)
    if counts and alert.status == "open":
        alert.status = "notified"
        alert.notified_at = now
        alert.notified_by_id = actor.user_id
        alert.channel = channel
        alert.reached = reached
        alert.note = note
        action = "alert.notify"
    elif success:
        action = "alert.contact"  # a message sent, or a further contact after the notification
    else:
        alert.failed_attempts += 1
        action = "alert.attempt_failed"
    session.flush()
    after = {**_state(alert), "channel": channel, "success": success, "reached": reached, "note": note}
    if result:
        after["result"] = result
    append_audit(
        session, actor=actor, action=action, object_type="report", object_id=alert.report_id, before=before, after=after
    )
    return _load_info(session, alert.id)


def close_alert(session: Session, alert_id: int, *, actor: Actor, outcome: str, note: str | None = None) -> AlertInfo:
    """Close a notified alert with its outcome (policy `close_outcomes`), or an open one as "unreachable" after the
    policy's number of failed attempts."""
    authorize(session, actor, "act_alerts")
    policy = policy_of(session)
    known = {o.id for o in policy.rules.close_outcomes}
    if outcome not in known:
        raise InvalidEdit(f"字段 outcome 的值 {outcome!r} 不正确，可选：{'、'.join(sorted(known))}")
    note = _clean(note, "note", MAX_NOTE)
    alert = _load(session, alert_id)
    if alert.status == "closed":
        raise InvalidTransition(alert.report_id, alert.status, "close", "该提醒已闭环")
    needed = policy.rules.unreachable_after_attempts
    if alert.status == "open":
        if outcome != "unreachable":
            raise InvalidTransition(alert.report_id, alert.status, "close", "尚未通知到受检者，请先记录通知")
        if alert.failed_attempts < needed:
            raise InvalidTransition(
                alert.report_id,
                alert.status,
                "close",
                f"“多次联系未果”需至少 {needed} 次未成功的联系记录（现有 {alert.failed_attempts} 次）",
            )
    before = _state(alert)
    alert.status = "closed"
    alert.closed_at = now_of(session)
    alert.closed_by_id = actor.user_id
    alert.outcome = outcome
    alert.outcome_note = note
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="alert.close",
        object_type="report",
        object_id=alert.report_id,
        before=before,
        after={**_state(alert), "outcome": outcome, "note": note},
    )
    return _load_info(session, alert.id)


def send_alert_message(
    session: Session,
    alert_id: int,
    *,
    actor: Actor,
    notifier: Any,
    recipient: str,
    subject: str,
    text: str,
    note: str | None = None,
) -> AlertInfo:
    """Send the center's message through a notifier plugin and record the attempt with what the gateway answered.
    Whether it marks the alert notified is the policy's decision (`notify_alert`)."""
    authorize(session, actor, "act_alerts")
    alert = _load(session, alert_id)
    if alert.status == "closed":
        raise InvalidTransition(alert.report_id, alert.status, "notify", "该提醒已闭环，不能再发送通知")
    delivery = notifier.send(recipient, subject, text)
    return notify_alert(
        session,
        alert_id,
        actor=actor,
        channel=notifier.channel,
        note=note,
        reached=None,
        success=delivery.success,
        result=delivery.detail,
    )
