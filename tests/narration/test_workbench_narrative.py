"""The narrative on the workbench: generated beside the conclusions (AI-drafted and verified, or the template with
the reason), out of date after the physician edits conclusions, regenerable, editable, kept with its provenance in the
signed report, and used by the examinee's report."""

from __future__ import annotations

import copy
import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from llm_stand_in import Step, faithful_from_request, stand_in_server

from db_testing import PASSWORD, Team, copy_of, make_team
from zhujian.examples import load_example
from zhujian.kb.loader import KnowledgeBase
from zhujian.render.html import render_patient_report_html
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.web.app import create_app
from zhujian.web.security import create_api_token

SECRET_KEY = "narrative-test-secret-" + "y" * 32


@pytest.fixture
def web(sqlite_template: Path, tmp_path: Path, kb: KnowledgeBase) -> Iterator[tuple[TestClient, Team]]:
    url = copy_of(sqlite_template, tmp_path)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    with factory() as session:
        team = make_team(session)
    app = create_app(Settings(database_url=url, secret_key=SECRET_KEY), kb=kb, session_factory=factory)
    with TestClient(app) as client:
        yield client, team
    engine.dispose()


def _bearer(team: Team) -> dict[str, str]:
    token, _ = create_api_token(SECRET_KEY, team.chief.user_id)
    return {"Authorization": f"Bearer {token}"}


def _login(client: TestClient) -> dict[str, str]:
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    response = client.post(
        "/login", data={"username": "chief", "password": PASSWORD, "csrf_token": token.group(1)}, follow_redirects=False
    )
    assert response.status_code == 303
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert csrf
    return {"X-CSRF-Token": csrf.group(1), "HX-Request": "true"}


def _content(client: TestClient, team: Team, rid: int) -> dict[str, Any]:
    detail: dict[str, Any] = client.get(f"/api/reports/{rid}", headers=_bearer(team)).json()
    return detail


def _version(client: TestClient, team: Team, rid: int) -> str:
    return str(_content(client, team, rid)["version"])


def test_generate_edit_regenerate_sign_and_print(web: tuple[TestClient, Team], monkeypatch: pytest.MonkeyPatch) -> None:
    client, team = web
    record = copy.deepcopy(load_example("female_67_critical"))
    rid = client.post("/api/records", json=record, headers=_bearer(team)).json()["report_id"]
    headers = _login(client)
    page = client.get(f"/reports/{rid}").text
    assert "尚未生成报告解读" in page and "生成报告解读" in page

    with stand_in_server([Step(respond=faithful_from_request)]) as server:
        monkeypatch.setenv("ZHUJIAN_LLM_BASE_URL", server.url)
        monkeypatch.setenv("ZHUJIAN_LLM_MODEL", "stand-in-7b")
        generated = client.post(
            f"/reports/{rid}/narrative/generate", data={"expected_version": _version(client, team, rid)}, headers=headers
        )
        assert generated.status_code == 200, generated.text
        assert "AI 起草 · 已通过自动核对" in generated.text
        assert "stand-in-7b" in generated.text and "narrative-zh-1" in generated.text
        stored = _content(client, team, rid)
        narrative = stored["content"]["narrative"]
        assert narrative["source"] == "llm" and narrative["verification"]["passed"] is True
        assert stored["status"] == "draft"  # generating text is not a physician's edit

        # The physician edits a conclusion: the narrative is out of date until regenerated.
        edited = client.post(
            f"/reports/{rid}/edit",
            data={"expected_version": _version(client, team, rid), "conclusion_id": "anemia", "advice": "一个月后复查血常规"},
            headers=headers,
        )
        assert "结论已在解读生成后修改" in edited.text
        regenerated = client.post(
            f"/reports/{rid}/narrative/generate", data={"expected_version": _version(client, team, rid)}, headers=headers
        )
        assert "结论已在解读生成后修改" not in regenerated.text
        assert len(server.requests) == 2

    # The physician rewrites the overview; what the model wrote is kept beside it.
    content = _content(client, team, rid)["content"]
    sections = content["narrative"]["sections"]
    form: dict[str, Any] = {
        "expected_version": _version(client, team, rid),
        "summary": "您这次检查最要紧的是血钾明显偏低，请今天就到急诊或心内科就诊。",
        "names": [c["name"] for c in sections["conclusions"]],
        "explanations": [c["explanation"] for c in sections["conclusions"]],
        "advices": [c["advice"] for c in sections["conclusions"]],
        "lifestyle": "\n".join(sections["lifestyle"]),
        "follow_up": "\n".join(sections["follow_up"]),
    }
    saved = client.post(f"/reports/{rid}/narrative/edit", data=form, headers=headers)
    assert saved.status_code == 200, saved.text
    assert "医生已修改" in saved.text
    detail = _content(client, team, rid)
    narrative = detail["content"]["narrative"]
    assert detail["status"] == "edited"
    assert narrative["edited_by_physician"] is True and narrative["edited_parts"] == ["summary"]
    assert narrative["generated_sections"]["summary"] == sections["summary"]
    assert narrative["edited_by"] == "chief"

    signed = client.post(
        f"/reports/{rid}/sign", data={"expected_version": _version(client, team, rid), "csrf_token": headers["X-CSRF-Token"]},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    final = _content(client, team, rid)
    assert final["status"] == "signed"
    kept = final["content"]["narrative"]
    assert (kept["source"], kept["model"], kept["prompt_version"]) == ("llm", "stand-in-7b", "narrative-zh-1")
    assert kept["sections"]["summary"].startswith("您这次检查最要紧的是血钾明显偏低")

    # The examinee's report prints the signed narrative.
    printed = html.unescape(render_patient_report_html(final["content"]))
    assert "报告解读" in printed
    assert "您这次检查最要紧的是血钾明显偏低" in printed
    assert "本解读由主检医生审核修改" in printed
    first = kept["sections"]["conclusions"][0]
    assert first["explanation"] in printed


def test_model_failure_shows_the_template_and_the_reason(
    web: tuple[TestClient, Team], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, team = web
    rid = client.post("/api/records", json=load_example("female_67_critical"), headers=_bearer(team)).json()["report_id"]
    headers = _login(client)
    with stand_in_server([Step(status=500)]) as server:
        monkeypatch.setenv("ZHUJIAN_LLM_BASE_URL", server.url)
        monkeypatch.setenv("ZHUJIAN_LLM_MODEL", "stand-in-7b")
        response = client.post(f"/reports/{rid}/narrative/generate", data={"expected_version": "1"}, headers=headers)
    assert response.status_code == 200
    assert "模板（大模型未采用）" in response.text
    assert "HTTP 500" in response.text
    assert "AI 起草" not in response.text
    narrative = _content(client, team, rid)["content"]["narrative"]
    assert narrative["source"] == "template" and "HTTP 500" in narrative["fallback_reason"]


def test_without_llm_settings_the_template_is_written_and_nothing_is_sent(
    web: tuple[TestClient, Team], monkeypatch: pytest.MonkeyPatch
) -> None:
    client, team = web
    monkeypatch.delenv("ZHUJIAN_LLM_BASE_URL", raising=False)
    rid = client.post("/api/records", json=load_example("male_56_metabolic"), headers=_bearer(team)).json()["report_id"]
    headers = _login(client)
    response = client.post(f"/reports/{rid}/narrative/generate", data={"expected_version": "1"}, headers=headers)
    assert response.status_code == 200
    narrative = _content(client, team, rid)["content"]["narrative"]
    assert narrative["source"] == "template" and narrative["fallback_reason"] is None and narrative["model"] is None
    assert ">模板<" in response.text
