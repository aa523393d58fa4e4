"""What one worker process takes on at once, and how large a request may be.

The lock-up this prevents: every route and dependency runs in a worker thread, each request needs one database
connection, and a request hops between threads (dependencies, route, clean-up). When more requests are admitted
than there are connections, the threads fill up with requests waiting for a connection while the requests that
hold the connections wait for a thread to finish in — nothing moves until the pool times out, and under steady load
it never catches up. So:

- `AdmissionControl` lets at most `ZHUJIAN_DB_POOL_SIZE` requests in at once (each holds at most one connection, so
  an admitted request never waits for the pool), keeps a short queue for the rest, and answers 503 with
  `Retry-After` when a request would wait longer than `ZHUJIAN_DB_POOL_TIMEOUT` or the queue is full. The thread
  pool is sized above the number of admitted requests. Health checks and static files skip the queue (health uses
  one of the pool's overflow connections), so a load balancer still sees a live server under overload.
- `BodyLimit` refuses bodies above `ZHUJIAN_MAX_BODY_BYTES` with 413 before they are read into memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from fastapi import FastAPI, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhujian.domain.record import RecordLimits
from zhujian.settings import Settings
from zhujian.storage.db import POOL_OVERFLOW, write_engine

RETRY_AFTER_SECONDS = 2
# Requests that may wait for a turn, per admitted request; beyond that the answer is 503 at once, which a client
# can act on sooner than on a long wait.
QUEUE_PER_SLOT = 20
# Worker threads beyond the admitted requests and the overflow connections: static files, health checks.
SPARE_THREADS = 8
# The id columns are PostgreSQL `integer`; a larger id cannot exist and would make the database raise.
MAX_DATABASE_ID = 2**31 - 1
MAX_OFFSET = 2**31 - 1
_UNQUEUED_PATHS = ("/api/health",)
_UNQUEUED_PREFIXES = ("/static/",)


@dataclass(frozen=True, slots=True)
class Capacity:
    """What the request dependencies read of the capacity settings (`app.state.capacity`)."""

    write_bind: Engine | None  # the engine whose transactions begin with the write lock (SQLite), if known
    record_limits: RecordLimits
    max_page_size: int
    max_body_bytes: int


def capacity_of(request: Request) -> Capacity:
    capacity: Capacity = request.app.state.capacity
    return capacity


class RequestTooLarge(StarletteHTTPException):
    """The request body is larger than `ZHUJIAN_MAX_BODY_BYTES` (413). An HTTPException, so that the body parsing
    of the routes lets it through unchanged."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        super().__init__(413, f"请求内容过大：上限为 {_size(max_bytes)}（设置 ZHUJIAN_MAX_BODY_BYTES）")


def _size(count: int) -> str:
    if count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} 字节"


async def _send_error(scope: Scope, receive: Receive, send: Send, status_code: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> None:
    # Imported here: errors.py maps the exceptions of this module and imports it.
    from zhujian.web.errors import error_response

    response = error_response(Request(scope, receive), status_code, code, message, headers=headers)
    await response(scope, receive, send)


class AdmissionControl:
    """ASGI middleware: at most `limit` requests in the app at once, the others wait up to `wait_seconds` in a
    queue of at most `limit * QUEUE_PER_SLOT`, then 503 with Retry-After."""

    def __init__(self, app: ASGIApp, *, limit: int, wait_seconds: float) -> None:
        self.app = app
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.max_waiting = limit * QUEUE_PER_SLOT
        self.threads = limit + POOL_OVERFLOW + SPARE_THREADS
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(limit)
        self._waiting = 0

    def _start_on(self, loop: asyncio.AbstractEventLoop) -> None:
        # A semaphore belongs to one event loop; tests run one app on several loops, a server on one.
        self._loop = loop
        self._slots = asyncio.Semaphore(self.limit)
        self._waiting = 0
        limiter = anyio.to_thread.current_default_thread_limiter()
        if limiter.total_tokens < self.threads:
            limiter.total_tokens = self.threads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in _UNQUEUED_PATHS or path.startswith(_UNQUEUED_PREFIXES):
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._start_on(loop)
        if not await self._admit():
            await _send_error(
                scope,
                receive,
                send,
                503,
                "overloaded",
                f"服务器繁忙，请 {RETRY_AFTER_SECONDS} 秒后重试",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self._slots.release()

    async def _admit(self) -> bool:
        if not self._slots.locked():
            await self._slots.acquire()
            return True
        if self._waiting >= self.max_waiting:
            return False
        self._waiting += 1
        try:
            await asyncio.wait_for(self._slots.acquire(), self.wait_seconds)
        except TimeoutError:
            return False
        finally:
            self._waiting -= 1
        return True


class BodyLimit:
    """ASGI middleware: a declared Content-Length above `max_bytes` is refused before anything is read; a body
    without one is counted while the app reads it and refused as soon as it passes the limit."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            error = RequestTooLarge(self.max_bytes)
            await _send_error(scope, receive, send, 413, "too_large", str(error.detail), {"Connection": "close"})
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except RequestTooLarge as exc:
            # Raised outside the routes' error handling (e.g. by a middleware reading the body).
            if started:
                raise
            await _send_error(scope, receive, send, 413, "too_large", str(exc.detail), {"Connection": "close"})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            # A malformed length is the HTTP server's to reject (h11 does).
            return int(text) if text.isdigit() else None
    return None


def install_capacity(app: FastAPI, settings: Settings, session_factory: sessionmaker[Session]) -> None:
    """Put the limits on `app.state.capacity` and add the admission and body-size middleware."""
    bind: Any = session_factory.kw.get("bind")
    limit = settings.db_pool_size
    pool = getattr(bind, "pool", None)
    if isinstance(pool, QueuePool):
        # A factory built elsewhere (tools, tests) may have a smaller pool: admit no more than it can serve.
        limit = min(limit, pool.size())
    app.state.capacity = Capacity(
        write_bind=write_engine(bind) if isinstance(bind, Engine) else None,
        record_limits=settings.record_limits,
        max_page_size=settings.max_page_size,
        max_body_bytes=settings.max_body_bytes,
    )
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(AdmissionControl, limit=limit, wait_seconds=settings.db_pool_timeout)
