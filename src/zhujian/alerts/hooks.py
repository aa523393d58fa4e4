"""What `zhujian.storage.services` calls after it stored or signed a report, in the same transaction: a failure
here rolls the whole step back, so a stored critical value never lacks its alert."""

from __future__ import annotations

from sqlalchemy.orm import Session

from zhujian.alerts.followup import close_tasks_by_next_visit, create_tasks_for_signed_report
from zhujian.alerts.services import open_alerts_for_report
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.values import Actor


def report_stored(
    session: Session, report_id: int, *, kb: KnowledgeBase, actor: Actor | None, content_changed: bool
) -> None:
    """A record was stored. New content opens the alerts of its class A (and B) results; a new visit of a person
    closes the recheck tasks of earlier visits that its comparison answers."""
    if content_changed:
        open_alerts_for_report(session, report_id, actor=None)
    close_tasks_by_next_visit(session, report_id, kb=kb, actor=None)


def report_signed(session: Session, report_id: int, *, actor: Actor) -> None:
    """A report was signed: its conclusions with a follow-up window become recheck tasks."""
    create_tasks_for_signed_report(session, report_id, actor=actor)
