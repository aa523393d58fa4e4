"""The JSON API (`/api/...`). Each route parses, calls one or two services and shapes the answer; the services check
the permission matrix and write the audit log. Logs name report ids and user names only, never record content."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy import text

from zhujian import __version__
from zhujian.domain.record import NO_RECORD_LIMITS, RECORD_LIMITS, Record
from zhujian.storage import services
from zhujian.storage.permissions import authorize
from zhujian.storage.values import LevelFilter
from zhujian.web.capacity import capacity_of
from zhujian.web.deps import ApiActor, DbSession, State, release_connection, require_web_permission
from zhujian.web.errors import WebError
from zhujian.web.qc_pages import require_no_blocking_qc
from zhujian.web.report_views import report_record, search_kb_conclusions, signatures_from_history
from zhujian.web.schemas import (
    AuditEntryOut,
    Health,
    KbConclusionOut,
    Offset,
    RecordStored,
    ReportId,
    ReportOut,
    ReportPatch,
    ReportStatusName,
    ReviewRequest,
    SignRequest,
    TokenRequest,
    TokenResponse,
    WorklistItem,
    WorklistPage,
    json_response,
)
from zhujian.web.security import attempt_login, issue_api_token

logger = logging.getLogger("zhujian.web.api")
router = APIRouter(prefix="/api")


@router.post("/auth/token", response_model=TokenResponse, tags=["auth"])
def issue_token(body: TokenRequest, request: Request, session: DbSession, state: State) -> TokenResponse:
    """Exchange a user name and password for a bearer token (valid 8 hours)."""
    actor = attempt_login(request, session, body.username, body.password, channel="API")
    if actor is None:
        raise WebError(401, "invalid_credentials", "用户名或密码错误", {"WWW-Authenticate": "Bearer"})
    token, expires = issue_api_token(session, state.secret_key, actor.user_id)
    logger.info("API token issued to user %s", actor.username)
    return TokenResponse(access_token=token, expires_at=expires, username=actor.username, role=actor.role)


@router.post("/records", response_model=RecordStored, status_code=201, tags=["records"])
def submit_record(
    body: dict[str, Any], request: Request, response: Response, session: DbSession, state: State, actor: ApiActor
) -> RecordStored:
    """Store one canonical Record (JSON) and its automatic draft. 201 for a new visit; 200 when the visit_id is
    known (a new record version; see the storage services for what happens to the report). Records above the
    ZHUJIAN_MAX_RECORD_* limits are refused with 422 naming the limit."""
    try:
        record = Record.model_validate(body, context={RECORD_LIMITS: capacity_of(request).record_limits})
    except ValidationError as exc:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "record", "message": _record_problem(e)}
            for e in exc.errors()
        ]
        first = fields[0]
        message = f"体检记录不正确：字段 {first['field']} {first['message']}"
        raise WebError(422, "validation_error", message, details={"fields": fields}) from None
    authorize(session, actor, "submit")  # before the engine runs for someone who may not submit
    release_connection(session)
    draft = services.build_draft(state.kb, record)
    summary = services.submit_record(session, record, kb=state.kb, actor=actor, draft=draft)
    if not summary.created:
        response.status_code = 200
    logger.info("record stored for report %s by %s (created=%s)", summary.report_id, actor.username, summary.created)
    return RecordStored.of(summary)


def _record_problem(error: Any) -> str:
    if error["type"] != "record_limit":
        return str(error["msg"])
    found = error.get("ctx") or {}
    setting = found.get("setting", "ZHUJIAN_MAX_TEXT_LENGTH")
    unit = {"ZHUJIAN_MAX_TEXT_LENGTH": "字符", "ZHUJIAN_MAX_PRIOR_VISITS": "次"}.get(setting, "项")
    return f"超过上限：{found.get('count')} {unit}，上限 {found.get('limit')} {unit}（设置 {setting}）"


def check_page_size(request: Request, limit: int) -> None:
    """The page size against ZHUJIAN_MAX_PAGE_SIZE (the query bounds are fixed at import; this one is a setting)."""
    largest = capacity_of(request).max_page_size
    if limit > largest:
        message = f"超过上限 {largest}（设置 ZHUJIAN_MAX_PAGE_SIZE）"
        raise WebError(
            422,
            "validation_error",
            f"请求数据不正确：字段 limit {message}",
            details={"fields": [{"field": "limit", "message": message}]},
        )


@router.get("/worklist", response_model=WorklistPage, tags=["reports"])
def get_worklist(
    request: Request,
    session: DbSession,
    actor: ApiActor,
    status: Annotated[list[ReportStatusName] | None, Query()] = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    level: LevelFilter | None = None,
    search: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=services.MAX_WORKLIST_LIMIT)] = 50,
    offset: Offset = 0,
) -> Response:
    """Reports in work order: critical values first, then class A, class B, the rest; oldest exam first."""
    check_page_size(request, limit)
    filters: dict[str, Any] = {
        "status": status or None,
        "date_from": date_from,
        "date_to": date_to,
        "level": level,
        "search": search,
    }
    rows = services.worklist(session, actor=actor, limit=limit, offset=offset, **filters)
    # A page that is not full is the last one: the total is known without counting.
    last_page = 0 < len(rows) < limit or (offset == 0 and not rows)
    total = offset + len(rows) if last_page else services.worklist_count(session, actor=actor, **filters)
    release_connection(session)  # here, in the route's worker thread: the session dependency then needs none
    page = WorklistPage(total=total, limit=limit, offset=offset, items=[WorklistItem.of(r) for r in rows])
    return json_response(page)


@router.get("/reports/{report_id}.pdf", tags=["reports"], response_class=Response)
def report_pdf(report_id: ReportId, session: DbSession, actor: ApiActor) -> Response:
    """The examinee's report as PDF, with the signatures of the current state."""
    require_web_permission(actor, "export")
    pdf = render_report_pdf(session, report_id, actor)
    logger.info("PDF of report %s rendered for %s", report_id, actor.username)
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="report-{report_id}.pdf"'}
    )


