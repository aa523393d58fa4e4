"""Worklist search by any part of an id: trigram indexes (pg_trgm) instead of the prefix-only pattern indexes.

The workbench matches a search anywhere in a visit id or a person's pseudonymous id (`ILIKE '%text%'`). A b-tree
(`varchar_pattern_ops`) serves only a prefix; a GIN trigram index serves any substring of three characters or more
(measured in docs/measurements.md: about 0.5 ms instead of a 70 ms scan of 200,000 ids). pg_trgm ships with
PostgreSQL and is a trusted extension (PostgreSQL 13+): the owner of the database may create it. Where it cannot be
created, the migration says so in the log and leaves search without an index (correct, only slower); a database
administrator can run `CREATE EXTENSION pg_trgm;` and `zhujian db upgrade` again after downgrading to 0004.

SQLite has neither: nothing to do there.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("zhujian.storage.migrations")

SEARCHED_COLUMNS = (("visits", "visit_id"), ("persons", "pseudonym"))


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in SEARCHED_COLUMNS:
        op.drop_index(f"ix_{table}_{column}_pattern", table_name=table)
    try:
        with bind.begin_nested():  # a savepoint: a refused extension must not abort the whole migration
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except sa.exc.DBAPIError as exc:
        logger.warning(
            "pg_trgm could not be created (%s): worklist search works without an index, more slowly; "
            "a database administrator may run CREATE EXTENSION pg_trgm",
            type(exc.orig).__name__ if exc.orig is not None else type(exc).__name__,
        )
        return
    for table, column in SEARCHED_COLUMNS:
        op.create_index(
            f"ix_{table}_{column}_trgm",
            table,
            [column],
            postgresql_using="gin",
            postgresql_ops={column: "gin_trgm_ops"},
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for table, column in SEARCHED_COLUMNS:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
        op.create_index(
            f"ix_{table}_{column}_pattern", table, [column], postgresql_ops={column: "varchar_pattern_ops"}
        )
