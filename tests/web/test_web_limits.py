"""Request limits (issue 11, defects 6 and 10): bodies, records (items, texts, text length, prior visits), page sizes,
and ids or offsets beyond what the database holds. Each limit answers a clear 413 or 422 that names it — never a
500, never a stored 10 MB record.

The defaults are checked against what real checkups look like (about 100–300 items and 10–40 texts per record, a
10–100 kB JSON body), not against the code's own constants."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner
from web_helpers import SECRET_KEY, bearer, example_record

from db_testing import PASSWORD, Team, make_team
from zhujian.cli import app as cli_app
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.web.app import create_app

Api = tuple[TestClient, Team]
BIG_ID = "9223372036854775808"  # 2**63: beyond every integer column
INT4_OVERFLOW = "2147483648"  # 2**31: beyond PostgreSQL `integer`, the id columns


def _record_with(items: int = 0, texts: int = 0, text_length: int = 20, visit_id: str = "LIMIT-1") -> dict[str, Any]:
    record = example_record("female_67_critical", visit_id)
    record["items"] = [{"name": "谷丙转氨酶", "value": str(10 + n % 30), "unit": "U/L"} for n in range(items)]
    record["texts"] = [{"item": "肝脏", "section": "彩超", "text": "肝" * text_length} for _ in range(texts)]
    return record


@pytest.fixture
def tight(sqlite_url: str, kb: KnowledgeBase) -> Iterator[Api]:
    """The API with small limits set through the settings, as a center would set them."""
    engine = create_db_engine(sqlite_url)
    factory = create_session_factory(engine)
    with factory() as session:
        team = make_team(session)
    settings = Settings(
        database_url=sqlite_url,
        secret_key=SECRET_KEY,
        max_body_bytes=64 * 1024,
        max_record_items=5,
        max_record_texts=2,
        max_text_length=50,
        max_prior_visits=1,
        max_page_size=20,
    )
    with TestClient(create_app(settings, kb=kb, session_factory=factory)) as client:
        yield client, team
    engine.dispose()


# ------------------------------------------------------------------------------------------------ bodies and records


def test_a_ten_megabyte_record_is_refused_before_it_is_read(api: Api) -> None:
    """The issue's probe: 85,000 items, about 10 MB, was stored and its 26 MB report served."""
    client, team = api
    record = _record_with(items=85_000)
    body = json.dumps(record).encode()
    assert len(body) > 3 * 1024 * 1024
    response = client.post(
        "/api/records", content=body, headers={**bearer(team.chief), "Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text[:300]
    error = response.json()["error"]
    assert error["code"] == "too_large"
    assert "ZHUJIAN_MAX_BODY_BYTES" in error["message"] and "1 MiB" in error["message"]
    listed = client.get("/api/worklist", headers=bearer(team.chief)).json()
    assert listed["total"] == 0


def test_a_body_without_length_is_counted_and_cut_off(tight: Api) -> None:
    client, team = tight

    def chunks() -> Iterator[bytes]:
        yield b'{"visit_id": "X", "sex": "male", "items": ['
        for _ in range(2000):
            yield b'{"name": "ALT", "value": "12"},' * 10
        yield b'{"name": "ALT", "value": "12"}]}'

    response = client.post(
        "/api/records", content=chunks(), headers={**bearer(team.chief), "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "64 KiB" in response.json()["error"]["message"]


def test_a_realistic_record_passes_the_default_limits(api: Api) -> None:
    """300 items and 40 texts of 500 characters: the top of what a real checkup has."""
    client, team = api
    response = client.post(
        "/api/records", json=_record_with(items=300, texts=40, text_length=500), headers=bearer(team.chief)
    )
    assert response.status_code == 201, response.text[:300]


@pytest.mark.parametrize(
    ("shape", "field", "setting"),
    [
        ({"items": 1001}, "items", "ZHUJIAN_MAX_RECORD_ITEMS"),
        ({"texts": 201}, "texts", "ZHUJIAN_MAX_RECORD_TEXTS"),
        ({"texts": 1, "text_length": 10_001}, "texts.0.text", "ZHUJIAN_MAX_TEXT_LENGTH"),
    ],
)
def test_records_above_the_default_limits_are_refused_naming_the_limit(
    api: Api, shape: dict[str, int], field: str, setting: str
) -> None:
    client, team = api
    response = client.post("/api/records", json=_record_with(**shape), headers=bearer(team.chief))
    assert response.status_code == 422, response.text[:300]
    error = response.json()["error"]
    assert error["fields"][0]["field"] == field
    assert setting in error["message"] and field in error["message"]
    assert client.get("/api/worklist", headers=bearer(team.chief)).json()["total"] == 0


def test_prior_visits_are_limited_too(api: Api) -> None:
    client, team = api
    record = _record_with(items=3)
    record["prior_visits"] = [{"visit_id": f"OLD-{n}", "items": []} for n in range(51)]
    response = client.post("/api/records", json=record, headers=bearer(team.chief))
    assert response.status_code == 422
    assert "ZHUJIAN_MAX_PRIOR_VISITS" in response.json()["error"]["message"]
    record["prior_visits"] = [{"visit_id": "OLD-1", "items": _record_with(items=1001)["items"]}]
    response = client.post("/api/records", json=record, headers=bearer(team.chief))
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "prior_visits.0.items"


def test_limits_follow_the_settings(tight: Api) -> None:
    client, team = tight
    assert client.post("/api/records", json=_record_with(items=5, texts=2), headers=bearer(team.chief)).status_code == 201
    response = client.post("/api/records", json=_record_with(items=6, visit_id="L-2"), headers=bearer(team.chief))
    assert response.status_code == 422
    assert "上限 5" in response.json()["error"]["message"]
    response = client.post("/api/records", json=_record_with(texts=1, text_length=51), headers=bearer(team.chief))
    assert "上限 50" in response.json()["error"]["message"]


def test_ids_longer_than_their_column_are_a_422(api: Api) -> None:
    """visits.visit_id and persons.pseudonym hold 128 characters; PostgreSQL raised on longer ones (500)."""
    client, team = api
    for field in ("visit_id", "person_id"):
        record = _record_with(items=2)
        record[field] = "V" * 129
        response = client.post("/api/records", json=record, headers=bearer(team.chief))
        assert response.status_code == 422, response.text[:300]
        assert response.json()["error"]["fields"][0]["field"] == field


def test_the_command_line_names_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(_record_with(items=1001)), encoding="utf-8")
    result = CliRunner().invoke(cli_app, ["report", str(path)])
    assert result.exit_code == 2
    assert "field items" in result.output and "1001 items" in result.output
    assert "limit of 1000" in result.output and "ZHUJIAN_MAX_RECORD_ITEMS" in result.output


# ------------------------------------------------------------------------------------------------ page sizes


def test_page_size_is_limited_by_the_setting(tight: Api) -> None:
    client, team = tight
    assert client.get("/api/worklist", params={"limit": 20}, headers=bearer(team.chief)).status_code == 200
    response = client.get("/api/worklist", params={"limit": 21}, headers=bearer(team.chief))
    assert response.status_code == 422
    assert "ZHUJIAN_MAX_PAGE_SIZE" in response.json()["error"]["message"]


def test_default_page_size_limit(api: Api) -> None:
    client, team = api
    assert client.get("/api/worklist", params={"limit": 200}, headers=bearer(team.chief)).status_code == 200
    response = client.get("/api/worklist", params={"limit": 201}, headers=bearer(team.chief))
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "limit"


# ------------------------------------------------------------------------------------------------ ids and offsets

API_ID_ROUTES = [
    ("GET", "/api/reports/{id}", None),
    ("GET", "/api/reports/{id}.pdf", None),
    ("GET", "/api/reports/{id}/audit", None),
    ("GET", "/api/reports/{id}/fhir", None),
    ("PATCH", "/api/reports/{id}", {"expected_version": 1, "operations": [{"op": "delete", "conclusion_id": "x"}]}),
    ("POST", "/api/reports/{id}/sign", {}),
    ("POST", "/api/reports/{id}/review", {"decision": "approve"}),
    ("POST", "/api/reports/{id}/publish", {}),
]


@pytest.mark.parametrize("big", [BIG_ID, INT4_OVERFLOW, "99999999999999999999"])
def test_report_ids_beyond_the_database_are_a_422_on_every_route(api: Api, big: str) -> None:
    client, team = api
    for method, path, body in API_ID_ROUTES:
        actor = team.reviewer if path.endswith(("/review", "/publish")) else team.chief
        response = client.request(method, path.format(id=big), json=body, headers=bearer(actor))
        assert response.status_code == 422, (method, path, response.status_code, response.text[:200])
        assert response.json()["error"]["fields"][0]["field"] == "report_id"


def test_the_largest_possible_id_is_simply_not_found(api: Api) -> None:
    client, team = api
    response = client.get("/api/reports/2147483647", headers=bearer(team.chief))
    assert response.status_code == 404


@pytest.mark.parametrize("offset", ["99999999999999999999", "9223372036854775808", "2147483648"])
def test_offsets_beyond_the_database_are_a_422(api: Api, offset: str) -> None:
    client, team = api
    response = client.get("/api/worklist", params={"offset": offset}, headers=bearer(team.chief))
    assert response.status_code == 422, response.text[:200]
    assert response.json()["error"]["fields"][0]["field"] == "offset"
    assert client.get("/api/worklist", params={"offset": 2147483647}, headers=bearer(team.chief)).json()["items"] == []


def test_versions_beyond_the_database_are_a_422(api: Api) -> None:
    client, team = api
    report_id = client.post("/api/records", json=example_record(), headers=bearer(team.chief)).json()["report_id"]
    body = {"expected_version": 2**70, "operations": [{"op": "delete", "conclusion_id": "x"}]}
    response = client.patch(f"/api/reports/{report_id}", json=body, headers=bearer(team.chief))
    assert response.status_code == 422
    response = client.post(f"/api/reports/{report_id}/sign", json={"expected_version": 2**63}, headers=bearer(team.chief))
    assert response.status_code == 422


def _page_login(client: TestClient) -> str:
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    client.post("/login", data={"username": "chief", "password": PASSWORD, "csrf_token": token.group(1)})
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    assert found
    return found.group(1)


@pytest.mark.parametrize("big", [BIG_ID, INT4_OVERFLOW])
def test_page_routes_refuse_ids_beyond_the_database(web: Api, big: str) -> None:
    client, _ = web
    csrf = _page_login(client)
    for path in ("/reports/{id}", "/reports/{id}/audit", "/reports/{id}/report.pdf", "/reports/{id}/neighbor",
                 "/reports/{id}/kb-search?q=高"):
        response = client.get(path.format(id=big), follow_redirects=False)
        assert response.status_code == 422, (path, response.status_code)
    response = client.post(f"/reports/{big}/sign", data={"expected_version": 1, "csrf_token": csrf})
    assert response.status_code == 422
    response = client.post("/reports/1/sign", data={"expected_version": BIG_ID, "csrf_token": csrf})
    assert response.status_code == 422
