"""Role matrix of every alert, follow-up and operations action, written out by hand: health managers and physicians
act, auditors read, the administrator sees only the operations counts."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session

from db_testing import Team, load_case
from zhujian.alerts import followup
from zhujian.alerts import services as alerts
from zhujian.alerts.operations import operations
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.errors import PermissionDenied
from zhujian.storage.permissions import ALERT_ACTIONS, PERMISSIONS
from zhujian.storage.services import sign_report, submit_record

EXPECTED = {
    "admin": {"read_operations"},
    "chief_physician": {"read_alerts", "act_alerts", "act_followup", "read_operations"},
    "reviewing_physician": {"read_alerts", "act_alerts", "act_followup", "read_operations"},
    "health_manager": {"read_alerts", "act_alerts", "act_followup", "read_operations"},
    "auditor": {"read_alerts", "read_operations"},
}


def test_alert_matrix_is_the_documented_policy() -> None:
    assert {role: set(actions) & set(ALERT_ACTIONS) for role, actions in PERMISSIONS.items()} == EXPECTED


def _attempts(session: Session, team: Team, kb: KnowledgeBase) -> dict[str, Callable[..., object]]:
    submit_record(session, load_case("05_critical_potassium"), kb=kb, actor=team.manager)
    record = load_case("10_impaired_fasting_glucose").model_copy(update={"exam_date": dt.date(2026, 3, 16)})
    sign_report(session, submit_record(session, record, kb=kb, actor=team.manager).report_id, actor=team.chief)
    session.commit()
    alert_id = alerts.list_alerts(session, actor=team.manager)[0].id
    task_id = followup.list_tasks(session, actor=team.manager)[0].id
    return {
        "read_alerts": lambda actor: (
            alerts.list_alerts(session, actor=actor),
            followup.list_tasks(session, actor=actor),
        ),
        "act_alerts": lambda actor: alerts.notify_alert(session, alert_id, actor=actor, channel="phone", success=False),
        "act_followup": lambda actor: followup.record_contact(
            session, task_id, actor=actor, channel="phone", reached=False
        ),
        "read_operations": lambda actor: operations(session, actor=actor),
    }


@pytest.mark.parametrize(("role", "action"), list(itertools.product(sorted(EXPECTED), ALERT_ACTIONS)))
def test_every_role_and_alert_action(session: Session, team: Team, kb: KnowledgeBase, role: str, action: str) -> None:
    attempt = _attempts(session, team, kb)[action]
    actor = team.by_role(role)
    if action in EXPECTED[role]:
        attempt(actor)
    else:
        with pytest.raises(PermissionDenied) as caught:
            attempt(actor)
        assert (caught.value.action, caught.value.role) == (action, role)
    session.commit()
