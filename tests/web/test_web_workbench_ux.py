"""The workbench's working comforts, on the server side (TestClient): each role's worklist opens on its own queue,
ids are found by any fragment, signing is posted only from the confirmation dialog (and can open the next report),
times are shown in the center's time zone, the audit trail speaks Chinese and has its own page in the navigation,
and the favicon is served. The browser-side behaviour is in test_web_browser_ux.py."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient
from web_helpers import bearer, example_record

from db_testing import PASSWORD, Team
from zhujian.storage import services
from zhujian.storage.db import session_scope
from zhujian.web.display import local_time

Web = tuple[TestClient, Team]
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries a CSRF token"
    return match.group(1)


def _login(client: TestClient, username: str) -> str:
    client.cookies.clear()
    token = _csrf(client.get("/login").text)
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return _csrf(client.get("/").text)


def _submit(client: TestClient, team: Team, visit_id: str, name: str = "male_56_metabolic") -> int:
    response = client.post("/api/records", json=example_record(name, visit_id), headers=bearer(team.chief))
    assert response.status_code == 201, response.text
    return int(response.json()["report_id"])


def _api_sign(client: TestClient, team: Team, report_id: int) -> None:
    response = client.post(f"/api/reports/{report_id}/sign", json={}, headers=bearer(team.chief))
    assert response.status_code == 200, response.text


def _visit_ids(html: str) -> list[str]:
    return re.findall(r'class="open">([^<]+)</a>', html)


def _three_reports(client: TestClient, team: Team) -> dict[str, int]:
    """Two drafts and one signed report (signed: waits for the reviewing physician)."""
    ids = {visit: _submit(client, team, visit) for visit in ("UX-A17-0101", "UX-B28-0102", "UX-C39-0103")}
    _api_sign(client, team, ids["UX-C39-0103"])
    return ids


# ------------------------------------------------------------------------------------------------ queues


def test_each_role_opens_on_its_own_queue(web: Web) -> None:
    client, team = web
    _three_reports(client, team)
    _login(client, "reviewer")
    html = client.get("/").text
    assert _visit_ids(html) == ["UX-C39-0103"]  # only the signed report waits for review
    assert re.search(r'class="chip queue active" id="my-queue">待审核 1<', html)
    everything = client.get("/", params={"status": "all"}).text
    assert sorted(_visit_ids(everything)) == ["UX-A17-0101", "UX-B28-0102", "UX-C39-0103"]
    assert re.search(r'class="chip active" id="all-reports">全部 3<', everything)

    _login(client, "chief")
    html = client.get("/").text
    assert sorted(_visit_ids(html)) == ["UX-A17-0101", "UX-B28-0102"]  # drafts wait for the chief physician
    assert "待主检 2" in html

    _login(client, "manager")
    assert _visit_ids(client.get("/").text) == []  # nothing reviewed yet: nothing to publish
    assert "待发布 0" in client.get("/").text

    _login(client, "auditor")  # no step of their own: every report
    html = client.get("/").text
    assert len(_visit_ids(html)) == 3 and 'id="my-queue"' not in html


def test_a_search_looks_through_every_report_unless_a_queue_is_chosen(web: Web) -> None:
    client, team = web
    _three_reports(client, team)
    _login(client, "chief")
    # The signed report is not in the chief physician's queue, yet a search from the worklist finds it.
    assert _visit_ids(client.get("/", params={"search": "0103"}).text) == ["UX-C39-0103"]
    assert _visit_ids(client.get("/", params={"search": "0103", "status": "mine"}).text) == []


def test_search_finds_a_fragment_from_the_middle_of_an_id(web: Web) -> None:
    client, team = web
    _three_reports(client, team)
    _login(client, "chief")
    assert _visit_ids(client.get("/", params={"search": "B28", "status": "all"}).text) == ["UX-B28-0102"]
    assert _visit_ids(client.get("/", params={"search": "x-a1", "status": "all"}).text) == ["UX-A17-0101"]
    assert len(_visit_ids(client.get("/", params={"search": "-0", "status": "all"}).text)) == 3
    # LIKE wildcards are literal: as wildcards, "%" and "UX_C" would match.
    assert _visit_ids(client.get("/", params={"search": "%", "status": "all"}).text) == []
    assert _visit_ids(client.get("/", params={"search": "UX_C", "status": "all"}).text) == []


# ------------------------------------------------------------------------------------------------ signing


class _Forms(HTMLParser):
    """Where the forms posting to a report's /sign sit: inside a <dialog> or not."""

    def __init__(self) -> None:
        super().__init__()
        self.depth_in_dialog = 0
        self.sign_forms: list[bool] = []  # True: inside a dialog
        self.sign_button_type: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "dialog":
            self.depth_in_dialog += 1
        if tag == "form" and (attributes.get("action") or "").endswith("/sign"):
            self.sign_forms.append(self.depth_in_dialog > 0)
        if tag == "button" and attributes.get("id") == "sign-button":
            self.sign_button_type = attributes.get("type")

    def handle_endtag(self, tag: str) -> None:
        if tag == "dialog":
            self.depth_in_dialog -= 1


