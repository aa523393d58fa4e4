"""JSON API of the alert loop, follow-up and operations (`/api/alerts`, `/api/followup`, `/api/operations`), and
`install_alerts`, which the app factory calls to give every database session the app's clock and center policy.

Fixed contract: `GET /api/alerts?status=open|notified|closed|overdue` → list of alerts with `id`, `report_id`,
`visit_id`, `level`, `reason`, `status`, `created_at`, `due_at` (ISO 8601, UTC); `POST /api/alerts/{id}/notify`
with `{"channel", "note"}` (plus optional `reached`, `success`: false for a failed attempt, `send` and `to` to send
through a notifier plugin); `POST /api/alerts/{id}/close` with `{"outcome"}`.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session, sessionmaker

from zhujian.alerts import followup, operations
from zhujian.alerts import services as alert_services
from zhujian.alerts.clock import Clock, configure_sessions, policy_of, system_clock
from zhujian.alerts.notifiers import Notifier, load_notifiers, render_message
from zhujian.alerts.policy import AlertPolicy, default_alerts_file
from zhujian.settings import Settings
from zhujian.storage import services
from zhujian.storage.permissions import authorize
from zhujian.web.deps import ApiActor, DbSession
from zhujian.web.errors import WebError

logger = logging.getLogger("zhujian.web.alerts")
router = APIRouter(prefix="/api", tags=["alerts"])


def install_alerts(app: FastAPI, factory: sessionmaker[Session], settings: Settings, clock: Clock | None) -> None:
    """Clock, center policy and notifier plugins for the app (see `zhujian.alerts.clock`)."""
    policy = AlertPolicy(
        rules=default_alerts_file(),
        timezone=ZoneInfo(settings.center_timezone),
        alert_class_b=settings.alert_class_b,
        a_within_hours=settings.alert_a_hours,
        b_within_days=settings.alert_b_days,
    )
    app.state.clock = clock or system_clock
    app.state.alert_policy = policy
    app.state.notifiers = load_notifiers(settings)
    app.state.alert_settings = settings
    configure_sessions(factory, clock=app.state.clock, policy=policy)


class NotifyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=32, description="phone, in_person, sms, email, …")
    note: str | None = Field(default=None, max_length=2000)
    reached: str | None = Field(default=None, max_length=100, description="whom they reached (本人, 家属…)")
    success: bool = Field(default=True, description="false records a failed attempt (no answer, wrong number)")
    send: bool = Field(default=False, description="send the center's message through the channel's notifier")
    to: str | None = Field(default=None, max_length=200, description="recipient for `send` (address or phone)")


class CloseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: str = Field(min_length=1, max_length=32)
    note: str | None = Field(default=None, max_length=2000)


class ContactRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: str = Field(min_length=1, max_length=32)
    reached: bool
    note: str | None = Field(default=None, max_length=2000)


AlertStatusQuery = Literal["open", "notified", "closed", "overdue"]
TaskStateQuery = Literal["upcoming", "due", "overdue", "closed"]


@router.get("/alerts")
def list_alerts(session: DbSession, actor: ApiActor, status: AlertStatusQuery | None = None) -> list[dict[str, Any]]:
    """Alerts, most urgent first (overdue, then open by deadline, notified, closed)."""
    return [a.to_json() for a in alert_services.list_alerts(session, actor=actor, status=status)]


@router.get("/alerts/{alert_id}")
def get_alert(alert_id: int, session: DbSession, actor: ApiActor) -> dict[str, Any]:
    return alert_services.get_alert(session, alert_id, actor=actor).to_json()


def notifier_message(request: Request, session: Session, alert_id: int, actor: Any) -> tuple[str, str]:
    settings: Settings = request.app.state.alert_settings
    alert = alert_services.get_alert(session, alert_id, actor=actor)
    text = render_message(
        settings.alert_message, visit_id=alert.visit_id, level=alert.level, center=settings.center_name
    )
    return f"{settings.center_name}：体检结果提醒", text


def recipient_for(
    request: Request, session: Session, channel: str, alert_id: int, actor: Any, given: str | None
) -> str:
    """The recipient the user gave; else the center's default e-mail, or the examinee's phone for SMS (read with
    `read_identity`, audited)."""
    if given and given.strip():
        return given.strip()
    settings: Settings = request.app.state.alert_settings
    if channel == "email" and settings.alert_email_to:
        return settings.alert_email_to
    if channel == "sms":
        alert = alert_services.get_alert(session, alert_id, actor=actor)
        if alert.person_pseudonym:
            phone = services.get_person_identity(session, alert.person_pseudonym, actor=actor).phone
            if phone:
                return phone
    raise WebError(
        422,
        "validation_error",
        f"请求数据不正确：字段 to 未填写，且没有渠道 {channel} 的默认接收人",
        details={"fields": [{"field": "to", "message": "需要接收人"}]},
    )


def notify(
    request: Request, session: Session, alert_id: int, actor: Any, body: NotifyRequest
) -> alert_services.AlertInfo:
    if body.send:
        notifiers: dict[str, Notifier] = request.app.state.notifiers
        notifier = notifiers.get(body.channel)
        if notifier is None:
            raise WebError(
                422,
                "validation_error",
                f"请求数据不正确：字段 channel 渠道 {body.channel!r} 没有配置发送插件"
                f"（已配置：{'、'.join(sorted(notifiers)) or '无'}）",
                details={"fields": [{"field": "channel", "message": "没有配置发送插件"}]},
            )
        recipient = recipient_for(request, session, body.channel, alert_id, actor, body.to)
        subject, text = notifier_message(request, session, alert_id, actor)
        return alert_services.send_alert_message(
            session,
            alert_id,
            actor=actor,
            notifier=notifier,
            recipient=recipient,
            subject=subject,
            text=text,
            note=body.note,
        )
    return alert_services.notify_alert(
        session, alert_id, actor=actor, channel=body.channel, note=body.note, reached=body.reached, success=body.success
    )


@router.post("/alerts/{alert_id}/notify")
def notify_alert(
    alert_id: int, body: NotifyRequest, request: Request, session: DbSession, actor: ApiActor
) -> dict[str, Any]:
    """Record a notification (or a failed attempt with `success: false`); `send: true` sends the center's message
    through the channel's notifier plugin and records what the gateway answered."""
    info = notify(request, session, alert_id, actor, body)
    logger.info("alert %s: %s attempt by %s (status %s)", alert_id, body.channel, actor.username, info.status)
    return info.to_json()


