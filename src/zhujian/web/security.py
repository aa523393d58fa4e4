"""Sessions, API tokens, CSRF tokens, client addresses and login throttling.

- Browser pages: the session cookie holds a random token signed with itsdangerous; the server keeps the session
  (user, created, last seen, absolute expiry, revoked) in `user_sessions` under the token's SHA-256, so logout, a
  password change or a deactivation ends it at once, and idle and absolute timeouts are enforced by the server.
  The CSRF token is an HMAC of the session token: it travels in every page form (`csrf_token`) and in the
  `X-CSRF-Token` header of htmx requests.
- API clients: bearer tokens, PyJWT HS256 with an expiry. The API accepts no cookie, so it needs no CSRF check.
- Client address: the peer address, or the X-Forwarded-For client named by a trusted proxy
  (ZHUJIAN_TRUSTED_PROXIES); with no proxy configured the header is ignored, so rotating it changes nothing.
- Login throttling, kept in the database so every worker process shares it: per account (failures from any
  address; after a few, each failure delays the next try 2 s, 4 s, 8 s … up to a cap — a delay, never a lock that
  someone else can keep closed, and an address the account logged in from before is not held back by it) and per
  client address (failures across all user names, a higher limit, the same growing delay).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt
from fastapi import Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import Scope

from zhujian.settings import Settings
from zhujian.storage.db import session_scope
from zhujian.storage.models import utc_now
from zhujian.storage.users import (
    KNOWN_LOGIN_RETENTION,
    ThrottleScope,
    account_exists,
    authenticate,
    clear_throttle,
    login_known_since,
    record_throttle_failure,
    remember_login,
    throttle_blocked_until,
    token_version,
)
from zhujian.storage.values import Actor
from zhujian.web.errors import WebError

logger = logging.getLogger("zhujian.web.security")

SESSION_COOKIE = "zhujian_session"
LOGIN_CSRF_COOKIE = "zhujian_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
TOKEN_LIFETIME = dt.timedelta(hours=8)
TOKEN_ALGORITHM = "HS256"
TOKEN_AUDIENCE = "zhujian-api"
THROTTLE_WINDOW = dt.timedelta(minutes=15)
# A successful login from an address within this period exempts that address from the account's delay.
KNOWN_ADDRESS_PERIOD = KNOWN_LOGIN_RETENTION


@dataclass(frozen=True, slots=True)
class SessionPolicy:
    """Timeouts of browser sessions and the cookie flag, from the settings."""

    idle_timeout: dt.timedelta
    max_age: dt.timedelta
    cookie_secure: bool | None  # None: Secure exactly when the request came over HTTPS

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionPolicy:
        return cls(
            idle_timeout=dt.timedelta(minutes=settings.session_idle_minutes),
            max_age=dt.timedelta(hours=settings.session_max_hours),
            cookie_secure=settings.cookie_secure,
        )


def token_hash(token: str) -> str:
    """What the database stores of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


