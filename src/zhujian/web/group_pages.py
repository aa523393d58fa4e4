"""Group (团检) report pages: a cohort filter (exam date range, employer) and the report as HTML, PDF, CSV or JSON.

Only roles with `group_report` see it; the numbers come from `zhujian.group` with small cells suppressed, exactly as
`zhujian group` prints them for the same reports.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from zhujian.group.aggregate import DEFAULT_MIN_CELL, build_group_report, merged_part_lines
from zhujian.storage.cohorts import CohortFilter, cohort_reports
from zhujian.storage.db import session_scope
from zhujian.storage.permissions import ROLE_LABELS
from zhujian.storage.values import Actor
from zhujian.web.deps import CurrentPageUser, require_web_permission, web_state

router = APIRouter(include_in_schema=False)
MAX_RANGE_DAYS = 3 * 366
FORMATS = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
}


def _cohort(
    date_from: dt.date | None, date_to: dt.date | None, employer: str | None, signed_only: bool
) -> CohortFilter:
    today = dt.date.today()
    end = date_to or today
    start = date_from or end.replace(month=1, day=1)
    if start > end:
        start, end = end, start
    if (end - start).days > MAX_RANGE_DAYS:
        start = end - dt.timedelta(days=MAX_RANGE_DAYS)
    return CohortFilter(start, end, (employer or "").strip() or None, signed_only)


def _cohort_contents(request: Request, cohort: CohortFilter, actor: Actor) -> list[dict[str, Any]]:
    # A session of its own, closed before the aggregation and rendering: no connection is held across slow work.
    with session_scope(web_state(request).session_factory) as session:
        return cohort_reports(session, cohort, actor=actor)


@dataclass(frozen=True, slots=True)
class CohortQuery:
    """The filter of the group page and its downloads, from the query string."""

    cohort: CohortFilter
    min_cell: int


def cohort_query(
    date_from: Annotated[dt.date | None, Query()] = None,
    date_to: Annotated[dt.date | None, Query()] = None,
    employer: Annotated[str | None, Query(max_length=200)] = None,
    signed_only: Annotated[bool, Query()] = True,
    min_cell: Annotated[int, Query(ge=1, le=100)] = DEFAULT_MIN_CELL,
) -> CohortQuery:
    return CohortQuery(_cohort(date_from, date_to, employer, signed_only), min_cell)


Cohort = Annotated[CohortQuery, Depends(cohort_query)]


@router.get("/group", response_class=HTMLResponse)
def group_page(
    request: Request, user: CurrentPageUser, query: Cohort, show: Annotated[bool, Query()] = False
) -> HTMLResponse:
    require_web_permission(user.actor, "group_report")
    cohort, min_cell = query.cohort, query.min_cell
    group: dict[str, Any] | None = None
    if show:
        group = build_group_report(
            _cohort_contents(request, cohort, user.actor),
            min_cell=min_cell,
            part_lines=merged_part_lines(web_state(request).kb),
        )
    response: HTMLResponse = request.app.state.templates.TemplateResponse(
        request,
        "group.html",
        {"user": user, "cohort": cohort, "group": group, "min_cell": min_cell, "role_labels": ROLE_LABELS},
    )
    return response


@router.get("/group/report.{fmt}")
def group_report_file(request: Request, fmt: str, user: CurrentPageUser, query: Cohort) -> Response:
    require_web_permission(user.actor, "group_report")
    if fmt not in FORMATS:
        return Response(status_code=404)
    cohort, min_cell = query.cohort, query.min_cell
    title = f"{cohort.employer or '全部受检者'} 团体健康体检报告"
    group = build_group_report(
        _cohort_contents(request, cohort, user.actor),
        min_cell=min_cell,
        title=title,
        part_lines=merged_part_lines(web_state(request).kb),
    )
    from zhujian.group.render import group_csv, render_group_html, render_group_pdf

    body: bytes
    if fmt == "html":
        body = render_group_html(group).encode("utf-8")
    elif fmt == "pdf":
        body = render_group_pdf(group)
    elif fmt == "csv":
        body = group_csv(group).encode("utf-8-sig")
    else:
        body = json.dumps(group, ensure_ascii=False, indent=1).encode("utf-8")
    name = f"group-{cohort.date_from.isoformat()}-{cohort.date_to.isoformat()}.{fmt}"
    disposition = "inline" if fmt in ("html", "pdf") else "attachment"
    return Response(
        body, media_type=FORMATS[fmt], headers={"Content-Disposition": f'{disposition}; filename="{name}"'}
    )
