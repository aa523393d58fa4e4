"""Fixtures of the alert-loop tests: a migrated database on each backend, a session whose clock the test moves, and
the team of users (helpers in tests/db_testing.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from alerts_helpers import MovableClock
from sqlalchemy.orm import Session

from db_testing import Team, copy_of, emptied, make_team
from zhujian.alerts.clock import CLOCK_KEY, POLICY_KEY
from zhujian.alerts.policy import default_policy
from zhujian.storage.db import create_db_engine, create_session_factory


@pytest.fixture
def clock() -> MovableClock:
    # 09:00 in Shanghai on a weekday.
    return MovableClock(dt.datetime(2026, 3, 18, 1, 0, tzinfo=dt.UTC))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return copy_of(request.getfixturevalue("sqlite_template"), tmp_path)
    return emptied(request.getfixturevalue("postgres_database"))


@pytest.fixture
def session(database_url: str, clock: MovableClock) -> Iterator[Session]:
    engine = create_db_engine(database_url)
    factory = create_session_factory(engine)
    with factory() as session:
        session.info[CLOCK_KEY] = clock
        session.info[POLICY_KEY] = default_policy("Asia/Shanghai")
        yield session
    engine.dispose()


@pytest.fixture
def team(session: Session) -> Team:
    return make_team(session)
