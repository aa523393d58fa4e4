"""Browser sessions live on the server: logout, a password change and a deactivation end them at once; idle and
absolute timeouts are enforced by the server; the database keeps only a hash of the token; cookies are HttpOnly,
SameSite and Secure over HTTPS."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import select, update
from web_helpers import SECRET_KEY

from db_testing import FAST_HASHER, PASSWORD, Team, make_team
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
from zhujian.storage.models import UserSession
from zhujian.storage.users import update_user
from zhujian.web.app import create_app
from zhujian.web.security import LOGIN_CSRF_COOKIE, SESSION_COOKIE

Web = tuple[TestClient, Team]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def _login(client: TestClient, username: str = "chief") -> str:
    """Log in; the CSRF token of the new session."""
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return _csrf(client.get("/").text)


def _logged_in(client: TestClient) -> bool:
    response = client.get("/", follow_redirects=False)
    assert response.status_code in (200, 303), response.status_code
    return response.status_code == 200


def _factory(client: TestClient) -> Any:
    return client.app.state.web.session_factory  # type: ignore[attr-defined]


def test_logout_revokes_the_session_on_the_server(web: Web) -> None:
    client, _ = web
    csrf = _login(client)
    cookie = client.cookies[SESSION_COOKIE]
    assert _logged_in(client)
    response = client.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
    assert response.status_code == 303
    # Someone who copied the cookie before the logout (a shared workstation, a proxy log) presents it again.
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie)
    assert not _logged_in(client)
    with session_scope(_factory(client)) as session:
        row = session.scalars(select(UserSession)).one()
        assert row.revoked_at is not None and row.revoked_reason == "logout"


def test_each_login_is_its_own_session(web: Web) -> None:
    client, _ = web
    _login(client)
    first = client.cookies[SESSION_COOKIE]
    other = TestClient(client.app)
    _login(other)
    # Logging out the other browser leaves this one logged in.
    other.post("/logout", data={"csrf_token": _csrf(other.get("/").text)})
    assert not _logged_in(other)
    assert client.cookies[SESSION_COOKIE] == first and _logged_in(client)


@pytest.mark.parametrize(
    ("change", "reason"), [({"password": "a brand new password"}, "password_changed"), ({"active": False}, "deactivated")]
)
def test_password_change_and_deactivation_end_the_users_sessions(
    web: Web, change: dict[str, Any], reason: str
) -> None:
    client, team = web
    _login(client, "chief")
    colleague = TestClient(client.app)
    _login(colleague, "reviewer")
    with session_scope(_factory(client)) as session:
        update_user(session, team.chief.user_id, actor=team.admin, hasher=FAST_HASHER, **change)
    assert not _logged_in(client)
    assert _logged_in(colleague), "other users keep their sessions"
    with session_scope(_factory(client)) as session:
        reasons = {r.user_id: r.revoked_reason for r in session.scalars(select(UserSession))}
    assert reasons == {team.chief.user_id: reason, team.reviewer.user_id: None}


@pytest.mark.parametrize("change", [{"password": "a brand new password"}, {"active": False}])
def test_password_change_and_deactivation_end_the_users_api_tokens(web: Web, change: dict[str, Any]) -> None:
    client, team = web

    def token(username: str, password: str = PASSWORD) -> dict[str, str]:
        answer = client.post("/api/auth/token", json={"username": username, "password": password})
        assert answer.status_code == 200, answer.text
        return {"Authorization": "Bearer " + answer.json()["access_token"]}

    chief, reviewer = token("chief"), token("reviewer")
    assert client.get("/api/worklist", headers=chief).status_code == 200
    with session_scope(_factory(client)) as session:
        update_user(session, team.chief.user_id, actor=team.admin, hasher=FAST_HASHER, **change)
    assert client.get("/api/worklist", headers=chief).status_code == 401, "the token from before the change is dead"
    assert client.get("/api/worklist", headers=reviewer).status_code == 200
    if "password" in change:
        assert client.get("/api/worklist", headers=token("chief", change["password"])).status_code == 200


def test_idle_timeout_is_enforced_by_the_server(web: Web) -> None:
    client, _ = web
    _login(client)
    now = dt.datetime.now(dt.UTC)
    # The default idle timeout is 30 minutes (ZHUJIAN_SESSION_IDLE_MINUTES).
    with session_scope(_factory(client)) as session:
        session.execute(update(UserSession).values(last_seen_at=now - dt.timedelta(minutes=20)))
    assert _logged_in(client)
    with session_scope(_factory(client)) as session:
        seen = session.scalars(select(UserSession.last_seen_at)).one()
    assert now - dt.timedelta(seconds=5) <= seen, "a request counts as activity"
    with session_scope(_factory(client)) as session:
        session.execute(update(UserSession).values(last_seen_at=now - dt.timedelta(minutes=31)))
    assert not _logged_in(client)


def test_absolute_timeout_ends_even_an_active_session(web: Web) -> None:
    client, _ = web
    _login(client)
    with session_scope(_factory(client)) as session:
        row = session.scalars(select(UserSession)).one()
        assert dt.timedelta(hours=11.9) < row.expires_at - row.created_at <= dt.timedelta(hours=12)
        row.expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    assert not _logged_in(client)


def test_long_ended_sessions_are_dropped_at_the_next_login(web: Web) -> None:
    client, _ = web
    _login(client)
    with session_scope(_factory(client)) as session:
        session.execute(update(UserSession).values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=8)))
    TestClient(client.app).get("/")  # nothing happens without a login
    _login(TestClient(client.app))
    with session_scope(_factory(client)) as session:
        rows = session.scalars(select(UserSession)).all()
    assert len(rows) == 1 and rows[0].expires_at > dt.datetime.now(dt.UTC)


def test_the_database_holds_only_a_hash_of_the_session_token(web: Web) -> None:
    client, _ = web
    _login(client)
    cookie = client.cookies[SESSION_COOKIE]
    with session_scope(_factory(client)) as session:
        stored = session.scalars(select(UserSession.token_hash)).one()
    token = client.app.state.signer.read_session_token(cookie, dt.timedelta(hours=1))  # type: ignore[attr-defined]
    assert token and token not in stored and stored not in cookie
    assert stored == hashlib.sha256(token.encode()).hexdigest()
    # A cookie made from the stored value (someone with a database copy) is not a session, signed or not.
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, stored)
    assert not _logged_in(client)
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, URLSafeTimedSerializer(SECRET_KEY, salt="zhujian.session").dumps(stored))
    assert not _logged_in(client)


def test_a_forged_or_tampered_cookie_is_no_session(web: Web) -> None:
    client, _ = web
    _login(client)
    cookie = client.cookies[SESSION_COOKIE]
    client.cookies.clear()
    client.cookies.set(SESSION_COOKIE, cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB"))
    assert not _logged_in(client)


def _set_cookie_headers(response: Any) -> list[str]:
    return [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]


def _app(sqlite_url: str, kb: KnowledgeBase, **settings: Any) -> Iterator[TestClient]:
    engine = create_db_engine(sqlite_url)
    factory = create_session_factory(engine)
    with factory() as session:
        make_team(session)
    app = create_app(Settings(database_url=sqlite_url, secret_key=SECRET_KEY, **settings), kb=kb, session_factory=factory)
    yield TestClient(app, base_url="http://testserver", client=("10.0.0.5", 40000))
    engine.dispose()


def _login_cookies(client: TestClient, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """(Set-Cookie of the login form's CSRF cookie, Set-Cookie of the session cookie), lower case. The CSRF cookie
    is sent back by hand: a client on plain HTTP would not send a Secure cookie, a browser behind the proxy would."""
    login_page = client.get("/login", headers=headers)
    [csrf_cookie] = [c for c in _set_cookie_headers(login_page) if c.startswith(LOGIN_CSRF_COOKIE + "=")]
    response = client.post(
        "/login",
        data={"username": "chief", "password": PASSWORD, "csrf_token": _csrf(login_page.text)},
        headers={**(headers or {}), "Cookie": csrf_cookie.split(";")[0]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    [cookie] = [c for c in _set_cookie_headers(response) if c.startswith(SESSION_COOKIE + "=")]
    return csrf_cookie.lower(), cookie.lower()


def _secure(set_cookie: str) -> bool:
    return "secure" in [part.strip() for part in set_cookie.split(";")]


def test_session_cookie_flags_over_plain_http(sqlite_url: str, kb: KnowledgeBase) -> None:
    for client in _app(sqlite_url, kb):
        csrf_cookie, cookie = _login_cookies(client)
        assert "httponly" in cookie and "samesite=lax" in cookie
        assert "httponly" in csrf_cookie and "samesite=strict" in csrf_cookie
        assert not _secure(cookie) and not _secure(csrf_cookie)  # no HTTPS seen, no setting: not Secure


def test_cookie_secure_setting_forces_secure(sqlite_url: str, kb: KnowledgeBase) -> None:
    for client in _app(sqlite_url, kb, cookie_secure=True):
        assert all(_secure(c) for c in _login_cookies(client))


def test_https_reported_by_a_trusted_proxy_makes_cookies_secure(sqlite_url: str, kb: KnowledgeBase) -> None:
    for client in _app(sqlite_url, kb, trusted_proxies="10.0.0.0/24"):
        assert all(_secure(c) for c in _login_cookies(client, {"X-Forwarded-Proto": "https"}))


def test_https_claimed_by_an_untrusted_client_changes_nothing(sqlite_url: str, kb: KnowledgeBase) -> None:
    for client in _app(sqlite_url, kb, trusted_proxies="192.168.1.1"):
        assert not any(_secure(c) for c in _login_cookies(client, {"X-Forwarded-Proto": "https"}))


def test_a_remembered_token_still_expires_on_time() -> None:
    """Checked tokens are remembered to skip the signature check; the expiry written in the token still holds."""
    import time

    from zhujian.web.security import TOKEN_LIFETIME, create_api_token, read_api_token

    issued = dt.datetime.now(dt.UTC) - TOKEN_LIFETIME + dt.timedelta(seconds=2)
    token, expires = create_api_token(SECRET_KEY, 7, version=3, now=issued)
    assert read_api_token(SECRET_KEY, token) == (7, 3)
    assert read_api_token(SECRET_KEY, token) == (7, 3)  # from memory now
    assert read_api_token("another-secret-key-" + "y" * 32, token) is None, "remembered under its own key only"
    time.sleep(max(0.0, (expires - dt.datetime.now(dt.UTC)).total_seconds()) + 1.1)
    assert read_api_token(SECRET_KEY, token) is None
