"""Fixtures shared by every test folder: the bundled KB, and migrated databases on SQLite and PostgreSQL (created
once per session; helpers in tests/db_testing.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from db_testing import create_postgres_database, drop_postgres_database, postgres_url
from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.storage.migrate import upgrade_database


@pytest.fixture(scope="session")
def kb() -> KnowledgeBase:
    return default_kb()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that tests copy instead of migrating again."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade_database(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """One migrated PostgreSQL database for the session (random name, dropped at the end); tests empty it first."""
    name = create_postgres_database()
    try:
        url = postgres_url(name)
        upgrade_database(url)
        yield url
    finally:
        drop_postgres_database(name)


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
