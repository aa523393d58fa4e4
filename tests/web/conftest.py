"""Fixtures of the web tests: a migrated database (SQLite file copy, or the session's PostgreSQL database emptied per
test), the team of users, and a TestClient of the app."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from web_helpers import (
    SECRET_KEY,
    Team,
    create_postgres_database,
    drop_postgres_database,
    make_team,
    postgres_url,
)

from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.storage.migrate import upgrade_database
from zhujian.storage.models import Base
from zhujian.web.app import create_app


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return default_kb()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("web-template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    name = create_postgres_database()
    try:
        url = postgres_url(name)
        upgrade_database(url)
        yield url
    finally:
        drop_postgres_database(name)


def _emptied(url: str) -> str:
    tables = ", ".join(sorted(Base.metadata.tables))
    engine = create_db_engine(url)
    try:
        with engine.begin() as connection:
            # The audit log refuses TRUNCATE through a trigger (append-only); a test database may lift it briefly.
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    finally:
        engine.dispose()
    return url


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "zhujian.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The API suite runs on both backends."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return _emptied(request.getfixturevalue("postgres_database"))


def _client(url: str, kb: KnowledgeBase) -> Iterator[tuple[TestClient, Team]]:
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    with factory() as session:
        team = make_team(session)
    app = create_app(Settings(database_url=url, secret_key=SECRET_KEY), kb=kb, session_factory=factory)
    with TestClient(app) as client:
        yield client, team
    engine.dispose()


@pytest.fixture
def api(database_url: str, kb: KnowledgeBase) -> Iterator[tuple[TestClient, Team]]:
    yield from _client(database_url, kb)


@pytest.fixture
def web(sqlite_url: str, kb: KnowledgeBase) -> Iterator[tuple[TestClient, Team]]:
    yield from _client(sqlite_url, kb)
