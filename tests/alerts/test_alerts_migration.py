"""Migration 0004 adds the alert and follow-up tables on top of 0001 and removes them again, on SQLite and
PostgreSQL, leaving the 0001 schema intact."""

from __future__ import annotations

from sqlalchemy import inspect

from zhujian.storage.db import create_db_engine
from zhujian.storage.migrate import current_revision, downgrade_database, upgrade_database

NEW_TABLES = {"alerts", "alert_attempts", "followup_tasks", "followup_contacts"}


def _tables(url: str) -> set[str]:
    engine = create_db_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_0004_upgrades_from_0003_and_downgrades_back(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, "0003")
    before = _tables(empty_database_url)
    assert not before & NEW_TABLES
    upgrade_database(empty_database_url, "0004")
    assert current_revision(empty_database_url) == "0004"
    assert _tables(empty_database_url) == before | NEW_TABLES
    engine = create_db_engine(empty_database_url)
    try:
        indexes = {ix["name"] for ix in inspect(engine).get_indexes("alerts")}
        uniques = {u["name"] for u in inspect(engine).get_unique_constraints("alerts")}
    finally:
        engine.dispose()
    assert "ix_alerts_worklist" in indexes and "uq_alerts_report_source" in uniques
    downgrade_database(empty_database_url, "0003")
    assert current_revision(empty_database_url) == "0003"
    assert _tables(empty_database_url) == before
    upgrade_database(empty_database_url, "0004")  # and up again: nothing left behind collides
    assert _tables(empty_database_url) == before | NEW_TABLES
