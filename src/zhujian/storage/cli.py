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


AnchorFile = Annotated[
    str | None,
    typer.Option(
        "--anchor-file", help="file of audit anchors kept outside the database (default: ZHUJIAN_AUDIT_ANCHOR_FILE)"
    ),
]


def audit_verify_command(database_url: DatabaseUrl = None, anchor_file: AnchorFile = None) -> None:
    """Check the audit log and what it vouches for: the hash chain, every stored report version and current report
    against the content hashes the chain recorded, every raw record, and the anchors of the chain head (table and
    file; signatures with ZHUJIAN_AUDIT_ANCHOR_KEY or the secret key). Prints OK with counts and the head hash, or
    every problem found and exits 1."""
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from zhujian.storage.db import create_db_engine, create_session_factory
    from zhujian.storage.integrity import verify_integrity

    settings = _settings(database_url)
    file_name = anchor_file or settings.audit_anchor_file
    engine = create_db_engine(settings.database_url)
    try:
        with create_session_factory(engine)() as session:
            report = verify_integrity(
                session, key=settings.anchor_key(), anchor_file=Path(file_name) if file_name else None
            )
    except SQLAlchemyError as exc:
        typer.echo(
            f"cannot read the audit log of {_safe_url(settings.database_url)}: {exc.__class__.__name__}: "
            f"{exc.args[0] if exc.args else ''}",
            err=True,
        )
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    chain = report.chain
    counts = (
        f"{report.versions_checked} report versions, {report.reports_checked} reports, "
        f"{report.raw_records_checked} raw records, {report.anchors_checked} anchors"
    )
    if report.ok:
        typer.echo(f"audit log OK: {chain.entries_checked} entries; head hash {chain.head_hash or '(empty log)'}")
        typer.echo(f"content OK: {counts} match the audit log")
        if report.anchors_checked == 0:
            typer.echo("no anchors yet: deletion of the newest entries is only detectable once the head is anchored")
        elif settings.anchor_key() is None and report.anchors_checked > report.anchors_unsigned:
            typer.echo("anchor signatures not checked: no ZHUJIAN_AUDIT_ANCHOR_KEY or ZHUJIAN_SECRET_KEY set")
        return
    if not chain.ok:
        typer.echo(
            f"audit log BROKEN at entry {chain.broken_seq} ({chain.broken_action}): {chain.problem}; "
            f"{chain.entries_checked} entries before it are intact",
            err=True,
        )
    for problem in report.problems:
        typer.echo(f"INTEGRITY {problem.table}: {problem.row}: {problem.problem}", err=True)
    typer.echo(f"checked {counts}; {len(report.problems)} problems", err=True)
    raise typer.Exit(1)


def audit_anchor_command(database_url: DatabaseUrl = None, anchor_file: AnchorFile = None) -> None:
    """Anchor the audit chain head now: a signed checkpoint in the database and, with --anchor-file (or
    ZHUJIAN_AUDIT_ANCHOR_FILE), a line appended to that file. Schedule it (cron) when the workbench does not run."""
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
    from zhujian.storage.integrity import write_anchor

    settings = _settings(database_url)
    file_name = anchor_file or settings.audit_anchor_file
    engine = create_db_engine(settings.database_url)
    try:
        with session_scope(create_session_factory(engine)) as session:
            anchor = write_anchor(
                session, key=settings.anchor_key(), anchor_file=Path(file_name) if file_name else None
            )
    except (SQLAlchemyError, OSError) as exc:
        typer.echo(f"cannot anchor the audit log: {exc.__class__.__name__}: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        engine.dispose()
    if anchor is None:
        typer.echo("the audit log is empty: nothing to anchor")
        return
    signed = "signed" if anchor.signature else "UNSIGNED (set ZHUJIAN_AUDIT_ANCHOR_KEY or ZHUJIAN_SECRET_KEY)"
    typer.echo(f"anchored entry {anchor.seq}, head hash {anchor.head_hash}, {signed}")


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