@router.post("/alerts/{alert_id}/close")
def close_alert(alert_id: int, body: CloseRequest, session: DbSession, actor: ApiActor) -> dict[str, Any]:
    info = alert_services.close_alert(session, alert_id, actor=actor, outcome=body.outcome, note=body.note)
    logger.info("alert %s closed (%s) by %s", alert_id, body.outcome, actor.username)
    return info.to_json()


@router.get("/alerts-policy")
def alert_policy(session: DbSession, actor: ApiActor) -> dict[str, Any]:
    """The center's deadlines, channels and outcomes, with the source of each default."""
    authorize(session, actor, "read_alerts")
    policy = policy_of(session)
    return {
        "timezone": str(policy.timezone),
        "alert_class_b": policy.alert_class_b,
        "a_within_hours": policy.a_within_hours,
        "b_within_days": policy.b_within_days,
        "defaults": policy.rules.model_dump(mode="json"),
    }


# ------------------------------------------------------------------------------------------------ follow-up


@router.get("/followup")
def list_tasks(session: DbSession, actor: ApiActor, state: TaskStateQuery | None = None) -> list[dict[str, Any]]:
    return [t.to_json() for t in followup.list_tasks(session, actor=actor, state=state)]


@router.post("/followup/{task_id}/contact")
def record_contact(task_id: int, body: ContactRequest, session: DbSession, actor: ApiActor) -> dict[str, Any]:
    return followup.record_contact(
        session, task_id, actor=actor, channel=body.channel, reached=body.reached, note=body.note
    ).to_json()


@router.post("/followup/{task_id}/close")
def close_task(task_id: int, body: CloseRequest, session: DbSession, actor: ApiActor) -> dict[str, Any]:
    return followup.close_task(session, task_id, actor=actor, outcome=body.outcome, note=body.note).to_json()


@router.get("/followup-labels")
def followup_labels(session: DbSession, actor: ApiActor) -> list[dict[str, Any]]:
    """Closed tasks as evaluation labels: did the signed conclusion hold up on recheck?"""
    return followup.outcome_labels(session, actor=actor)


# ------------------------------------------------------------------------------------------------ operations


def _operations_view(
    session: Session, actor: Any, date_from: dt.date | None, date_to: dt.date | None
) -> operations.OperationsView:
    if date_from and date_to and date_from > date_to:
        raise WebError(
            422,
            "validation_error",
            f"请求数据不正确：字段 date_from {date_from} 晚于 date_to {date_to}",
            details={"fields": [{"field": "date_from", "message": "晚于 date_to"}]},
        )
    if date_from and date_to and (date_to - date_from).days > 366:
        raise WebError(422, "validation_error", "请求数据不正确：字段 date_to 日期范围不能超过一年")
    return operations.operations(session, actor=actor, date_from=date_from, date_to=date_to)


@router.get("/operations")
def operations_json(
    session: DbSession,
    actor: ApiActor,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> dict[str, Any]:
    view = _operations_view(session, actor, date_from, date_to)
    return {
        "date_from": view.date_from.isoformat(),
        "date_to": view.date_to.isoformat(),
        "rows": [operations.as_dict(r, view.has_qc) for r in view.rows],
    }


@router.get("/operations.csv", response_class=Response)
def operations_csv(
    session: DbSession,
    actor: ApiActor,
    date_from: Annotated[dt.date | None, Query()] = None,
    date_to: Annotated[dt.date | None, Query()] = None,
) -> Response:
    view = _operations_view(session, actor, date_from, date_to)
    return csv_response(view)


def csv_response(view: operations.OperationsView) -> Response:
    name = f"operations-{view.date_from.isoformat()}-{view.date_to.isoformat()}.csv"
    # A BOM so that spreadsheet programs read the Chinese names as UTF-8.
    return Response(
        "\ufeff" + operations.to_csv(view),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
