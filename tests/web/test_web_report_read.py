"""The report read (`GET /api/reports/{id}`) passes the stored content JSON through instead of decoding and encoding
it again: its answer must be the very document the services' `get_report` describes, on both databases, for a draft,
an edited and a signed, reviewed and published report (signer, reviewer and publisher names filled in)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from web_helpers import bearer, example_record

from db_testing import Team
from zhujian.storage import services
from zhujian.web.schemas import ReportOut, WorklistItem

Api = tuple[TestClient, Team]


def _expected(client: TestClient, team: Team, report_id: int) -> dict[str, Any]:
    """The document built the long way: the service's detail (content decoded) through the response model."""
    factory = client.app.state.web.session_factory  # type: ignore[attr-defined]
    with factory() as session:
        detail = services.get_report(session, report_id, actor=team.chief)
    return ReportOut.of(detail).model_dump(mode="json")


def test_report_read_is_the_services_document_at_every_stage(api: Api) -> None:
    client, team = api
    stored = client.post("/api/records", json=example_record("male_56_metabolic"), headers=bearer(team.chief)).json()
    report_id = stored["report_id"]
    url = f"/api/reports/{report_id}"

    def check() -> dict[str, Any]:
        answer = client.get(url, headers=bearer(team.chief))
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "application/json"
        body: dict[str, Any] = answer.json()
        assert body == _expected(client, team, report_id)
        return body

    draft = check()
    assert draft["status"] == "draft" and draft["content"]["conclusions"]
    first = draft["content"]["conclusions"][0]["id"]
    edit = {"expected_version": 1, "operations": [{"op": "edit", "conclusion_id": first, "advice": "一个月后复查"}]}
    assert client.patch(url, json=edit, headers=bearer(team.chief)).status_code == 200
    edited = check()
    assert edited["status"] == "edited"
    assert edited["content"]["conclusions"][0]["advice"] == "一个月后复查"
    assert client.post(f"{url}/sign", headers=bearer(team.chief)).status_code == 200
    assert client.post(f"{url}/review", json={"decision": "approve"}, headers=bearer(team.reviewer)).status_code == 200
    assert client.post(f"{url}/publish", headers=bearer(team.reviewer)).status_code == 200
    published = check()
    assert published["signed_by"] == "李主检" and published["reviewed_by"] == "赵审核"
    assert published["published_by"] == "赵审核" and published["published_at"] is not None


def test_report_read_of_an_unknown_report_is_404(api: Api) -> None:
    client, team = api
    answer = client.get("/api/reports/999999", headers=bearer(team.chief))
    assert answer.status_code == 404


def test_worklist_answer_keeps_its_schema(api: Api) -> None:
    client, team = api
    for name in ("male_56_metabolic", "female_67_critical"):
        assert client.post("/api/records", json=example_record(name), headers=bearer(team.chief)).status_code == 201
    page = client.get("/api/worklist?limit=1", headers=bearer(team.chief))
    assert page.status_code == 200 and page.headers["content-type"] == "application/json"
    body = page.json()
    assert body["total"] == 2 and body["limit"] == 1 and body["offset"] == 0
    assert body["items"][0]["critical"] is True  # the critical woman first
    assert set(body["items"][0]) == set(WorklistItem.model_fields)
