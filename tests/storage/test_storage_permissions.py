"""The permission matrix, and that every service enforces it for every role."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db_testing import (
    FAST_HASHER,
    PASSWORD,
    Team,
    create_postgres_database,
    drop_postgres_database,
    load_case,
    make_team,
    postgres_url,
)
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.cohorts import CohortFilter, cohort_reports
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.storage.edits import EditConclusion
from zhujian.storage.errors import PermissionDenied
from zhujian.storage.migrate import upgrade_database
from zhujian.storage.models import AuditLogEntry
from zhujian.storage.permissions import ACTIONS, ALERT_ACTIONS, PERMISSIONS, ROLES, require_permission, role_can
from zhujian.storage.services import (
    edit_report,
    get_person_identity,
    get_report,
    publish_report,
    report_audit,
    review_report,
    set_person_identity,
    sign_report,
    submit_record,
    worklist,
)
from zhujian.storage.users import create_user, update_user
from zhujian.storage.values import Actor

# The policy, written out by hand: the chief physician drafts and signs, the reviewing physician approves or sends
# back (and does not edit), the health manager hands reports out and keeps contact data, the administrator manages
# accounts without reading medical content, the auditor reads.
EXPECTED = {
    "admin": {"submit", "manage_users", "read_audit"},
    "chief_physician": {"read", "submit", "edit", "sign", "export", "read_identity", "group_report"},
    "reviewing_physician": {"read", "review", "publish", "export", "read_identity", "group_report"},
    "health_manager": {"read", "submit", "publish", "export", "read_identity", "manage_identity", "group_report"},
    "auditor": {"read", "read_audit"},
}
# The alert and follow-up actions have their own matrix test (tests/alerts/test_alerts_permissions.py).
STORAGE_ACTIONS = [a for a in ACTIONS if a not in ALERT_ACTIONS]


def test_matrix_is_the_documented_policy() -> None:
    assert set(ROLES) == set(EXPECTED)
    assert {role: set(actions) - set(ALERT_ACTIONS) for role, actions in PERMISSIONS.items()} == EXPECTED
    assert set().union(*EXPECTED.values()) == set(STORAGE_ACTIONS)
    assert not role_can("superuser", "read")  # unknown roles may do nothing


@dataclass
class MatrixDatabase:
    session: Session
    team: Team
    kb: KnowledgeBase

    def draft(self) -> int:
        visit_id = f"V-{uuid.uuid4().hex[:10]}"
        record = load_case("04_new_grade2_hypertension").model_copy(update={"visit_id": visit_id})
        return submit_record(self.session, record, kb=self.kb, actor=self.team.chief).report_id

    def signed(self) -> int:
        report_id = self.draft()
        sign_report(self.session, report_id, actor=self.team.chief2)
        return report_id

    def reviewed(self) -> int:
        report_id = self.signed()
        review_report(self.session, report_id, decision="approve", actor=self.team.reviewer)
        return report_id


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def matrix_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, kb: KnowledgeBase
) -> Iterator[MatrixDatabase]:
    """One database per backend for the whole matrix: each case creates the reports it needs."""
    database = None
    if request.param == "sqlite":
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('matrix')) / 'matrix.db'}"
    else:
        database = create_postgres_database()
        url = postgres_url(database)
    try:
        upgrade_database(url)
        engine = create_db_engine(url)
        with create_session_factory(engine)() as session:
            team = make_team(session)
            set_person_identity(session, "P-1", name="测试", phone="13800000000", actor=team.manager)
            session.commit()
            yield MatrixDatabase(session, team, kb)
        engine.dispose()
    finally:
        if database:
            drop_postgres_database(database)


def _attempt(action: str, db: MatrixDatabase, actor: Actor) -> Callable[[], object]:
    """A call that needs exactly `action`, with the state prepared so that only the permission can refuse it."""
    session = db.session
    if action == "read":
        report_id = db.draft()
        return lambda: (worklist(session, actor=actor, limit=5), get_report(session, report_id, actor=actor))
    if action == "submit":
        record = load_case("01_male_healthy").model_copy(update={"visit_id": f"S-{uuid.uuid4().hex[:10]}"})
        return lambda: submit_record(session, record, kb=db.kb, actor=actor)
    if action == "edit":
        report_id = db.draft()
        operations = [EditConclusion("bp_elevated_marked", advice="复查")]
        return lambda: edit_report(session, report_id, operations, expected_version=1, actor=actor)
    if action == "sign":
        report_id = db.draft()
        return lambda: sign_report(session, report_id, actor=actor)
    if action == "review":
        report_id = db.signed()
        return lambda: review_report(session, report_id, decision="approve", actor=actor)
    if action == "publish":
        report_id = db.reviewed()
        return lambda: publish_report(session, report_id, actor=actor)
    if action == "export":
        # Exports are served by the web layer, which asks the same matrix.
        return lambda: require_permission(actor.role, "export")
    if action == "manage_users":
        username = f"u{uuid.uuid4().hex[:10]}"
        return lambda: create_user(
            session,
            username=username,
            password=PASSWORD,
            display_name="新用户",
            role="auditor",
            actor=actor,
            hasher=FAST_HASHER,
        )
    if action == "read_audit":
        report_id = db.draft()
        return lambda: report_audit(session, report_id, actor=actor)
    if action == "read_identity":
        return lambda: get_person_identity(session, "P-1", actor=actor)
    if action == "manage_identity":
        return lambda: set_person_identity(session, f"P-{uuid.uuid4().hex[:6]}", name=None, phone=None, actor=actor)
    if action == "group_report":
        cohort = CohortFilter(dt.date(2000, 1, 1), dt.date(2100, 1, 1), signed_only=False)
        return lambda: cohort_reports(session, cohort, actor=actor)
    raise AssertionError(f"no attempt written for action {action!r}")


def _audit_count(session: Session) -> int:
    return session.scalar(select(func.count(AuditLogEntry.id))) or 0


@pytest.mark.parametrize(("role", "action"), list(itertools.product(sorted(EXPECTED), STORAGE_ACTIONS)))
def test_every_role_and_action(matrix_db: MatrixDatabase, role: str, action: str) -> None:
    actor = matrix_db.team.by_role(role)
    attempt = _attempt(action, matrix_db, actor)
    if action in EXPECTED[role]:
        attempt()
    else:
        entries = _audit_count(matrix_db.session)
        with pytest.raises(PermissionDenied) as caught:
            attempt()
        assert (caught.value.action, caught.value.role) == (action, role)
        assert _audit_count(matrix_db.session) == entries  # a refused write leaves no trace but the refusal
    matrix_db.session.commit()


def test_deactivated_user_may_do_nothing(matrix_db: MatrixDatabase) -> None:
    db = matrix_db
    user = create_user(
        db.session,
        username=f"gone{uuid.uuid4().hex[:6]}",
        password=PASSWORD,
        display_name="离职医生",
        role="chief_physician",
        actor=db.team.admin,
        hasher=FAST_HASHER,
    )
    update_user(db.session, user.user_id, active=False, actor=db.team.admin)
    report_id = db.draft()
    with pytest.raises(PermissionDenied, match="已停用"):
        get_report(db.session, report_id, actor=user.as_actor())
    with pytest.raises(PermissionDenied):
        sign_report(db.session, report_id, actor=user.as_actor())
    db.session.commit()


def test_the_stored_role_counts_not_the_callers_snapshot(matrix_db: MatrixDatabase) -> None:
    db = matrix_db
    user = create_user(
        db.session,
        username=f"was{uuid.uuid4().hex[:6]}",
        password=PASSWORD,
        display_name="前管理员",
        role="admin",
        actor=db.team.admin,
        hasher=FAST_HASHER,
    )
    snapshot = user.as_actor()
    update_user(db.session, user.user_id, role="auditor", actor=db.team.admin)
    with pytest.raises(PermissionDenied):
        create_user(
            db.session,
            username=f"x{uuid.uuid4().hex[:6]}",
            password=PASSWORD,
            display_name="x",
            role="admin",
            actor=snapshot,
            hasher=FAST_HASHER,
        )
    db.session.commit()
