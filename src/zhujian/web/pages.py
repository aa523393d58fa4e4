"""The workbench pages (zh-CN, server-rendered; htmx swaps the conclusions panel after each edit). Every form post
carries the CSRF token; page routes call the same services as the API."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from zhujian.storage import services
from zhujian.storage.edits import (
    AddConclusion,
    DeleteConclusion,
    EditConclusion,
    EditOperation,
    MergeConclusions,
    ReorderConclusions,
)
from zhujian.storage.permissions import ROLE_LABELS
from zhujian.storage.users import create_session, revoke_session
from zhujian.storage.values import AuditEntry, ReportDetail, ReportStatus
from zhujian.web.api import render_report_pdf
from zhujian.web.capacity import MAX_DATABASE_ID
from zhujian.web.deps import CurrentPageUser, DbSession, PageUser, PostingPageUser, State, require_web_permission
from zhujian.web.display import ALL_REPORTS, Queue, queue_of
from zhujian.web.errors import WebError, csrf_failed
from zhujian.web.qc_pages import require_no_blocking_qc
from zhujian.web.report_views import (
    ACTION_LABELS,
    CHANGE_LABELS,
    FLAG_LABELS,
    LEVEL_LABELS,
    OBJECT_LABELS,
    PROVENANCE_LABELS,
    abnormal_first,
    audit_changes,
    highlighted_texts,
    reference_range,
    report_record,
    search_kb_conclusions,
)
from zhujian.web.schemas import ReportId
from zhujian.web.security import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    SessionPolicy,
    attempt_login,
    cookie_secure,
    token_hash,
    tokens_match,
)

logger = logging.getLogger("zhujian.web.pages")
router = APIRouter(include_in_schema=False)
WORKLIST_PAGE_SIZE = 50
AUDIT_PAGE_SIZE = 100
FAVICON = "/static/favicon.svg"
NEIGHBOR_WINDOW = 500


def _render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    base = {
        "status_labels": services.STATUS_LABELS,
        "level_labels": LEVEL_LABELS,
        "flag_labels": FLAG_LABELS,
        "provenance_labels": PROVENANCE_LABELS,
        "change_labels": CHANGE_LABELS,
        "role_labels": ROLE_LABELS,
        "object_labels": OBJECT_LABELS,
    }
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status_code
    )
    return response


def _safe_next(target: str | None) -> str:
    # Only local paths: an open redirect would let a link send a physician to a look-alike site after login.
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


# ------------------------------------------------------------------------------------------------ login


def _login_form(request: Request, next_path: str, error: str | None, status_code: int = 200) -> HTMLResponse:
    token, cookie = request.app.state.signer.new_login_csrf()
    response = _render(
        request,
        "login.html",
        {"csrf_token": token, "next": _safe_next(next_path), "error": error, "user": None},
        status_code=status_code,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE, cookie, max_age=3600, httponly=True, samesite="strict", secure=cookie_secure(request)
    )
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    return _login_form(request, next or "/", None)


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    signer = request.app.state.signer
    if not tokens_match(signer.read_login_csrf(request.cookies.get(LOGIN_CSRF_COOKIE)), csrf_token):
        raise csrf_failed()
    actor = attempt_login(request, session, username, password, channel="page")
    if actor is None:
        return _login_form(request, next, "用户名或密码错误", status_code=401)
    # A new random token at every login: a cookie planted before login (session fixation) is never promoted.
    policy: SessionPolicy = request.app.state.session_policy
    token, cookie = signer.new_session_token()
    create_session(session, user_id=actor.user_id, token_hash=token_hash(token), lifetime=policy.max_age)
    logger.info("user %s logged in", actor.username)
    redirect = RedirectResponse(_safe_next(next), status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(policy.max_age.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=cookie_secure(request),
    )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE)
    return redirect


@router.post("/logout")
def logout(request: Request, session: DbSession, user: PostingPageUser) -> Response:
    revoke_session(session, token_hash(user.session_token), reason="logout")
    logger.info("user %s logged out", user.actor.username)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, httponly=True, samesite="lax", secure=cookie_secure(request))
    return response


# ------------------------------------------------------------------------------------------------ worklist


@router.get("/", response_class=HTMLResponse)
def worklist_page(
    request: Request,
    session: DbSession,
    user: CurrentPageUser,
    status: Annotated[str | None, Query(max_length=20)] = None,
    search: Annotated[str | None, Query(max_length=64)] = None,
    page: Annotated[int, Query(ge=1, le=100000)] = 1,
) -> HTMLResponse:
    """The worklist opens on the role's own queue (what waits for its next step); `status` picks that queue
    ("mine"), every report ("all") or one status. A search without a chosen status looks through every report."""
    if not user.can("read"):
        return _render(
            request,
            "worklist.html",
            {"user": user, "rows": None},
        )
    queue = queue_of(user.actor.role)
    text = (search or "").strip() or None
    selected = _worklist_selection(status, queue, searching=text is not None)
    statuses: str | tuple[ReportStatus, ...] | None = None  # every report
    if selected in services.STATUS_LABELS:
        statuses = selected
    elif queue is not None and selected == queue.key:
        statuses = queue.statuses
    filters: dict[str, Any] = {"status": statuses, "search": text}
    rows = services.worklist(
        session, actor=user.actor, limit=WORKLIST_PAGE_SIZE, offset=(page - 1) * WORKLIST_PAGE_SIZE, **filters
    )
    total = services.worklist_count(session, actor=user.actor, **filters)
    counts = {s: services.worklist_count(session, actor=user.actor, status=s) for s in services.STATUS_LABELS}  # type: ignore[arg-type]
    return _render(
        request,
        "worklist.html",
        {
            "user": user,
            "rows": rows,
            "counts": counts,
            "all_count": sum(counts.values()),
            "queue": queue,
            "queue_count": sum(counts[s] for s in queue.statuses) if queue is not None else 0,
            "all_key": ALL_REPORTS,
            "selected": selected,
            "total": total,
            "search": search or "",
            "page": page,
            "pages": max(1, (total + WORKLIST_PAGE_SIZE - 1) // WORKLIST_PAGE_SIZE),
        },
    )


def _worklist_selection(status: str | None, queue: Queue | None, *, searching: bool) -> str:
    """The worklist's selection: a known status, the role's queue, or every report (the default for roles without
    a queue of their own, for searches, and for an unknown value)."""
    if status in services.STATUS_LABELS or status == ALL_REPORTS:
        return status
    if queue is not None and (status == queue.key or (status is None and not searching)):
        return queue.key
    return ALL_REPORTS


# ------------------------------------------------------------------------------------------------ review page


def _workspace_context(user: PageUser, detail: ReportDetail) -> dict[str, Any]:
    editable = detail.status in services.EDITABLE_STATUSES
    return {
        "user": user,
        "report": detail,
        "conclusions": detail.conclusions,
        "can_edit": editable and user.can("edit"),
        "can_sign": editable and user.can("sign"),
        "can_review": detail.status == "signed" and user.can("review"),
        "can_publish": detail.status == "reviewed" and user.can("publish"),
        "narrative": _narrative_view(detail.content),
    }


def _narrative_view(content: dict[str, Any]) -> dict[str, Any] | None:
    from zhujian.narration.workbench import narrative_view

    return narrative_view(content)


@router.get("/reports/{report_id}", response_class=HTMLResponse)
def review_page(request: Request, report_id: ReportId, session: DbSession, user: CurrentPageUser) -> HTMLResponse:
    detail = services.get_report(session, report_id, actor=user.actor)
    record = report_record(session, report_id, actor=user.actor)
    content = detail.content
    items = [(item, reference_range(item)) for item in abnormal_first(content.get("items") or [])]
    context = {
        **_workspace_context(user, detail),
        "items": items,
        "texts": highlighted_texts(record, content.get("findings") or []),
        "critical_alerts": content.get("critical") or [],
        "problems": content.get("problems") or [],
    }
    return _render(request, "review.html", context)


def _workspace(request: Request, user: PageUser, detail: ReportDetail) -> HTMLResponse:
    return _render(request, "_workspace.html", {**_workspace_context(user, detail), "oob_flash": True})


def _edit(
    request: Request, session: Any, state: Any, user: PageUser, report_id: int, version: int, op: EditOperation
) -> HTMLResponse:
    detail = services.edit_report(session, report_id, [op], expected_version=version, actor=user.actor, kb=state.kb)
    logger.info("report %s edited on the workbench by %s", report_id, user.actor.username)
    return _workspace(request, user, detail)


VersionField = Annotated[int, Form(ge=1, le=MAX_DATABASE_ID)]
ConclusionField = Annotated[str, Form(min_length=1, max_length=200)]


@router.post("/reports/{report_id}/edit", response_class=HTMLResponse)
def edit_conclusion(
    request: Request,
    report_id: ReportId,
    session: DbSession,
    state: State,
    user: PostingPageUser,
    expected_version: VersionField,
    conclusion_id: ConclusionField,
    name: Annotated[str | None, Form(max_length=200)] = None,
    advice: Annotated[str | None, Form(max_length=4000)] = None,
    follow_up: Annotated[str | None, Form(max_length=500)] = None,
) -> HTMLResponse:
    op = EditConclusion(conclusion_id, name=name, advice=advice, follow_up=follow_up)
    return _edit(request, session, state, user, report_id, expected_version, op)


@router.post("/reports/{report_id}/delete", response_class=HTMLResponse)
def delete_conclusion(
    request: Request,
    report_id: ReportId,
    session: DbSession,
    state: State,
    user: PostingPageUser,
    expected_version: VersionField,
    conclusion_id: ConclusionField,
) -> HTMLResponse:
    return _edit(request, session, state, user, report_id, expected_version, DeleteConclusion(conclusion_id))


@router.post("/reports/{report_id}/move", response_class=HTMLResponse)
def move_conclusion(
    request: Request,
    report_id: ReportId,
    session: DbSession,
    state: State,
    user: PostingPageUser,
    expected_version: VersionField,
    conclusion_id: ConclusionField,
    direction: Annotated[str, Form(pattern="^(up|down)$")],
) -> HTMLResponse:
    detail = services.get_report(session, report_id, actor=user.actor)
    ids = [str(c.get("id")) for c in detail.conclusions]
    if conclusion_id not in ids:
        raise WebError(422, "invalid_edit", "报告中没有这条结论，请刷新页面")
    index = ids.index(conclusion_id)
    target = index - 1 if direction == "up" else index + 1
    if not 0 <= target < len(ids):
        return _workspace(request, user, detail)  # already first / last: nothing to do
    ids[index], ids[target] = ids[target], ids[index]
    return _edit(request, session, state, user, report_id, expected_version, ReorderConclusions(tuple(ids)))


@router.post("/reports/{report_id}/add", response_class=HTMLResponse)
def add_conclusion(
    request: Request,
    report_id: ReportId,
    session: DbSession,
    state: State,
    user: PostingPageUser,
    expected_version: VersionField,
    kb_conclusion_id: ConclusionField,
) -> HTMLResponse:
    return _edit(request, session, state, user, report_id, expected_version, AddConclusion(kb_conclusion_id))


@router.post("/reports/{report_id}/merge", response_class=HTMLResponse)
def merge_conclusions(
    request: Request,
    report_id: ReportId,
    session: DbSession,
    state: State,
    user: PostingPageUser,
    expected_version: VersionField,
    conclusion_ids: Annotated[list[str] | None, Form()] = None,
) -> HTMLResponse:
    chosen = tuple(conclusion_ids or [])
    if len(chosen) < 2:
        raise WebError(422, "invalid_edit", "请至少勾选两条结论再合并")
    return _edit(request, session, state, user, report_id, expected_version, MergeConclusions(chosen))


@router.post("/reports/{report_id}/narrative/generate", response_class=HTMLResponse)
def generate_narrative_page(
    request: Request, report_id: int, session: DbSession, user: PostingPageUser, expected_version: VersionField
) -> HTMLResponse:
    """Write the narrative of the report as it stands: with the LLM narrator when ZHUJIAN_LLM_BASE_URL and
    ZHUJIAN_LLM_MODEL are set (verified, the template on failure), else with the template."""
    from zhujian.narration.llm import LLMNarrator
    from zhujian.narration.workbench import generate_narrative
    from zhujian.settings import load_settings

    detail = services.get_report(session, report_id, actor=user.actor)
    settings = load_settings()
    narrator = LLMNarrator() if settings.llm_base_url and settings.llm_model else None
    try:
        narrative = generate_narrative(detail.content, narrator)
    finally:
        if narrator is not None:
            narrator.close()
    detail = services.store_narrative(
        session, report_id, narrative, expected_version=expected_version, actor=user.actor
    )
    logger.info("report %s narrated (%s) on the workbench by %s", report_id, narrative["source"], user.actor.username)
    return _workspace(request, user, detail)


@router.post("/reports/{report_id}/narrative/edit", response_class=HTMLResponse)
def edit_narrative_page(
    request: Request,
    report_id: int,
    session: DbSession,
    user: PostingPageUser,
    expected_version: VersionField,
    summary: Annotated[str, Form(max_length=4000)],
    names: Annotated[list[str] | None, Form(max_length=200)] = None,
    explanations: Annotated[list[str] | None, Form(max_length=4000)] = None,
    advices: Annotated[list[str] | None, Form(max_length=4000)] = None,
    lifestyle: Annotated[str, Form(max_length=4000)] = "",
    follow_up: Annotated[str, Form(max_length=4000)] = "",
) -> HTMLResponse:
    names, explanations, advices = names or [], explanations or [], advices or []
    if not len(names) == len(explanations) == len(advices):
        raise WebError(400, "invalid_narrative", "每条结论的解读与建议须成对提交")
    sections = {
        "summary": summary.strip(),
        "conclusions": [
            {"name": n, "explanation": e.strip(), "advice": a.strip()}
            for n, e, a in zip(names, explanations, advices, strict=True)
            if e.strip() or a.strip()
        ],
        "lifestyle": [line.strip() for line in lifestyle.splitlines() if line.strip()],
        "follow_up": [line.strip() for line in follow_up.splitlines() if line.strip()],
    }
    detail = services.edit_narrative(session, report_id, sections, expected_version=expected_version, actor=user.actor)
    logger.info("report %s narrative edited on the workbench by %s", report_id, user.actor.username)
    return _workspace(request, user, detail)


@router.get("/reports/{report_id}/kb-search", response_class=HTMLResponse)
def kb_search(
    request: Request,
    report_id: ReportId,
    session: DbSession,
    state: State,
    user: CurrentPageUser,
    q: Annotated[str, Query(max_length=50)] = "",
) -> HTMLResponse:
    detail = services.get_report(session, report_id, actor=user.actor)
    present = {c.get("id") for c in detail.conclusions}
    results = [d for d in search_kb_conclusions(state.kb, q, sex=detail.content.get("sex")) if d.id not in present]
    return _render(request, "_kb_results.html", {"user": user, "report": detail, "results": results, "q": q})


def _back_to(report_id: int) -> RedirectResponse:
    return RedirectResponse(f"/reports/{report_id}", status_code=303)


@router.post("/reports/{report_id}/sign")
def sign(
    report_id: ReportId,
    session: DbSession,
    user: PostingPageUser,
    state: State,
    expected_version: VersionField,
    then: Annotated[str | None, Form(pattern="^next$")] = None,
) -> Response:
    """Sign (the page asks for confirmation first); with `then=next`, open the next report of the signer's queue."""
    require_no_blocking_qc(session, state, report_id, user.actor)
    following = _following_in_queue(session, user, report_id) if then == "next" else None
    services.sign_report(session, report_id, actor=user.actor, expected_version=expected_version)
    logger.info("report %s signed on the workbench by %s", report_id, user.actor.username)
    if then == "next":
        return RedirectResponse("/" if following is None else f"/reports/{following}", status_code=303)
    return _back_to(report_id)


