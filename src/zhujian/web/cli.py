"""`zhujian serve`: migrate the database, make sure an administrator exists, optionally load demo data, run uvicorn.
Register with `app.command("serve")(serve_command)`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from zhujian.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

KEEP_ALIVE_SECONDS = 30


def serve_command(
    host: Annotated[str, typer.Option("--host", help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="port to listen on")] = 8000,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="load demo records and create demo accounts with random passwords (printed once); "
            "without ZHUJIAN_DATABASE_URL the demo uses its own zhujian-demo.db, re-created at every start; "
            "uses a throw-away secret key when ZHUJIAN_SECRET_KEY is not set",
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="worker processes (production: about one per core); each has its own ZHUJIAN_DB_POOL_SIZE "
            "database connections and works on that many requests at once",
        ),
    ] = 1,
) -> None:
    """Run the physician's workbench (web pages and JSON API) on the configured database
    (ZHUJIAN_DATABASE_URL, default: sqlite file zhujian.db in the working directory)."""
    import uvicorn

    from zhujian.kb.loader import default_kb
    from zhujian.storage.db import create_session_factory, engine_from_settings, session_scope
    from zhujian.storage.migrate import upgrade_database
    from zhujian.storage.users import ensure_admin
    from zhujian.web.app import create_app
    from zhujian.web.demo import (
        DEMO_DATABASE_FILE,
        demo_account_lines,
        existing_users_hint,
        fresh_demo_database,
        set_up_demo,
    )
    from zhujian.web.logging import uvicorn_log_config

    settings = load_settings()
    if demo and settings.secret_key is None:
        settings = settings.model_copy(update={"env": "development"})
    if demo and "database_url" not in settings.model_fields_set:
        settings = settings.model_copy(update={"database_url": fresh_demo_database(Path.cwd())})
        typer.echo(f"演示数据库：{DEMO_DATABASE_FILE}（每次 --demo 启动时重建）")
    try:
        settings.require_secret_key()
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    upgrade_database(settings.database_url)
    engine = engine_from_settings(settings)
    factory = create_session_factory(engine)
    kb = default_kb()
    with session_scope(factory) as session:
        if demo:
            accounts = set_up_demo(session, settings, kb)
            if accounts:
                typer.echo("演示账号（密码仅显示这一次）：")
                for line in demo_account_lines(accounts):
                    typer.echo(line)
            else:
                typer.echo(existing_users_hint(settings.database_url))
        else:
            created = ensure_admin(session, settings)
            if created is not None:
                typer.echo(f"已创建管理员账号：{created.username}")
    # The serving process anchors the audit chain head (one thread, whatever the number of workers).
    _start_audit_anchoring(settings, factory)
    typer.echo(f"主检工作台：http://{host}:{port}/  （API 文档：http://{host}:{port}/docs）")
    # Idle keep-alive connections stay open longer than uvicorn's 5 s: a busy server that is slow to read a request
    # sent just before the timeout would otherwise close the connection under it (a reverse proxy's idle timeout
    # should stay below this).
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info"}
    options["timeout_keep_alive"] = KEEP_ALIVE_SECONDS
    # Client addresses come from the connection; X-Forwarded-For only from ZHUJIAN_TRUSTED_PROXIES (the app reads
    # it), never from uvicorn's default of trusting 127.0.0.1. The access log has no query strings.
    options["proxy_headers"] = False
    options["log_config"] = uvicorn_log_config()
    if workers == 1:
        uvicorn.run(create_app(settings, kb=kb, session_factory=factory), **options)
        return
    # Each worker process builds its own app, pool and KB from the environment (create_app() without arguments).
    # A demo without ZHUJIAN_SECRET_KEY hands its throw-away key to the workers, so that a session cookie signed by
    # one worker is valid in the others.
    if settings.secret_key is None:
        os.environ["ZHUJIAN_SECRET_KEY"] = settings.require_secret_key()
        os.environ["ZHUJIAN_ENV"] = settings.env
    engine.dispose()
    uvicorn.run("zhujian.web.app:create_app", factory=True, workers=workers, **options)


def _start_audit_anchoring(settings: Settings, factory: sessionmaker[Session]) -> None:
    """Anchor the audit chain head every ZHUJIAN_AUDIT_ANCHOR_INTERVAL_S seconds while the workbench runs."""
    import logging

    from zhujian.storage.integrity import AnchorKeeper

    logger = logging.getLogger("zhujian.audit")
    keeper = AnchorKeeper(
        factory,
        key=settings.anchor_key(),
        interval_s=settings.audit_anchor_interval_s,
        anchor_file=Path(settings.audit_anchor_file) if settings.audit_anchor_file else None,
        on_error=lambda exc: logger.warning("audit anchor not written: %s", exc.__class__.__name__),
    )
    keeper.start()
