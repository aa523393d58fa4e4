"""Database helpers shared by the storage and web tests: migrated databases on both backends, users of every role,
golden case records.

PostgreSQL is found at ZHUJIAN_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test); when it
cannot be reached, the PostgreSQL variants skip with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from zhujian.domain.record import Record
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine
from zhujian.storage.models import Base
from zhujian.storage.users import create_user, ensure_admin
from zhujian.storage.values import Actor

APPEND_ONLY_TABLES = ("audit_log", "report_versions", "raw_records", "audit_anchors")
CASES_DIR = Path(__file__).resolve().parent / "cases"
POSTGRES_URL = os.environ.get("ZHUJIAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# Cheap Argon2 parameters: the tests create many users; production uses the library defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"


def _libpq_dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(_libpq_dsn(POSTGRES_URL), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        host = make_url(POSTGRES_URL).host or "127.0.0.1"
        port = make_url(POSTGRES_URL).port or 5432
        pytest.skip(f"PostgreSQL at {host}:{port} unreachable: {str(exc).strip().splitlines()[0]}")


def create_postgres_database(template: str | None = None) -> str:
    name = f"zhujian_test_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as connection:
        suffix = f" TEMPLATE {template}" if template else ""
        connection.execute(f"CREATE DATABASE {name}{suffix}".encode())
    return name


def drop_postgres_database(name: str) -> None:
    with _admin_connection() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def postgres_url(database: str) -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


def load_case(name: str) -> Record:
    return Record.model_validate(json.loads((CASES_DIR / name / "input.json").read_text(encoding="utf-8")))


@dataclass(frozen=True)
class Team:
    admin: Actor
    chief: Actor
    chief2: Actor
    reviewer: Actor
    manager: Actor
    auditor: Actor

    def by_role(self, role: str) -> Actor:
        return {
            "admin": self.admin,
            "chief_physician": self.chief,
            "reviewing_physician": self.reviewer,
            "health_manager": self.manager,
            "auditor": self.auditor,
        }[role]


def make_team(session: Session) -> Team:
    admin_summary = ensure_admin(session, Settings(admin_password=PASSWORD), hasher=FAST_HASHER)
    assert admin_summary is not None
    admin = admin_summary.as_actor()

    def user(username: str, display: str, role: str) -> Actor:
        summary = create_user(
            session,
            username=username,
            password=PASSWORD,
            display_name=display,
            role=role,
            actor=admin,
            hasher=FAST_HASHER,
        )
        return summary.as_actor()

    team = Team(
        admin=admin,
        chief=user("chief", "李主检", "chief_physician"),
        chief2=user("chief2", "周主检", "chief_physician"),
        reviewer=user("reviewer", "赵审核", "reviewing_physician"),
        manager=user("manager", "钱健管", "health_manager"),
        auditor=user("auditor", "孙审计", "auditor"),
    )
    session.commit()
    return team


def emptied(url: str) -> str:
    """Empty every table of a migrated PostgreSQL database (ten times faster than a new database per test)."""
    tables = ", ".join(sorted(Base.metadata.tables))
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            # Append-only tables refuse TRUNCATE through a trigger; tests that tamper with them disable it too.
            for table in APPEND_ONLY_TABLES:
                connection.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            for table in APPEND_ONLY_TABLES:
                connection.execute(text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))
    finally:
        engine.dispose()
    return url


def copy_of(template: Path, directory: Path) -> str:
    """A migrated SQLite database: a copy of the session's migrated template file."""
    path = directory / "zhujian.db"
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"
