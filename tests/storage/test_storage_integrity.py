"""`zhujian audit verify` covers what the audit chain vouches for: a signed report changed in `reports` and
`report_versions` (with or without recomputing its stored hash), raw records changed in place, the newest audit
entries deleted (caught by anchors in the table and in a file outside the database), forged anchors; and the
append-only triggers on versions, raw records and anchors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import typer
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from db_testing import FAST_HASHER, PASSWORD, Team, load_case
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.cli import audit_anchor_command, audit_verify_command
from zhujian.storage.edits import EditConclusion
from zhujian.storage.integrity import AnchorKeeper, content_hash, verify_integrity, write_anchor
from zhujian.storage.models import AuditAnchor, AuditLogEntry, ReportVersion
from zhujian.storage.services import edit_report, sign_report, submit_record
from zhujian.storage.users import create_user

KEY = "k" * 40


@pytest.fixture
def signed_report(session: Session, team: Team, kb: KnowledgeBase) -> int:
    """A critical-potassium report, edited and signed: versions 1 (auto draft), 2 (edit), 3 (sign)."""
    report_id = submit_record(session, load_case("05_critical_potassium"), kb=kb, actor=team.chief).report_id
    edit_report(
        session,
        report_id,
        [EditConclusion("hypokalemia_critical", advice="立即急诊")],
        expected_version=1,
        actor=team.chief,
    )
    sign_report(session, report_id, actor=team.chief)
    session.commit()
    return report_id


def _add_user(session: Session, team: Team, username: str) -> None:
    create_user(
        session,
        username=username,
        password=PASSWORD,
        display_name=username,
        role="health_manager",
        actor=team.admin,
        hasher=FAST_HASHER,
    )


def _lift_triggers(connection: object, *tables: str) -> None:
    """Run as someone who may drop the append-only triggers (a database owner)."""
    from sqlalchemy import Connection

    assert isinstance(connection, Connection)
    for table in tables:
        if connection.dialect.name == "postgresql":
            connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        else:
            connection.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
            connection.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))


def _rename_first_conclusion(engine: Engine, table: str, where: str, new_name: str) -> None:
    with engine.begin() as connection:
        _lift_triggers(connection, table)
        if connection.dialect.name == "postgresql":
            statement = (
                f"UPDATE {table} SET content = jsonb_set(content, '{{conclusions,0,name}}', to_jsonb(CAST(:name AS text))) "
                f"WHERE {where}"
            )
        else:
            statement = f"UPDATE {table} SET content = json_set(content, '$.conclusions[0].name', :name) WHERE {where}"
        connection.execute(text(statement), {"name": new_name})


def test_a_normal_workflow_verifies(session: Session, signed_report: int) -> None:
    report = verify_integrity(session)
    assert report.ok, report.problems
    assert (report.versions_checked, report.reports_checked, report.raw_records_checked) == (3, 1, 1)


def test_signed_conclusions_changed_in_reports_and_versions_are_detected(
    engine: Engine, session: Session, signed_report: int
) -> None:
    """The reproduced defect: the stored hash left as it was, the content changed in both tables."""
    _rename_first_conclusion(engine, "reports", f"id = {signed_report}", "未见异常")
    _rename_first_conclusion(engine, "report_versions", f"report_id = {signed_report} AND version = 3", "未见异常")
    session.expire_all()
    report = verify_integrity(session)
    assert report.chain.ok  # the audit chain alone cannot see this
    assert not report.ok
    tables = {(p.table, p.row) for p in report.problems}
    assert ("report_versions", f"report {signed_report} version 3") in tables
    assert ("reports", f"report {signed_report} (current, version 3)") in tables


def test_changed_version_with_a_recomputed_hash_is_detected(
    engine: Engine, session: Session, signed_report: int
) -> None:
    row = session.scalars(
        select(ReportVersion).where(ReportVersion.report_id == signed_report, ReportVersion.version == 3)
    ).one()
    forged = json.loads(json.dumps(row.content))
    forged["conclusions"] = forged["conclusions"][1:]  # the critical conclusion removed
    forged_hash = content_hash(forged)
    with engine.begin() as connection:
        _lift_triggers(connection, "report_versions", "reports")
        for table, where in (("report_versions", "report_id = :id AND version = 3"), ("reports", "id = :id")):
            connection.execute(
                text(f"UPDATE {table} SET content = :content, content_hash = :hash WHERE {where}").bindparams(
                    content=json.dumps(forged, ensure_ascii=False), hash=forged_hash, id=signed_report
                )
                if connection.dialect.name == "sqlite"
                else text(
                    f"UPDATE {table} SET content = CAST(:content AS JSONB), content_hash = :hash WHERE {where}"
                ).bindparams(content=json.dumps(forged, ensure_ascii=False), hash=forged_hash, id=signed_report)
            )
    session.expire_all()
    report = verify_integrity(session)
    assert not report.ok
    problem = next(p for p in report.problems if p.table == "report_versions")
    assert problem.row == f"report {signed_report} version 3"
    assert "no audit entry records this content" in problem.problem


def test_deleted_version_is_detected(engine: Engine, session: Session, signed_report: int) -> None:
    with engine.begin() as connection:
        _lift_triggers(connection, "report_versions")
        connection.execute(text(f"DELETE FROM report_versions WHERE report_id = {signed_report} AND version = 2"))
    report = verify_integrity(session)
    assert any("missing from report_versions" in p.problem for p in report.problems)


def test_raw_record_changed_in_place_is_detected(engine: Engine, session: Session, signed_report: int) -> None:
    with engine.begin() as connection:
        _lift_triggers(connection, "raw_records")
        if connection.dialect.name == "postgresql":
            connection.execute(text("UPDATE raw_records SET record = jsonb_set(record, '{sex}', '\"male\"')"))
        else:
            connection.execute(text("UPDATE raw_records SET record = json_set(record, '$.sex', 'male')"))
    report = verify_integrity(session)
    assert [p.table for p in report.problems] == ["raw_records"]


def _delete_newest_audit_entries(engine: Engine, count: int) -> None:
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        else:
            connection.execute(text("DROP TRIGGER audit_log_no_delete"))
        newest = connection.execute(text(f"SELECT id FROM audit_log ORDER BY id DESC LIMIT {count}")).scalars().all()
        connection.execute(text(f"DELETE FROM audit_log WHERE id IN ({', '.join(str(i) for i in newest)})"))


def test_deleting_the_newest_entries_is_detected_by_the_anchor(
    engine: Engine, session: Session, team: Team, signed_report: int
) -> None:
    """Entries that carry no report version (new user accounts) can only be missed through an anchor."""
    _add_user(session, team, "nurse1")
    _add_user(session, team, "nurse2")
    anchor = write_anchor(session, key=KEY)
    session.commit()
    assert anchor is not None
    assert verify_integrity(session, key=KEY).ok

    _delete_newest_audit_entries(engine, 2)
    session.expire_all()
    report = verify_integrity(session, key=KEY)
    assert report.chain.ok  # a shorter chain is still a valid chain
    assert not report.ok
    assert [p.table for p in report.problems] == ["audit_anchors"]
    assert "newest entries were deleted" in report.problems[0].problem


def test_the_anchor_file_detects_deletion_when_table_anchors_are_deleted_too(
    engine: Engine, session: Session, team: Team, signed_report: int, tmp_path: Path
) -> None:
    anchors = tmp_path / "anchors.jsonl"
    _add_user(session, team, "nurse1")
    write_anchor(session, key=KEY, anchor_file=anchors)
    session.commit()
    _delete_newest_audit_entries(engine, 1)
    with engine.begin() as connection:
        _lift_triggers(connection, "audit_anchors")
        connection.execute(text("DELETE FROM audit_anchors"))
    session.expire_all()
    assert verify_integrity(session, key=KEY).ok  # nothing inside the database shows it
    report = verify_integrity(session, key=KEY, anchor_file=anchors)
    assert [p.table for p in report.problems] == ["anchor_file"]


def test_forged_anchor_signature_is_detected(engine: Engine, session: Session, signed_report: int) -> None:
    write_anchor(session, key="another key that the attacker chose" * 2)
    session.commit()
    report = verify_integrity(session, key=KEY)
    assert [p.problem for p in report.problems] == ["its signature is wrong: the anchor was forged or changed"]
    assert verify_integrity(session).ok  # without the key, signatures cannot be checked


def test_anchor_keeper_anchors_only_when_the_head_moved(
    session_factory: sessionmaker[Session], session: Session, signed_report: int
) -> None:
    keeper = AnchorKeeper(session_factory, key=KEY, interval_s=3600)
    first = keeper.anchor_once()
    assert first is not None
    assert keeper.anchor_once() is None
    head = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id.desc()).limit(1)).one()
    assert (first.seq, first.head_hash) == (head.id, head.hash)
    assert len(session.scalars(select(AuditAnchor)).all()) == 1


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("report_versions", "UPDATE report_versions SET status = 'draft'"),
        ("report_versions", "DELETE FROM report_versions"),
        ("raw_records", "UPDATE raw_records SET record_hash = 'x'"),
        ("raw_records", "DELETE FROM raw_records"),
        ("audit_anchors", "DELETE FROM audit_anchors"),
        ("audit_anchors", "UPDATE audit_anchors SET seq = 0"),
    ],
)
def test_versions_raw_records_and_anchors_are_append_only(
    engine: Engine, session: Session, signed_report: int, table: str, statement: str
) -> None:
    write_anchor(session, key=KEY)
    session.commit()
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))


def _app() -> typer.Typer:
    app = typer.Typer()
    audit = typer.Typer()
    audit.command("verify")(audit_verify_command)
    audit.command("anchor")(audit_anchor_command)
    app.add_typer(audit, name="audit")
    return app


def test_cli_anchor_and_verify(
    engine: Engine, database_url: str, signed_report: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHUJIAN_AUDIT_ANCHOR_KEY", KEY)
    anchors = tmp_path / "anchors.jsonl"
    runner = CliRunner()
    anchored = runner.invoke(_app(), ["audit", "anchor", "--database-url", database_url, "--anchor-file", str(anchors)])
    assert anchored.exit_code == 0, anchored.output
    assert "signed" in anchored.output
    line = json.loads(anchors.read_text(encoding="utf-8"))
    assert dt.datetime.fromisoformat(line["created_at"]).tzinfo is not None

    ok = runner.invoke(_app(), ["audit", "verify", "--database-url", database_url, "--anchor-file", str(anchors)])
    assert ok.exit_code == 0, ok.output
    assert "content OK: 3 report versions, 1 reports, 1 raw records, 2 anchors" in ok.output

    _rename_first_conclusion(engine, "report_versions", f"report_id = {signed_report} AND version = 3", "未见异常")
    broken = runner.invoke(_app(), ["audit", "verify", "--database-url", database_url, "--anchor-file", str(anchors)])
    assert broken.exit_code == 1
    assert f"INTEGRITY report_versions: report {signed_report} version 3" in broken.output
