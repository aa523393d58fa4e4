"""Workbench services: store records, list the worklist, edit, sign, review and publish reports.

Every function takes a `Session` and the acting user (`Actor`), checks the permission matrix, and never commits:
the caller owns the transaction (see `zhujian.storage.db.session_scope`), so an error leaves nothing behind once the
caller rolls back. Every write appends an audit entry with the state before and after.

Report life cycle (status):
    draft (auto) ──edit──▶ edited ──sign──▶ signed ──review approve──▶ reviewed ──publish──▶ published
      │                      ▲                 │
      └────────sign──────────┼─────────────────┤ review reject (with a reason)
                             └──edit── rejected ◀┘   (rejected is editable and can be signed again)

Resubmitting a record with a known visit_id stores a new raw record version. While the report is still a draft,
edited or rejected, a new auto draft replaces its conclusions (the physician's earlier versions stay in
`report_versions`; the version bump makes an editor that is still open get a VersionConflict instead of overwriting
silently). Once signed (signed, reviewed, published) the signed report is kept unchanged and `has_newer_data` is set
so that the worklist shows that newer data arrived; `regenerate_report` builds a new draft from the newest data
after the report has been sent back.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import ColumnElement, Select, Table, Text, bindparam, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased
from sqlalchemy.orm.exc import StaleDataError

from zhujian.domain.record import NO_RECORD_LIMITS, RECORD_LIMITS, Record
from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.run import build_report
from zhujian.storage.audit import append_audit, audit_entries_for, content_hash, to_audit_entry
from zhujian.storage.edits import (
    EditOperation,
    apply_operations,
    conclusion_summary,
    report_level,
    with_auto_provenance,
    worklist_priority,
)
from zhujian.storage.errors import InvalidTransition, NotFound, SelfReviewForbidden, VersionConflict
from zhujian.storage.models import (
    AuditLogEntry,
    Person,
    PersonIdentity,
    RawRecord,
    Report,
    ReportVersion,
    User,
    Visit,
    utc_now,
)
from zhujian.storage.permissions import authorize
from zhujian.storage.queries import display_names
from zhujian.storage.values import (
    Actor,
    AuditEntry,
    LevelFilter,
    PersonIdentityInfo,
    ReportDetail,
    ReportJson,
    ReportStatus,
    ReportSummary,
    ReportVersionInfo,
    ReviewDecision,
    WorklistRow,
)

STATUS_LABELS: dict[str, str] = {
    "draft": "草稿",
    "edited": "已修改",
    "signed": "已签署",
    "reviewed": "已审核",
    "published": "已发布",
    "rejected": "已退回",
}
EDITABLE_STATUSES = frozenset({"draft", "edited", "rejected"})
SIGNED_STATUSES = frozenset({"signed", "reviewed", "published"})
MAX_WORKLIST_LIMIT = 500
MAX_REJECTION_REASON = 2000


# ---------------------------------------------------------------------------------------------------- records


def build_draft(kb: KnowledgeBase, record: Record) -> dict[str, Any]:
    """The auto draft of a record (the engine's report with provenance): CPU work that needs no database, so a
    caller can build it before it opens its transaction (see `submit_record`)."""
    return with_auto_provenance(build_report(kb, record).to_dict())


def submit_record(
    session: Session, record: Record, *, kb: KnowledgeBase, actor: Actor, draft: dict[str, Any] | None = None
) -> ReportSummary:
    """Store a checkup record and its auto draft report (`draft`, built here with `build_draft` when not given).

    A new visit_id creates the visit, raw record version 1 and a draft report (version 1). A known visit_id stores
    the next raw record version and then either replaces the draft (draft, edited, rejected) or keeps a signed
    report and sets `has_newer_data` (signed, reviewed, published); see the module docstring.

    Safe under concurrency: the person and the visit are inserted with "insert unless it exists", and the visit row
    is locked before anything else of the visit is read, so concurrent submissions of one visit_id follow each
    other (one creates, the others are resubmissions) and one new person_id makes one person.
    """
    authorize(session, actor, "submit")
    content = draft if draft is not None else build_draft(kb, record)
    record_json = record.model_dump(mode="json")
    person = _person_for(session, record.person_id)
    now = utc_now()

    created = _insert_if_absent(
        session,
        Visit.__table__,
        "visit_id",
        {"visit_id": record.visit_id, "sex": record.sex, "created_at": now, "updated_at": now},
    )
    visit = session.scalars(
        select(Visit)
        .where(Visit.visit_id == record.visit_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    visit.person_id = person.id if person else None
    visit.exam_date = record.exam_date
    visit.sex = record.sex
    visit.age = record.age_years()
    visit.updated_at = now
    session.flush()

    last_version = session.scalar(select(func.max(RawRecord.version)).where(RawRecord.visit_pk == visit.id)) or 0
    raw = RawRecord(
        visit_pk=visit.id,
        version=last_version + 1,
        record=record_json,
        record_hash=content_hash(record_json),
        received_at=now,
        received_by_id=actor.user_id,
    )
    session.add(raw)
    session.flush()

    draft_replaced = False
    if created:
        report = Report(visit_pk=visit.id, status="draft", version=1, has_newer_data=False, created_at=now)
        _set_content(report, content, raw, visit, now)
        session.add(report)
        session.flush()
        _add_version(session, report, change="auto_draft", actor=None, note=None)
        append_audit(
            session,
            actor=actor,
            action="record.submit",
            object_type="report",
            object_id=report.id,
            before=None,
            after={**_audit_state(report, with_conclusions=True), **_raw_state(visit, raw)},
        )
    else:
        report = _load_report_for_visit(session, visit.id)
        before = _audit_state(report, with_conclusions=report.status in EDITABLE_STATUSES)
        if report.status in SIGNED_STATUSES:
            report.has_newer_data = True
            report.updated_at = now
            _flush_report(session, report, report.version)
            after = _audit_state(report)
        else:
            old_version = report.version
            report.version = old_version + 1
            report.status = "draft"
            report.has_newer_data = False
            _set_content(report, content, raw, visit, now)
            _flush_report(session, report, old_version)
            _add_version(session, report, change="auto_update", actor=None, note=None)
            draft_replaced = True
            after = _audit_state(report, with_conclusions=True)
        append_audit(
            session,
            actor=actor,
            action="record.resubmit",
            object_type="report",
            object_id=report.id,
            before=before,
            after={**after, **_raw_state(visit, raw), "draft_replaced": draft_replaced},
        )
    # The alert loop (zhujian.alerts) builds on storage, so it is imported when used, not at module load.
    from zhujian.alerts.hooks import report_stored

    report_stored(session, report.id, kb=kb, actor=actor, content_changed=created or draft_replaced)
    return ReportSummary(
        report_id=report.id,
        visit_id=visit.visit_id,
        status=cast(ReportStatus, report.status),
        version=report.version,
        raw_record_version=raw.version,
        highest_level=report.highest_level,
        critical=report.critical,
        has_newer_data=report.has_newer_data,
        created=created,
        draft_replaced=draft_replaced,
    )


def _person_for(session: Session, pseudonym: str | None) -> Person | None:
    if not pseudonym:
        return None
    person = session.scalars(select(Person).where(Person.pseudonym == pseudonym)).one_or_none()
    if person is None:
        _insert_if_absent(session, Person.__table__, "pseudonym", {"pseudonym": pseudonym, "created_at": utc_now()})
        person = session.scalars(select(Person).where(Person.pseudonym == pseudonym)).one()
    return person


def _insert_if_absent(session: Session, table: Any, key: str, values: dict[str, Any]) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING; True when this call inserted the row. When a concurrent transaction
    has inserted the same key and not committed yet, PostgreSQL waits for it instead of raising a unique violation,
    and then sees its row."""
    assert isinstance(table, Table)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).values(**values).on_conflict_do_nothing(index_elements=[key])
    result = session.execute(statement.returning(table.c.id))
    return result.first() is not None


