"""Alembic environment: the URL and (optionally) an open connection come from `zhujian.storage.migrate`;
when Alembic is run directly, the URL comes from ZHUJIAN_DATABASE_URL (zhujian.settings)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, pool

from zhujian.storage.db import create_db_engine
from zhujian.storage.migrate import autogenerate_filter
from zhujian.storage.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from zhujian.settings import load_settings

    return load_settings().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode recreates the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_object=autogenerate_filter(connection.dialect.name),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    engine = create_db_engine(_database_url(), poolclass=pool.NullPool)
    try:
        with engine.connect() as new_connection:
            _configure(new_connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