def test_the_sign_form_is_only_in_the_confirmation_dialog(web: Web) -> None:
    client, team = web
    rid = _submit(client, team, "UX-SIGN-1", "female_67_critical")
    _login(client, "chief")
    html = client.get(f"/reports/{rid}").text
    forms = _Forms()
    forms.feed(html)
    assert forms.sign_forms == [True]
    assert forms.sign_button_type == "button"  # the bar's button opens the dialog, it posts nothing
    assert 'id="cancel-sign"' in html and 'formmethod="dialog"' in html
    assert re.search(r"确认主检签署", html)


def test_sign_and_open_the_next_report_of_the_queue(web: Web) -> None:
    client, team = web
    ids = _three_reports(client, team)
    token = _login(client, "chief")
    queue = _visit_ids(client.get("/").text)  # the chief physician's queue, in worklist order
    first, second = (ids[v] for v in queue)
    response = client.post(
        f"/reports/{first}/sign",
        data={"expected_version": "1", "csrf_token": token, "then": "next"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == f"/reports/{second}"
    # The last one of the queue: back to the worklist.
    last = client.post(
        f"/reports/{second}/sign",
        data={"expected_version": "1", "csrf_token": token, "then": "next"},
        follow_redirects=False,
    )
    assert last.headers["location"] == "/"
    assert _visit_ids(client.get("/").text) == []


# ------------------------------------------------------------------------------------------------ times, audit


def test_local_time_is_the_center_time() -> None:
    # Asia/Shanghai is UTC+8 all year (no daylight saving since 1991).
    moment = dt.datetime(2026, 3, 1, 20, 30, 5, tzinfo=dt.UTC)
    assert local_time(moment, SHANGHAI) == "2026-03-02 04:30"
    assert local_time(moment.replace(tzinfo=None), SHANGHAI) == "2026-03-02 04:30"  # naive values are UTC
    assert local_time(None, SHANGHAI) == "—"
    assert local_time(moment, ZoneInfo("Europe/Berlin")) == "2026-03-01 21:30"


def _audit(client: TestClient, team: Team, report_id: int) -> list[Any]:
    factory = client.app.state.web.session_factory  # type: ignore[attr-defined]
    with session_scope(factory) as session:
        return services.report_audit(session, report_id, actor=team.auditor)


def test_audit_pages_show_local_times_and_chinese_statuses(web: Web) -> None:
    client, team = web
    rid = _submit(client, team, "UX-AUDIT-1", "female_67_critical")
    token = _login(client, "chief")
    client.post(
        f"/reports/{rid}/edit",
        data={"expected_version": "1", "conclusion_id": "anemia", "advice": "补充铁剂后复查"},
        headers={"X-CSRF-Token": token},
    )
    client.post(f"/reports/{rid}/sign", data={"expected_version": "2", "csrf_token": token})
    _login(client, "auditor")
    html = client.get(f"/reports/{rid}/audit").text
    assert "状态：草稿 → 已修改" in html and "状态：已修改 → 已签署" in html
    assert not re.search(r"\b(draft|edited|signed)\b", html)
    assert "时间（Asia/Shanghai）" in html
    for entry in _audit(client, team, rid):
        utc = entry.occurred_at.astimezone(dt.UTC)
        shown = (utc + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")
        assert f'<td class="time">{shown}</td>' in html
    # The navigation's audit page: every report, newest first, the same local times.
    assert 'href="/audit"' in html
    recent = client.get("/audit").text
    seqs = [int(s) for s in re.findall(r"<tr>\s*<td>(\d+)</td>", recent)]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) >= 3
    assert "状态：已修改 → 已签署" in recent and f'href="/reports/{rid}/audit"' in recent


def test_audit_link_only_for_roles_that_read_the_audit_log(web: Web) -> None:
    client, _ = web
    for username, sees in (("auditor", True), ("admin", True), ("chief", False), ("reviewer", False)):
        _login(client, username)
        assert ('id="nav-audit"' in client.get("/").text) is sees, username
        assert client.get("/audit").status_code == (200 if sees else 403), username


def test_worklist_and_review_times_are_local(web: Web) -> None:
    client, team = web
    rid = _submit(client, team, "UX-TIME-1")
    _api_sign(client, team, rid)
    _login(client, "reviewer")
    factory = client.app.state.web.session_factory  # type: ignore[attr-defined]
    with session_scope(factory) as session:
        detail = services.get_report(session, rid, actor=team.reviewer)
    assert detail.signed_at is not None
    signed_local = (detail.signed_at.astimezone(dt.UTC) + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert f"主检医生：李主检（{signed_local}）" in client.get(f"/reports/{rid}").text
    updated_local = (detail.updated_at.astimezone(dt.UTC) + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M")
    assert f'<td class="time">{updated_local}</td>' in client.get("/").text


# ------------------------------------------------------------------------------------------------ favicon


def test_favicon_is_served_and_linked(web: Web) -> None:
    client, _ = web
    login = client.get("/login").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in login
    icon = client.get("/static/favicon.svg")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert icon.text.startswith("<svg")
    legacy = client.get("/favicon.ico", follow_redirects=False)  # asked for without logging in
    assert legacy.status_code == 301 and legacy.headers["location"] == "/static/favicon.svg"
