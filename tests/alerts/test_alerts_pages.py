"""The alert pages without a browser: who sees which page and form, the CSRF check of the notification form, and
no inline script (the app's CSP forbids them)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alerts_helpers import MovableClock
from fastapi.testclient import TestClient

from db_testing import PASSWORD, Team, copy_of, load_case, make_team
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
from zhujian.storage.services import submit_record
from zhujian.web.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_helpers import SECRET_KEY

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


@pytest.fixture
def web(
    sqlite_template: Path, tmp_path: Path, kb: KnowledgeBase, clock: MovableClock
) -> Iterator[tuple[TestClient, Team]]:
    url = copy_of(sqlite_template, tmp_path)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    app = create_app(Settings(database_url=url, secret_key=SECRET_KEY), kb=kb, session_factory=factory, clock=clock)
    with factory() as session:
        team = make_team(session)
    with session_scope(factory) as session:
        submit_record(session, load_case("05_critical_potassium"), kb=kb, actor=team.manager)
    with TestClient(app) as client:
        yield client, team
    engine.dispose()


def _login(client: TestClient, username: str) -> str:
    client.cookies.clear()
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token is not None
    client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    page = client.get("/alerts")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    return found.group(1) if found else ""


@pytest.mark.parametrize(
    ("username", "alerts_status", "has_form", "operations_status"),
    [("manager", 200, True, 200), ("chief", 200, True, 200), ("auditor", 200, False, 200), ("admin", 403, False, 200)],
)
def test_who_sees_what(
    web: tuple[TestClient, Team], username: str, alerts_status: int, has_form: bool, operations_status: int
) -> None:
    client, _ = web
    _login(client, username)
    page = client.get("/alerts")
    assert page.status_code == alerts_status
    assert ('class="stack notify-form"' in page.text) is has_form
    for path in ("/alerts", "/followup", "/operations"):
        assert not INLINE_SCRIPT.search(client.get(path).text), path
    assert client.get("/operations").status_code == operations_status


def test_notification_form_needs_the_csrf_token(web: tuple[TestClient, Team]) -> None:
    client, _ = web
    token = _login(client, "manager")
    alert_id = re.search(r'data-alert-id="(\d+)"', client.get("/alerts").text)
    assert alert_id is not None
    forged = client.post(
        f"/alerts/{alert_id.group(1)}/notify", data={"channel": "phone", "csrf_token": "forged"}, follow_redirects=False
    )
    assert forged.status_code == 403
    done = client.post(
        f"/alerts/{alert_id.group(1)}/notify",
        data={"channel": "phone", "result": "reached", "reached": "本人", "csrf_token": token},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert "已通知" in client.get("/alerts?status=notified").text
