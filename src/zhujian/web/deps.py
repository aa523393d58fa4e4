"""Request dependencies: the database session (one transaction per request), the acting user from a bearer token
(API) or the session cookie (pages), permission checks for what the web layer enforces itself, and CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.errors import PermissionDenied
from zhujian.storage.models import User
from zhujian.storage.permissions import Action, role_can
from zhujian.storage.users import get_actor
from zhujian.storage.values import Actor
from zhujian.web.capacity import capacity_of
from zhujian.web.errors import LoginRequired, csrf_failed, not_authenticated
from zhujian.web.security import CSRF_FIELD, CSRF_HEADER, SESSION_COOKIE, BrowserSession, read_api_token, tokens_match


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


def database_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the route returns, rolled back when it raises. A request that
    may write begins it on the write engine (BEGIN IMMEDIATE on SQLite, see `zhujian.storage.db.write_engine`), so
    concurrent writers queue instead of failing. A route ends it early with `release_connection` before slow work."""
    factory = web_state(request).session_factory
    write_bind = capacity_of(request).write_bind if request.method not in READ_ONLY_METHODS else None
    session = factory(bind=write_bind) if write_bind is not None else factory()
    with session:
        try:
            yield session
        except BaseException:
            session.rollback()
            raise
        session.commit()


def release_connection(session: Session) -> None:
    """Commit what the request has done so far and give its database connection back to the pool, before work that
    needs no database (building a report, rendering a PDF): a connection must never wait on the CPU while other
    requests wait for it. The next statement begins a new transaction."""
    session.commit()


# scope="function": commit before the response is sent, so a client that reads right after a write sees it.
DbSession = Annotated[Session, Depends(database_session, scope="function")]
State = Annotated[WebState, Depends(web_state)]


def api_actor(request: Request, session: DbSession, state: State) -> Actor:
    """The user of a bearer token (`Authorization: Bearer ...`); the API does not read cookies."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise not_authenticated()
    user_id = read_api_token(state.secret_key, token.strip())
    actor = pinned_actor(session, user_id) if user_id is not None else None
    if actor is None:
        raise not_authenticated()
    request.state.username = actor.username
    return actor


def pinned_actor(session: Session, user_id: int) -> Actor | None:
    """The actor of `user_id` (see `get_actor`), its row kept in the session for the request: the services check
    the stored role again (`authorize`), and without a reference the session forgets the row and reads it again
    for every check."""
    session.info["acting_user"] = session.get(User, user_id)
    return get_actor(session, user_id)


ApiActor = Annotated[Actor, Depends(api_actor)]


def browser_session(request: Request) -> BrowserSession | None:
    signer = request.app.state.signer
    found: BrowserSession | None = signer.read_session(request.cookies.get(SESSION_COOKIE))
    return found


@dataclass(frozen=True, slots=True)
class PageUser:
    actor: Actor
    csrf_token: str

    def can(self, action: Action) -> bool:
        return role_can(self.actor.role, action)


def page_user(request: Request, session: DbSession) -> PageUser:
    """The logged-in user of a page; redirects to the login page when there is none."""
    found = browser_session(request)
    actor = pinned_actor(session, found.user_id) if found else None
    if found is None or actor is None:
        raise LoginRequired()
    request.state.username = actor.username
    return PageUser(actor=actor, csrf_token=found.csrf_token)


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
