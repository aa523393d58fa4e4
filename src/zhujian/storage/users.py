"""User accounts: the first administrator, creating and changing users, password login, browser sessions and the
failed-login counters.

Users are never deleted (audit entries and signatures point at them): deactivate them instead. Browser sessions and
login-throttle counters live in the database so that every worker process sees the same state; a password change
or a deactivation revokes all of the user's sessions.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from argon2 import PasswordHasher
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from zhujian.settings import MIN_ADMIN_PASSWORD_LENGTH, Settings
from zhujian.storage.audit import append_audit
from zhujian.storage.errors import InvalidUserData, NotFound, UserExists
from zhujian.storage.models import LoginThrottleEntry, User, UserSession, utc_now
from zhujian.storage.permissions import ROLES, authorize
from zhujian.storage.security import (
    hash_password,
    password_needs_rehash,
    spend_verification_time,
    verify_password,
)
from zhujian.storage.values import Actor, UserSummary

MIN_PASSWORD_LENGTH = MIN_ADMIN_PASSWORD_LENGTH
SESSION_RETENTION = dt.timedelta(days=7)
KNOWN_LOGIN_RETENTION = dt.timedelta(days=30)
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,63}$")


def _summary(user: User) -> UserSummary:
    return UserSummary(user.id, user.username, user.display_name, user.role, user.active, user.created_at)


def _audit_view(user: User) -> dict[str, Any]:
    # Never the password hash.
    return {"username": user.username, "display_name": user.display_name, "role": user.role, "active": user.active}


def _clean_username(username: str) -> str:
    cleaned = username.strip().lower()
    if not _USERNAME.match(cleaned):
        raise InvalidUserData("用户名须为 2–64 位小写字母、数字、下划线、点或连字符，并以字母或数字开头")
    return cleaned


def _clean_display_name(display_name: str) -> str:
    cleaned = display_name.strip()
    if not cleaned or len(cleaned) > 100:
        raise InvalidUserData("显示名称不能为空，且不超过 100 字")
    return cleaned


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidUserData(f"未知角色：{role}（可选：{'、'.join(ROLES)}）")


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUserData(f"密码至少需要 {MIN_PASSWORD_LENGTH} 个字符")


def _insert_user(
    session: Session,
    *,
    username: str,
    password: str,
    display_name: str,
    role: str,
    actor: Actor | None,
    hasher: PasswordHasher | None,
) -> User:
    name = _clean_username(username)
    display = _clean_display_name(display_name)
    _check_role(role)
    _check_password(password)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise UserExists(name)
    now = utc_now()
    user = User(
        username=name,
        password_hash=hash_password(password, hasher),
        display_name=display,
        role=role,
        active=True,
        created_at=now,
        updated_at=now,
    )
    session.add(user)
    session.flush()
    append_audit(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        before=None,
        after=_audit_view(user),
    )
    return user


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    display_name: str,
    role: str,
    actor: Actor,
    hasher: PasswordHasher | None = None,
) -> UserSummary:
    """Create a user (manage_users). User names are stored in lower case; `hasher` overrides the Argon2
    parameters (tests use a cheap one)."""
    authorize(session, actor, "manage_users")
    return _summary(
        _insert_user(
            session,
            username=username,
            password=password,
            display_name=display_name,
            role=role,
            actor=actor,
            hasher=hasher,
        )
    )


def ensure_admin(session: Session, settings: Settings, *, hasher: PasswordHasher | None = None) -> UserSummary | None:
    """Create the first administrator from ZHUJIAN_ADMIN_USERNAME / ZHUJIAN_ADMIN_PASSWORD when the database has
    no user at all. Returns the new user, or None when users exist or no password is set."""
    if settings.admin_password is None:
        return None
    if session.scalar(select(func.count(User.id))):
        return None
    user = _insert_user(
        session,
        username=settings.admin_username,
        password=settings.admin_password.get_secret_value(),
        display_name="系统管理员",
        role="admin",
        actor=None,
        hasher=hasher,
    )
    return _summary(user)


def update_user(
    session: Session,
    user_id: int,
    *,
    actor: Actor,
    role: str | None = None,
    display_name: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    hasher: PasswordHasher | None = None,
) -> UserSummary:
    """Change a user's role, display name, active flag or password (manage_users). An administrator cannot
    deactivate or demote themselves, so the system always keeps one."""
    authorize(session, actor, "manage_users")
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    if user.id == actor.user_id and (active is False or (role is not None and role != user.role)):
        raise InvalidUserData("不能停用自己或更改自己的角色")
    before = _audit_view(user)
    if role is not None:
        _check_role(role)
        user.role = role
    if display_name is not None:
        user.display_name = _clean_display_name(display_name)
    if active is not None:
        user.active = active
    password_changed = password is not None
    if password is not None:
        _check_password(password)
        user.password_hash = hash_password(password, hasher)
    user.updated_at = utc_now()
    session.flush()
    if password_changed or active is False:
        # A stolen or shared cookie or API token must not outlive the password it was obtained with, nor the account.
        revoke_user_sessions(session, user.id, reason="password_changed" if password_changed else "deactivated")
        user.token_version += 1
        session.flush()
    after = {**_audit_view(user), "password_changed": password_changed}
    append_audit(
        session, actor=actor, action="user.update", object_type="user", object_id=user.id, before=before, after=after
    )
    return _summary(user)


def list_users(session: Session, *, actor: Actor) -> list[UserSummary]:
    authorize(session, actor, "manage_users")
    return [_summary(u) for u in session.scalars(select(User).order_by(User.username))]


def authenticate(session: Session, username: str, password: str) -> Actor | None:
    """The actor for a correct user name and password of an active user, else None. An unknown user name costs
    the same hashing time as a wrong password. Hashes made with older parameters are upgraded on success."""
    user = session.scalars(select(User).where(User.username == username.strip().lower())).one_or_none()
    if user is None:
        spend_verification_time(password)
        return None
    if not verify_password(user.password_hash, password) or not user.active:
        return None
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
        session.flush()
    return Actor(user.id, user.username, user.role, user.display_name)


def get_actor(session: Session, user_id: int) -> Actor | None:
    """The actor of an active user id (e.g. from a session cookie), or None."""
    user = session.get(User, user_id)
    if user is None or not user.active:
        return None
    return Actor(user.id, user.username, user.role, user.display_name)


def token_version(session: Session, user_id: int) -> int:
    """The API token version of a user, to put into a new token."""
    return int(session.scalar(select(User.token_version).where(User.id == user_id)) or 0)


def token_actor(session: Session, user_id: int, version: int) -> Actor | None:
    """The actor of an API token: the user is active and the token's version is the user's current one."""
    user = session.get(User, user_id)
    if user is None or not user.active or user.token_version != version:
        return None
    return Actor(user.id, user.username, user.role, user.display_name)


# ------------------------------------------------------------------------------------------------ browser sessions


def create_session(
    session: Session, *, user_id: int, token_hash: str, lifetime: dt.timedelta, now: dt.datetime | None = None
) -> None:
    """Store a new browser session (`token_hash`: SHA-256 of the cookie's random token) ending after `lifetime`."""
    moment = now or utc_now()
    # Ended sessions are kept a while for inspection, then dropped, so the table does not grow with every login.
    session.execute(delete(UserSession).where(UserSession.expires_at < moment - SESSION_RETENTION))
    session.add(
        UserSession(
            token_hash=token_hash, user_id=user_id, created_at=moment, last_seen_at=moment, expires_at=moment + lifetime
        )
    )
    session.flush()


def session_actor(
    session: Session, token_hash: str, *, idle_timeout: dt.timedelta, now: dt.datetime | None = None
) -> tuple[Actor, dt.datetime] | None:
    """The actor of a live session and when it was last seen: not revoked, before its absolute expiry, seen within
    `idle_timeout`, user active; else None. Reads only: see `touch_session`."""
    moment = now or utc_now()
    row = session.scalars(select(UserSession).where(UserSession.token_hash == token_hash)).one_or_none()
    if row is None or row.revoked_at is not None or row.expires_at <= moment:
        return None
    if moment - row.last_seen_at > idle_timeout:
        return None
    actor = get_actor(session, row.user_id)
    return None if actor is None else (actor, row.last_seen_at)


def touch_session(session: Session, token_hash: str, *, now: dt.datetime | None = None) -> None:
    """Record activity on a session (the caller does it at most about once a minute, in a short transaction of its
    own, so that reading a page never holds a write lock while the page is built)."""
    session.execute(
        update(UserSession).where(UserSession.token_hash == token_hash).values(last_seen_at=now or utc_now())
    )


def revoke_session(session: Session, token_hash: str, *, reason: str = "logout") -> bool:
    """End one session; True when a live session was ended."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.token_hash == token_hash, UserSession.revoked_at.is_(None))
        .values(revoked_at=utc_now(), revoked_reason=reason)
    )
    return bool(getattr(result, "rowcount", 0))


def revoke_user_sessions(session: Session, user_id: int, *, reason: str) -> int:
    """End every live session of a user; the number ended."""
    result = session.execute(
        update(UserSession)
        .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
        .values(revoked_at=utc_now(), revoked_reason=reason)
    )
    return int(getattr(result, "rowcount", 0))


# ------------------------------------------------------------------------------------------------ login throttle

ThrottleScope = Literal["account", "address", "known"]


def throttle_blocked_until(
    session: Session, scope: ThrottleScope, key_hash: str, *, now: dt.datetime | None = None
) -> dt.datetime | None:
    """When the counter `(scope, key_hash)` allows the next try, if that is in the future; else None."""
    moment = now or utc_now()
    blocked = session.scalar(
        select(LoginThrottleEntry.blocked_until).where(
            LoginThrottleEntry.scope == scope, LoginThrottleEntry.key_hash == key_hash
        )
    )
    return blocked if blocked is not None and blocked > moment else None


def throttle_delay(failures: int, free_failures: int, max_delay: dt.timedelta) -> dt.timedelta:
    """Delay after the `failures`-th failure: none up to `free_failures`, then 2 s, 4 s, 8 s … capped."""
    excess = failures - free_failures
    if excess <= 0:
        return dt.timedelta(0)
    return min(max_delay, dt.timedelta(seconds=2 ** min(excess, 30)))


def record_throttle_failure(
    session: Session,
    scope: ThrottleScope,
    key_hash: str,
    *,
    free_failures: int,
    max_delay: dt.timedelta,
    window: dt.timedelta,
    now: dt.datetime | None = None,
) -> int:
    """Count one failure for `(scope, key_hash)` and set its delay; returns the failure count in the window.

    The counter is incremented by an UPDATE before it is read, so concurrent workers never lose a failure (the row
    lock on PostgreSQL, the write lock on SQLite). A counter whose last failure is older than `window` starts over.
    """
    moment = now or utc_now()
    cutoff = moment - window
    where = (LoginThrottleEntry.scope == scope, LoginThrottleEntry.key_hash == key_hash)
    for _ in range(3):
        recent = session.execute(
            update(LoginThrottleEntry)
            .where(*where, LoginThrottleEntry.updated_at >= cutoff)
            .values(failures=LoginThrottleEntry.failures + 1, updated_at=moment)
        )
        if getattr(recent, "rowcount", 0):
            break
        # Only a counter that is really stale starts over: a row another worker has just created or counted is
        # recent and was matched above (each statement sees what was committed before it on PostgreSQL).
        stale = session.execute(
            update(LoginThrottleEntry)
            .where(*where, LoginThrottleEntry.updated_at < cutoff)
            .values(failures=1, updated_at=moment)
        )
        if getattr(stale, "rowcount", 0):
            break
        try:
            with session.begin_nested():
                session.add(LoginThrottleEntry(scope=scope, key_hash=key_hash, failures=1, updated_at=moment))
            break
        except IntegrityError:  # another worker created the counter first: count on it
            continue
    failures = int(session.scalar(select(LoginThrottleEntry.failures).where(*where)) or 1)
    delay = throttle_delay(failures, free_failures, max_delay)
    session.execute(update(LoginThrottleEntry).where(*where).values(blocked_until=moment + delay if delay else None))
    return failures


def clear_throttle(session: Session, scope: ThrottleScope, key_hash: str) -> None:
    session.execute(
        update(LoginThrottleEntry)
        .where(LoginThrottleEntry.scope == scope, LoginThrottleEntry.key_hash == key_hash)
        .values(failures=0, blocked_until=None)
    )


def remember_login(session: Session, key_hash: str, *, now: dt.datetime | None = None) -> None:
    """Note a successful login of an (account, address) pair ('known' counter), and drop counters nobody needs any
    more (failure counters idle for a day and not delaying anyone, known pairs older than the retention)."""
    moment = now or utc_now()
    session.execute(
        delete(LoginThrottleEntry).where(
            LoginThrottleEntry.scope != "known",
            LoginThrottleEntry.updated_at < moment - dt.timedelta(days=1),
            (LoginThrottleEntry.blocked_until.is_(None)) | (LoginThrottleEntry.blocked_until < moment),
        )
    )
    session.execute(
        delete(LoginThrottleEntry).where(
            LoginThrottleEntry.scope == "known", LoginThrottleEntry.updated_at < moment - KNOWN_LOGIN_RETENTION
        )
    )
    where = (LoginThrottleEntry.scope == "known", LoginThrottleEntry.key_hash == key_hash)
    done = session.execute(update(LoginThrottleEntry).where(*where).values(updated_at=moment))
    if not getattr(done, "rowcount", 0):
        try:
            with session.begin_nested():
                session.add(LoginThrottleEntry(scope="known", key_hash=key_hash, failures=0, updated_at=moment))
        except IntegrityError:  # remembered by a concurrent login
            pass


def login_known_since(session: Session, key_hash: str, *, since: dt.datetime) -> bool:
    """Whether this (account, address) pair logged in successfully after `since`."""
    last = session.scalar(
        select(LoginThrottleEntry.updated_at).where(
            LoginThrottleEntry.scope == "known", LoginThrottleEntry.key_hash == key_hash
        )
    )
    return last is not None and last >= since


def account_exists(session: Session, username: str) -> bool:
    """Whether a user name belongs to an account (logs name existing accounts only, never what was typed)."""
    return session.scalar(select(User.id).where(User.username == username.strip().lower())) is not None
