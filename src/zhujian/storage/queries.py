"""Small reads that several services share: display names of users, and a row of a report-bound table together with
the visit id and the pseudonymous person id it belongs to (what a worklist or a detail page shows beside it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from zhujian.storage.models import Person, Report, User, Visit


def display_names(session: Session, user_ids: set[int]) -> dict[int, str]:
    """User id -> display name, for the ids given (no query when there are none)."""
    if not user_ids:
        return {}
    return {uid: name for uid, name in session.execute(select(User.id, User.display_name).where(User.id.in_(user_ids)))}


def with_visit(entity: type[Any], report_id: InstrumentedAttribute[int]) -> Select[Any]:
    """`select(entity, visit_id, pseudonym)` joined through the report that `report_id` (a column of `entity`)
    names; the pseudonym is None for a visit without a person."""
    return (
        select(entity, Visit.visit_id, Person.pseudonym)
        .join(Report, report_id == Report.id)
        .join(Visit, Report.visit_pk == Visit.id)
        .outerjoin(Person, Visit.person_id == Person.id)
    )
