"""QC in the workbench: the warning panel of the review page before signing, and the auditors' QC page."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from web_helpers import SECRET_KEY, bearer, example_record

from db_testing import PASSWORD, Team, make_team
from zhujian.kb.loader import KnowledgeBase
from zhujian.kb.schema import CenterConfig, QcCenterSettings
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.web.app import create_app

Web = tuple[TestClient, Team]


def _login(client: TestClient, username: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
    assert token
    response = client.post(
        "/login",
        data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    page = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert page
    return page.group(1)


def _submit(client: TestClient, team: Team, name: str, visit_id: str) -> Any:
    return client.post("/api/records", json=example_record(name, visit_id), headers=bearer(team.chief)).json()


def test_review_page_loads_the_qc_panel_and_it_warns_after_a_deletion(web: Web) -> None:
    client, team = web
    rid = _submit(client, team, "female_67_critical", "V-QC")["report_id"]
    token = _login(client, "chief")
    assert f'hx-get="/reports/{rid}/qc"' in client.get(f"/reports/{rid}").text
    # The unedited draft is the engine's own report: nothing to warn about.
    assert "未发现问题" in client.get(f"/reports/{rid}/qc").text
    client.post(
        f"/reports/{rid}/delete",
        data={"expected_version": "1", "conclusion_id": "breast_nodule_birads4"},
        headers={"X-CSRF-Token": token, "HX-Request": "true"},
    )
    panel = client.get(f"/reports/{rid}/qc").text
    assert "质控提示" in panel and "遗漏结论" in panel and "乳腺结节（BI-RADS 4类及以上）" in panel


def test_qc_page_lists_signed_reports_with_rates_for_auditors_only(web: Web) -> None:
    client, team = web
    clean = _submit(client, team, "male_56_metabolic", "V-CLEAN")["report_id"]
    edited = _submit(client, team, "female_67_critical", "V-EDITED")["report_id"]
    token = _login(client, "chief")
    headers = {"X-CSRF-Token": token}
    client.post(
        f"/reports/{edited}/delete", data={"expected_version": "1", "conclusion_id": "anemia"}, headers=headers
    )
    client.post(f"/reports/{edited}/sign", data={"expected_version": "2", "csrf_token": token})
    client.post(f"/reports/{clean}/sign", data={"expected_version": "1", "csrf_token": token})
    assert client.get("/qc").status_code == 403  # a chief physician is not QC staff
    client.cookies.clear()
    _login(client, "auditor")
    page = client.get("/qc")
    assert page.status_code == 200
    html = page.text
    assert "已签署报告 2 份，有质控问题 1 份（50.0%）" in html
    assert "V-EDITED" in html and "V-CLEAN" not in html.split('id="qc-reports"')[1]
    assert "李主检" in html.split('id="qc-by-physician"')[1]
    assert "贫血（轻度）" in html  # the deleted disease conclusion, reported as missed


def test_qc_api_returns_the_issues_of_the_current_conclusions(web: Web) -> None:
    client, team = web
    stored = _submit(client, team, "female_67_critical", "V-API")
    rid = stored["report_id"]
    clean = client.get(f"/api/reports/{rid}/qc", headers=bearer(team.chief)).json()
    assert clean == {
        "report_id": rid, "visit_id": "V-API", "version": 1, "checked": True, "issues": [], "blocking": []
    }
    client.patch(
        f"/api/reports/{rid}",
        json={"expected_version": 1, "operations": [{"op": "delete", "conclusion_id": "hypokalemia_critical"}]},
        headers=bearer(team.chief),
    )
    after = client.get(f"/api/reports/{rid}/qc", headers=bearer(team.auditor)).json()
    assert after["version"] == 2
    assert [(i["kind"], i["conclusion"], i["icd10"]) for i in after["issues"]] == [
        ("missed", "严重低钾血症（伴心电图改变）", "E87.6")
    ]
    assert client.get(f"/api/reports/{rid}/qc", headers=bearer(team.admin)).status_code == 403


def test_a_center_can_make_a_kind_blocking_at_sign_time(sqlite_url: str, kb: KnowledgeBase) -> None:
    strict = kb.with_center(CenterConfig(qc=QcCenterSettings(blocking=["missed"])))
    engine = create_db_engine(sqlite_url)
    factory = create_session_factory(engine)
    with factory() as session:
        team = make_team(session)
    app = create_app(Settings(database_url=sqlite_url, secret_key=SECRET_KEY), kb=strict, session_factory=factory)
    with TestClient(app) as client:
        rid = _submit(client, team, "female_67_critical", "V-BLOCK")["report_id"]
        client.patch(
            f"/api/reports/{rid}",
            json={"expected_version": 1, "operations": [{"op": "delete", "conclusion_id": "hypokalemia_critical"}]},
            headers=bearer(team.chief),
        )
        refused = client.post(f"/api/reports/{rid}/sign", json={"expected_version": 2}, headers=bearer(team.chief))
        assert refused.status_code == 409
        assert "严重低钾血症" in refused.text
        token = _login(client, "chief")
        page = client.post(f"/reports/{rid}/sign", data={"expected_version": "2", "csrf_token": token})
        assert page.status_code == 409 and "暂不能签署" in page.text
        assert "需处理后方可签署" in client.get(f"/reports/{rid}/qc").text
        assert client.get(f"/api/reports/{rid}", headers=bearer(team.chief)).json()["status"] != "signed"
        # Restoring the conclusion lets the report be signed.
        client.patch(
            f"/api/reports/{rid}",
            json={"expected_version": 2, "operations": [{"op": "add", "kb_conclusion_id": "hypokalemia_critical"}]},
            headers=bearer(team.chief),
        )
        signed = client.post(f"/api/reports/{rid}/sign", json={"expected_version": 3}, headers=bearer(team.chief))
        assert signed.status_code == 200, signed.text
    engine.dispose()
