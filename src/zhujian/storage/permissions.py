"""Roles and the permission matrix, as data: which role may do which action.

The matrix is the single source of truth: every service calls `require_permission` with one action from
`ACTIONS`, and the web layer may use `role_can` to hide buttons. Roles are fixed; a user has exactly one.
"""

from __future__ import annotations

from typing import Final, Literal, cast, get_args

from sqlalchemy.orm import Session

from zhujian.storage.errors import PermissionDenied
from zhujian.storage.models import User
from zhujian.storage.values import Actor, Role

Action = Literal[
    "read",  # worklist, report, report history
    "submit",  # store a checkup record and its auto draft
    "edit",  # change the conclusions of a draft / edited / rejected report, regenerate it
    "sign",  # 主检签署
    "review",  # 审核: approve or send back with a reason
    "publish",  # release a reviewed report to the examinee
    "export",  # PDF / data export (enforced by the web layer)
    "manage_users",  # create users, change role, deactivate
    "read_audit",  # the audit log
    "read_identity",  # name and phone number of an examinee (person_identities)
    "manage_identity",  # write name and phone number
    "group_report",  # aggregate (团检) reports of a cohort, small cells suppressed
    "read_alerts",  # alerts of important abnormal results and follow-up tasks
    "act_alerts",  # record notifications, failed attempts and closing outcomes of alerts
    "act_followup",  # record contact attempts and outcomes of follow-up tasks
    "read_operations",  # the operations view (counts per day and per physician) and its CSV export
]

ROLES: Final[tuple[Role, ...]] = get_args(Role)
ACTIONS: Final[tuple[Action, ...]] = get_args(Action)

ROLE_LABELS: Final[dict[Role, str]] = {
    "admin": "系统管理员",
    "chief_physician": "主检医生",
    "reviewing_physician": "审核医生",
    "health_manager": "健康管理师",
    "auditor": "审计员",
}

# Least privilege: the administrator manages accounts and reads the audit log but not medical content; the
# reviewing physician approves or sends back but does not edit (a change goes back to the chief physician); only
# the roles that talk to examinees see names and phone numbers.
PERMISSIONS: Final[dict[Role, frozenset[Action]]] = {
    "admin": frozenset({"submit", "manage_users", "read_audit"}),
    "chief_physician": frozenset({"read", "submit", "edit", "sign", "export", "read_identity", "group_report"}),
    "reviewing_physician": frozenset({"read", "review", "publish", "export", "read_identity", "group_report"}),
    "health_manager": frozenset(
        {"read", "submit", "publish", "export", "read_identity", "manage_identity", "group_report"}
    ),
    "auditor": frozenset({"read", "read_audit"}),
}

# The alert loop and follow-up (zhujian.alerts): health managers and physicians act, auditors read; the
# administrator sees the operations counts (no medical content) but no alert.
_ALERT_PERMISSIONS: Final[dict[Role, frozenset[Action]]] = {
    "admin": frozenset({"read_operations"}),
    "chief_physician": frozenset({"read_alerts", "act_alerts", "act_followup", "read_operations"}),
    "reviewing_physician": frozenset({"read_alerts", "act_alerts", "act_followup", "read_operations"}),
    "health_manager": frozenset({"read_alerts", "act_alerts", "act_followup", "read_operations"}),
    "auditor": frozenset({"read_alerts", "read_operations"}),
}
for _role, _actions in _ALERT_PERMISSIONS.items():
    PERMISSIONS[_role] = PERMISSIONS[_role] | _actions
ALERT_ACTIONS: Final[tuple[Action, ...]] = ("read_alerts", "act_alerts", "act_followup", "read_operations")


def role_can(role: str, action: Action) -> bool:
    """Whether `role` may do `action`; unknown roles may do nothing."""
    allowed = PERMISSIONS.get(cast(Role, role))
    return allowed is not None and action in allowed


def require_permission(role: str | None, action: Action) -> None:
    if role is None or not role_can(role, action):
        raise PermissionDenied(action, role)


def authorize(session: Session, actor: Actor, action: Action) -> User:
    """The acting user's row, after checking that it exists, is active and that its *stored* role may do `action`
    (a role change or deactivation takes effect at once, whatever the caller's snapshot says)."""
    user = session.get(User, actor.user_id)
    if user is None or not user.active:
        raise PermissionDenied(action, actor.role, "用户不存在或已停用")
    require_permission(user.role, action)
    return user
