"""No identifier in any log line: `zhujian serve --demo` runs as a real process and gets searches by ID number,
phone, name, e-mail, person and visit id, identifiers in paths, records with identifying ids and logins with wrong
user names; then its whole output (access log, application log, uvicorn log) is scanned. Also: a second
`serve --demo` in the same folder prints working passwords again."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import pytest
from web_helpers import example_record

from zhujian.web.logging import MASK, AccessLogFilter, RedactingFilter, safe_path

ID_NUMBER = "110101199003071234"
MOBILE = "13812345678"
OTHER_MOBILE = "13912345678"
NAME = "张三丰"
OTHER_NAME = "王小明"
EMAIL = "zhang.sanfeng@example.com"
PERSON_ID = "P-DEMO-001"
VISIT_ID = "DEMO-0001"
IDENTIFIERS = (ID_NUMBER, MOBILE, OTHER_MOBILE, NAME, OTHER_NAME, EMAIL, PERSON_ID, VISIT_ID, "zhang.sanfeng")


class _Server:
    """`zhujian serve --demo --port 0` in a folder of its own, its output collected line by line."""

    def __init__(self, folder: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ZHUJIAN_")}
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "zhujian", "serve", "--demo", "--port", "0"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lines: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(stream,), daemon=True)
            for stream in (self.process.stdout, self.process.stderr)
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if found := re.search(pattern, line):
                    return found
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r}; output:\n" + "\n".join(self.lines))

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        return "\n".join(self.lines)


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _page_login(client: httpx.Client, username: str, password: str) -> httpx.Response:
    token = _csrf(client.get("/login").text)
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def _exercise(base: str, passwords: dict[str, str]) -> None:
    searches = (ID_NUMBER, MOBILE, NAME, EMAIL, PERSON_ID, VISIT_ID)
    with httpx.Client(base_url=base, timeout=60) as api:
        for username in (ID_NUMBER, OTHER_NAME, EMAIL):
            wrong = api.post("/api/auth/token", json={"username": username, "password": "not-the-password"})
            assert wrong.status_code == 401
        token = api.post("/api/auth/token", json={"username": "chief", "password": passwords["chief"]})
        assert token.status_code == 200, token.text
        headers = {"Authorization": "Bearer " + token.json()["access_token"]}
        record = example_record(visit_id=f"V{OTHER_MOBILE}")
        record["person_id"] = ID_NUMBER
        assert api.post("/api/records", json=record, headers=headers).status_code == 201
        broken = {**record, "sex": NAME}
        assert api.post("/api/records", json=broken, headers=headers).status_code == 422
        for term in searches:
            assert api.get("/api/worklist", params={"search": term}, headers=headers).status_code == 200
        assert api.get(f"/api/reports/{ID_NUMBER}", headers=headers).status_code in (404, 422)
        assert api.get(f"/api/reports/{quote(NAME)}", headers=headers).status_code == 422
    with httpx.Client(base_url=base, timeout=60, follow_redirects=True) as browser:
        for username in (MOBILE, NAME):
            assert _page_login(browser, username, "not-the-password").status_code == 401
        assert _page_login(browser, "chief", passwords["chief"]).status_code == 200
        for term in searches:
            assert browser.get("/", params={"search": term}).status_code == 200
        assert browser.get(f"/reports/{quote(NAME)}").status_code == 422
        assert browser.get("/login", params={"next": f"/?search={ID_NUMBER}"}).status_code == 200


def test_serve_logs_no_identifier(tmp_path: Path) -> None:
    server = _Server(tmp_path)
    try:
        port = int(server.wait_for(r"Uvicorn running on http://127\.0\.0\.1:(\d+)").group(1))
        output = "\n".join(server.lines)
        passwords = dict(re.findall(r"^\s+(chief|reviewer)\s+\S+\s+(\S{12,})$", output, re.MULTILINE))
        assert set(passwords) == {"chief", "reviewer"}, output
        _exercise(f"http://127.0.0.1:{port}", passwords)
        server.wait_for(r'"GET /login HTTP/1\.1" 200')
    finally:
        output = server.stop()
    # The log was captured (access and application lines), then nothing identifying is in it.
    assert '"GET /api/worklist HTTP/1.1" 200' in output
    assert '"GET /api/reports/[masked] HTTP/1.1" 422' in output and '"GET /reports/[masked] HTTP/1.1" 422' in output
    assert "failed page login for an unknown user name" in output and "failed API login for an unknown user name" in output
    assert "user chief logged in" in output
    leaked = {i for i in IDENTIFIERS if i in output or quote(i) in output or quote(i, safe="") in output}
    assert leaked == set(), [line for line in output.splitlines() if any(i in line for i in leaked)]


def test_access_filter_drops_query_strings_and_masks_odd_path_segments() -> None:
    assert safe_path(f"/api/worklist?search={ID_NUMBER}") == "/api/worklist"
    assert safe_path("/reports/12/report.pdf?download=1") == "/reports/12/report.pdf"
    assert safe_path("/api/reports/42.pdf") == "/api/reports/42.pdf"
    assert safe_path(f"/api/reports/{ID_NUMBER}") == f"/api/reports/{MASK}"
    assert safe_path(f"/reports/{quote(NAME)}/audit") == f"/reports/{MASK}/audit"
    assert safe_path(f"/x/{PERSON_ID}") == f"/x/{MASK}"
    record = _record("uvicorn.access", '%s - "%s %s HTTP/%s" %d', ("1.2.3.4:5", "GET", f"/?search={MOBILE}", "1.1", 200))
    assert AccessLogFilter().filter(record)
    assert record.getMessage() == '1.2.3.4:5 - "GET / HTTP/1.1" 200'


@pytest.mark.parametrize(
    ("message", "hidden"),
    [
        (f"lookup failed for {ID_NUMBER}", ID_NUMBER),
        (f"callback to {MOBILE} refused", MOBILE),
        (f"mail to {EMAIL} bounced", EMAIL),
        (f"患者姓名：{NAME}，男", NAME),
        ("card 6222021234567890123 rejected", "6222021234567890123"),
    ],
)
def test_application_log_lines_are_masked(message: str, hidden: str) -> None:
    record = _record("zhujian.web", "%s", (message,))
    assert RedactingFilter().filter(record)
    assert hidden not in record.getMessage() and MASK in record.getMessage()


def test_ordinary_log_lines_are_left_alone() -> None:
    record = _record("zhujian.web.api", "report %s edited by %s (version %s)", (12, "chief", 3))
    RedactingFilter().filter(record)
    assert record.getMessage() == "report 12 edited by chief (version 3)"


def _record(name: str, msg: str, args: tuple[Any, ...]) -> Any:
    import logging

    return logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)


# ------------------------------------------------------------------------------------------------ serve --demo twice


def test_second_demo_start_in_the_same_folder_prints_new_working_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from zhujian.web.cli import serve_command

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    monkeypatch.chdir(tmp_path)
    for name in ("ZHUJIAN_DATABASE_URL", "ZHUJIAN_ADMIN_PASSWORD", "ZHUJIAN_SECRET_KEY", "ZHUJIAN_ENV"):
        monkeypatch.delenv(name, raising=False)
    outputs = []
    for _ in range(2):
        serve_command(host="127.0.0.1", port=8765, demo=True)
        outputs.append(capsys.readouterr().out)
    passwords = [re.search(r"chief\s+主检医生\s+(\S{12,})", out) for out in outputs]
    assert all(passwords), outputs
    assert passwords[0] and passwords[1] and passwords[0].group(1) != passwords[1].group(1)
    assert (tmp_path / "zhujian-demo.db").exists()
    assert not (tmp_path / "zhujian.db").exists(), "the demo never touches the real database file"


def test_demo_on_a_configured_database_with_users_says_how_to_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    from zhujian.web.cli import serve_command

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: None)
    monkeypatch.setenv("ZHUJIAN_DATABASE_URL", f"sqlite:///{tmp_path / 'mine.db'}")
    for name in ("ZHUJIAN_ADMIN_PASSWORD", "ZHUJIAN_SECRET_KEY", "ZHUJIAN_ENV"):
        monkeypatch.delenv(name, raising=False)
    serve_command(host="127.0.0.1", port=8765, demo=True)
    assert re.search(r"chief\s+主检医生\s+\S{12,}", capsys.readouterr().out)
    serve_command(host="127.0.0.1", port=8765, demo=True)
    second = capsys.readouterr().out
    assert "已有用户" in second
    assert "不设置 ZHUJIAN_DATABASE_URL" in second and "zhujian-demo.db" in second and "mine.db" in second
