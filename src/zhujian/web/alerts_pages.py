"""Pages of the alert loop for health managers (健康管理师) and physicians: the alert worklist (most urgent first,
with countdowns; one form records a notification, a failed attempt or a sent message), the follow-up tasks, and the
operations view with its CSV export. Forms post with the CSRF token and redirect back (no inline script: the
countdowns are in /static/alerts.js)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from zhujian.alerts import followup, operations
from zhujian.alerts import services as alert_services
from zhujian.alerts.clock import now_of, policy_of
from zhujian.storage.errors import PermissionDenied
from zhujian.storage.permissions import ROLE_LABELS
from zhujian.web.alerts_api import NotifyRequest, _operations_view, csv_response, notify
from zhujian.web.deps import CurrentPageUser, DbSession, PageUser, PostingPageUser
from zhujian.web.report_views import LEVEL_LABELS

logger = logging.getLogger("zhujian.web.alerts_pages")
router = APIRouter(include_in_schema=False)


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    base = {
        "role_labels": ROLE_LABELS,
        "level_labels": LEVEL_LABELS,
        "alert_status_labels": alert_services.ALERT_STATUS_LABELS,
        "channel_labels": alert_services.CHANNEL_LABELS,
        "task_state_labels": followup.TASK_STATE_LABELS,
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, {**base, **context})
    return response


def _require(user: PageUser, action: Any) -> None:
    if not user.can(action):
        raise PermissionDenied(action, user.actor.role)


# ------------------------------------------------------------------------------------------------ alerts


@router.get("/alerts", response_class=HTMLResponse)
def alerts_page(
    request: Request,
    session: DbSession,
    user: CurrentPageUser,
    status: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    _require(user, "read_alerts")
    chosen = status if status in alert_services.ALERT_STATUS_LABELS else None
    alerts = alert_services.list_alerts(session, actor=user.actor, status=chosen)  # type: ignore[arg-type]
    everything = alerts if chosen is None else alert_services.list_alerts(session, actor=user.actor)
    counts = {s: sum(1 for a in everything if a.status == s) for s in alert_services.ALERT_STATUS_LABELS}
    # Escalation: overdue alerts are shown first to everyone, and flagged for the second role that must step in.
    escalated_to_me = [a for a in everything if a.status == "overdue" and a.escalated_to == user.actor.role]
    policy = policy_of(session)
    return _render(
        request,
        "alerts.html",
        {
            "user": user,
            "alerts": alerts,
            "counts": counts,
            "status": chosen,
            "escalated_to_me": escalated_to_me,
            "now": now_of(session),
            "outcomes": policy.rules.close_outcomes,
            "can_act": user.can("act_alerts"),
            "notifiers": sorted(request.app.state.notifiers),
        },
    )


@router.post("/alerts/{alert_id}/notify")
def notify_form(
    request: Request,
    alert_id: int,
    session: DbSession,
    user: PostingPageUser,
    channel: Annotated[str, Form(min_length=1, max_length=32)],
    result: Annotated[str, Form(pattern="^(reached|failed|send)$")] = "reached",
    reached: Annotated[str | None, Form(max_length=100)] = None,
    note: Annotated[str | None, Form(max_length=2000)] = None,
    to: Annotated[str | None, Form(max_length=200)] = None,
) -> Response:
    """The one notification form: reached someone, a failed attempt, or send the center's message."""
    body = NotifyRequest(
        channel=channel,
        note=note or None,
        reached=reached or None,
        success=result != "failed",
        send=result == "send",
        to=to or None,
    )
    notify(request, session, alert_id, user.actor, body)
    logger.info("alert %s: %s (%s) recorded on the workbench by %s", alert_id, channel, result, user.actor.username)
    return RedirectResponse(f"/alerts#alert-{alert_id}", status_code=303)


@router.post("/alerts/{alert_id}/close")
def close_form(
    alert_id: int,
    session: DbSession,
    user: PostingPageUser,
    outcome: Annotated[str, Form(min_length=1, max_length=32)],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    alert_services.close_alert(session, alert_id, actor=user.actor, outcome=outcome, note=note or None)
    return RedirectResponse("/alerts?status=closed", status_code=303)


# ------------------------------------------------------------------------------------------------ follow-up


@router.get("/followup", response_class=HTMLResponse)
def followup_page(
    request: Request,
    session: DbSession,
    user: CurrentPageUser,
    state: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    _require(user, "read_alerts")
    chosen = state if state in followup.TASK_STATE_LABELS else None
    tasks = followup.list_tasks(session, actor=user.actor, state=chosen)  # type: ignore[arg-type]
    everything = tasks if chosen is None else followup.list_tasks(session, actor=user.actor)
    counts = {s: sum(1 for t in everything if t.state == s) for s in followup.TASK_STATE_LABELS}
    policy = policy_of(session)
    outcomes = [o for o in policy.rules.outcomes if o.id in followup.MANUAL_OUTCOMES]
    outcome_labels = {o.id: o.label for o in policy.rules.outcomes}
    return _render(
        request,
        "followup.html",
        {
            "user": user,
            "tasks": tasks,
            "counts": counts,
            "state": chosen,
            "today": policy.local_date(now_of(session)),
            "outcomes": outcomes,
            "outcome_labels": outcome_labels,
            "can_act": user.can("act_followup"),
        },
    )


@router.post("/followup/{task_id}/contact")
def contact_form(
    task_id: int,
    session: DbSession,
    user: PostingPageUser,
    channel: Annotated[str, Form(min_length=1, max_length=32)],
    reached: Annotated[str, Form(pattern="^(yes|no)$")],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    followup.record_contact(session, task_id, actor=user.actor, channel=channel, reached=reached == "yes", note=note)
    return RedirectResponse(f"/followup#task-{task_id}", status_code=303)


@router.post("/followup/{task_id}/close")
def close_task_form(
    task_id: int,
    session: DbSession,
    user: PostingPageUser,
    outcome: Annotated[str, Form(min_length=1, max_length=32)],
    note: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    followup.close_task(session, task_id, actor=user.actor, outcome=outcome, note=note or None)
    return RedirectResponse("/followup?state=closed", status_code=303)


# ------------------------------------------------------------------------------------------------ operations


@router.get("/operations", response_class=HTMLResponse)
def operations_page(
    request: Request,
    session: DbSession,
    user: CurrentPageUser,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> HTMLResponse:
    view = _operations_view(session, user.actor, date_from, date_to)
    columns = operations.columns(view.has_qc)
    table = [[(name, _shown(name, getattr(row, name))) for name, _ in columns] for row in view.rows]
    return _render(request, "operations.html", {"user": user, "view": view, "columns": columns, "table": table})


def _shown(name: str, value: object) -> str:
    if value is None:
        return "—"
    if name.endswith(("_rate", "_completion")) and isinstance(value, float):
        return f"{value * 100:.0f}%"
    return str(value)


@router.get("/operations.csv")
def operations_csv_page(
    session: DbSession, user: CurrentPageUser, date_from: dt.date | None = None, date_to: dt.date | None = None
) -> Response:
    return csv_response(_operations_view(session, user.actor, date_from, date_to))
