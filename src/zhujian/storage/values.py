"""What the storage services take and return: frozen dataclasses, separate from the ORM tables and from the web
layer's API schemas."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

ReportStatus = Literal["draft", "edited", "signed", "reviewed", "published", "rejected"]
Role = Literal["admin", "chief_physician", "reviewing_physician", "health_manager", "auditor"]
ReviewDecision = Literal["approve", "reject"]
LevelFilter = Literal["A", "B", "none"]
Provenance = Literal["auto", "edited", "added", "merged"]


@dataclass(frozen=True, slots=True)
class Actor:
    """The user doing something. Services re-read the user's role and active flag from the database on every call,
    so a snapshot kept in a web session cannot outlive a deactivation or a role change."""

    user_id: int
    username: str
    role: str
    display_name: str


@dataclass(frozen=True, slots=True)
class UserSummary:
    user_id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: dt.datetime

    def as_actor(self) -> Actor:
        return Actor(self.user_id, self.username, self.role, self.display_name)


@dataclass(frozen=True, slots=True)
class ReportSummary:
    """Result of storing a record: which report it went to and what happened to that report."""

    report_id: int
    visit_id: str
    status: ReportStatus
    version: int
    raw_record_version: int
    highest_level: str | None
    critical: bool
    has_newer_data: bool
    created: bool  # True for a new visit, False for a resubmission of a known visit_id
    draft_replaced: bool  # True when the resubmission replaced the draft with a new auto draft


@dataclass(frozen=True, slots=True)
class WorklistRow:
    report_id: int
    visit_id: str
    person_pseudonym: str | None
    sex: str
    age: float | None
    exam_date: dt.date | None
    status: ReportStatus
    version: int
    highest_level: str | None
    critical: bool
    has_newer_data: bool
    summary: str
    conclusion_count: int
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ReportHead:
    """A report's state without its content: what every read of one report shows beside the report JSON."""

    report_id: int
    visit_id: str
    person_pseudonym: str | None
    status: ReportStatus
    version: int
    highest_level: str | None
    critical: bool
    has_newer_data: bool
    content_hash: str
    rejection_reason: str | None
    signed_by: str | None  # display names
    signed_at: dt.datetime | None
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    published_by: str | None
    published_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class ReportDetail(ReportHead):
    content: dict[str, Any]  # the report JSON (Report.to_dict() + provenance per conclusion), a private copy
    raw_record_version: int

    @property
    def conclusions(self) -> list[dict[str, Any]]:
        conclusions: list[dict[str, Any]] = self.content.get("conclusions", [])
        return conclusions


@dataclass(frozen=True, slots=True)
class ReportJson(ReportHead):
    """One report as the API serves it: the content as the JSON text the database holds. A read of 15–55 kB of
    report JSON that decodes it only to encode it again spends most of the request on that round trip;
    `content_json` is passed through as it is stored."""

    content_json: str


@dataclass(frozen=True, slots=True)
class ReportVersionInfo:
    version: int
    status: ReportStatus
    change: str  # auto_draft | auto_update | regenerate | edit | sign | review_approve | review_reject | publish
    actor: str | None  # display name; None for automatic drafts stored by the system
    note: str | None
    content_hash: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    occurred_at: dt.datetime
    actor_user_id: int | None
    actor_username: str | None
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    prev_hash: str
    hash: str


@dataclass(frozen=True, slots=True)
class AuditVerification:
    ok: bool
    entries_checked: int
    head_hash: str | None  # hash of the last entry: keep it elsewhere to also detect a truncated tail
    broken_seq: int | None = None
    broken_action: str | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class PersonIdentityInfo:
    person_pseudonym: str
    name: str | None
    phone: str | None