class SessionSigner:
    """Signs and reads the session cookie and the login-form CSRF cookie with the app's secret key."""

    def __init__(self, secret_key: str) -> None:
        self._sessions = URLSafeTimedSerializer(secret_key, salt="zhujian.session")
        self._login_csrf = URLSafeTimedSerializer(secret_key, salt="zhujian.login-csrf")
        self._csrf_key = hashlib.sha256(("zhujian.csrf:" + secret_key).encode()).digest()

    def new_session_token(self) -> tuple[str, str]:
        """(random session token, signed cookie value holding it)."""
        token = secrets.token_urlsafe(32)
        return token, self._sessions.dumps(token)

    def read_session_token(self, cookie: str | None, max_age: dt.timedelta) -> str | None:
        """The session token of a cookie with a valid signature younger than `max_age`; the database decides the
        rest (revoked, idle)."""
        if not cookie:
            return None
        try:
            token = self._sessions.loads(cookie, max_age=int(max_age.total_seconds()))
        except BadSignature:  # also covers SignatureExpired
            return None
        return token if isinstance(token, str) and token else None

    def csrf_token(self, session_token: str) -> str:
        """The CSRF token of a session: bound to it, so it dies with it."""
        return hmac.new(self._csrf_key, session_token.encode(), hashlib.sha256).hexdigest()

    def new_login_csrf(self) -> tuple[str, str]:
        """(token for the login form, signed cookie value holding the same token)."""
        token = secrets.token_urlsafe(32)
        return token, self._login_csrf.dumps(token)

    def read_login_csrf(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._login_csrf.loads(cookie, max_age=3600)
        except BadSignature:
            return None
        return token if isinstance(token, str) else None


def tokens_match(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and secrets.compare_digest(str(expected), str(given))


def create_api_token(
    secret_key: str, user_id: int, *, version: int = 0, now: dt.datetime | None = None
) -> tuple[str, dt.datetime]:
    """A bearer token for `user_id` (at the user's token `version`) and its expiry time (UTC)."""
    issued = now or dt.datetime.now(dt.UTC)
    expires = issued + TOKEN_LIFETIME
    claims = {"sub": str(user_id), "ver": version, "iat": issued, "exp": expires, "aud": TOKEN_AUDIENCE}
    return jwt.encode(claims, secret_key, algorithm=TOKEN_ALGORITHM), expires


def issue_api_token(session: Session, secret_key: str, user_id: int) -> tuple[str, dt.datetime]:
    """A bearer token at the user's current token version (a password change or deactivation raises it)."""
    return create_api_token(secret_key, user_id, version=token_version(session, user_id))


def read_api_token(secret_key: str, token: str) -> tuple[int, int] | None:
    """(user id, token version) of a valid, unexpired token, else None."""
    known = _verified_tokens.get((secret_key, token))
    if known is not None:
        user_id, version, valid_until = known
        if time.time() < valid_until:
            return user_id, version
        _verified_tokens.pop((secret_key, token), None)
    try:
        claims = jwt.decode(token, secret_key, algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE)
    except jwt.PyJWTError:
        return None
    subject, version, expires = claims.get("sub"), claims.get("ver", 0), claims.get("exp")
    if not (isinstance(subject, str) and subject.isdigit()) or type(version) is not int:
        return None
    if isinstance(expires, int | float):
        if len(_verified_tokens) >= VERIFIED_TOKENS_KEPT:
            oldest = next(iter(_verified_tokens), None)
            if oldest is not None:
                _verified_tokens.pop(oldest, None)
        _verified_tokens[(secret_key, token)] = (int(subject), version, float(expires))
    return int(subject), version


# Tokens whose signature and claims were checked already, until they expire: a client sends the same token with
# every request, and checking the signature again is a measurable share of a short read. Only what the token itself
# says is kept; whether its user is still active and its version current is read from the database every time.
VERIFIED_TOKENS_KEPT = 4096
_verified_tokens: dict[tuple[str, str], tuple[int, int, float]] = {}


# ------------------------------------------------------------------------------------------------ client address

ProxyNetworks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def _is_trusted(address: str, proxies: ProxyNetworks) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def _proxies(request: Request) -> ProxyNetworks:
    networks: ProxyNetworks = getattr(request.app.state, "trusted_proxies", ())
    return networks


def client_address(request: Request) -> str:
    """The client's address. X-Forwarded-For is read only when the peer is a trusted proxy, from the right: the
    first address that is not itself a trusted proxy is the client (entries further left are the client's word)."""
    peer = request.client.host if request.client else "unknown"
    proxies = _proxies(request)
    if not proxies or not _is_trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("X-Forwarded-For")).split(",") if h.strip()]
    for hop in reversed(hops):
        if not _is_trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # a malformed entry: do not let it name the client
    return hops[0] if hops else peer


def request_is_https(request: Request) -> bool:
    """HTTPS seen directly, or reported by a trusted proxy in X-Forwarded-Proto."""
    return scope_is_https(request.scope)


def scope_is_https(scope: Scope) -> bool:
    """`request_is_https` from the ASGI scope (read on every response: no URL object is built for it)."""
    if scope.get("scheme") == "https":
        return True
    request = Request(scope)
    peer = request.client.host if request.client else ""
    proxies = _proxies(request)
    if proxies and _is_trusted(peer, proxies):
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[-1].strip().lower()
        return proto == "https"
    return False


def cookie_secure(request: Request) -> bool:
    policy: SessionPolicy = request.app.state.session_policy
    return request_is_https(request) if policy.cookie_secure is None else policy.cookie_secure