def _raw_state(visit: Visit, raw: RawRecord) -> dict[str, Any]:
    return {"visit_id": visit.visit_id, "raw_record_version": raw.version, "record_hash": raw.record_hash}


def _set_content(report: Report, content: dict[str, Any], raw: RawRecord, visit: Visit, now: dt.datetime) -> None:
    """Store the auto draft built from `raw` and refresh every column derived from it."""
    _update_content(report, content, now)
    report.raw_record_id = raw.id
    # Unknown exam dates sort (and filter) by the day the record arrived.
    report.sort_date = visit.exam_date or raw.received_at.date()


def _update_content(report: Report, content: dict[str, Any], now: dt.datetime) -> None:
    """Store a new current content and refresh the worklist columns derived from it."""
    conclusions = content.get("conclusions", [])
    highest_level, critical = report_level(conclusions)
    report.content = content
    report.content_hash = content_hash(content)
    report.highest_level = highest_level
    report.critical = critical
    report.priority = worklist_priority(highest_level, critical)
    report.summary = conclusion_summary(conclusions)
    report.conclusion_count = len(conclusions)
    report.updated_at = now


def _add_version(session: Session, report: Report, *, change: str, actor: Actor | None, note: str | None) -> None:
    session.add(
        ReportVersion(
            report_id=report.id,
            version=report.version,
            status=report.status,
            change=change,
            content=report.content,
            content_hash=report.content_hash,
            raw_record_id=report.raw_record_id,
            actor_id=actor.user_id if actor else None,
            note=note,
            created_at=report.updated_at,
        )
    )
    session.flush()


