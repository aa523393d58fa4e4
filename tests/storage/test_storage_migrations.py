"""The Alembic migration builds the schema the ORM expects, on SQLite and PostgreSQL, and tears it down again."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError

from zhujian.storage.db import create_db_engine
from zhujian.storage.migrate import (
    autogenerate_filter,
    current_revision,
    downgrade_database,
    head_revision,
    upgrade_database,
)
from zhujian.storage.models import Base

TABLES = {"users", "persons", "person_identities", "visits", "raw_records", "reports", "report_versions", "audit_log"}
TABLES |= {"user_sessions", "login_throttle"}  # 0002: server-side sessions and the login throttle
TABLES |= {"audit_anchors"}  # 0003: anchors of the audit chain head
TABLES |= {"alerts", "alert_attempts", "followup_tasks", "followup_contacts"}  # 0004, zhujian.alerts


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_to_head_and_downgrade_to_base(empty_database_url: str) -> None:
    assert current_revision(empty_database_url) is None
    assert _tables(empty_database_url) == set()

    upgrade_database(empty_database_url)
    assert current_revision(empty_database_url) == head_revision() is not None
    assert _tables(empty_database_url) == TABLES | {"alembic_version"}

    downgrade_database(empty_database_url, "base")
    assert current_revision(empty_database_url) is None
    assert _tables(empty_database_url) == {"alembic_version"}

    # And up again: the downgrade left nothing behind that would collide (PostgreSQL trigger function included).
    upgrade_database(empty_database_url)
    assert _tables(empty_database_url) == TABLES | {"alembic_version"}


def test_models_match_the_migration(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={"compare_type": True, "include_object": autogenerate_filter(connection.dialect.name)},
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_worklist_indexes_exist(engine: Engine) -> None:
    indexes = {ix["name"]: ix["column_names"] for ix in inspect(engine).get_indexes("reports")}
    assert indexes["ix_reports_worklist"] == ["priority", "sort_date", "id"]
    assert indexes["ix_reports_status_worklist"] == ["status", "priority", "sort_date", "id"]


@pytest.mark.parametrize("statement", ["UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"])
def test_audit_log_refuses_update_and_delete(engine: Engine, statement: str) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_log (occurred_at, action, object_type, object_id, prev_hash, hash) "
                "VALUES (:t, 'test', 'test', '1', :p, :h)"
            ),
            {"t": "2026-01-01 00:00:00+00:00", "p": "0" * 64, "h": "1" * 64},
        )
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT action FROM audit_log")).scalars().all() == ["test"]
