"""The hash-chained audit log: it verifies after a normal workflow and names the first entry someone changed,
deleted or moved with raw SQL; `zhujian audit verify` and `zhujian db upgrade` as commands."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from db_testing import Team, load_case
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.audit import GENESIS_HASH, canonical_json, compute_entry_hash, verify_audit_chain
from zhujian.storage.cli import audit_verify_command, db_upgrade_command
from zhujian.storage.edits import EditConclusion
from zhujian.storage.migrate import head_revision
from zhujian.storage.models import AuditLogEntry
from zhujian.storage.services import edit_report, review_report, sign_report, submit_record


@pytest.fixture
def audited(session: Session, team: Team, kb: KnowledgeBase) -> list[AuditLogEntry]:
    """A normal workflow (six users, a record, an edit, sign, reject); returns all audit entries, still held by the
    session, so that verification must read the stored rows rather than these objects."""
    report_id = submit_record(session, load_case("05_critical_potassium"), kb=kb, actor=team.chief).report_id
    edit_report(
        session,
        report_id,
        [EditConclusion("hypokalemia_critical", advice="立即急诊")],
        expected_version=1,
        actor=team.chief,
    )
    sign_report(session, report_id, actor=team.chief)
    review_report(session, report_id, decision="reject", reason="请复核", actor=team.reviewer)
    session.commit()
    return list(session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id)))


def _tamper(engine: Engine, *statements: str) -> None:
    """Run raw SQL as someone who may lift the append-only triggers (a database owner)."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_update"))
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        for statement in statements:
            connection.execute(text(statement))


def test_chain_of_a_normal_workflow_verifies(session: Session, audited: list[AuditLogEntry]) -> None:
    # Six users, four report steps, and the alert the critical potassium opened (zhujian.alerts).
    assert [e.action for e in audited[6:]] == [
        "record.submit",
        "alert.open",
        "report.edit",
        "report.sign",
        "report.review.reject",
    ]
    result = verify_audit_chain(session)
    assert result.ok and result.entries_checked == 11
    last = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id.desc()).limit(1)).one()
    assert result.head_hash == last.hash
    first = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id).limit(1)).one()
    assert first.prev_hash == GENESIS_HASH


def test_each_hash_covers_the_entry_and_the_previous_hash(session: Session, audited: list[AuditLogEntry]) -> None:
    entries = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id)).all()
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    entry = entries[3]
    fields = {
        "occurred_at": entry.occurred_at,
        "actor_user_id": entry.actor_user_id,
        "actor_username": entry.actor_username,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
        "prev_hash": entry.prev_hash,
    }
    assert compute_entry_hash(**fields) == entry.hash  # type: ignore[arg-type]
    assert compute_entry_hash(**{**fields, "prev_hash": "f" * 64}) != entry.hash  # type: ignore[arg-type]


def test_empty_log_verifies(session: Session) -> None:
    result = verify_audit_chain(session)
    assert (result.ok, result.entries_checked, result.head_hash) == (True, 0, None)


def test_changed_entry_is_reported(engine: Engine, session: Session, audited: list[AuditLogEntry]) -> None:
    target = audited[8].id  # the edit of the report (after the submit and the alert it opened)
    # JSON documents differ per backend; replacing the whole value works on both.
    _tamper(engine, f'UPDATE audit_log SET after = \'{{"status": "signed"}}\' WHERE id = {target}')
    result = verify_audit_chain(session)
    assert not result.ok
    assert (result.broken_seq, result.broken_action, result.entries_checked) == (target, "report.edit", 8)
    assert "changed" in (result.problem or "")


