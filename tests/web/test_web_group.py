"""The workbench's group (团检) report page: roles with `group_report` see the cohort's numbers (small cells hidden,
no identifiers), others are refused; the page and its downloads count the same reports as `zhujian group`."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient
from web_helpers import bearer, example_record

from db_testing import PASSWORD, Team

Web = tuple[TestClient, Team]


def _login(client: TestClient, username: str) -> None:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}, follow_redirects=False
    )
    assert response.status_code == 303, response.text


def _store_signed(client: TestClient, team: Team, count: int) -> None:
    for i in range(count):
        record = example_record("male_56_metabolic", f"G-{i}")
        record["employer"] = "甲公司"
        record["person_id"] = f"P-G-{i}"
        record["exam_date"] = "2026-03-10"
        stored = client.post("/api/records", json=record, headers=bearer(team.chief))
        assert stored.status_code in (200, 201), stored.text
        report_id = stored.json()["report_id"]
        signed = client.post(f"/api/reports/{report_id}/sign", json={}, headers=bearer(team.chief))
        assert signed.status_code == 200, signed.text


def test_group_page_counts_signed_reports_of_the_employer(web: Web) -> None:
    client, team = web
    _store_signed(client, team, 6)
    unsigned = example_record("female_67_critical", "G-unsigned")
    unsigned["employer"] = "甲公司"
    client.post("/api/records", json=unsigned, headers=bearer(team.chief))
    _login(client, "manager")
    page = client.get("/group", params={"date_from": "2026-01-01", "date_to": "2026-12-31", "employer": "甲公司",
                                         "show": "true"})
    assert page.status_code == 200
    assert re.search(r'id="group-n">6<', page.text)
    assert "P-G-" not in page.text and "G-0" not in page.text
    data = client.get("/group/report.json", params={"date_from": "2026-01-01", "date_to": "2026-12-31",
                                                    "employer": "甲公司"}).json()
    assert data["n"] == 6
    # Every one of the six has the same example's conclusions, and the parts merged into them (一元化) as lines of
    # their own: each is shown with n = 6.
    example = json.loads(client.get("/api/reports/1", headers=bearer(team.chief)).text)
    names = {c["name"] for c in example["content"]["conclusions"]}
    kb_names = {d.name for d in client.app.state.web.kb.conclusions.values()}  # type: ignore[attr-defined]
    for conclusion in example["content"]["conclusions"]:
        for part in conclusion.get("merged") or []:
            if part in kb_names or part.split("（")[0] in kb_names:
                names.add(part if part in kb_names else part.split("（")[0])
    shown = {c["name"]: c["n"] for c in data["conclusions"]}
    assert set(shown) == names
    assert all(n == 6 for n in shown.values())
    pdf = client.get("/group/report.pdf", params={"date_from": "2026-01-01", "date_to": "2026-12-31"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")


def test_group_page_refuses_roles_without_the_permission(web: Web) -> None:
    client, _ = web
    _login(client, "auditor")
    assert client.get("/group").status_code == 403
    assert client.get("/group/report.csv").status_code == 403