# ------------------------------------------------------------------------------------------------ throttling


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    account_failures: int = 5
    address_failures: int = 30
    max_delay: dt.timedelta = dt.timedelta(minutes=5)
    window: dt.timedelta = THROTTLE_WINDOW

    @classmethod
    def from_settings(cls, settings: Settings) -> ThrottlePolicy:
        return cls(
            account_failures=settings.login_account_failures,
            address_failures=settings.login_address_failures,
            max_delay=dt.timedelta(seconds=settings.login_max_delay_seconds),
        )


class LoginThrottle:
    """Failed-login counters per account and per client address, in the database (own transactions, so a refused
    request that rolls back its own work still counts). Keys are HMACs of the user name / address."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        secret_key: str,
        policy: ThrottlePolicy | None = None,
        clock: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._factory = session_factory
        self._key = hashlib.sha256(("zhujian.throttle:" + secret_key).encode()).digest()
        self.policy = policy or ThrottlePolicy()
        self.clock = clock

    def _hash(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\x00{value}".encode(), hashlib.sha256).hexdigest()

    def _keys(self, username: str, client: str) -> tuple[str, str, str]:
        name = username.strip().lower()
        return self._hash("account", name), self._hash("address", client), self._hash("known", f"{name}\x00{client}")

    def retry_after(self, username: str, client: str) -> int | None:
        """Seconds until another attempt is allowed, or None when attempts are allowed now."""
        account, address, known = self._keys(username, client)
        now = self.clock()
        with session_scope(self._factory) as session:
            waits = [throttle_blocked_until(session, "address", address, now=now)]
            account_until = throttle_blocked_until(session, "account", account, now=now)
            if account_until is not None and not login_known_since(session, known, since=now - KNOWN_ADDRESS_PERIOD):
                waits.append(account_until)
        until = max((w for w in waits if w is not None), default=None)
        return None if until is None else max(1, int((until - now).total_seconds() + 0.999))

    def record_failure(self, username: str, client: str) -> None:
        account, address, _ = self._keys(username, client)
        now = self.clock()
        policy = self.policy
        counters: tuple[tuple[ThrottleScope, str, int], ...] = (
            ("account", account, policy.account_failures),
            ("address", address, policy.address_failures),
        )
        with session_scope(self._factory) as session:
            for scope, key, free in counters:
                record_throttle_failure(
                    session, scope, key, free_failures=free, max_delay=policy.max_delay, window=policy.window, now=now
                )

    def reset(self, session: Session, username: str, client: str) -> None:
        """A successful login: the account's counter starts over and the address becomes known for the account.
        The address counter stays (one valid account must not wash out a spray across other names). Written in the
        login's own transaction: on SQLite a second connection would wait for the lock that transaction holds."""
        account, _, known = self._keys(username, client)
        clear_throttle(session, "account", account)
        remember_login(session, known, now=self.clock())


def check_throttle(throttle: LoginThrottle, username: str, client: str) -> None:
    """Refuse with 429 and Retry-After while the account or the address must wait."""
    wait = throttle.retry_after(username, client)
    if wait is not None:
        shown = f"{wait} 秒" if wait < 120 else f"{(wait + 59) // 60} 分钟"
        raise WebError(429, "too_many_attempts", f"登录失败次数过多，请 {shown}后再试", {"Retry-After": str(wait)})


def attempt_login(request: Request, session: Session, username: str, password: str, *, channel: str) -> Actor | None:
    """Check a user name and password under the throttle: the actor, None for wrong credentials (counted), or a
    429 `WebError` while the account or the address must wait. The log names existing accounts only: what someone
    typed into the user-name field may be an ID number, a phone number or a patient's name."""
    throttle: LoginThrottle = request.app.state.throttle
    client = client_address(request)
    check_throttle(throttle, username, client)
    actor = authenticate(session, username, password)
    if actor is None:
        # End the request's transaction first: on SQLite a write request holds the write lock from its start, and
        # the failure is counted in a transaction of its own (it must survive the refused login's rollback).
        session.commit()
        throttle.record_failure(username, client)
        name = username.strip().lower()
        who = f"user {name}" if account_exists(session, name) else "an unknown user name"
        logger.info("failed %s login for %s", channel, who)
        return None
    throttle.reset(session, username, client)
    return actor
