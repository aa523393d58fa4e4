"""Engine and session factory from the settings. Services never commit: the caller owns the transaction
(`with session_scope(factory) as session: ...` commits on success and rolls back on any error)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from zhujian.settings import Settings

# Connections a pool may open beyond its size, for requests that do not queue for a turn (health checks).
POOL_OVERFLOW = 5
# Connection execution option read when a SQLite transaction begins: "IMMEDIATE" takes the write lock at BEGIN.
SQLITE_BEGIN_OPTION = "zhujian_sqlite_begin"


def _json_dumps(value: Any) -> str:
    # Chinese text stays readable in SQLite files and psql output.
    return json.dumps(value, ensure_ascii=False)


def create_db_engine(database_url: str, **engine_options: Any) -> Engine:
    """An engine for `database_url` (SQLite or `postgresql+psycopg://`). On SQLite, foreign keys are enforced,
    writers wait up to 10 s for a lock, and the WAL journal lets readers work while someone writes (see `write_engine`
    for transactions that take the write lock when they begin)."""
    engine = create_engine(database_url, json_serializer=_json_dumps, **engine_options)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite_connection)
        event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: Connection) -> None:
    # Other transactions keep the driver's own handling (reads outside a transaction, BEGIN before the first
    # write); the driver adds no BEGIN of its own once this one is open.
    if connection.get_execution_options().get(SQLITE_BEGIN_OPTION) == "IMMEDIATE":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def write_engine(engine: Engine) -> Engine:
    """The same engine (same pool) for transactions that will write. On SQLite they begin IMMEDIATE: a writer
    takes the database's write lock before its first read, so two writers queue (busy timeout) instead of both
    reading, then one failing with "database is locked" when it tries to write what it read. PostgreSQL ignores
    the option (its writers lock rows, see the services)."""
    return engine.execution_options(**{SQLITE_BEGIN_OPTION: "IMMEDIATE"})


def pool_options(database_url: str, *, pool_size: int, pool_timeout: float, max_overflow: int) -> dict[str, Any]:
    """Connection-pool arguments for `create_db_engine`; empty for an in-memory SQLite database, whose pool keeps
    one connection per thread and takes no size."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        return {}
    return {"pool_size": pool_size, "max_overflow": max_overflow, "pool_timeout": pool_timeout}


def engine_from_settings(settings: Settings, **engine_options: Any) -> Engine:
    """The engine of `settings.database_url` with the configured pool: `ZHUJIAN_DB_POOL_SIZE` connections plus
    `POOL_OVERFLOW`, and a checkout waits at most `ZHUJIAN_DB_POOL_TIMEOUT` seconds (then `sqlalchemy.exc.TimeoutError`,
    which the web answers with 503)."""
    options = {
        **pool_options(
            settings.database_url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout,
            max_overflow=POOL_OVERFLOW,
        ),
        **engine_options,
    }
    return create_db_engine(settings.database_url, **options)


def create_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: the dataclasses built from rows stay readable after the commit.
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit when the block ends normally, roll back when it raises."""
    with factory() as session, session.begin():
        yield session
