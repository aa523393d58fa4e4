"""API request and response models. Separate from the ORM tables and from the services' dataclasses: the API
contract changes only when these change."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from zhujian.storage.edits import (
    AddConclusion,
    DeleteConclusion,
    EditConclusion,
    EditOperation,
    MergeConclusions,
    ReorderConclusions,
)
from zhujian.storage.values import AuditEntry, ReportDetail, ReportHead, ReportJson, ReportSummary, WorklistRow
from zhujian.web.capacity import MAX_DATABASE_ID, MAX_OFFSET

ReportStatusName = Literal["draft", "edited", "signed", "reviewed", "published", "rejected"]
# Ids and offsets are bounded by what the database columns hold: a larger number is a 422, never a database error.
ReportId = Annotated[int, Path(ge=1, le=MAX_DATABASE_ID, description="report id")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows to skip")]
# Versions are compared, never stored, as given; the bound keeps them to what the column can hold.
Version = Annotated[int, Field(ge=1, le=MAX_DATABASE_ID)]
ShortId = Annotated[str, Field(min_length=1, max_length=200)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TokenRequest(_Request):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: dt.datetime
    username: str
    role: str


class RecordStored(BaseModel):
    report_id: int
    visit_id: str
    status: ReportStatusName
    version: int
    raw_record_version: int
    highest_level: str | None
    critical: bool
    has_newer_data: bool
    created: bool
    draft_replaced: bool

    @classmethod
    def of(cls, summary: ReportSummary) -> RecordStored:
        return cls(
            report_id=summary.report_id,
            visit_id=summary.visit_id,
            status=summary.status,
            version=summary.version,
            raw_record_version=summary.raw_record_version,
            highest_level=summary.highest_level,
            critical=summary.critical,
            has_newer_data=summary.has_newer_data,
            created=summary.created,
            draft_replaced=summary.draft_replaced,
        )


class WorklistItem(BaseModel):
    report_id: int
    visit_id: str
    person_pseudonym: str | None
    sex: str
    age: float | None
    exam_date: dt.date | None
    status: ReportStatusName
    version: int
    highest_level: str | None
    critical: bool
    has_newer_data: bool
    summary: str
    conclusion_count: int
    updated_at: dt.datetime

    @classmethod
    def of(cls, row: WorklistRow) -> WorklistItem:
        return cls(
            report_id=row.report_id,
            visit_id=row.visit_id,
            person_pseudonym=row.person_pseudonym,
            sex=row.sex,
            age=row.age,
            exam_date=row.exam_date,
            status=row.status,
            version=row.version,
            highest_level=row.highest_level,
            critical=row.critical,
            has_newer_data=row.has_newer_data,
            summary=row.summary,
            conclusion_count=row.conclusion_count,
            updated_at=row.updated_at,
        )


class WorklistPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[WorklistItem]


class ReportOut(BaseModel):
    report_id: int
    visit_id: str
    person_pseudonym: str | None
    status: ReportStatusName
    version: int
    highest_level: str | None
    critical: bool
    has_newer_data: bool
    rejection_reason: str | None
    signed_by: str | None
    signed_at: dt.datetime | None
    reviewed_by: str | None
    reviewed_at: dt.datetime | None
    published_by: str | None
    published_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    content_hash: str
    content: dict[str, Any] = Field(description="the report JSON with provenance per conclusion")

    @classmethod
    def of(cls, detail: ReportDetail) -> ReportOut:
        return cls(**_head_fields(cls, detail), content=detail.content)

    @classmethod
    def json_of(cls, report: ReportJson) -> Response:
        """The answer for a report read: this model's JSON with the stored content JSON put in as it is, neither
        decoded nor validated again (it was validated when it was written). Same document as `of(...)` gives."""
        head = cls.model_construct(**_head_fields(cls, report), content={}).model_dump_json()
        # `content` is the model's last field, so the document ends with its placeholder.
        tail = '"content":{}}'
        if not head.endswith(tail):
            raise AssertionError("ReportOut must end with its content field")
        body = "".join((head[: -len(tail)], '"content":', report.content_json, "}"))
        return Response(body.encode(), media_type="application/json")


def _head_fields(model: type[BaseModel], report: ReportHead) -> dict[str, Any]:
    """The model's fields other than `content`, read from the report's head of the same names."""
    return {name: getattr(report, name) for name in model.model_fields if name != "content"}

def json_response(model: BaseModel, status_code: int = 200) -> Response:
    """A response model's JSON, serialized once by pydantic. Returning a Response skips FastAPI's second validation
    of the model it was just built from (and the thread hop that validation takes for a sync route); the route keeps
    `response_model=` for the OpenAPI schema."""
    return Response(model.model_dump_json().encode(), status_code=status_code, media_type="application/json")

NonEmptyText = Annotated[str, Field(max_length=4000)]


class EditOp(_Request):
    op: Literal["edit"]
    conclusion_id: ShortId
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    advice: NonEmptyText | None = None
    follow_up: Annotated[str, Field(max_length=500)] | None = None

    def to_operation(self) -> EditOperation:
        return EditConclusion(self.conclusion_id, name=self.name, advice=self.advice, follow_up=self.follow_up)


class AddOp(_Request):
    op: Literal["add"]
    kb_conclusion_id: ShortId
    position: int | None = Field(default=None, ge=0, le=1000)

    def to_operation(self) -> EditOperation:
        return AddConclusion(self.kb_conclusion_id, position=self.position)


class DeleteOp(_Request):
    op: Literal["delete"]
    conclusion_id: ShortId

    def to_operation(self) -> EditOperation:
        return DeleteConclusion(self.conclusion_id)


class MergeOp(_Request):
    op: Literal["merge"]
    conclusion_ids: list[ShortId] = Field(min_length=2, max_length=500)
    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    advice: NonEmptyText | None = None
    follow_up: Annotated[str, Field(max_length=500)] | None = None

    def to_operation(self) -> EditOperation:
        return MergeConclusions(
            tuple(self.conclusion_ids), name=self.name, advice=self.advice, follow_up=self.follow_up
        )


class ReorderOp(_Request):
    op: Literal["reorder"]
    conclusion_ids: list[ShortId] = Field(min_length=1, max_length=500)

    def to_operation(self) -> EditOperation:
        return ReorderConclusions(tuple(self.conclusion_ids))


Operation = Annotated[EditOp | AddOp | DeleteOp | MergeOp | ReorderOp, Field(discriminator="op")]


class ReportPatch(_Request):
    expected_version: Version = Field(description="the version the client edited; a stale one gives 409")
    operations: list[Operation] = Field(min_length=1, max_length=100)


class SignRequest(_Request):
    expected_version: Version | None = None


class ReviewRequest(_Request):
    decision: Literal["approve", "reject"]
    reason: Annotated[str, Field(max_length=2000)] | None = None
    expected_version: Version | None = None


class AuditEntryOut(BaseModel):
    seq: int
    occurred_at: dt.datetime
    actor_username: str | None
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash: str

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditEntryOut:
        return cls(
            seq=entry.seq,
            occurred_at=entry.occurred_at,
            actor_username=entry.actor_username,
            action=entry.action,
            before=entry.before,
            after=entry.after,
            hash=entry.hash,
        )


class KbConclusionOut(BaseModel):
    id: str
    name: str
    level: str | None
    system: str
    sex: str
    follow_up: str
    advice: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    database: bool
    kb_version: str
    version: str
