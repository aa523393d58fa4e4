"""The app factory: `create_app(settings)` wires the database, the knowledge base, the security helpers, the error
handlers and the routes. Nothing is created at import time."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp

from zhujian import __version__
from zhujian.alerts.clock import Clock
from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.render.typography import jinja_filters
from zhujian.settings import Settings, load_settings
from zhujian.storage.db import create_session_factory, engine_from_settings
from zhujian.web import alerts_api, alerts_pages, api, group_pages, pages, qc_pages
from zhujian.web.capacity import install_capacity
from zhujian.web.deps import WebState
from zhujian.web.display import install_display
from zhujian.web.errors import install_error_handlers
from zhujian.web.headers import SecurityHeadersMiddleware
from zhujian.web.logging import install_access_log_filter
from zhujian.web.security import LoginThrottle, SessionPolicy, SessionSigner, ThrottlePolicy


def _package_dir() -> Path:
    return Path(str(resources.files("zhujian.web")))


class Workbench(FastAPI):
    """FastAPI with the security headers outermost, so that even the answer of an unhandled error carries them."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def create_app(
    settings: Settings | None = None,
    *,
    kb: KnowledgeBase | None = None,
    session_factory: sessionmaker[Session] | None = None,
    throttle: LoginThrottle | None = None,
    clock: Clock | None = None,
) -> FastAPI:
    """The workbench app. The database must be migrated already (`zhujian db upgrade` or `zhujian serve`).

    `kb` and `session_factory` let tests and tools share what they built; by default the bundled KB is loaded and
    an engine is made from `settings.database_url`. `clock` (a callable returning an aware UTC datetime) is the time
    the alert loop reads; tests move it. Raises `SettingsError` without a secret key in production mode.
    """
    settings = settings or load_settings()
    secret_key = settings.require_secret_key()
    factory = session_factory or create_session_factory(engine_from_settings(settings))
    app = Workbench(
        title="zhujian 主检工作台 API",
        version=__version__,
        description="主检报告的接收、审阅、修改、签署、审核与导出（PDF、FHIR）。所有写操作记入审计日志。",
    )
    app.state.web = WebState(session_factory=factory, kb=kb or default_kb(), secret_key=secret_key)
    app.state.signer = SessionSigner(secret_key)
    app.state.session_policy = SessionPolicy.from_settings(settings)
    app.state.trusted_proxies = settings.proxy_networks
    app.state.throttle = throttle or LoginThrottle(factory, secret_key, ThrottlePolicy.from_settings(settings))
    install_access_log_filter()
    app.state.templates = Jinja2Templates(directory=str(_package_dir() / "templates"))
    app.state.templates.env.filters.update(jinja_filters())  # units, measured numbers, Chinese punctuation
    install_display(app, ZoneInfo(settings.center_timezone))
    install_error_handlers(app)
    install_capacity(app, settings, factory)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(group_pages.router)
    alerts_api.install_alerts(app, factory, settings, clock)
    app.include_router(alerts_api.router)
    app.include_router(alerts_pages.router)
    app.include_router(qc_pages.router)
    app.include_router(qc_pages.api_router)
    app.mount("/static", StaticFiles(directory=str(_package_dir() / "static")), name="static")
    return app
