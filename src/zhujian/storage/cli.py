"""`zhujian audit verify` and `zhujian db upgrade`. Thin: each command calls a library function. SQLAlchemy and
Alembic are imported inside the commands so that registering them keeps `zhujian --help` fast.

Register them in the main CLI, e.g.::

    audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)
    audit_app.command("verify")(audit_verify_command)
    db_app = typer.Typer(help="Database schema tools.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade_command)
"""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError

from zhujian.settings import Settings, load_settings

DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="database URL (default: ZHUJIAN_DATABASE_URL, else sqlite:///zhujian.db)"),
]


def _settings(database_url: str | None) -> Settings:
    try:
        return load_settings(database_url=database_url) if database_url else load_settings()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        typer.echo(f"settings are not valid: {problems}", err=True)
        raise typer.Exit(2) from exc


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def audit_verify_command(database_url: DatabaseUrl = None) -> None:
    """Check the hash chain of the audit log: print OK with the entry count and head hash, or the first broken
    entry and exit 1."""
    from sqlalchemy.exc import SQLAlchemyError

    from zhujian.storage.audit import verify_audit_chain
    from zhujian.storage.db import create_db_engine, create_session_factory

    settings = _settings(database_url)
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine)() as session:
            result = verify_audit_chain(session)
    except SQLAlchemyError as exc:
        typer.echo(
            f"cannot read the audit log of {_safe_url(settings.database_url)}: {exc.__class__.__name__}: "
            f"{exc.args[0] if exc.args else ''}",
            err=True,
        )
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    if result.ok:
        typer.echo(f"audit log OK: {result.entries_checked} entries; head hash {result.head_hash or '(empty log)'}")
        return
    typer.echo(
        f"audit log BROKEN at entry {result.broken_seq} ({result.broken_action}): {result.problem}; "
        f"{result.entries_checked} entries before it are intact",
        err=True,
    )
    raise typer.Exit(1)


def db_upgrade_command(
    revision: Annotated[str, typer.Option("--revision", help="target Alembic revision")] = "head",
    database_url: DatabaseUrl = None,
) -> None:
    """Create or upgrade the database schema (Alembic), then create the first administrator when the database has
    no user and ZHUJIAN_ADMIN_PASSWORD is set."""
    from sqlalchemy.exc import SQLAlchemyError

    from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
    from zhujian.storage.migrate import current_revision, upgrade_database
    from zhujian.storage.users import ensure_admin

    settings = _settings(database_url)
    shown = _safe_url(settings.database_url)
    try:
        upgrade_database(settings.database_url, revision)
        now_at = current_revision(settings.database_url)
    except SQLAlchemyError as exc:
        typer.echo(f"cannot upgrade {shown}: {exc.__class__.__name__}: {exc.args[0] if exc.args else ''}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"database {shown} is at revision {now_at}")
    if revision != "head":
        return
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            admin = ensure_admin(session, settings)
    finally:
        engine.dispose()
    if admin is not None:
        typer.echo(f"created the first administrator {admin.username!r}")
    elif settings.admin_password is None:
        typer.echo("no administrator created: ZHUJIAN_ADMIN_PASSWORD is not set", err=True)