def _flush_report(session: Session, report: Report, expected_version: int) -> None:
    """Write the report; a concurrent writer that got there first turns into a VersionConflict. (The services
    lock the report row before they read it, so this is the last line of defence, not the usual path.)"""
    report_id = report.id  # read before the flush: a failed flush expires the object and the session is unusable
    try:
        session.flush()
    except StaleDataError as exc:
        raise VersionConflict(report_id, expected_version, None) from exc


def _audit_state(report: Report, *, with_conclusions: bool = False) -> dict[str, Any]:
    """What the audit log keeps of a report: its status fields, the hash of its full content, and (for content
    changes) the conclusions' wording and provenance. Never names: reports hold pseudonymous ids only."""
    state: dict[str, Any] = {
        "status": report.status,
        "version": report.version,
        "highest_level": report.highest_level,
        "critical": report.critical,
        "has_newer_data": report.has_newer_data,
        "content_hash": report.content_hash,
    }
    if with_conclusions:
        state["conclusions"] = [
            {
                "id": c.get("id"),
                "name": c.get("name"),
                "level": c.get("level"),
                "critical": c.get("critical"),
                "provenance": c.get("provenance"),
                "edited_fields": c.get("edited_fields", []),
                "merged_from": c.get("merged_from", []),
                "follow_up": c.get("follow_up"),
                "advice": c.get("advice"),
            }
            for c in report.content.get("conclusions", [])
        ]
    return state


# ---------------------------------------------------------------------------------------------------- reading


def worklist(
    session: Session,
    *,
    actor: Actor,
    status: ReportStatus | Sequence[ReportStatus] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    level: LevelFilter | None = None,
    search: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[WorklistRow]:
    """One page of reports: critical first, then class A, class B, the rest; then by exam date (oldest first, the
    day of arrival when the record has no exam date), then by report id.

    Filters: status (one or several), exam date range (inclusive), level ("A" includes critical ones, "B", "none"),
    and `search`, any part of the visit id or of the person's pseudonymous id (letter case ignored). Only indexed
    columns are read; on PostgreSQL a search of three characters or more uses the ids' trigram indexes.
    """
    authorize(session, actor, "read")
    if not 1 <= limit <= MAX_WORKLIST_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_WORKLIST_LIMIT}, not {limit}")
    if offset < 0:
        raise ValueError(f"offset must not be negative, not {offset}")
    conditions = _worklist_conditions(
        status=status, date_from=date_from, date_to=date_to, level=level, search=search, dialect=_dialect(session)
    )
    query = (
        select(
            Report.id,
            Visit.visit_id,
            Person.pseudonym,
            Visit.sex,
            Visit.age,
            Visit.exam_date,
            Report.status,
            Report.version,
            Report.highest_level,
            Report.critical,
            Report.has_newer_data,
            Report.summary,
            Report.conclusion_count,
            Report.updated_at,
        )
        .join(Visit, Report.visit_pk == Visit.id)
        .outerjoin(Person, Visit.person_id == Person.id)
        .where(*conditions)
        .order_by(Report.priority, Report.sort_date, Report.id)
        .limit(limit)
        .offset(offset)
    )
    return [
        WorklistRow(
            report_id=row[0],
            visit_id=row[1],
            person_pseudonym=row[2],
            sex=row[3],
            age=row[4],
            exam_date=row[5],
            status=cast(ReportStatus, row[6]),
            version=row[7],
            highest_level=row[8],
            critical=row[9],
            has_newer_data=row[10],
            summary=row[11],
            conclusion_count=row[12],
            updated_at=row[13],
        )
        for row in session.execute(query)
    ]