def _worklist_ids(session: Session, user: PageUser, statuses: tuple[ReportStatus, ...] | None) -> list[int]:
    """The first NEIGHBOR_WINDOW report ids of the worklist (of `statuses`, or all), in worklist order."""
    rows = services.worklist(session, actor=user.actor, status=statuses, limit=NEIGHBOR_WINDOW)
    return [row.report_id for row in rows]


def _following_in_queue(session: Session, user: PageUser, report_id: int) -> int | None:
    """The report after `report_id` in the user's queue (or the worklist's first other one), None when none is
    left. Read before signing: the signed report leaves the queue."""
    queue = queue_of(user.actor.role)
    ids = _worklist_ids(session, user, queue.statuses if queue is not None else None)
    if report_id in ids:
        after = ids[ids.index(report_id) + 1 :]
        return after[0] if after else None
    return ids[0] if ids else None


@router.post("/reports/{report_id}/review")
def review(
    report_id: ReportId,
    session: DbSession,
    user: PostingPageUser,
    expected_version: VersionField,
    decision: Annotated[str, Form(pattern="^(approve|reject)$")],
    reason: Annotated[str | None, Form(max_length=2000)] = None,
) -> Response:
    services.review_report(
        session,
        report_id,
        decision="approve" if decision == "approve" else "reject",
        reason=reason,
        actor=user.actor,
        expected_version=expected_version,
    )
    logger.info("report %s reviewed (%s) on the workbench by %s", report_id, decision, user.actor.username)
    return _back_to(report_id)


