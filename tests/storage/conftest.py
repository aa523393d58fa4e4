"""Fixtures of the storage tests: a migrated database on SQLite (a file in tmp_path) and on PostgreSQL (a database
with a random name, created for the session and dropped afterwards), and users of every role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker
from storage_helpers import Team, create_postgres_database, drop_postgres_database, make_team, postgres_url

from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.storage.migrate import upgrade_database
from zhujian.storage.models import Base


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return default_kb()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the session (created with a random name, dropped at the end); each test
    empties it first, which is ten times faster than creating a database per test."""
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
            # Tests that tamper with the audit log disable its triggers: restore them, then empty every table.
            connection.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            connection.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    finally:
        engine.dispose()
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database on each backend: a copy of a migrated SQLite file, or the emptied session
    PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "zhujian.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return _emptied(request.getfixturevalue("postgres_database"))


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema at all, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = create_postgres_database()
    try:
        yield postgres_url(name)
    finally:
        drop_postgres_database(name)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return create_session_factory(engine)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture
def team(session: Session) -> Team:
    return make_team(session)
