"""Integrity of what the database says was signed: the audit chain, the stored report versions, the current reports,
the raw records, and the anchors of the chain head.

The audit chain (`zhujian.storage.audit`) detects a changed, inserted or reordered audit entry. On its own it cannot
see two other kinds of tampering, which this module closes:

- A report version changed in `report_versions` (and `reports`) without touching the audit log. Every version's
  content hash is written into the audit entry of the change that created it, so verification recomputes each
  version's hash from its stored content and requires the audit chain to hold that very hash for that version.
  Recomputing the stored hash after an edit does not help: the audit entry still holds the original one.
- The newest audit entries deleted. Anchors record the chain head (sequence number and hash) from time to time,
  signed with HMAC-SHA256 under a key the database does not hold; an anchor pointing past the end of the chain, or
  at an entry whose hash differs, is reported. Anchors are kept in the append-only `audit_anchors` table and,
  for protection against someone who can rewrite the whole database, in an append-only file outside it
  (`ZHUJIAN_AUDIT_ANCHOR_FILE`), which should be shipped to write-once storage or a log server.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from zhujian.storage.audit import content_hash, verify_audit_chain
from zhujian.storage.models import AuditAnchor, AuditLogEntry, RawRecord, Report, ReportVersion, Visit, utc_now
from zhujian.storage.values import AuditVerification

ANCHOR_DOMAIN = "zhujian-audit-anchor-v1"


@dataclass(frozen=True, slots=True)
class IntegrityProblem:
    """One thing that does not add up: where (`table`, `row`) and what."""

    table: str
    row: str
    problem: str


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    chain: AuditVerification
    versions_checked: int = 0
    reports_checked: int = 0
    raw_records_checked: int = 0
    anchors_checked: int = 0
    anchors_unsigned: int = 0
    problems: list[IntegrityProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems


def _timestamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def anchor_signature(key: str, *, seq: int, head_hash: str, created_at: dt.datetime) -> str:
    message = f"{ANCHOR_DOMAIN}|{seq}|{head_hash}|{_timestamp(created_at)}"
    return hmac.new(key.encode("utf-8"), message.encode("utf-8"), hashlib.sha256).hexdigest()


# ------------------------------------------------------------------------------------------------------ anchors


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    head_hash: str
    created_at: dt.datetime
    signature: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "head_hash": self.head_hash,
            "created_at": _timestamp(self.created_at),
            "signature": self.signature,
        }


def write_anchor(
    session: Session, *, key: str | None, anchor_file: Path | None = None, now: dt.datetime | None = None
) -> Anchor | None:
    """Record the current chain head in `audit_anchors` (and append it to `anchor_file`); None for an empty log.

    The caller commits. The file line is written before the commit on purpose: a file anchor of a head that was
    then rolled back still matches the chain, which only ever grows past it.
    """
    head = session.execute(
        select(AuditLogEntry.id, AuditLogEntry.hash).order_by(AuditLogEntry.id.desc()).limit(1)
    ).first()
    if head is None:
        return None
    moment = now or utc_now()
    seq, head_hash = int(head[0]), str(head[1])
    signature = anchor_signature(key, seq=seq, head_hash=head_hash, created_at=moment) if key else None
    session.add(AuditAnchor(created_at=moment, seq=seq, head_hash=head_hash, signature=signature))
    session.flush()
    anchor = Anchor(seq=seq, head_hash=head_hash, created_at=moment, signature=signature)
    if anchor_file is not None:
        append_anchor_line(anchor_file, anchor)
    return anchor


def append_anchor_line(path: Path, anchor: Anchor) -> None:
    """Append one JSON line and force it to disk: an anchor that can vanish in a crash protects nothing."""
    line = json.dumps(anchor.as_json(), ensure_ascii=False, sort_keys=True) + "\n"
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, line.encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _read_anchor_file(path: Path, problems: list[IntegrityProblem]) -> list[Anchor]:
    anchors: list[Anchor] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        problems.append(IntegrityProblem("anchor_file", str(path), f"cannot be read: {exc.strerror or exc}"))
        return anchors
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            anchors.append(
                Anchor(
                    seq=int(data["seq"]),
                    head_hash=str(data["head_hash"]),
                    created_at=dt.datetime.fromisoformat(str(data["created_at"])),
                    signature=None if data.get("signature") is None else str(data["signature"]),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(
                IntegrityProblem("anchor_file", f"{path.name} line {number}", f"is not an anchor line ({exc})")
            )
    return anchors


def _check_anchors(
    session: Session,
    anchors: list[Anchor],
    *,
    where: str,
    key: str | None,
    problems: list[IntegrityProblem],
) -> int:
    """Each anchor must name an existing entry with the same hash; with a key, its signature must be right.
    Returns how many anchors carry no signature."""
    unsigned = 0
    seqs = sorted({anchor.seq for anchor in anchors})
    stored: dict[int, str] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start : start + 500]
        stored.update(
            (int(row[0]), str(row[1]))
            for row in session.execute(
                select(AuditLogEntry.id, AuditLogEntry.hash).where(AuditLogEntry.id.in_(chunk))
            )
        )
    newest = session.scalar(select(AuditLogEntry.id).order_by(AuditLogEntry.id.desc()).limit(1)) or 0
    for anchor in anchors:
        label = f"{where} anchor of entry {anchor.seq} at {_timestamp(anchor.created_at)}"
        if anchor.signature is None:
            unsigned += 1
        elif key is not None:
            expected = anchor_signature(key, seq=anchor.seq, head_hash=anchor.head_hash, created_at=anchor.created_at)
            if not hmac.compare_digest(expected, anchor.signature):
                problems.append(
                    IntegrityProblem(where, label, "its signature is wrong: the anchor was forged or changed")
                )
                continue
        if anchor.seq not in stored:
            if anchor.seq > newest:
                detail = (
                    f"the audit log ends at entry {newest}, before this anchored head: the newest entries were "
                    "deleted"
                )
            else:
                detail = "the anchored entry is missing from the audit log: it was deleted"
            problems.append(IntegrityProblem(where, label, detail))
        elif stored[anchor.seq] != anchor.head_hash:
            problems.append(
                IntegrityProblem(where, label, "the anchored entry's hash differs: the chain was rewritten after it")
            )
    return unsigned


# ------------------------------------------------------------------------------------------------ verification


def _audited_report_states(session: Session) -> tuple[dict[tuple[int, int], set[str]], dict[tuple[str, int], str]]:
    """From the audit chain: the content hashes recorded for each (report id, version), and the record hash for
    each (visit id, raw record version)."""
    versions: dict[tuple[int, int], set[str]] = {}
    raw: dict[tuple[str, int], str] = {}
    query = (
        select(AuditLogEntry.object_id, AuditLogEntry.after)
        .where(AuditLogEntry.object_type == "report")
        .order_by(AuditLogEntry.id)
        .execution_options(yield_per=2000)
    )
    for object_id, after in session.execute(query):
        if not isinstance(after, dict):
            continue
        version, recorded = after.get("version"), after.get("content_hash")
        if isinstance(version, int) and isinstance(recorded, str) and str(object_id).isdigit():
            versions.setdefault((int(object_id), version), set()).add(recorded)
        visit_id, raw_version, record_hash = (
            after.get("visit_id"),
            after.get("raw_record_version"),
            after.get("record_hash"),
        )
        if isinstance(visit_id, str) and isinstance(raw_version, int) and isinstance(record_hash, str):
            raw[(visit_id, raw_version)] = record_hash
    return versions, raw


def verify_integrity(
    session: Session,
    *,
    key: str | None = None,
    anchor_file: Path | None = None,
    batch_size: int = 500,
) -> IntegrityReport:
    """Check the audit chain, every stored report version, every current report, every raw record and every anchor
    (table, and `anchor_file` when given). `key` checks anchor signatures; without it they are not checked."""
    chain = verify_audit_chain(session)
    problems: list[IntegrityProblem] = []
    audited_versions, audited_raw = _audited_report_states(session)

    version_hashes: dict[tuple[int, int], str] = {}
    versions_checked = 0
    query = (
        select(ReportVersion.report_id, ReportVersion.version, ReportVersion.content, ReportVersion.content_hash)
        .order_by(ReportVersion.id)
        .execution_options(yield_per=batch_size)
    )
    for report_id, version, content, stored_hash in session.execute(query):
        versions_checked += 1
        where = f"report {report_id} version {version}"
        version_hashes[(report_id, version)] = stored_hash
        if content_hash(content) != stored_hash:
            problems.append(
                IntegrityProblem(
                    "report_versions", where, "its content does not match its stored hash: changed after it was saved"
                )
            )
        elif stored_hash not in audited_versions.get((report_id, version), set()):
            problems.append(
                IntegrityProblem(
                    "report_versions",
                    where,
                    "no audit entry records this content for this version: it was replaced (hash recomputed) or "
                    "inserted outside the application",
                )
            )
    for report_id, version in sorted(audited_versions):
        if (report_id, version) not in version_hashes:
            problems.append(
                IntegrityProblem(
                    "report_versions",
                    f"report {report_id} version {version}",
                    "the audit log records this version, but it is missing from report_versions: it was deleted",
                )
            )

    reports_checked = 0
    current = (
        select(Report.id, Report.version, Report.content, Report.content_hash)
        .order_by(Report.id)
        .execution_options(yield_per=batch_size)
    )
    for report_id, version, content, stored_hash in session.execute(current):
        reports_checked += 1
        where = f"report {report_id} (current, version {version})"
        if content_hash(content) != stored_hash:
            problems.append(
                IntegrityProblem("reports", where, "its content does not match its stored hash: changed in place")
            )
        elif version_hashes.get((report_id, version)) != stored_hash:
            problems.append(
                IntegrityProblem(
                    "reports", where, "its content differs from the stored version it claims to be: changed in place"
                )
            )

    raw_checked = 0
    raw_query = (
        select(Visit.visit_id, RawRecord.version, RawRecord.record, RawRecord.record_hash)
        .join(Visit, Visit.id == RawRecord.visit_pk)
        .order_by(RawRecord.id)
        .execution_options(yield_per=batch_size)
    )
    for visit_id, version, record, stored_hash in session.execute(raw_query):
        raw_checked += 1
        where = f"visit {visit_id} record version {version}"
        if content_hash(record) != stored_hash:
            problems.append(
                IntegrityProblem("raw_records", where, "the record does not match its stored hash: changed in place")
            )
        elif audited_raw.get((visit_id, version)) not in (None, stored_hash):
            problems.append(
                IntegrityProblem("raw_records", where, "the audit log recorded a different record for this version")
            )

    table_anchors = [
        Anchor(seq=row.seq, head_hash=row.head_hash, created_at=row.created_at, signature=row.signature)
        for row in session.scalars(select(AuditAnchor).order_by(AuditAnchor.id))
    ]
    unsigned = _check_anchors(session, table_anchors, where="audit_anchors", key=key, problems=problems)
    anchors_checked = len(table_anchors)
    if anchor_file is not None:
        file_anchors = _read_anchor_file(anchor_file, problems)
        unsigned += _check_anchors(session, file_anchors, where="anchor_file", key=key, problems=problems)
        anchors_checked += len(file_anchors)

    return IntegrityReport(
        chain=chain,
        versions_checked=versions_checked,
        reports_checked=reports_checked,
        raw_records_checked=raw_checked,
        anchors_checked=anchors_checked,
        anchors_unsigned=unsigned,
        problems=problems,
    )


# --------------------------------------------------------------------------------------------- periodic anchoring


class AnchorKeeper:
    """Writes an anchor every `interval_s` seconds while the workbench runs (one thread in the serving process).

    Between two anchors, the newest entries are protected only by the chain's links; a short interval narrows that
    window. Errors are handed to `on_error` and the keeper carries on: a missed anchor must not stop the service.
    """

    def __init__(
        self,
        factory: sessionmaker[Session],
        *,
        key: str | None,
        interval_s: float,
        anchor_file: Path | None = None,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        self._factory = factory
        self._key = key
        self._interval_s = interval_s
        self._anchor_file = anchor_file
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-anchor", daemon=True)
        self._last_seq: int | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def anchor_once(self) -> Anchor | None:
        """Anchor the head unless it has not moved since the last anchor."""
        with self._factory() as session, session.begin():
            head = session.scalar(select(AuditLogEntry.id).order_by(AuditLogEntry.id.desc()).limit(1))
            if head is None or head == self._last_seq:
                return None
            anchor = write_anchor(session, key=self._key, anchor_file=self._anchor_file)
        self._last_seq = anchor.seq if anchor else self._last_seq
        return anchor

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.anchor_once()
            except Exception as exc:  # any failure: reported, and retried at the next interval
                if self._on_error is not None:
                    self._on_error(exc)
