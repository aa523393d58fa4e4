"""Helpers of the web tests: databases on SQLite and PostgreSQL (the approach of tests/storage), users of every role,
API tokens and example records.

PostgreSQL is found at ZHUJIAN_TEST_POSTGRES_URL (default postgresql+psycopg://postgres@127.0.0.1:5432/test); when it
cannot be reached, the PostgreSQL variants skip with the reason.
"""

from __future__ import annotations

import copy
import os
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from zhujian.examples import load_example
from zhujian.settings import Settings
from zhujian.storage.users import create_user, ensure_admin
from zhujian.storage.values import Actor
from zhujian.web.security import create_api_token

POSTGRES_URL = os.environ.get("ZHUJIAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse battery"
SECRET_KEY = "test-secret-key-" + "x" * 32


def _libpq_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin_connection() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(_libpq_dsn(POSTGRES_URL), autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        url = make_url(POSTGRES_URL)
        pytest.skip(
            f"PostgreSQL at {url.host or '127.0.0.1'}:{url.port or 5432} unreachable: "
            f"{str(exc).strip().splitlines()[0]}"
        )


def create_postgres_database() -> str:
    name = f"zhujian_webtest_{uuid.uuid4().hex[:12]}"
    with _admin_connection() as connection:
        connection.execute(f"CREATE DATABASE {name}".encode())
    return name


def drop_postgres_database(name: str) -> None:
    with _admin_connection() as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)".encode())


def postgres_url(database: str) -> str:
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


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
        return create_user(
            session,
            username=username,
            password=PASSWORD,
            display_name=display,
            role=role,
            actor=admin,
            hasher=FAST_HASHER,
        ).as_actor()

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


def bearer(actor: Actor) -> dict[str, str]:
    token, _ = create_api_token(SECRET_KEY, actor.user_id)
    return {"Authorization": f"Bearer {token}"}


def example_record(name: str = "female_67_critical", visit_id: str | None = None) -> dict[str, Any]:
    record: dict[str, Any] = copy.deepcopy(load_example(name))
    if visit_id is not None:
        record["visit_id"] = visit_id
    return record
