"""Fixtures of the web tests: a migrated database (a copy of the session's SQLite template, or its PostgreSQL
database emptied per test; see tests/conftest.py), the team of users, and a TestClient of the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web_helpers import SECRET_KEY

from browser_testing import browser_missing, live_server
from db_testing import FAST_HASHER, Team, copy_of, emptied, make_team
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
from zhujian.web.app import create_app
from zhujian.web.demo import DemoAccount, set_up_demo


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    return copy_of(sqlite_template, tmp_path)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """The API suite runs on both backends."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return emptied(request.getfixturevalue("postgres_database"))


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


@pytest.fixture
def demo_server(sqlite_url: str, kb: KnowledgeBase) -> Iterator[tuple[str, dict[str, DemoAccount]]]:
    """The demo (six records and the demo accounts) behind a real uvicorn server, for the browser tests; skips
    where Chromium or Playwright is missing."""
    if (missing := browser_missing()) is not None:
        pytest.skip(missing)
    engine = create_db_engine(sqlite_url)
    factory = create_session_factory(engine)
    with session_scope(factory) as session:
        accounts = set_up_demo(session, Settings(database_url=sqlite_url), kb, record_count=6, hasher=FAST_HASHER)
    app = create_app(Settings(database_url=sqlite_url, secret_key=SECRET_KEY), kb=kb, session_factory=factory)
    try:
        with live_server(app) as base:
            yield base, {a.username: a for a in accounts}
    finally:
        engine.dispose()
