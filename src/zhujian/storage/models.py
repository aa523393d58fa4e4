"""ORM tables (SQLAlchemy 2 typed declarative). These are storage types only: services turn them into the
dataclasses of `zhujian.storage.services` and never hand ORM objects to the web layer.

Design notes:
- `persons` holds the pseudonymous id only; names and phone numbers live in `person_identities`, readable by the
  roles with `read_identity`, and never copied into reports or the audit log.
- `raw_records` keeps every version of the canonical Record as received (same visit_id again = a new version).
- `reports` is one row per visit with the *current* state; `report_versions` keeps every saved state with the full
  report JSON, so a signed report can be shown exactly as signed years later.
- Conclusion provenance (`auto`, `edited`, `added`, `merged`) lives inside the report JSON of each version, next to
  the conclusion it describes (see `zhujian.storage.edits`): one document holds the whole signed state.
- The worklist orders by `priority, sort_date, id` (all NOT NULL, indexed): no JSON is read to build it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from zhujian.storage.values import ReportStatus, Role

REPORT_STATUSES: tuple[str, ...] = get_args(ReportStatus)
ROLE_NAMES: tuple[str, ...] = get_args(Role)

# PostgreSQL stores JSONB (indexable, compact); SQLite stores JSON text. Same Python values on both.
JSONType = JSON().with_variant(JSONB(), "postgresql")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend.

    PostgreSQL returns aware values, SQLite naive ones (STACK.md gotcha 2): values are converted to UTC when written
    and come back aware in UTC from both, so comparisons and the audit hash never depend on the backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use an aware datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    # Named constraints: Alembic can drop and alter them by name on every backend.
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_label)s",
            "uq": "uq_%(table_name)s_%(column_0_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONType, dt.datetime: UTCDateTime}


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


POSTGRESQL_ONLY_INDEXES = frozenset({"ix_persons_pseudonym_trgm", "ix_visits_visit_id_trgm"})


def _substring_search_index(name: str, column: str) -> Index:
    """PostgreSQL trigram index (pg_trgm, migration 0005) for the worklist's `ILIKE '%part%'` search of ids. SQLite
    has no such index type and scans: not created there."""
    return Index(name, column, postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"}).ddl_if(
        dialect="postgresql"
    )


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLE_NAMES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    # API tokens carry the value current when they were issued; a password change or a deactivation raises it, so
    # every token issued before stops working at once.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Person(Base):
    """An examinee, known by a pseudonymous id only (the Record's `person_id`)."""

    __tablename__ = "persons"
    __table_args__ = (_substring_search_index("ix_persons_pseudonym_trgm", "pseudonym"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    pseudonym: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)


class PersonIdentity(Base):
    """Name and phone number of an examinee, kept apart so that only permitted roles read them."""

    __tablename__ = "person_identities"

    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now)


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (_substring_search_index("ix_visits_visit_id_trgm", "visit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[str] = mapped_column(String(128), unique=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    exam_date: Mapped[dt.date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(16))
    age: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now)

    person: Mapped[Person | None] = relationship()


class RawRecord(Base):
    """One version of the canonical Record as received."""

    __tablename__ = "raw_records"
    __table_args__ = (UniqueConstraint("visit_pk", "version", name="uq_raw_records_visit_version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_pk: Mapped[int] = mapped_column(ForeignKey("visits.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    record: Mapped[dict[str, Any]] = mapped_column()
    record_hash: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Report(Base):
    """The current state of the one report of a visit. `version` is the optimistic lock: every write sets it to
    the old value + 1 and the UPDATE matches the old value, so a concurrent writer fails instead of overwriting."""

    __tablename__ = "reports"
    __table_args__ = (
        CheckConstraint(_in("status", REPORT_STATUSES), name="status"),
        CheckConstraint("highest_level IS NULL OR highest_level IN ('A', 'B')", name="highest_level"),
        CheckConstraint("priority BETWEEN 0 AND 3", name="priority"),
        # Worklist orderings: unfiltered, and filtered by status. Level filters are ranges of `priority`.
        Index("ix_reports_worklist", "priority", "sort_date", "id"),
        Index("ix_reports_status_worklist", "status", "priority", "sort_date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_pk: Mapped[int] = mapped_column(ForeignKey("visits.id"), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    # Denormalized from the current content for the worklist (see services.worklist_priority).
    highest_level: Mapped[str | None] = mapped_column(String(1))
    critical: Mapped[bool] = mapped_column(Boolean)
    priority: Mapped[int] = mapped_column(SmallInteger)
    sort_date: Mapped[dt.date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(String(300))
    conclusion_count: Mapped[int] = mapped_column(Integer)
    has_newer_data: Mapped[bool] = mapped_column(Boolean, default=False)
    # The full report JSON is large (10–80 kB): loaded only when a report is opened.
    content: Mapped[dict[str, Any]] = mapped_column(deferred=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_record_id: Mapped[int] = mapped_column(ForeignKey("raw_records.id"))
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[dt.datetime | None] = mapped_column()
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[dt.datetime | None] = mapped_column()
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    published_at: Mapped[dt.datetime | None] = mapped_column()
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utc_now)

    visit: Mapped[Visit] = relationship()

    # The application sets `version` itself (version_id_generator=False) so one service call bumps it once, however
    # many flushes it takes; SQLAlchemy still adds `WHERE version = <old>` and raises StaleDataError on 0 rows.
    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}  # noqa: RUF012 - SQLAlchemy API


class ReportVersion(Base):
    """Every saved state of a report: the full JSON after the change, its status, who and when."""

    __tablename__ = "report_versions"
    __table_args__ = (
        UniqueConstraint("report_id", "version", name="uq_report_versions_report_version"),
        CheckConstraint(_in("status", REPORT_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    change: Mapped[str] = mapped_column(String(32))
    content: Mapped[dict[str, Any]] = mapped_column(deferred=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    raw_record_id: Mapped[int] = mapped_column(ForeignKey("raw_records.id"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utc_now)


class AuditLogEntry(Base):
    """Append-only, hash-chained log of every write (see `zhujian.storage.audit`). Database triggers (created by
    the migration) refuse UPDATE and DELETE; the chain detects changes made by someone who can drop them."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_username: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Unique: two writers can never both extend the same head, so the chain cannot fork.
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditAnchor(Base):
    """A checkpoint of the audit chain head: the sequence number and hash of the newest entry at `created_at`,
    signed (HMAC-SHA256) with a key the database does not hold. Deleting the newest audit entries leaves an anchor
    that points past the end of the chain, which `zhujian audit verify` reports. Append-only (triggers)."""

    __tablename__ = "audit_anchors"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column()
    seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str | None] = mapped_column(String(64))


class UserSession(Base):
    """A browser session. The cookie carries a random token; only its SHA-256 is stored, so a copy of the table
    cannot be used to log in. Logout, a password change and a deactivation set `revoked_at`; a session is also over
    when `expires_at` (absolute timeout) has passed or it was not seen for the idle timeout."""

    __tablename__ = "user_sessions"
    __table_args__ = (
        Index("ix_user_sessions_user", "user_id", "revoked_at"),
        Index("ix_user_sessions_expires", "expires_at"),  # pruning of ended sessions
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column()
    last_seen_at: Mapped[dt.datetime] = mapped_column()
    expires_at: Mapped[dt.datetime] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_reason: Mapped[str | None] = mapped_column(String(32))


class LoginThrottleEntry(Base):
    """Failed-login counter of one account or one client address, shared by every worker process, and the
    (account, address) pairs that logged in successfully ('known'). `key_hash` is a keyed hash of the user name or
    address: what people typed into the user-name field is never stored."""

    __tablename__ = "login_throttle"
    __table_args__ = (
        UniqueConstraint("scope", "key_hash", name="uq_login_throttle_scope_key"),
        CheckConstraint("scope IN ('account', 'address', 'known')", name="scope"),
        Index("ix_login_throttle_updated", "updated_at"),  # pruning of forgotten counters
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64))
    failures: Mapped[int] = mapped_column(Integer)
    # The last failure ('account', 'address') or the last successful login ('known': this account from this address).
    updated_at: Mapped[dt.datetime] = mapped_column()
    blocked_until: Mapped[dt.datetime | None] = mapped_column()


# ---------------------------------------------------------------------------------------------------- alerts, follow-up
# The closed loop of important abnormal results and the recheck tasks (see `zhujian.alerts`). "Overdue" is never
# stored: it depends on the clock, so it is computed from `due_at` / `due_date` whenever alerts are read.

ALERT_STATUSES: tuple[str, ...] = ("open", "notified", "closed")
FOLLOWUP_STATUSES: tuple[str, ...] = ("open", "closed")


class Alert(Base):
    """One class A (or B) result of a stored report that somebody must tell the examinee about in time."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint("level IN ('A', 'B')", name="level"),
        # One alert per result of a report: a resubmitted draft with the same critical value opens no second one.
        UniqueConstraint("report_id", "source_key", name="uq_alerts_report_source"),
        Index("ix_alerts_worklist", "status", "due_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    level: Mapped[str] = mapped_column(String(1))
    source_key: Mapped[str] = mapped_column(String(200))
    conclusion_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column()
    due_at: Mapped[dt.datetime] = mapped_column()
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    notified_at: Mapped[dt.datetime | None] = mapped_column()
    notified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[str | None] = mapped_column(String(32))
    reached: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str | None] = mapped_column(String(32))
    outcome_note: Mapped[str | None] = mapped_column(Text)


class AlertAttempt(Base):
    """Every try to reach the examinee about an alert, successful or not, with what a notifier answered."""

    __tablename__ = "alert_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(String(32))
    success: Mapped[bool] = mapped_column(Boolean)
    reached: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str | None] = mapped_column(Text)
    result: Mapped[str | None] = mapped_column(Text)


class FollowUpTask(Base):
    """A recheck a signed conclusion asks for, due on exam date + its follow-up window. The outcome is a label:
    `held` says whether the recheck confirmed the conclusion (None when nobody knows)."""

    __tablename__ = "followup_tasks"
    __table_args__ = (
        CheckConstraint(_in("status", FOLLOWUP_STATUSES), name="status"),
        UniqueConstraint("report_id", "conclusion_id", name="uq_followup_tasks_report_conclusion"),
        Index("ix_followup_tasks_worklist", "status", "due_date", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"), index=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    conclusion_id: Mapped[str] = mapped_column(String(128))
    conclusion_name: Mapped[str] = mapped_column(String(300))
    icd10: Mapped[str | None] = mapped_column(String(32))
    provenance: Mapped[str | None] = mapped_column(String(16))
    follow_up: Mapped[str] = mapped_column(Text)
    exam_date: Mapped[dt.date] = mapped_column(Date)
    due_date: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    contact_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = mapped_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column()
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_by_report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    outcome: Mapped[str | None] = mapped_column(String(32))
    held: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)


class FollowUpContact(Base):
    """A contact attempt of a recheck task (a call, a message) and whether the person was reached."""

    __tablename__ = "followup_contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("followup_tasks.id"), index=True)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    channel: Mapped[str] = mapped_column(String(32))
    reached: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
