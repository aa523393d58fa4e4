"""Sessions, API tokens, CSRF tokens and login throttling. Nothing here touches the database.

- Browser pages: a session cookie signed with itsdangerous (user id + CSRF token, 12 h). The CSRF token travels in
  every page form (`csrf_token`) and in the `X-CSRF-Token` header of htmx requests.
- API clients: bearer tokens, PyJWT HS256 with an expiry. The API accepts no cookie, so it needs no CSRF check.
- Login throttling: after 5 failures for one user name from one address within 15 minutes, further attempts are
  refused until the window has passed (in memory, per process).
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass

import jwt
from itsdangerous import BadSignature, URLSafeTimedSerializer

SESSION_COOKIE = "zhujian_session"
LOGIN_CSRF_COOKIE = "zhujian_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SESSION_MAX_AGE_SECONDS = 12 * 3600
TOKEN_LIFETIME = dt.timedelta(hours=8)
TOKEN_ALGORITHM = "HS256"
TOKEN_AUDIENCE = "zhujian-api"


@dataclass(frozen=True, slots=True)
class BrowserSession:
    user_id: int
    csrf_token: str


class SessionSigner:
    """Signs and reads the session cookie and the login-form CSRF cookie with the app's secret key."""

    def __init__(self, secret_key: str) -> None:
        self._sessions = URLSafeTimedSerializer(secret_key, salt="zhujian.session")
        self._login_csrf = URLSafeTimedSerializer(secret_key, salt="zhujian.login-csrf")

    def new_session(self, user_id: int) -> tuple[BrowserSession, str]:
        session = BrowserSession(user_id=user_id, csrf_token=secrets.token_urlsafe(32))
        return session, self._sessions.dumps({"uid": user_id, "csrf": session.csrf_token})

    def read_session(self, cookie: str | None) -> BrowserSession | None:
        if not cookie:
            return None
        try:
            data = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE_SECONDS)
        except BadSignature:  # also covers SignatureExpired
            return None
        if not isinstance(data, dict) or not isinstance(data.get("uid"), int) or not isinstance(data.get("csrf"), str):
            return None
        return BrowserSession(user_id=data["uid"], csrf_token=data["csrf"])

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


def create_api_token(secret_key: str, user_id: int, *, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
    """A bearer token for `user_id` and its expiry time (UTC)."""
    issued = now or dt.datetime.now(dt.UTC)
    expires = issued + TOKEN_LIFETIME
    claims = {"sub": str(user_id), "iat": issued, "exp": expires, "aud": TOKEN_AUDIENCE}
    return jwt.encode(claims, secret_key, algorithm=TOKEN_ALGORITHM), expires


def read_api_token(secret_key: str, token: str) -> int | None:
    """The user id of a valid, unexpired token, else None."""
    try:
        claims = jwt.decode(token, secret_key, algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE)
    except jwt.PyJWTError:
        return None
    subject = claims.get("sub")
    return int(subject) if isinstance(subject, str) and subject.isdigit() else None


class LoginThrottle:
    """Counts failed logins per (user name, client address) in a sliding window."""

    def __init__(self, max_failures: int = 5, window_seconds: float = 15 * 60) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(username: str, client: str) -> tuple[str, str]:
        return username.strip().lower(), client

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        while failures and now - failures[0] > self.window_seconds:
            failures.popleft()
        return failures

    def retry_after(self, username: str, client: str, now: float | None = None) -> int | None:
        """Seconds until another attempt is allowed, or None when attempts are allowed now."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            failures = self._recent(self._key(username, client), moment)
            if len(failures) < self.max_failures:
                return None
            return max(1, int(self.window_seconds - (moment - failures[0])) + 1)

    def record_failure(self, username: str, client: str, now: float | None = None) -> None:
        moment = time.monotonic() if now is None else now
        with self._lock:
            self._recent(self._key(username, client), moment).append(moment)

    def reset(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop(self._key(username, client), None)
