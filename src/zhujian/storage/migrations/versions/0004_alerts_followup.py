"""Alerts of important abnormal results (+ notification attempts) and follow-up tasks (+ contact attempts).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

Plain SQLAlchemy types, as in 0001: later model changes cannot alter what this revision creates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _utc(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user(name: str, table: str) -> tuple[sa.Column[Any], sa.ForeignKeyConstraint]:
    return (
        sa.Column(name, sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint([name], ["users.id"], name=op.f(f"fk_{table}_{name}_users")),
    )


def upgrade() -> None:
    notified_by, notified_by_fk = _user("notified_by_id", "alerts")
    closed_by, closed_by_fk = _user("closed_by_id", "alerts")
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=1), nullable=False),
        sa.Column("source_key", sa.String(length=200), nullable=False),
        sa.Column("conclusion_id", sa.String(length=128), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _utc("created_at"),
        _utc("due_at"),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        _utc("notified_at", nullable=True),
        notified_by,
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("reached", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        _utc("closed_at", nullable=True),
        closed_by,
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=True),
        sa.CheckConstraint("level IN ('A', 'B')", name=op.f("ck_alerts_level")),
        sa.CheckConstraint("status IN ('open', 'notified', 'closed')", name=op.f("ck_alerts_status")),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_alerts_report_id_reports")),
        notified_by_fk,
        closed_by_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint("report_id", "source_key", name="uq_alerts_report_source"),
    )
    op.create_index(op.f("ix_alerts_report_id"), "alerts", ["report_id"])
    op.create_index("ix_alerts_worklist", "alerts", ["status", "due_at", "id"])

    actor, actor_fk = _user("actor_id", "alert_attempts")
    op.create_table(
        "alert_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        _utc("occurred_at"),
        actor,
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("reached", sa.String(length=100), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"], name=op.f("fk_alert_attempts_alert_id_alerts")),
        actor_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_attempts")),
    )
    op.create_index(op.f("ix_alert_attempts_alert_id"), "alert_attempts", ["alert_id"])

    task_closed_by, task_closed_by_fk = _user("closed_by_id", "followup_tasks")
    op.create_table(
        "followup_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=True),
        sa.Column("conclusion_id", sa.String(length=128), nullable=False),
        sa.Column("conclusion_name", sa.String(length=300), nullable=False),
        sa.Column("icd10", sa.String(length=32), nullable=True),
        sa.Column("provenance", sa.String(length=16), nullable=True),
        sa.Column("follow_up", sa.Text(), nullable=False),
        sa.Column("exam_date", sa.Date(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("contact_attempts", sa.Integer(), nullable=False),
        _utc("created_at"),
        _utc("closed_at", nullable=True),
        task_closed_by,
        sa.Column("closed_by_report_id", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.Column("held", sa.Boolean(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_followup_tasks_status")),
        sa.ForeignKeyConstraint(["report_id"], ["reports.id"], name=op.f("fk_followup_tasks_report_id_reports")),
        sa.ForeignKeyConstraint(["person_id"], ["persons.id"], name=op.f("fk_followup_tasks_person_id_persons")),
        sa.ForeignKeyConstraint(
            ["closed_by_report_id"], ["reports.id"], name=op.f("fk_followup_tasks_closed_by_report_id_reports")
        ),
        task_closed_by_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_tasks")),
        sa.UniqueConstraint("report_id", "conclusion_id", name="uq_followup_tasks_report_conclusion"),
    )
    op.create_index(op.f("ix_followup_tasks_report_id"), "followup_tasks", ["report_id"])
    op.create_index(op.f("ix_followup_tasks_person_id"), "followup_tasks", ["person_id"])
    op.create_index("ix_followup_tasks_worklist", "followup_tasks", ["status", "due_date", "id"])

    contact_actor, contact_actor_fk = _user("actor_id", "followup_contacts")
    op.create_table(
        "followup_contacts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        _utc("occurred_at"),
        contact_actor,
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("reached", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["task_id"], ["followup_tasks.id"], name=op.f("fk_followup_contacts_task_id_followup_tasks")
        ),
        contact_actor_fk,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_followup_contacts")),
    )
    op.create_index(op.f("ix_followup_contacts_task_id"), "followup_contacts", ["task_id"])


def downgrade() -> None:
    op.drop_table("followup_contacts")
    op.drop_table("followup_tasks")
    op.drop_table("alert_attempts")
    op.drop_table("alerts")