def worklist_count(
    session: Session,
    *,
    actor: Actor,
    status: ReportStatus | Sequence[ReportStatus] | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    level: LevelFilter | None = None,
    search: str | None = None,
) -> int:
    """How many reports match the worklist filters (for paging)."""
    authorize(session, actor, "read")
    conditions = _worklist_conditions(
        status=status, date_from=date_from, date_to=date_to, level=level, search=search, dialect=_dialect(session)
    )
    return session.scalar(select(func.count(Report.id)).where(*conditions)) or 0


_LEVEL_PRIORITIES: dict[str, tuple[int, ...]] = {"A": (0, 1), "B": (2,), "none": (3,)}


def _worklist_conditions(
    *,
    status: ReportStatus | Sequence[ReportStatus] | None,
    date_from: dt.date | None,
    date_to: dt.date | None,
    level: LevelFilter | None,
    search: str | None,
    dialect: str,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if isinstance(status, str):
        conditions.append(Report.status == status)
    elif status is not None:
        conditions.append(Report.status.in_(list(status)))
    if date_from is not None:
        conditions.append(Report.sort_date >= date_from)
    if date_to is not None:
        conditions.append(Report.sort_date <= date_to)
    if level is not None:
        if level not in _LEVEL_PRIORITIES:
            raise ValueError(f"level must be 'A', 'B' or 'none', not {level!r}")
        priorities = _LEVEL_PRIORITIES[level]
        conditions.append(Report.priority.between(priorities[0], priorities[-1]))
    if search and search.strip():
        pattern = _like_substring(search.strip())
        # Two subqueries instead of an OR across joined tables: each reads one narrow table once.
        visits_by_id = select(Visit.id).where(_id_contains(Visit.visit_id, pattern, dialect))
        persons = select(Person.id).where(_id_contains(Person.pseudonym, pattern, dialect))
        visits_by_person = select(Visit.id).where(Visit.person_id.in_(persons))
        conditions.append(Report.visit_pk.in_(visits_by_id.union(visits_by_person)))
    return conditions


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _id_contains(column: Any, pattern: str, dialect: str) -> ColumnElement[bool]:
    """`column` matches the LIKE `pattern`, letter case ignored: SQLite's LIKE does that for ASCII letters already
    (and scans); on PostgreSQL, ILIKE on the column as it is, so that its trigram index (migration 0005) serves any
    part of three characters or more."""
    if dialect == "postgresql":
        condition: ColumnElement[bool] = column.ilike(pattern, escape="\\")
    else:
        condition = column.like(pattern, escape="\\")
    return condition


def _like_substring(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def get_report(session: Session, report_id: int, *, actor: Actor) -> ReportDetail:
    """The current state of one report with its full JSON."""
    authorize(session, actor, "read")
    return _detail(session, _load_report(session, report_id, for_update=False))


@functools.cache
def _report_json_statement() -> Select[*tuple[Any, ...]]:
    """The statement of `get_report_json`, built once: building a select with three aliases costs more CPU than
    running it."""
    signer, reviewer, publisher = aliased(User), aliased(User), aliased(User)
    return (
        select(
            Report.id,
            Visit.visit_id,
            Person.pseudonym,
            Report.status,
            Report.version,
            Report.highest_level,
            Report.critical,
            Report.has_newer_data,
            Report.content_hash,
            Report.rejection_reason,
            signer.display_name,
            Report.signed_at,
            reviewer.display_name,
            Report.reviewed_at,
            publisher.display_name,
            Report.published_at,
            Report.created_at,
            Report.updated_at,
            sql_cast(Report.content, Text),
        )
        .join(Visit, Report.visit_pk == Visit.id)
        .outerjoin(Person, Visit.person_id == Person.id)
        .outerjoin(signer, Report.signed_by_id == signer.id)
        .outerjoin(reviewer, Report.reviewed_by_id == reviewer.id)
        .outerjoin(publisher, Report.published_by_id == publisher.id)
        .where(Report.id == bindparam("report_id"))
    )


def get_report_json(session: Session, report_id: int, *, actor: Actor) -> ReportJson:
    """What `get_report` returns, read in one statement, with the content as stored JSON text (for the API's report
    read, the busiest request of the workbench)."""
    authorize(session, actor, "read")
    row = session.execute(_report_json_statement(), {"report_id": report_id}).one_or_none()
    if row is None:
        raise NotFound("report", report_id)
    return ReportJson(
        report_id=row[0],
        visit_id=row[1],
        person_pseudonym=row[2],
        status=cast(ReportStatus, row[3]),
        version=row[4],
        highest_level=row[5],
        critical=row[6],
        has_newer_data=row[7],
        content_hash=row[8],
        rejection_reason=row[9],
        signed_by=row[10],
        signed_at=row[11],
        reviewed_by=row[12],
        reviewed_at=row[13],
        published_by=row[14],
        published_at=row[15],
        created_at=row[16],
        updated_at=row[17],
        content_json=row[18],
    )


def find_report_id(session: Session, visit_id: str, *, actor: Actor) -> int:
    """The report id of a visit id (NotFound when the visit is unknown)."""
    authorize(session, actor, "read")
    report_id = session.scalar(
        select(Report.id).join(Visit, Report.visit_pk == Visit.id).where(Visit.visit_id == visit_id)
    )
    if report_id is None:
        raise NotFound("visit", visit_id)
    return report_id


def report_history(session: Session, report_id: int, *, actor: Actor) -> list[ReportVersionInfo]:
    """Every saved state of a report, oldest first (without the JSON; see `report_version_content`)."""
    authorize(session, actor, "read")
    _load_report(session, report_id, for_update=False)
    rows = session.execute(
        select(ReportVersion, User.display_name)
        .outerjoin(User, ReportVersion.actor_id == User.id)
        .where(ReportVersion.report_id == report_id)
        .order_by(ReportVersion.version)
    )
    return [
        ReportVersionInfo(
            version=v.version,
            status=cast(ReportStatus, v.status),
            change=v.change,
            actor=name,
            note=v.note,
            content_hash=v.content_hash,
            created_at=v.created_at,
        )
        for v, name in rows
    ]


def report_version_content(session: Session, report_id: int, version: int, *, actor: Actor) -> dict[str, Any]:
    """The full report JSON as it was saved in `version` (e.g. exactly what was signed)."""
    authorize(session, actor, "read")
    row = session.scalars(
        select(ReportVersion).where(ReportVersion.report_id == report_id, ReportVersion.version == version)
    ).one_or_none()
    if row is None:
        raise NotFound("report", f"{report_id} v{version}")
    return dict(row.content)


def report_audit(session: Session, report_id: int, *, actor: Actor) -> list[AuditEntry]:
    """The audit entries of one report, oldest first."""
    authorize(session, actor, "read_audit")
    _load_report(session, report_id, for_update=False)
    return audit_entries_for(session, "report", report_id)


def recent_audit(
    session: Session, *, actor: Actor, limit: int = 100, before_seq: int | None = None
) -> list[AuditEntry]:
    """The newest audit entries of every object, newest first; `before_seq` pages back to older ones."""
    authorize(session, actor, "read_audit")
    if not 1 <= limit <= MAX_WORKLIST_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_WORKLIST_LIMIT}, not {limit}")
    query = select(AuditLogEntry).order_by(AuditLogEntry.id.desc()).limit(limit)
    if before_seq is not None:
        query = query.where(AuditLogEntry.id < before_seq)
    return [to_audit_entry(row) for row in session.scalars(query)]


def _load_report(session: Session, report_id: int, *, for_update: bool = True) -> Report:
    """The stored report. populate_existing: the version compared with expected_version must be the stored one,
    not a cached copy. for_update (the writing services): lock the row until commit, so that of two concurrent
    writers of one version the second waits, then reads the new version and gets a clean VersionConflict (on
    SQLite the write transaction holds the database's write lock already)."""
    report = session.get(Report, report_id, populate_existing=True, with_for_update=for_update)
    if report is None:
        raise NotFound("report", report_id)
    return report


def _load_report_for_visit(session: Session, visit_pk: int) -> Report:
    report = session.scalars(
        select(Report).where(Report.visit_pk == visit_pk).with_for_update().execution_options(populate_existing=True)
    ).one()
    return report


def _detail(session: Session, report: Report) -> ReportDetail:
    visit = session.get(Visit, report.visit_pk)
    assert visit is not None  # guaranteed by the foreign key
    pseudonym = (
        session.scalar(select(Person.pseudonym).where(Person.id == visit.person_id)) if visit.person_id else None
    )
    raw_version = session.scalar(select(RawRecord.version).where(RawRecord.id == report.raw_record_id))
    user_ids = {i for i in (report.signed_by_id, report.reviewed_by_id, report.published_by_id) if i is not None}
    names = display_names(session, user_ids)
    return ReportDetail(
        report_id=report.id,
        visit_id=visit.visit_id,
        person_pseudonym=pseudonym,
        status=cast(ReportStatus, report.status),
        version=report.version,
        highest_level=report.highest_level,
        critical=report.critical,
        has_newer_data=report.has_newer_data,
        content=_content_copy(session, report),
        content_hash=report.content_hash,
        raw_record_version=raw_version or 0,
        rejection_reason=report.rejection_reason,
        signed_by=names.get(report.signed_by_id) if report.signed_by_id else None,
        signed_at=report.signed_at,
        reviewed_by=names.get(report.reviewed_by_id) if report.reviewed_by_id else None,
        reviewed_at=report.reviewed_at,
        published_by=names.get(report.published_by_id) if report.published_by_id else None,
        published_at=report.published_at,
        created_at=report.created_at,
        updated_at=report.updated_at,
    )


def _deep_copy_json(value: dict[str, Any]) -> dict[str, Any]:
    # The caller may change its copy freely without touching the ORM state.
    return copy.deepcopy(value)


def _content_copy(session: Session, report: Report) -> dict[str, Any]:
    """The report JSON as a copy the caller owns. When this session has not loaded the (deferred) content yet, as
    on every read, the row's JSON is decoded straight into a new object: a deep copy of 10–80 kB of JSON costs more
    than the rest of the request."""
    if "content" in sa_inspect(report).unloaded:
        content: dict[str, Any] = session.scalars(select(Report.content).where(Report.id == report.id)).one()
        return content
    return _deep_copy_json(report.content)


# ---------------------------------------------------------------------------------------------------- writing


def _check_version(report: Report, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != report.version:
        raise VersionConflict(report.id, expected_version, report.version)


def _require_status(report: Report, allowed: frozenset[str], action: str, what: str) -> None:
    if report.status not in allowed:
        raise InvalidTransition(
            report.id,
            report.status,
            action,
            f"报告当前状态为“{STATUS_LABELS.get(report.status, report.status)}”，不能{what}",
        )


def _save_state(
    session: Session,
    report: Report,
    *,
    actor: Actor,
    status: str,
    change: str,
    action: str,
    before: dict[str, Any],
    note: str | None = None,
    with_conclusions: bool = False,
    content: dict[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> ReportDetail:
    """Bump the version, store the new state in report_versions and append the audit entry."""
    moment = now or utc_now()
    old_version = report.version
    report.version = old_version + 1
    report.status = status
    if content is not None:
        _update_content(report, content, moment)
    report.updated_at = moment
    _flush_report(session, report, old_version)
    _add_version(session, report, change=change, actor=actor, note=note)
    after = _audit_state(report, with_conclusions=with_conclusions)
    if note is not None:
        after["note"] = note
    append_audit(
        session, actor=actor, action=action, object_type="report", object_id=report.id, before=before, after=after
    )
    return _detail(session, report)


def edit_report(
    session: Session,
    report_id: int,
    operations: Sequence[EditOperation],
    *,
    expected_version: int,
    actor: Actor,
    kb: KnowledgeBase | None = None,
) -> ReportDetail:
    """Apply physician edits (see `zhujian.storage.edits`) to a draft, edited or rejected report.

    `expected_version` is the version the physician edited; when the report has changed since, VersionConflict is
    raised and nothing is written. `kb` is needed for AddConclusion. On success the version goes up by one and the
    status becomes `edited`. Operations that change nothing leave the report (and its version) as it is.
    """
    authorize(session, actor, "edit")
    report = _load_report(session, report_id)
    _check_version(report, expected_version)
    _require_status(report, EDITABLE_STATUSES, "edit", "修改")
    new_content = apply_operations(report.content, operations, kb=kb)
    if new_content == report.content:
        return _detail(session, report)
    before = _audit_state(report, with_conclusions=True)
    return _save_state(
        session,
        report,
        actor=actor,
        status="edited",
        change="edit",
        action="report.edit",
        before=before,
        with_conclusions=True,
        content=new_content,
    )


def regenerate_report(
    session: Session, report_id: int, *, kb: KnowledgeBase, expected_version: int, actor: Actor
) -> ReportDetail:
    """Replace the conclusions of an editable report with a new auto draft built from the newest raw record (after
    a signed report with newer data was sent back, or after a KB update). Clears `has_newer_data`."""
    authorize(session, actor, "edit")
    report = _load_report(session, report_id)
    _check_version(report, expected_version)
    _require_status(report, EDITABLE_STATUSES, "regenerate", "重新生成")
    raw = session.scalars(
        select(RawRecord).where(RawRecord.visit_pk == report.visit_pk).order_by(RawRecord.version.desc()).limit(1)
    ).one()
    record = Record.model_validate(raw.record, context={RECORD_LIMITS: NO_RECORD_LIMITS})
    content = build_draft(kb, record)
    before = _audit_state(report, with_conclusions=True)
    visit = session.get(Visit, report.visit_pk)
    assert visit is not None  # guaranteed by the foreign key
    report.raw_record_id = raw.id
    report.sort_date = visit.exam_date or raw.received_at.date()
    report.has_newer_data = False
    return _save_state(
        session,
        report,
        actor=actor,
        status="draft",
        change="regenerate",
        action="report.regenerate",
        before=before,
        with_conclusions=True,
        content=content,
    )


def sign_report(session: Session, report_id: int, *, actor: Actor, expected_version: int | None = None) -> ReportDetail:
    """主检签署 by a chief physician: draft, edited or rejected → signed. With `expected_version`, the signature
    applies only to the version the physician read (VersionConflict otherwise)."""
    authorize(session, actor, "sign")
    report = _load_report(session, report_id)
    _check_version(report, expected_version)
    _require_status(report, EDITABLE_STATUSES, "sign", "签署")
    before = _audit_state(report)
    now = utc_now()
    report.signed_by_id = actor.user_id
    report.signed_at = now
    report.reviewed_by_id = None
    report.reviewed_at = None
    report.rejection_reason = None
    detail = _save_state(
        session, report, actor=actor, status="signed", change="sign", action="report.sign", before=before, now=now
    )
    from zhujian.alerts.hooks import report_signed  # see submit_record

    report_signed(session, report.id, actor=actor)
    return detail


def review_report(
    session: Session,
    report_id: int,
    *,
    decision: ReviewDecision,
    actor: Actor,
    reason: str | None = None,
    expected_version: int | None = None,
) -> ReportDetail:
    """审核 by a reviewing physician of a signed report: approve (→ reviewed) or reject with a reason (→ rejected,
    editable again). Nobody reviews a report they signed themselves."""
    authorize(session, actor, "review")
    report = _load_report(session, report_id)
    _check_version(report, expected_version)
    _require_status(report, frozenset({"signed"}), "review", "审核（只有已签署的报告可以审核）")
    if report.signed_by_id == actor.user_id:
        raise SelfReviewForbidden(actor.role)
    before = _audit_state(report)
    now = utc_now()
    if decision == "approve":
        report.reviewed_by_id = actor.user_id
        report.reviewed_at = now
        return _save_state(
            session,
            report,
            actor=actor,
            status="reviewed",
            change="review_approve",
            action="report.review.approve",
            before=before,
            now=now,
        )
    if decision != "reject":
        raise ValueError(f"decision must be 'approve' or 'reject', not {decision!r}")
    cleaned = (reason or "").strip()
    if not cleaned:
        raise InvalidTransition(report.id, report.status, "review", "退回报告时必须填写退回原因")
    if len(cleaned) > MAX_REJECTION_REASON:
        raise InvalidTransition(report.id, report.status, "review", f"退回原因不能超过 {MAX_REJECTION_REASON} 字")
    report.rejection_reason = cleaned
    return _save_state(
        session,
        report,
        actor=actor,
        status="rejected",
        change="review_reject",
        action="report.review.reject",
        before=before,
        note=cleaned,
        now=now,
    )


def publish_report(
    session: Session, report_id: int, *, actor: Actor, expected_version: int | None = None
) -> ReportDetail:
    """Release a reviewed report (→ published). Published reports are final."""
    authorize(session, actor, "publish")
    report = _load_report(session, report_id)
    _check_version(report, expected_version)
    _require_status(report, frozenset({"reviewed"}), "publish", "发布（只有已审核的报告可以发布）")
    before = _audit_state(report)
    now = utc_now()
    report.published_by_id = actor.user_id
    report.published_at = now
    return _save_state(
        session,
        report,
        actor=actor,
        status="published",
        change="publish",
        action="report.publish",
        before=before,
        now=now,
    )


# ---------------------------------------------------------------------------------------------------- identities


def set_person_identity(
    session: Session, person_pseudonym: str, *, name: str | None, phone: str | None, actor: Actor
) -> PersonIdentityInfo:
    """Store the name and phone number of an examinee. The audit entry records which fields changed, never
    their values."""
    authorize(session, actor, "manage_identity")
    person = _person_for(session, person_pseudonym)
    assert person is not None  # a non-empty pseudonym always gives a person
    identity = session.get(PersonIdentity, person.id)
    before_fields = {"name": identity.name if identity else None, "phone": identity.phone if identity else None}
    if identity is None:
        identity = PersonIdentity(person_id=person.id)
        session.add(identity)
    identity.name = name.strip() if name and name.strip() else None
    identity.phone = phone.strip() if phone and phone.strip() else None
    identity.updated_at = utc_now()
    session.flush()
    changed = [f for f in ("name", "phone") if before_fields[f] != getattr(identity, f)]
    append_audit(
        session,
        actor=actor,
        action="identity.set",
        object_type="person",
        object_id=person.pseudonym,
        before=None,
        after={"changed_fields": changed},
    )
    return PersonIdentityInfo(person.pseudonym, identity.name, identity.phone)


def get_person_identity(session: Session, person_pseudonym: str, *, actor: Actor) -> PersonIdentityInfo:
    """Name and phone number of an examinee, for roles with `read_identity`. Every read is audited (who looked,
    never what they saw), so the caller commits after this read like after a write."""
    authorize(session, actor, "read_identity")
    person = session.scalars(select(Person).where(Person.pseudonym == person_pseudonym)).one_or_none()
    if person is None:
        raise NotFound("person", person_pseudonym)
    identity = session.get(PersonIdentity, person.id)
    append_audit(
        session,
        actor=actor,
        action="identity.read",
        object_type="person",
        object_id=person.pseudonym,
        before=None,
        after=None,
    )
    return PersonIdentityInfo(
        person.pseudonym, identity.name if identity else None, identity.phone if identity else None
    )


__all__ = [
    "EDITABLE_STATUSES",
    "SIGNED_STATUSES",
    "STATUS_LABELS",
    "build_draft",
    "edit_report",
    "find_report_id",
    "get_person_identity",
    "get_report",
    "publish_report",
    "regenerate_report",
    "report_audit",
    "report_history",
    "report_version_content",
    "review_report",
    "set_person_identity",
    "sign_report",
    "submit_record",
    "worklist",
    "worklist_count",
]


# ---- narrative (zhujian.narration.workbench) -------------------------------------------------------------------


def store_narrative(
    session: Session, report_id: int, narrative: dict[str, Any], *, expected_version: int, actor: Actor
) -> ReportDetail:
    """Store a freshly generated narrative (`zhujian.narration.workbench.generate_narrative`) in an editable
    report. The status stays as it is: generating text is not a physician's edit of the report."""
    authorize(session, actor, "edit")
    report = _load_report(session, report_id)
    _check_version(report, expected_version)
    _require_status(report, EDITABLE_STATUSES, "narrate", "生成叙述")
    content = _deep_copy_json(report.content)
    content["narrative"] = narrative
    before = _audit_state(report)
    return _save_state(
        session,
        report,
        actor=actor,
        status=report.status,
        change="narrate",
        action="report.narrate",
        before=before,
        note=f"{narrative.get('source')} {narrative.get('model') or ''} {narrative.get('prompt_version')}".strip(),
        content=content,
    )


def edit_narrative(
    session: Session, report_id: int, sections: dict[str, Any], *, expected_version: int, actor: Actor
) -> ReportDetail:
    """The physician's wording of the narrative: kept beside what the narrator wrote; the report becomes `edited`.
    Raises InvalidEdit when the report has no narrative or the sections are not of the answer shape."""
    from zhujian.narration.workbench import edit_narrative_sections
    from zhujian.storage.errors import InvalidEdit

    authorize(session, actor, "edit")
    report = _load_report(session, report_id)
    _check_version(report, expected_version)
    _require_status(report, EDITABLE_STATUSES, "edit the narrative of", "修改叙述")
    content = _deep_copy_json(report.content)
    narrative = content.get("narrative")
    if not isinstance(narrative, dict):
        raise InvalidEdit("the report has no narrative to edit; generate one first")
    try:
        content["narrative"] = edit_narrative_sections(content, narrative, sections, actor.username)
    except ValueError as exc:
        raise InvalidEdit(f"narrative: {exc}") from exc
    if content["narrative"].get("sections") == narrative.get("sections"):
        return _detail(session, report)
    before = _audit_state(report)
    return _save_state(
        session,
        report,
        actor=actor,
        status="edited",
        change="narrative_edit",
        action="report.narrative_edit",
        before=before,
        content=content,
    )
