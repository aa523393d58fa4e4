"""Accounts: the first administrator, user rules, password login."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db_testing import FAST_HASHER, PASSWORD, Team
from zhujian.settings import Settings
from zhujian.storage.errors import InvalidUserData, UserExists
from zhujian.storage.models import AuditLogEntry, User
from zhujian.storage.security import hash_password, verify_password
from zhujian.storage.users import authenticate, create_user, ensure_admin, get_actor, list_users, update_user


def test_no_admin_without_a_password(session: Session) -> None:
    assert ensure_admin(session, Settings(admin_password=None)) is None
    assert session.scalar(select(func.count(User.id))) == 0


def test_first_admin_is_created_once(session: Session) -> None:
    settings = Settings(admin_password="first admin password", admin_username="Root")
    admin = ensure_admin(session, settings, hasher=FAST_HASHER)
    assert admin is not None
    assert (admin.username, admin.role, admin.active) == ("root", "admin", True)
    assert ensure_admin(session, settings, hasher=FAST_HASHER) is None
    assert session.scalar(select(func.count(User.id))) == 1
    stored = session.scalars(select(User)).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert "first admin password" not in stored.password_hash
    entry = session.scalars(select(AuditLogEntry)).one()
    assert (entry.action, entry.actor_username) == ("user.create", None)
    assert entry.after == {"username": "root", "display_name": "系统管理员", "role": "admin", "active": True}


def test_authenticate(session: Session, team: Team) -> None:
    actor = authenticate(session, " Chief ", PASSWORD)
    assert actor is not None and (actor.username, actor.role) == ("chief", "chief_physician")
    assert authenticate(session, "chief", PASSWORD + "x") is None
    assert authenticate(session, "nobody", PASSWORD) is None
    update_user(session, team.chief.user_id, active=False, actor=team.admin)
    assert authenticate(session, "chief", PASSWORD) is None
    assert get_actor(session, team.chief.user_id) is None
    assert get_actor(session, team.reviewer.user_id) == team.reviewer


def test_weak_hashes_are_upgraded_at_login(session: Session, team: Team) -> None:
    user = session.get(User, team.chief.user_id)
    assert user is not None
    weak = user.password_hash
    assert "m=8," in weak  # made with the cheap test parameters
    assert authenticate(session, "chief", PASSWORD) is not None
    assert user.password_hash != weak and "m=65536," in user.password_hash
    assert verify_password(user.password_hash, PASSWORD)


def test_user_rules(session: Session, team: Team) -> None:
    def create(username: str, password: str = PASSWORD, role: str = "auditor", display: str = "某人") -> object:
        return create_user(
            session,
            username=username,
            password=password,
            display_name=display,
            role=role,
            actor=team.admin,
            hasher=FAST_HASHER,
        )

    with pytest.raises(UserExists):
        create("CHIEF")
    with pytest.raises(InvalidUserData, match="未知角色"):
        create("newuser", role="superuser")
    with pytest.raises(InvalidUserData, match="至少需要 12 个字符"):
        create("newuser", password="short")
    with pytest.raises(InvalidUserData, match="用户名"):
        create("张三")
    with pytest.raises(InvalidUserData, match="显示名称"):
        create("newuser", display="  ")
    with pytest.raises(InvalidUserData, match="不能停用自己"):
        update_user(session, team.admin.user_id, active=False, actor=team.admin)
    assert [u.username for u in list_users(session, actor=team.admin)] == sorted(
        ["admin", "auditor", "chief", "chief2", "manager", "reviewer"]
    )


def test_password_change_is_audited_without_the_hash(session: Session, team: Team) -> None:
    update_user(session, team.chief.user_id, password="a new long password", actor=team.admin, hasher=FAST_HASHER)
    assert authenticate(session, "chief", "a new long password") is not None
    entry = session.scalars(select(AuditLogEntry).order_by(AuditLogEntry.id.desc()).limit(1)).one()
    assert entry.action == "user.update" and entry.after is not None
    assert entry.after["password_changed"] is True
    assert "argon2" not in str(entry.before) + str(entry.after)


def test_verify_password_rejects_garbage() -> None:
    assert verify_password("not a hash", "x") is False
    assert verify_password(hash_password("right password", FAST_HASHER), "right password") is True
