"""The workbench pages on SQLite: login with CSRF, the worklist, the review page and its htmx edits, CSRF rejection,
the audit page, and `zhujian serve --demo` set-up."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_helpers import bearer, example_record

from db_testing import FAST_HASHER, PASSWORD, Team
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
from zhujian.web.demo import demo_records, set_up_demo

Web = tuple[TestClient, Team]


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the form carries a CSRF token"
    return match.group(1)


def _login(client: TestClient, username: str) -> str:
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    page = client.get("/")
    return _csrf(page.text)


def _submit(client: TestClient, team: Team, name: str, visit_id: str) -> Any:
    return client.post("/api/records", json=example_record(name, visit_id), headers=bearer(team.chief)).json()


def test_pages_redirect_to_login(web: Web) -> None:
    client, _ = web
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/"


def test_login_form_without_the_csrf_token_is_refused(web: Web) -> None:
    client, _ = web
    client.get("/login")
    response = client.post("/login", data={"username": "chief", "password": PASSWORD, "csrf_token": "forged"})
    assert response.status_code == 403
    assert "安全校验未通过" in response.text


def test_wrong_password_shows_the_form_again(web: Web) -> None:
    client, _ = web
    token = _csrf(client.get("/login").text)
    response = client.post("/login", data={"username": "chief", "password": "nope-nope", "csrf_token": token})
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text


def test_worklist_shows_critical_first_with_counts(web: Web) -> None:
    client, team = web
    _submit(client, team, "male_56_metabolic", "V-PLAIN")
    _submit(client, team, "female_67_critical", "V-CRIT")
    _login(client, "chief")
    html = client.get("/").text
    assert html.index("V-CRIT") < html.index("V-PLAIN")
    assert "危急值" in html
    assert "草稿 2" in html and "全部 2" in html
    searched = client.get("/", params={"search": "V-PL"}).text
    assert "V-PLAIN" in searched and "V-CRIT" not in searched


def test_review_page_shows_evidence_and_highlighted_spans(web: Web) -> None:
    client, team = web
    stored = _submit(client, team, "female_67_critical", "V-CRIT")
    _login(client, "chief")
    html = client.get(f"/reports/{stored['report_id']}").text
    # The ECG text "窦性心律，ST-T改变，QT间期延长，U波明显": the finding span [5, 11] is "ST-T改变".
    assert '<mark title="ST-T改变">ST-T改变</mark>' in html
    assert "严重低钾血症" in html and "主检签署" in html
    assert "2.6" in html  # the potassium value in the evidence column


def test_page_post_without_csrf_is_refused_and_changes_nothing(web: Web) -> None:
    client, team = web
    stored = _submit(client, team, "female_67_critical", "V-CRIT")
    _login(client, "chief")
    url = f"/reports/{stored['report_id']}/edit"
    form = {"expected_version": "1", "conclusion_id": "anemia", "advice": "被篡改"}
    refused = client.post(url, data=form)
    assert refused.status_code == 403
    wrong = client.post(url, data={**form, "csrf_token": "not-the-token"})
    assert wrong.status_code == 403
    report = client.get(f"/api/reports/{stored['report_id']}", headers=bearer(team.chief)).json()
    assert report["version"] == 1
    assert next(c for c in report["content"]["conclusions"] if c["id"] == "anemia")["advice"] != "被篡改"


def test_htmx_edit_move_and_conflict(web: Web) -> None:
    client, team = web
    stored = _submit(client, team, "female_67_critical", "V-CRIT")
    token = _login(client, "chief")
    headers = {"X-CSRF-Token": token, "HX-Request": "true"}
    rid = stored["report_id"]
    edited = client.post(
        f"/reports/{rid}/edit",
        data={"expected_version": "1", "conclusion_id": "anemia", "advice": "一个月后复查血常规"},
        headers=headers,
    )
    assert edited.status_code == 200
    assert "一个月后复查血常规" in edited.text and "第 2 版" in edited.text
    moved = client.post(
        f"/reports/{rid}/move",
        data={"expected_version": "2", "conclusion_id": "anemia", "direction": "up"},
        headers=headers,
    )
    ids = [
        c["id"] for c in client.get(f"/api/reports/{rid}", headers=bearer(team.chief)).json()["content"]["conclusions"]
    ]
    assert moved.status_code == 200
    assert ids.index("anemia") == 4  # it was sixth (index 5): see the example's conclusion order
    stale = client.post(
        f"/reports/{rid}/delete", data={"expected_version": "1", "conclusion_id": "anemia"}, headers=headers
    )
    assert stale.status_code == 409
    assert stale.headers["HX-Retarget"] == "#flash"
    assert "请刷新后重试" in stale.text


def test_sign_then_audit_page_shows_the_edit(web: Web) -> None:
    client, team = web
    stored = _submit(client, team, "female_67_critical", "V-CRIT")
    rid = stored["report_id"]
    token = _login(client, "chief")
    client.post(
        f"/reports/{rid}/edit",
        data={"expected_version": "1", "conclusion_id": "anemia", "advice": "补充铁剂后复查"},
        headers={"X-CSRF-Token": token},
    )
    signed = client.post(f"/reports/{rid}/sign", data={"expected_version": "2", "csrf_token": token})
    assert signed.status_code == 200 and "已签署" in signed.text
    assert client.get(f"/reports/{rid}/audit").status_code == 403  # chief physicians do not read the audit log
    client.cookies.clear()
    _login(client, "auditor")
    audit = client.get(f"/reports/{rid}/audit").text
    assert "修改结论" in audit and "主检签署" in audit
    assert "补充铁剂后复查" in audit


def test_kb_search_fragment_hides_present_conclusions(web: Web) -> None:
    client, team = web
    stored = _submit(client, team, "female_67_critical", "V-CRIT")
    _login(client, "chief")
    html = client.get(f"/reports/{stored['report_id']}/kb-search", params={"q": "贫血"}).text
    assert 'kb_conclusion_id": &#34;anemia&#34;' not in html and "&#34;anemia&#34;" not in html
    assert "添加" in html


def test_demo_set_up_creates_accounts_with_random_passwords_once(sqlite_url: str, kb: KnowledgeBase) -> None:
    engine = create_db_engine(sqlite_url)
    factory = create_session_factory(engine)
    with session_scope(factory) as session:
        accounts = set_up_demo(session, Settings(database_url=sqlite_url), kb, record_count=4, hasher=FAST_HASHER)
    passwords = [a.password for a in accounts]
    assert [a.role for a in accounts] == ["admin", "chief_physician", "reviewing_physician", "auditor"]
    assert all(p and len(p) >= 12 for p in passwords) and len(set(passwords)) == len(passwords)
    with session_scope(factory) as session:
        assert set_up_demo(session, Settings(database_url=sqlite_url), kb, hasher=FAST_HASHER) == []
    engine.dispose()
    records = demo_records(6)
    assert len({r.visit_id for r in records}) == 6
    # Every third variant of the critical example lost its potassium value.
    assert not any("钾" in (i.name or "") for i in records[2].items)


def test_serve_command_with_demo_prints_passwords_and_url(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from zhujian.web.cli import serve_command

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("ZHUJIAN_DATABASE_URL", f"sqlite:///{tmp_path / 'demo.db'}")
    for name in ("ZHUJIAN_ADMIN_PASSWORD", "ZHUJIAN_SECRET_KEY", "ZHUJIAN_ENV"):
        monkeypatch.delenv(name, raising=False)
    serve_command(host="127.0.0.1", port=8765, demo=True)
    out = capsys.readouterr().out
    assert len(calls) == 1
    assert {k: calls[0][k] for k in ("host", "port", "log_level", "timeout_keep_alive")} == {
        "host": "127.0.0.1",
        "port": 8765,
        "log_level": "info",
        "timeout_keep_alive": 30,
    }
    assert calls[0]["proxy_headers"] is False  # X-Forwarded-For only from ZHUJIAN_TRUSTED_PROXIES
    assert "http://127.0.0.1:8765/" in out
    # Login names as typed at the login form, roles by their Chinese names (no internal role identifiers).
    assert re.search(r"chief\s+主检医生\s+\S{12,}", out)
    assert re.search(r"reviewer\s+审核医生\s+\S{12,}", out)
    assert re.search(r"auditor\s+审计员\s+\S{12,}", out)
    assert not any(name in out for name in ("chief_physician", "reviewing_physician", "health_manager"))
    # The passwords start in one terminal column (a CJK character takes two).
    rows = [line for line in out.splitlines() if re.match(r"  (admin|chief|reviewer|auditor) ", line)]
    assert len(rows) == 4
    starts = {sum(2 if unicodedata.east_asian_width(c) == "W" else 1 for c in row.rsplit(" ", 1)[0]) for row in rows}
    assert len(starts) == 1, rows


def test_serve_command_without_secret_key_refuses_to_start(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import typer

    from zhujian.web.cli import serve_command

    monkeypatch.setenv("ZHUJIAN_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    for name in ("ZHUJIAN_SECRET_KEY", "ZHUJIAN_ENV"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(typer.Exit):
        serve_command(demo=False)
