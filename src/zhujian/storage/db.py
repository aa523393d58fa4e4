"""Engine and session factory from the settings. Services never commit: the caller owns the transaction
(`with session_scope(factory) as session: ...` commits on success and rolls back on any error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from zhujian.settings import Settings


def _json_dumps(value: Any) -> str:
    # Chinese text stays readable in SQLite files and psql output.
    return json.dumps(value, ensure_ascii=False)


def create_db_engine(database_url: str, **engine_options: Any) -> Engine:
    """An engine for `database_url` (SQLite or `postgresql+psycopg://`). On SQLite, foreign keys are enforced,
    writers wait up to 10 s for a lock, and the WAL journal lets readers work while someone writes."""
    engine = create_engine(database_url, json_serializer=_json_dumps, **engine_options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite_connection)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def engine_from_settings(settings: Settings, **engine_options: Any) -> Engine:
    return create_db_engine(settings.database_url, **engine_options)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: the dataclasses built from rows stay readable after the commit.
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit when the block ends normally, roll back when it raises."""
    with factory() as session, session.begin():
        yield session
