"""Demo data for `zhujian serve --demo`: variants of the bundled example records (new visit and person ids, exam
dates over the last weeks, some values changed so that the worklist shows every priority), and demo accounts
with random passwords. Without ZHUJIAN_DATABASE_URL the demo has its own SQLite file, `zhujian-demo.db`, made anew
at every start, so every start prints working passwords and the real `zhujian.db` is never touched."""

from __future__ import annotations

import copy
import datetime as dt
import secrets
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from zhujian.domain.record import Record
from zhujian.examples import example_names, load_example
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.models import User
from zhujian.storage.permissions import ROLE_LABELS
from zhujian.storage.services import submit_record
from zhujian.storage.users import create_user, ensure_admin
from zhujian.storage.values import Actor, Role

DEMO_USERS = (
    ("chief", "王主检", "chief_physician"),
    ("reviewer", "赵审核", "reviewing_physician"),
    ("auditor", "孙审计", "auditor"),
)


ROLE_COLUMNS = 12  # the longest role names (系统管理员, 健康管理师) take 10 terminal columns
DEMO_DATABASE_FILE = "zhujian-demo.db"
# SQLite's companion files: a stale WAL next to a new database file would be replayed into it.
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def fresh_demo_database(directory: Path) -> str:
    """The URL of the demo's own SQLite file in `directory`, after removing the previous demo database."""
    path = directory / DEMO_DATABASE_FILE
    for suffix in _SQLITE_SUFFIXES:
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{path}"


def existing_users_hint(database_url: str) -> str:
    """What to do when `--demo` meets a database that already has users (no new passwords are made then)."""
    return (
        "数据库中已有用户：未创建演示账号，也未重复导入演示数据（已有账号的密码不会再次显示）。\n"
        f"  如需新的演示账号：不设置 ZHUJIAN_DATABASE_URL 再运行 `zhujian serve --demo`（演示使用自己的 "
        f"{DEMO_DATABASE_FILE}，每次启动重建），或删除/清空当前数据库（{_shown_url(database_url)}）后再运行。"
    )


def _shown_url(database_url: str) -> str:
    # Never print a database password.
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)


@dataclass(frozen=True, slots=True)
class DemoAccount:
    username: str
    display_name: str
    role: str
    password: str | None  # None when the password came from the environment and is not shown


def _without_items(record: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    record["items"] = [i for i in record.get("items", []) if not any(n in str(i.get("name") or "") for n in names)]
    return record


def demo_records(count: int = 12, today: dt.date | None = None) -> list[Record]:
    """`count` records built from the bundled examples. Every third variant of the critical example drops the
    potassium value (no critical value left) so that the worklist has several priorities."""
    base_day = today or dt.date.today()
    examples = [load_example(name) for name in example_names()]
    records = []
    for n in range(count):
        data = copy.deepcopy(examples[n % len(examples)])
        data["visit_id"] = f"DEMO-{n + 1:04d}"
        data["person_id"] = f"P-DEMO-{n + 1:03d}"
        data["exam_date"] = (base_day - dt.timedelta(days=n)).isoformat()
        if "birth_date" in data and data.get("age") is None:
            data.pop("birth_date")
            data["age"] = 40 + n
        if n % 3 == 2:
            _without_items(data, ("钾",))
        data["prior_visits"] = [] if n % 4 == 3 else data.get("prior_visits", [])
        records.append(Record.model_validate(data))
    return records


def padded(text: str, columns: int) -> str:
    """`text` padded with spaces to `columns` terminal columns (a CJK character takes two, so str.ljust would
    misalign what follows)."""
    width = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, columns - width)


def demo_account_lines(accounts: list[DemoAccount]) -> list[str]:
    """The start-up listing of the demo accounts: login name, the role's Chinese name, the one-time password."""
    lines = [f"  {padded('登录名', 10)} {padded('角色', ROLE_COLUMNS)} 密码"]
    for account in accounts:
        shown = account.password if account.password else "（来自 ZHUJIAN_ADMIN_PASSWORD）"
        role = ROLE_LABELS.get(cast(Role, account.role), account.role)
        lines.append(f"  {padded(account.username, 10)} {padded(role, ROLE_COLUMNS)} {shown}")
    return lines


def _random_password() -> str:
    return secrets.token_urlsafe(12)


def set_up_demo(
    session: Session, settings: Settings, kb: KnowledgeBase, *, record_count: int = 12, hasher: Any = None
) -> list[DemoAccount]:
    """Create the demo accounts and load the demo records into an empty database. Returns the accounts with their
    one-time passwords (shown once by the caller), or an empty list when the database already has users."""
    if session.scalar(select(func.count(User.id))):
        return []
    accounts: list[DemoAccount] = []
    if settings.admin_password is None:
        admin_password = _random_password()
        admin_settings = Settings(admin_password=admin_password, admin_username=settings.admin_username)
        admin = ensure_admin(session, admin_settings, hasher=hasher)
        accounts.append(DemoAccount(settings.admin_username, "系统管理员", "admin", admin_password))
    else:
        admin = ensure_admin(session, settings, hasher=hasher)
        accounts.append(DemoAccount(settings.admin_username, "系统管理员", "admin", None))
    assert admin is not None  # the database had no user
    admin_actor: Actor = admin.as_actor()
    for username, display_name, role in DEMO_USERS:
        password = _random_password()
        create_user(
            session,
            username=username,
            password=password,
            display_name=display_name,
            role=role,
            actor=admin_actor,
            hasher=hasher,
        )
        accounts.append(DemoAccount(username, display_name, role, password))
    for record in demo_records(record_count):
        submit_record(session, record, kb=kb, actor=admin_actor)
    return accounts