def test_changed_entry_with_a_recomputed_hash_breaks_the_next_link(
    engine: Engine, session: Session, audited: list[AuditLogEntry]
) -> None:
    """Someone who also recomputes the changed entry's hash is caught by the entry after it."""
    target = audited[8].id
    row = session.get(AuditLogEntry, target)
    assert row is not None
    forged_hash = compute_entry_hash(
        occurred_at=row.occurred_at,
        actor_user_id=row.actor_user_id,
        actor_username="someone else",
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        before=row.before,
        after=row.after,
        prev_hash=row.prev_hash,
    )
    _tamper(engine, f"UPDATE audit_log SET actor_username = 'someone else', hash = '{forged_hash}' WHERE id = {target}")
    session.expire_all()
    result = verify_audit_chain(session)
    assert (result.ok, result.broken_seq, result.entries_checked) == (False, audited[9].id, 9)
    assert "deleted, inserted or reordered" in (result.problem or "")


def test_deleted_entry_is_reported_at_the_next_one(
    engine: Engine, session: Session, audited: list[AuditLogEntry]
) -> None:
    _tamper(engine, f"DELETE FROM audit_log WHERE id = {audited[4].id}")
    result = verify_audit_chain(session)
    assert (result.ok, result.broken_seq) == (False, audited[5].id)
    assert "deleted" in (result.problem or "")


def test_reordered_entries_are_reported(engine: Engine, session: Session, audited: list[AuditLogEntry]) -> None:
    a, b = audited[2].id, audited[3].id
    _tamper(
        engine,
        f"UPDATE audit_log SET id = -1 WHERE id = {a}",
        f"UPDATE audit_log SET id = {a} WHERE id = {b}",
        f"UPDATE audit_log SET id = {b} WHERE id = -1",
    )
    result = verify_audit_chain(session)
    assert (result.ok, result.broken_seq) == (False, a)


def test_canonical_json_is_stable() -> None:
    assert canonical_json({"b": 1, "a": [1.0, "血压"]}) == canonical_json({"a": [1, "血压"], "b": 1.0})
    assert canonical_json({"a": 0.5}) == '{"a":0.5}'


def _app() -> typer.Typer:
    app = typer.Typer()
    audit = typer.Typer()
    audit.command("verify")(audit_verify_command)
    db = typer.Typer()
    db.command("upgrade")(db_upgrade_command)
    app.add_typer(audit, name="audit")
    app.add_typer(db, name="db")
    return app


def test_audit_verify_command(engine: Engine, database_url: str, audited: list[AuditLogEntry]) -> None:
    runner = CliRunner()
    ok = runner.invoke(_app(), ["audit", "verify", "--database-url", database_url])
    assert ok.exit_code == 0, ok.output
    assert "audit log OK: 11 entries" in ok.stdout

    _tamper(engine, f"UPDATE audit_log SET action = 'report.publish' WHERE id = {audited[9].id}")
    broken = runner.invoke(_app(), ["audit", "verify", "--database-url", database_url])
    assert broken.exit_code == 1
    assert f"BROKEN at entry {audited[9].id} (report.publish)" in broken.stderr


def test_db_upgrade_command_creates_schema_and_first_admin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    monkeypatch.setenv("ZHUJIAN_DATABASE_URL", url)
    monkeypatch.delenv("ZHUJIAN_ADMIN_PASSWORD", raising=False)
    runner = CliRunner()
    without = runner.invoke(_app(), ["db", "upgrade"])
    assert without.exit_code == 0, without.output
    assert f"is at revision {head_revision()}" in without.stdout
    assert "ZHUJIAN_ADMIN_PASSWORD is not set" in without.stderr

    monkeypatch.setenv("ZHUJIAN_ADMIN_PASSWORD", "a long enough password")
    created = runner.invoke(_app(), ["db", "upgrade"])
    assert created.exit_code == 0, created.output
    assert "created the first administrator 'admin'" in created.stdout
    again = runner.invoke(_app(), ["db", "upgrade"])
    assert "created the first administrator" not in again.output

    monkeypatch.setenv("ZHUJIAN_ADMIN_PASSWORD", "short")
    invalid = runner.invoke(_app(), ["db", "upgrade"])
    assert invalid.exit_code == 2
    assert "at least 12 characters" in invalid.stderr
