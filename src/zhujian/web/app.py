"""The app factory: `create_app(settings)` wires the database, the knowledge base, the security helpers, the error
handlers and the routes. Nothing is created at import time."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session, sessionmaker

from zhujian import __version__
from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.settings import Settings, load_settings
from zhujian.storage.db import create_session_factory, engine_from_settings
from zhujian.web import api, pages, qc_pages
from zhujian.web.deps import WebState
from zhujian.web.errors import install_error_handlers
from zhujian.web.security import LoginThrottle, SessionSigner


def _package_dir() -> Path:
    return Path(str(resources.files("zhujian.web")))


def create_app(
    settings: Settings | None = None,
    *,
    kb: KnowledgeBase | None = None,
    session_factory: sessionmaker[Session] | None = None,
    throttle: LoginThrottle | None = None,
) -> FastAPI:
    """The workbench app. The database must be migrated already (`zhujian db upgrade` or `zhujian serve`).

    `kb` and `session_factory` let tests and tools share what they built; by default the bundled KB is loaded and
    an engine is made from `settings.database_url`. Raises `SettingsError` without a secret key in production mode.
    """
    settings = settings or load_settings()
    secret_key = settings.require_secret_key()
    factory = session_factory or create_session_factory(engine_from_settings(settings))
    app = FastAPI(
        title="zhujian 主检工作台 API",
        version=__version__,
        description="主检报告的接收、审阅、修改、签署、审核与导出（PDF、FHIR）。所有写操作记入审计日志。",
    )
    app.state.web = WebState(session_factory=factory, kb=kb or default_kb(), secret_key=secret_key)
    app.state.signer = SessionSigner(secret_key)
    app.state.throttle = throttle or LoginThrottle()
    app.state.templates = Jinja2Templates(directory=str(_package_dir() / "templates"))
    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(qc_pages.router)
    app.include_router(qc_pages.api_router)
    app.mount("/static", StaticFiles(directory=str(_package_dir() / "static")), name="static")
    return app
