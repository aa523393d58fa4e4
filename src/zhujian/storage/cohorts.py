"""Cohorts for group (团检) reports: the current reports of a date range (and an employer), read in batches.

Aggregation happens in `zhujian.group`; this module only selects, authorizes and audits. Every group report built
from the database is audited (who, which filter, how many people), never which people.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhujian.storage.audit import append_audit
from zhujian.storage.models import Report
from zhujian.storage.permissions import authorize
from zhujian.storage.values import Actor

SIGNED_STATUSES = ("signed", "reviewed", "published")


@dataclass(frozen=True, slots=True)
class CohortFilter:
    date_from: dt.date
    date_to: dt.date
    employer: str | None = None
    signed_only: bool = True

    def describe(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from.isoformat(),
            "date_to": self.date_to.isoformat(),
            "employer": self.employer,
            "signed_only": self.signed_only,
        }


def cohort_reports(session: Session, cohort: CohortFilter, *, actor: Actor) -> list[dict[str, Any]]:
    """The report contents of the cohort (authorized as `group_report`; the selection is audited)."""
    authorize(session, actor, "group_report")
    reports = list(_contents(session, cohort))
    append_audit(
        session,
        actor=actor,
        action="group.report",
        object_type="cohort",
        object_id=f"{cohort.date_from.isoformat()}..{cohort.date_to.isoformat()}",
        before=None,
        after={**cohort.describe(), "reports": len(reports)},
    )
    return reports


def _contents(session: Session, cohort: CohortFilter) -> Iterator[dict[str, Any]]:
    query = (
        select(Report.content)
        .where(Report.sort_date >= cohort.date_from, Report.sort_date <= cohort.date_to)
        .order_by(Report.id)
        .execution_options(yield_per=500)
    )
    if cohort.signed_only:
        query = query.where(Report.status.in_(SIGNED_STATUSES))
    for content in session.scalars(query):
        if cohort.employer is not None and content.get("employer") != cohort.employer:
            continue
        yield content
