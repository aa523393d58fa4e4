"""Schema migrations through the Alembic command API, with the configuration shipped in the package."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from zhujian.storage.db import create_db_engine
from zhujian.storage.models import POSTGRESQL_ONLY_INDEXES


def _package_dir() -> Path:
    return Path(str(resources.files("zhujian.storage")))


def alembic_config(database_url: str) -> Config:
    """Alembic config for `database_url`. The URL travels in `attributes`, not in the ini options, so that a '%' in
    an encoded password is not read as ini interpolation."""
    package = _package_dir()
    config = Config(str(package / "alembic.ini"))
    config.set_main_option("script_location", str(package / "migrations"))
    config.attributes["database_url"] = database_url
    return config


def upgrade_database(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade_database(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None for an empty database)."""
    engine = create_db_engine(database_url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def autogenerate_filter(dialect_name: str) -> Callable[[Any, str | None, str, bool, Any], bool]:
    """`include_object` for Alembic comparisons: PostgreSQL-only indexes do not exist on other backends."""

    def include_object(_obj: Any, name: str | None, type_: str, _reflected: bool, _compare_to: Any) -> bool:
        return not (type_ == "index" and dialect_name != "postgresql" and name in POSTGRESQL_ONLY_INDEXES)

    return include_object
