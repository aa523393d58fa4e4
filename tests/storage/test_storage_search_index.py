"""Worklist search by any part of an id is served by trigram indexes on PostgreSQL (migration 0005): the indexes
exist, the planner can answer the search's id lookups from them, and 0005 goes down to the prefix indexes of 0001
and up again. On SQLite the revision changes nothing."""

from __future__ import annotations

from sqlalchemy import inspect, text

from zhujian.storage.db import create_db_engine
from zhujian.storage.migrate import current_revision, downgrade_database, upgrade_database

TRIGRAM = {("visits", "ix_visits_visit_id_trgm"), ("persons", "ix_persons_pseudonym_trgm")}
PREFIX = {("visits", "ix_visits_visit_id_pattern"), ("persons", "ix_persons_pseudonym_pattern")}


def _indexes(url: str) -> set[tuple[str, str]]:
    engine = create_db_engine(url)
    try:
        inspector = inspect(engine)
        return {(table, str(ix["name"])) for table in ("visits", "persons") for ix in inspector.get_indexes(table)}
    finally:
        engine.dispose()


def test_0005_swaps_prefix_for_trigram_indexes_and_back(empty_database_url: str) -> None:
    upgrade_database(empty_database_url, "0004")
    postgres = empty_database_url.startswith("postgresql")
    assert _indexes(empty_database_url) >= PREFIX if postgres else not (PREFIX & _indexes(empty_database_url))
    upgrade_database(empty_database_url, "0005")
    assert current_revision(empty_database_url) == "0005"
    after = _indexes(empty_database_url)
    if postgres:
        assert after >= TRIGRAM and not (PREFIX & after)
    else:
        assert not (TRIGRAM | PREFIX) & after
    downgrade_database(empty_database_url, "0004")
    back = _indexes(empty_database_url)
    assert not (TRIGRAM & back)
    assert back >= PREFIX if postgres else not (PREFIX & back)
    upgrade_database(empty_database_url, "0005")
    assert current_revision(empty_database_url) == "0005"


def test_search_lookup_can_use_the_trigram_index(postgres_database: str) -> None:
    engine = create_db_engine(postgres_database)
    try:
        with engine.begin() as connection:
            # The planner prefers a scan of a near-empty table; forbid it to see that the index can answer.
            connection.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(
                row[0]
                for row in connection.execute(
                    text("EXPLAIN SELECT id FROM visits WHERE visit_id ILIKE :pattern ESCAPE '\\'"),
                    {"pattern": "%0012345%"},
                )
            )
    finally:
        engine.dispose()
    assert "ix_visits_visit_id_trgm" in plan, plan
