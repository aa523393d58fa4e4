"""Request dependencies: the database session (one transaction per request), the acting user from a bearer token
(API) or the session cookie (pages), permission checks for what the web layer enforces itself, and CSRF."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session, sessionmaker

from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.db import session_scope
from zhujian.storage.errors import PermissionDenied
from zhujian.storage.models import User, utc_now
from zhujian.storage.permissions import Action, role_can
from zhujian.storage.users import session_actor, token_actor, touch_session
from zhujian.storage.values import Actor
from zhujian.web.capacity import capacity_of
from zhujian.web.errors import LoginRequired, csrf_failed, not_authenticated
from zhujian.web.security import (
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    SessionPolicy,
    SessionSigner,
    read_api_token,
    token_hash,
    tokens_match,
)

# Last-seen times are written at most this often per session: reading pages should not write every time.
SESSION_TOUCH_INTERVAL = dt.timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class WebState:
    """What the app factory puts on `app.state.web`: built once per app, shared by all requests."""

    session_factory: sessionmaker[Session]
    kb: KnowledgeBase
    secret_key: str


def web_state(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


# Methods that never write; every other request may, and on SQLite takes the write lock when it begins.
READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def database_session(request: Request) -> AsyncIterator[Session]:
    """One transaction per request: committed when the route returns, rolled back when it raises. A request that
    may write begins it on the write engine (BEGIN IMMEDIATE on SQLite, see `zhujian.storage.db.write_engine`), so
    concurrent writers queue instead of failing. A route ends it early with `release_connection` before slow work.

    Async on purpose: making a Session touches no database, so it needs no worker thread; the commit or rollback
    at the end takes one only when a transaction is still open. (A sync generator here costs two thread hops per
    request, which under load is a large share of a short read's CPU.)"""
    factory = web_state(request).session_factory
    write_bind = capacity_of(request).write_bind if request.method not in READ_ONLY_METHODS else None
    session = factory(bind=write_bind) if write_bind is not None else factory()
    try:
        yield session
    except BaseException:
        if session.in_transaction():
            await run_in_threadpool(_end_session, session, commit=False)
        else:
            session.close()
        raise
    if session.in_transaction():
        await run_in_threadpool(_end_session, session, commit=True)
    else:
        session.close()


def _end_session(session: Session, *, commit: bool) -> None:
    with session:
        if commit:
            session.commit()
        else:
            session.rollback()


def release_connection(session: Session) -> None:
    """Commit what the request has done so far and give its database connection back to the pool, before work that
    needs no database (building a report, rendering a PDF): a connection must never wait on the CPU while other
    requests wait for it. The next statement begins a new transaction."""
    session.commit()


# scope="function": commit before the response is sent, so a client that reads right after a write sees it.
DbSession = Annotated[Session, Depends(database_session, scope="function")]


async def _request_web_state(request: Request) -> WebState:
    # Async: a plain attribute read must not take a worker thread (a sync dependency does).
    return web_state(request)


State = Annotated[WebState, Depends(_request_web_state)]


def api_actor(request: Request, session: DbSession) -> Actor:
    """The user of a bearer token (`Authorization: Bearer ...`) that was issued after the user's last password
    change or deactivation; the API does not read cookies."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise not_authenticated()
    claims = read_api_token(web_state(request).secret_key, token.strip())
    actor = token_actor(session, *claims) if claims is not None else None
    if actor is not None:
        # Keep the row in the session for the request: the services check the stored role again (`authorize`).
        session.info["acting_user"] = session.get(User, actor.user_id)
    if actor is None:
        raise not_authenticated()
    request.state.username = actor.username
    return actor


ApiActor = Annotated[Actor, Depends(api_actor)]


@dataclass(frozen=True, slots=True)
class PageUser:
    actor: Actor
    csrf_token: str
    session_token: str

    def can(self, action: Action) -> bool:
        return role_can(self.actor.role, action)


def page_user(request: Request, session: DbSession) -> PageUser:
    """The logged-in user of a page: a signed cookie naming a live server-side session (not revoked, not idle, not
    past its absolute expiry) of an active user. Redirects to the login page when there is none."""
    signer: SessionSigner = request.app.state.signer
    policy: SessionPolicy = request.app.state.session_policy
    token = signer.read_session_token(request.cookies.get(SESSION_COOKIE), policy.max_age)
    live = session_actor(session, token_hash(token), idle_timeout=policy.idle_timeout) if token else None
    if token is None or live is None:
        raise LoginRequired()
    actor, last_seen = live
    session.info["acting_user"] = session.get(User, actor.user_id)  # as for the API: one read of the user row
    now = utc_now()
    if now - last_seen >= SESSION_TOUCH_INTERVAL:
        with session_scope(web_state(request).session_factory) as own:
            touch_session(own, token_hash(token), now=now)
    request.state.username = actor.username
    return PageUser(actor=actor, csrf_token=signer.csrf_token(token), session_token=token)


CurrentPageUser = Annotated[PageUser, Depends(page_user)]


async def checked_page_user(request: Request, user: CurrentPageUser) -> PageUser:
    """The page user of a form post, after the CSRF check (form field or htmx header)."""
    given = request.headers.get(CSRF_HEADER)
    if not given:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not tokens_match(user.csrf_token, given):
        raise csrf_failed()
    return user


PostingPageUser = Annotated[PageUser, Depends(checked_page_user)]


def require_web_permission(actor: Actor, action: Action) -> None:
    """For the actions the services do not check themselves (e.g. `export`)."""
    if not role_can(actor.role, action):
        raise PermissionDenied(action, actor.role)