@router.post("/reports/{report_id}/publish")
def publish(report_id: ReportId, session: DbSession, user: PostingPageUser, expected_version: VersionField) -> Response:
    services.publish_report(session, report_id, actor=user.actor, expected_version=expected_version)
    return _back_to(report_id)


@router.get("/reports/{report_id}/neighbor")
def neighbor(
    report_id: ReportId,
    session: DbSession,
    user: CurrentPageUser,
    direction: Annotated[str, Query(pattern="^(next|previous)$")] = "next",
) -> Response:
    """The next or previous report in worklist order (j / k on the review page): within the user's queue while the
    report is in it, else among every report."""
    queue = queue_of(user.actor.role)
    ids = _worklist_ids(session, user, queue.statuses) if queue is not None else []
    if report_id not in ids:
        ids = _worklist_ids(session, user, None)
    if report_id in ids:
        index = ids.index(report_id) + (1 if direction == "next" else -1)
        if 0 <= index < len(ids):
            return _back_to(ids[index])
    return RedirectResponse("/", status_code=303)


@router.get("/reports/{report_id}/report.pdf")
def pdf_preview(report_id: ReportId, session: DbSession, user: CurrentPageUser) -> Response:
    require_web_permission(user.actor, "export")
    pdf = render_report_pdf(session, report_id, user.actor)
    return Response(
        pdf, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="report-{report_id}.pdf"'}
    )