def render_report_pdf(session: Any, report_id: int, actor: Any) -> bytes:
    """Read what the PDF shows, give the connection back, then render (seconds of CPU, no database)."""
    from zhujian.render import render_patient_report_pdf

    detail = services.get_report(session, report_id, actor=actor)
    history = services.report_history(session, report_id, actor=actor)
    record = report_record(session, report_id, actor=actor)
    release_connection(session)
    signatures = signatures_from_history(detail.status, history)
    return render_patient_report_pdf(detail.content, record, signatures=signatures)


@router.get("/reports/{report_id}", response_model=ReportOut, tags=["reports"])
def get_report(report_id: ReportId, session: DbSession, actor: ApiActor) -> Response:
    report = services.get_report_json(session, report_id, actor=actor)
    release_connection(session)  # here, in the route's worker thread: the session dependency then needs none
    return ReportOut.json_of(report)


@router.patch("/reports/{report_id}", response_model=ReportOut, tags=["reports"])
def patch_report(
    report_id: ReportId, body: ReportPatch, session: DbSession, state: State, actor: ApiActor
) -> ReportOut:
    """Apply edit operations in order (edit / add / delete / merge / reorder) to the version the client read.
    A stale `expected_version` answers 409 with `current_version`; nothing is written then."""
    operations = [op.to_operation() for op in body.operations]
    detail = services.edit_report(
        session, report_id, operations, expected_version=body.expected_version, actor=actor, kb=state.kb
    )
    logger.info("report %s edited by %s (version %s)", report_id, actor.username, detail.version)
    return ReportOut.of(detail)


@router.post("/reports/{report_id}/sign", response_model=ReportOut, tags=["reports"])
def sign_report(
    report_id: ReportId, session: DbSession, state: State, actor: ApiActor, body: SignRequest | None = None
) -> ReportOut:
    expected = body.expected_version if body else None
    require_no_blocking_qc(session, state, report_id, actor)
    detail = services.sign_report(session, report_id, actor=actor, expected_version=expected)
    logger.info("report %s signed by %s", report_id, actor.username)
    return ReportOut.of(detail)


