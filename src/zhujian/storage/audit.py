"""Append-only, hash-chained audit log.

Each entry stores `prev_hash` (the hash of the entry before it, or 64 zeros for the first) and
`hash = SHA-256(canonical JSON of the entry including prev_hash)`. Changing, deleting, inserting or reordering an
entry breaks the chain at that point, and `verify_audit_chain` names the first broken entry.

Limits of the chain on its own: someone who can rewrite every later entry can recompute the chain, and deleting the
newest entries leaves a shorter valid chain. `zhujian.storage.integrity` closes both with signed anchors of the chain
head (in the database and in a file outside it), and ties every stored report version to the content hash its
audit entry recorded. The migrations also install triggers that refuse UPDATE and DELETE on `audit_log` (and on
report versions, raw records and anchors), so tampering needs the rights to drop them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from zhujian.storage.models import AuditLogEntry, utc_now
from zhujian.storage.values import Actor, AuditEntry, AuditVerification

GENESIS_HASH = "0" * 64
HASH_FORMAT_VERSION = 1
# Key of the PostgreSQL advisory lock that serializes appends (any constant shared by all writers).
_AUDIT_LOCK_KEY = 0x7A685F61756474  # "zh_audt"


def _normalize(value: Any) -> Any:
    """JSON-ready copy with one spelling per value: integral floats become ints (PostgreSQL JSONB returns 1e16 as
    an int), tuples become lists, dates become ISO strings. Stored values equal hashed values on every backend."""
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normalize(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat(timespec="microseconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"audit values must be JSON data, not {type(value).__name__}")


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: the same bytes for the same data, whatever the key order."""
    return json.dumps(_normalize(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON: the hash stored for a report's or a record's content, and recorded in the audit
    entry of the change that wrote it."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def compute_entry_hash(
    *,
    occurred_at: dt.datetime,
    actor_user_id: int | None,
    actor_username: str | None,
    action: str,
    object_type: str,
    object_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    prev_hash: str,
) -> str:
    payload = {
        "format": HASH_FORMAT_VERSION,
        "occurred_at": _timestamp(occurred_at),
        "actor_user_id": actor_user_id,
        "actor_username": actor_username,
        "action": action,
        "object_type": object_type,
        "object_id": object_id,
        "before": before,
        "after": after,
        "prev_hash": prev_hash,
    }
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def append_audit(
    session: Session,
    *,
    actor: Actor | None,
    action: str,
    object_type: str,
    object_id: str | int,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> AuditLogEntry:
    """Append one entry after the current head (in the caller's transaction). `actor` None means the system.

    On PostgreSQL an advisory lock held until commit serializes appenders, so two transactions never read the same
    head; the unique `prev_hash` column would reject a fork anyway.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _AUDIT_LOCK_KEY})
    head = session.scalars(select(AuditLogEntry.hash).order_by(AuditLogEntry.id.desc()).limit(1)).first()
    prev_hash = head or GENESIS_HASH
    # Microsecond precision is what both backends keep, so the hash is recomputed from the same instant.
    occurred_at = utc_now()
    before_value = _normalize(before) if before is not None else None
    after_value = _normalize(after) if after is not None else None
    entry = AuditLogEntry(
        occurred_at=occurred_at,
        actor_user_id=actor.user_id if actor else None,
        actor_username=actor.username if actor else None,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before_value,
        after=after_value,
        prev_hash=prev_hash,
    )
    entry.hash = compute_entry_hash(
        occurred_at=occurred_at,
        actor_user_id=entry.actor_user_id,
        actor_username=entry.actor_username,
        action=action,
        object_type=object_type,
        object_id=entry.object_id,
        before=before_value,
        after=after_value,
        prev_hash=prev_hash,
    )
    session.add(entry)
    session.flush()  # the id orders the chain, and the next append in this transaction must see this head
    return entry


def to_audit_entry(row: AuditLogEntry) -> AuditEntry:
    return AuditEntry(
        seq=row.id,
        occurred_at=row.occurred_at,
        actor_user_id=row.actor_user_id,
        actor_username=row.actor_username,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        before=row.before,
        after=row.after,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def audit_entries_for(session: Session, object_type: str, object_id: str | int) -> list[AuditEntry]:
    rows = session.scalars(
        select(AuditLogEntry)
        .where(AuditLogEntry.object_type == object_type, AuditLogEntry.object_id == str(object_id))
        .order_by(AuditLogEntry.id)
    )
    return [to_audit_entry(row) for row in rows]


def verify_audit_chain(session: Session, *, batch_size: int = 1000) -> AuditVerification:
    """Walk the whole log in order and return the first entry whose link or hash is wrong (or OK)."""
    expected_prev = GENESIS_HASH
    checked = 0
    # populate_existing: check what is stored, not objects this session may still hold from writing them.
    query = (
        select(AuditLogEntry).order_by(AuditLogEntry.id).execution_options(yield_per=batch_size, populate_existing=True)
    )
    for row in session.scalars(query):
        if row.prev_hash != expected_prev:
            return AuditVerification(
                ok=False,
                entries_checked=checked,
                head_hash=None,
                broken_seq=row.id,
                broken_action=row.action,
                problem=(
                    "its previous hash does not match the entry before it: an entry was deleted, inserted or "
                    "reordered here"
                ),
            )
        recomputed = compute_entry_hash(
            occurred_at=row.occurred_at,
            actor_user_id=row.actor_user_id,
            actor_username=row.actor_username,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            before=row.before,
            after=row.after,
            prev_hash=row.prev_hash,
        )
        if recomputed != row.hash:
            return AuditVerification(
                ok=False,
                entries_checked=checked,
                head_hash=None,
                broken_seq=row.id,
                broken_action=row.action,
                problem="its content does not match its hash: the entry was changed after it was written",
            )
        expected_prev = row.hash
        checked += 1
    return AuditVerification(ok=True, entries_checked=checked, head_hash=None if checked == 0 else expected_prev)
