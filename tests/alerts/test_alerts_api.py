"""The alert API through the app, with the app's clock moved by the test, and the notifier plugins against local
servers on OS-assigned ports: an aiosmtpd SMTP server and an http.server SMS gateway."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from alerts_helpers import MovableClock
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_helpers import SECRET_KEY, bearer, example_record

from db_testing import Team, make_team
from zhujian.alerts.notifiers import NotifierError, SmtpNotifier, WebhookNotifier, render_message
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.web.app import create_app

Client = tuple[TestClient, Team, MovableClock]


def _app(url: str, kb: KnowledgeBase, clock: MovableClock, **settings: Any) -> Iterator[Client]:
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    with factory() as session:
        team = make_team(session)
    app = create_app(
        Settings(database_url=url, secret_key=SECRET_KEY, **settings), kb=kb, session_factory=factory, clock=clock
    )
    with TestClient(app) as client:
        yield client, team, clock
    engine.dispose()


@pytest.fixture
def api(database_url: str, kb: KnowledgeBase, clock: MovableClock) -> Iterator[Client]:
    yield from _app(database_url, kb, clock)


def test_a_class_a_record_posted_opens_an_alert_and_the_loop_closes(api: Client) -> None:
    client, team, clock = api
    posted = client.post("/api/records", json=example_record(visit_id="V-A1"), headers=bearer(team.manager))
    assert posted.status_code == 201
    report_id = posted.json()["report_id"]
    listed = client.get("/api/alerts", params={"status": "open"}, headers=bearer(team.manager))
    assert listed.status_code == 200
    class_a = [a for a in listed.json() if a["level"] == "A"]
    assert len(class_a) == 1
    alert = class_a[0]
    assert {"id", "report_id", "visit_id", "level", "reason", "status", "created_at", "due_at"} <= set(alert)
    assert (alert["report_id"], alert["visit_id"], alert["status"]) == (report_id, "V-A1", "open")
    created = dt.datetime.fromisoformat(alert["created_at"])
    due = dt.datetime.fromisoformat(alert["due_at"])
    assert created == clock.now and due - created == dt.timedelta(hours=2)

    failed = client.post(
        f"/api/alerts/{alert['id']}/notify",
        json={"channel": "phone", "note": "无人接听", "success": False},
        headers=bearer(team.manager),
    )
    assert failed.status_code == 200 and failed.json()["status"] == "open" and failed.json()["failed_attempts"] == 1
    notified = client.post(
        f"/api/alerts/{alert['id']}/notify",
        json={"channel": "phone", "note": "已通知本人立即就诊"},
        headers=bearer(team.chief),
    )
    assert notified.status_code == 200 and notified.json()["status"] == "notified"
    closed = client.post(
        f"/api/alerts/{alert['id']}/close", json={"outcome": "seen_at_ed"}, headers=bearer(team.manager)
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    again = client.post(f"/api/alerts/{alert['id']}/close", json={"outcome": "referred"}, headers=bearer(team.manager))
    assert again.status_code == 409
    audit = client.get(f"/api/reports/{report_id}/audit", headers=bearer(team.auditor)).json()
    assert [e["action"] for e in audit if e["action"].startswith("alert.")] == [
        "alert.open",
        "alert.attempt_failed",
        "alert.notify",
        "alert.close",
    ]
    assert (
        client.get("/api/alerts", params={"status": "closed"}, headers=bearer(team.auditor)).json()[0]["id"]
        == (alert["id"])
    )


def test_a_record_without_critical_values_opens_no_class_a_alert(api: Client) -> None:
    client, team, _ = api
    record = example_record("male_56_metabolic", visit_id="V-N1")
    assert client.post("/api/records", json=record, headers=bearer(team.manager)).status_code == 201
    listed = client.get("/api/alerts", headers=bearer(team.manager)).json()
    assert [a for a in listed if a["level"] == "A"] == []


def test_overdue_through_the_apps_clock(api: Client) -> None:
    client, team, clock = api
    client.post("/api/records", json=example_record(visit_id="V-O1"), headers=bearer(team.manager))
    assert client.get("/api/alerts", params={"status": "overdue"}, headers=bearer(team.manager)).json() == []
    clock.advance(hours=2, minutes=1)
    overdue = client.get("/api/alerts", params={"status": "overdue"}, headers=bearer(team.manager)).json()
    assert [(a["level"], a["status"], a["escalated_to"]) for a in overdue] == [("A", "overdue", "chief_physician")]
    everything = client.get("/api/alerts", headers=bearer(team.manager)).json()
    assert everything[0]["status"] == "overdue"  # most urgent first
    assert client.get("/api/alerts", params={"status": "late"}, headers=bearer(team.manager)).status_code == 422


@pytest.mark.parametrize(
    ("role", "allowed"),
    [
        ("admin", {"read_operations"}),
        ("chief_physician", {"read_alerts", "act_alerts", "act_followup", "read_operations"}),
        ("reviewing_physician", {"read_alerts", "act_alerts", "act_followup", "read_operations"}),
        ("health_manager", {"read_alerts", "act_alerts", "act_followup", "read_operations"}),
        ("auditor", {"read_alerts", "read_operations"}),
    ],
)
def test_every_alert_action_through_the_api(api: Client, role: str, allowed: set[str]) -> None:
    client, team, _ = api
    client.post("/api/records", json=example_record(visit_id="V-R1"), headers=bearer(team.manager))
    alert_id = client.get("/api/alerts", headers=bearer(team.manager)).json()[0]["id"]
    metabolic = example_record("male_56_metabolic", visit_id="V-R2")
    report_id = client.post("/api/records", json=metabolic, headers=bearer(team.manager)).json()["report_id"]
    assert client.post(f"/api/reports/{report_id}/sign", headers=bearer(team.chief)).status_code == 200
    task_id = client.get("/api/followup", headers=bearer(team.manager)).json()[0]["id"]
    headers = bearer(team.by_role(role))
    calls = {
        "read_alerts": lambda: client.get("/api/alerts", headers=headers),
        "act_alerts": lambda: client.post(
            f"/api/alerts/{alert_id}/notify",
            json={"channel": "phone", "note": "未接", "success": False},
            headers=headers,
        ),
        "act_followup": lambda: client.post(
            f"/api/followup/{task_id}/contact", json={"channel": "phone", "reached": False}, headers=headers
        ),
        "read_operations": lambda: client.get("/api/operations.csv", headers=headers),
    }
    assert set(calls) == {"read_alerts", "act_alerts", "act_followup", "read_operations"}
    for action, call in calls.items():
        response = call()
        expected = 200 if action in allowed else 403
        assert response.status_code == expected, (action, response.text)
        if expected == 403:
            assert response.json()["error"]["code"] == "forbidden"
    assert client.get("/api/alerts").status_code == 401


def test_operations_csv_export(api: Client) -> None:
    client, team, _ = api
    client.post("/api/records", json=example_record(visit_id="V-C1"), headers=bearer(team.manager))
    today = dt.datetime.now(dt.UTC).date()
    response = client.get(
        "/api/operations.csv",
        params={
            "date_from": (today - dt.timedelta(days=2)).isoformat(),
            "date_to": (today + dt.timedelta(days=2)).isoformat(),
        },
        headers=bearer(team.admin),
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    lines = response.text.lstrip("\ufeff").splitlines()
    assert lines[0].split(",")[:4] == ["day", "user", "drafted", "signed"]
    assert sum(int(line.split(",")[2]) for line in lines[1:]) == 1
    bad = client.get(
        "/api/operations.csv", params={"date_from": "2026-03-10", "date_to": "2026-03-01"}, headers=bearer(team.admin)
    )
    assert bad.status_code == 422 and "date_from" in bad.json()["error"]["message"]


# ------------------------------------------------------------------------------------------------ notifiers


class _Gateway(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012 - per-test list set by the fixture
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(
            {"body": json.loads(self.rfile.read(length)), "auth": self.headers.get("Authorization")}
        )
        self.send_response(type(self).status)
        self.end_headers()
        self.wfile.write(b'{"queued": true}')

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, type[_Gateway]]]:
    handler = type("Gateway", (_Gateway,), {"received": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sms", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list[Any]]]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received: list[Any] = []

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            received.append(message)

    import socket

    # aiosmtpd's readiness check connects to the configured port, so it needs the number: the OS assigns one first.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_smtp_notifier_delivers_to_a_local_server(smtp_server: tuple[int, list[Any]]) -> None:
    port, received = smtp_server
    notifier = SmtpNotifier("127.0.0.1", port, "center@example.org")
    delivery = notifier.send("desk@example.org", "体检结果提醒", "请尽快联系体检中心。体检号 V1")
    assert delivery.success, delivery.detail
    assert len(received) == 1
    assert received[0]["To"] == "desk@example.org"
    assert "V1" in received[0].get_payload(decode=True).decode("utf-8")
    refused = notifier.send("not-an-address", "x", "y")
    assert not refused.success and "not-an-address" in refused.detail


def test_smtp_notifier_reports_an_unreachable_server() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    delivery = SmtpNotifier("127.0.0.1", closed_port, "center@example.org").send("a@example.org", "s", "t")
    assert not delivery.success and "SMTP" in delivery.detail


def test_message_template_may_not_name_other_fields() -> None:
    assert render_message("{center}: {visit_id}", visit_id="V1", level="A", center="C") == "C: V1"
    with pytest.raises(NotifierError, match="name"):
        render_message("{name} 您好", visit_id="V1", level="A", center="C")
    with pytest.raises(NotifierError, match="http"):
        WebhookNotifier("ftp://gateway")


def test_sms_send_through_the_api_records_the_gateways_answer(
    sqlite_url: str, kb: KnowledgeBase, clock: MovableClock, gateway: tuple[str, type[_Gateway]]
) -> None:
    url, handler = gateway
    apps = _app(sqlite_url, kb, clock, sms_webhook_url=url, sms_webhook_token="gateway-token", center_name="示例中心")
    client, team, _ = next(apps)
    try:
        record = example_record("male_56_metabolic", visit_id="V-S1")
        record["items"].append({"name": "收缩压", "value": 170, "unit": "mmHg"})
        client.post("/api/records", json=example_record(visit_id="V-S2"), headers=bearer(team.manager))
        alerts = client.get("/api/alerts", headers=bearer(team.manager)).json()
        class_b = next(a for a in alerts if a["level"] == "B")
        class_a = next(a for a in alerts if a["level"] == "A")
        body = {"channel": "sms", "note": "短信提醒", "send": True, "to": "13800000000"}
        sent_b = client.post(f"/api/alerts/{class_b['id']}/notify", json=body, headers=bearer(team.manager)).json()
        sent_a = client.post(f"/api/alerts/{class_a['id']}/notify", json=body, headers=bearer(team.manager)).json()
        assert sent_b["status"] == "notified"  # an SMS counts for class B
        assert sent_a["status"] == "open"  # but not for class A: somebody must reach the person
        assert sent_a["attempts"][0]["result"].startswith("HTTP 200")
        assert [r["body"] for r in handler.received] == [
            {
                "to": "13800000000",
                "text": "【示例中心】您的体检结果（体检号 V-S2）需要尽快就诊或复查，请尽快与体检中心联系。",
            }
        ] * 2
        assert handler.received[0]["auth"] == "Bearer gateway-token"
        handler.status = 503
        failed = client.post(f"/api/alerts/{class_a['id']}/notify", json=body, headers=bearer(team.manager)).json()
        assert failed["failed_attempts"] == 1 and failed["attempts"][-1]["result"].startswith("HTTP 503")
        unconfigured = client.post(
            f"/api/alerts/{class_a['id']}/notify", json={**body, "channel": "email"}, headers=bearer(team.manager)
        )
        assert unconfigured.status_code == 422 and "email" in unconfigured.json()["error"]["message"]
    finally:
        next(apps, None)


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    from db_testing import copy_of

    return copy_of(sqlite_template, tmp_path)