@router.post("/reports/{report_id}/review", response_model=ReportOut, tags=["reports"])
def review_report(report_id: ReportId, body: ReviewRequest, session: DbSession, actor: ApiActor) -> ReportOut:
    """Approve a signed report, or send it back with a reason (`decision: reject`, `reason` required)."""
    if body.decision == "reject" and not (body.reason or "").strip():
        raise WebError(
            422,
            "validation_error",
            "请求数据不正确：字段 reason 退回时必须填写退回原因",
            details={"fields": [{"field": "reason", "message": "退回时必须填写退回原因"}]},
        )
    detail = services.review_report(
        session,
        report_id,
        decision=body.decision,
        reason=body.reason,
        actor=actor,
        expected_version=body.expected_version,
    )
    logger.info("report %s reviewed (%s) by %s", report_id, body.decision, actor.username)
    return ReportOut.of(detail)


@router.post("/reports/{report_id}/publish", response_model=ReportOut, tags=["reports"])
def publish_report(
    report_id: ReportId, session: DbSession, actor: ApiActor, body: SignRequest | None = None
) -> ReportOut:
    expected = body.expected_version if body else None
    detail = services.publish_report(session, report_id, actor=actor, expected_version=expected)
    logger.info("report %s published by %s", report_id, actor.username)
    return ReportOut.of(detail)


@router.get("/reports/{report_id}/audit", response_model=list[AuditEntryOut], tags=["reports"])
def report_audit(report_id: ReportId, session: DbSession, actor: ApiActor) -> list[AuditEntryOut]:
    return [AuditEntryOut.of(e) for e in services.report_audit(session, report_id, actor=actor)]


@router.get("/reports/{report_id}/fhir", tags=["reports"])
def report_fhir(report_id: ReportId, session: DbSession, state: State, actor: ApiActor) -> dict[str, Any]:
    """The report as a FHIR R4 collection Bundle (final when signed, preliminary otherwise)."""
    from zhujian.adapters.fhir import report_from_dict, report_to_fhir_bundle

    require_web_permission(actor, "export")
    detail = services.get_report(session, report_id, actor=actor)
    record_json = report_record(session, report_id, actor=actor)
    release_connection(session)
    record = Record.model_validate(record_json, context={RECORD_LIMITS: NO_RECORD_LIMITS}) if record_json else None
    bundle = report_to_fhir_bundle(
        report_from_dict(detail.content), record, kb=state.kb, signed=detail.status in services.SIGNED_STATUSES
    )
    logger.info("FHIR bundle of report %s exported for %s", report_id, actor.username)
    return bundle


@router.get("/kb/conclusions", response_model=list[KbConclusionOut], tags=["knowledge base"])
def kb_conclusions(
    state: State,
    actor: ApiActor,
    q: Annotated[str, Query(min_length=1, max_length=50)],
    sex: Annotated[str | None, Query(pattern="^(male|female)$")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[KbConclusionOut]:
    """KB conclusions whose name (or id) contains `q`, for "add from the knowledge base"."""
    return [
        KbConclusionOut(
            id=d.id, name=d.name, level=d.level, system=d.system, sex=d.sex, follow_up=d.follow_up, advice=d.advice
        )
        for d in search_kb_conclusions(state.kb, q, sex=sex, limit=limit)
    ]


@router.get("/health", response_model=Health, tags=["service"])
def health(session: DbSession, state: State) -> Health:
    """Liveness and database reachability; needs no login."""
    try:
        session.execute(text("SELECT 1"))
        database = True
    except Exception:  # any driver error means "not reachable" here; the detail goes to the log
        logger.exception("health check: database not reachable")
        database = False
    return Health(
        status="ok" if database else "degraded", database=database, kb_version=state.kb.version, version=__version__
    )
