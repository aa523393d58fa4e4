"""QC of the physician's conclusions in the workbench: a warning panel on the review page (before signing) and a QC
page for auditors listing signed reports with issues, with rates by kind, physician and date.

QC is computed from the stored record and the current conclusions each time (`zhujian.qc.qc_signed_report`), so it
always matches what is about to be signed; the QC page therefore looks at a bounded number of reports at a time.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase
from zhujian.qc import ISSUE_KINDS, ISSUE_LABELS, QcIssue, blocking_issues, qc_signed_report
from zhujian.storage import services
from zhujian.storage.permissions import ROLE_LABELS
from zhujian.storage.values import Actor, ReportDetail, ReportStatus
from zhujian.web.deps import ApiActor, CurrentPageUser, DbSession, State, WebState, require_web_permission
from zhujian.web.display import center_timezone
from zhujian.web.errors import WebError
from zhujian.web.report_views import report_record
from zhujian.web.schemas import ReportId

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api")
SIGNED: list[ReportStatus] = ["signed", "reviewed", "published"]
MAX_QC_REPORTS = 500


def _render(request: Request, name: str, context: dict[str, Any]) -> HTMLResponse:
    base = {"role_labels": ROLE_LABELS, "issue_labels": ISSUE_LABELS, "status_labels": services.STATUS_LABELS}
    response: HTMLResponse = request.app.state.templates.TemplateResponse(request, name, {**base, **context})
    return response


def report_qc(kb: KnowledgeBase, record: dict[str, Any] | None, detail: ReportDetail) -> list[QcIssue] | None:
    """The QC issues of a stored report's current conclusions, or None when its record cannot be read."""
    if record is None:
        return None
    try:
        parsed = Record.model_validate(record)
    except ValidationError:
        return None
    return qc_signed_report(parsed, detail.conclusions, kb, kb.center.qc)


def require_no_blocking_qc(session: Session, state: WebState, report_id: int, actor: Actor) -> None:
    """Refuse to sign while the current conclusions have issues of a kind the center made blocking
    (`qc.blocking` in the center file; none by default, so QC only warns)."""
    settings = state.kb.center.qc
    if not settings.blocking:
        return
    detail = services.get_report(session, report_id, actor=actor)
    issues = report_qc(state.kb, report_record(session, report_id, actor=actor), detail)
    blocking = blocking_issues(issues or [], settings)
    if blocking:
        shown = "；".join(f"{ISSUE_LABELS.get(i.kind, i.kind)}：{i.detail}" for i in blocking[:3])
        raise WebError(
            409,
            "qc_blocking",
            f"质控发现需处理的问题，暂不能签署：{shown}",
            details={"issues": [i.to_dict() for i in blocking]},
        )


@router.get("/reports/{report_id}/qc", response_class=HTMLResponse)
def qc_panel(
    request: Request, report_id: ReportId, session: DbSession, user: CurrentPageUser, state: State
) -> HTMLResponse:
    detail = services.get_report(session, report_id, actor=user.actor)
    issues = report_qc(state.kb, report_record(session, report_id, actor=user.actor), detail)
    blocking = blocking_issues(issues or [], state.kb.center.qc)
    return _render(request, "_qc.html", {"user": user, "issues": issues, "blocking": blocking})


class QcIssueOut(BaseModel):
    kind: str
    conclusion: str | None
    icd10: str | None
    detail: str


class ReportQcOut(BaseModel):
    report_id: int
    visit_id: str
    version: int
    checked: bool  # false when the stored record cannot be read (then no issue can be computed)
    issues: list[QcIssueOut]
    blocking: list[QcIssueOut]  # the issues of the kinds the center made blocking


@api_router.get("/reports/{report_id}/qc", response_model=ReportQcOut, tags=["reports"])
def report_qc_api(report_id: ReportId, session: DbSession, state: State, actor: ApiActor) -> ReportQcOut:
    """QC of the report's current conclusions against its record (`docs/qc.md`)."""
    detail = services.get_report(session, report_id, actor=actor)
    issues = report_qc(state.kb, report_record(session, report_id, actor=actor), detail)
    found = [QcIssueOut(**i.to_dict()) for i in issues or []]
    blocking = [QcIssueOut(**i.to_dict()) for i in blocking_issues(issues or [], state.kb.center.qc)]
    return ReportQcOut(
        report_id=report_id,
        visit_id=detail.visit_id,
        version=detail.version,
        checked=issues is not None,
        issues=found,
        blocking=blocking,
    )


@dataclass
class _Rate:
    reports: int = 0
    with_issue: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def add(self, issues: list[QcIssue]) -> None:
        self.reports += 1
        self.with_issue += bool(issues)
        self.kinds.update({i.kind for i in issues})

    @property
    def rate(self) -> float:
        return self.with_issue / self.reports if self.reports else 0.0


@router.get("/qc", response_class=HTMLResponse)
def qc_page(
    request: Request,
    session: DbSession,
    user: CurrentPageUser,
    state: State,
    date_from: Annotated[dt.date | None, Query()] = None,
    date_to: Annotated[dt.date | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_QC_REPORTS)] = 200,
) -> HTMLResponse:
    """Signed reports (exam date range, at most `limit`) with their QC issues and the issue rates."""
    require_web_permission(user.actor, "read_audit")
    rows = services.worklist(
        session, actor=user.actor, status=SIGNED, date_from=date_from, date_to=date_to, limit=limit
    )
    overall = _Rate()
    by_physician: dict[str, _Rate] = defaultdict(_Rate)
    by_date: dict[str, _Rate] = defaultdict(_Rate)
    listed: list[dict[str, Any]] = []
    unreadable = 0
    zone = center_timezone(request)  # a report without an exam date counts on the center's day of signing
    for row in rows:
        detail = services.get_report(session, row.report_id, actor=user.actor)
        issues = report_qc(state.kb, report_record(session, row.report_id, actor=user.actor), detail)
        if issues is None:
            unreadable += 1
            continue
        physician = detail.signed_by or "（未知）"
        day = row.exam_date or (detail.signed_at.astimezone(zone).date() if detail.signed_at else None)
        overall.add(issues)
        by_physician[physician].add(issues)
        by_date[day.isoformat() if day else "（无日期）"].add(issues)
        if issues:
            listed.append({"row": row, "physician": physician, "issues": issues})
    context = {
        "user": user,
        "kinds": ISSUE_KINDS,
        "overall": overall,
        "by_physician": sorted(by_physician.items()),
        "by_date": sorted(by_date.items()),
        "listed": listed,
        "unreadable": unreadable,
        "date_from": date_from,
        "date_to": date_to,
        "limit": limit,
    }
    return _render(request, "qc.html", context)