def _audit_rows(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    return [{"entry": e, "label": ACTION_LABELS.get(e.action, e.action), "changes": audit_changes(e)} for e in entries]


@router.get("/reports/{report_id}/audit", response_class=HTMLResponse)
def audit_page(request: Request, report_id: ReportId, session: DbSession, user: CurrentPageUser) -> HTMLResponse:
    rows = _audit_rows(services.report_audit(session, report_id, actor=user.actor))
    return _render(request, "audit.html", {"user": user, "report_id": report_id, "rows": rows})


@router.get("/audit", response_class=HTMLResponse)
def recent_audit_page(
    request: Request,
    session: DbSession,
    user: CurrentPageUser,
    before: Annotated[int | None, Query(ge=1, le=MAX_DATABASE_ID)] = None,
) -> HTMLResponse:
    """The newest audit entries of every object (the navigation's 审计记录), AUDIT_PAGE_SIZE at a time."""
    entries = services.recent_audit(session, actor=user.actor, limit=AUDIT_PAGE_SIZE, before_seq=before)
    older = entries[-1].seq if len(entries) == AUDIT_PAGE_SIZE else None
    context = {"user": user, "report_id": None, "rows": _audit_rows(entries), "older": older, "paged": before}
    return _render(request, "audit.html", context)


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for /favicon.ico before they read the page's icon link: send them to the one icon."""
    return RedirectResponse(FAVICON, status_code=301)
