"""Security headers on every kind of response (pages, htmx fragments, API, errors, PDFs, static files), a
Content-Security-Policy without inline script that the pages really keep (no inline script, handler or style in any
rendered page; no violation reported by Chromium), and the API documentation pages allowed only their own inline
blocks by hash."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from web_helpers import bearer, example_record

from browser_testing import CHROMIUM, CHROMIUM_ARGS
from db_testing import PASSWORD, Team

Web = tuple[TestClient, Team]
TEMPLATES = Path(str(resources.files("zhujian.web"))) / "templates"


def _directives(policy: str) -> dict[str, list[str]]:
    parts = [p.strip().split() for p in policy.split(";") if p.strip()]
    return {p[0]: p[1:] for p in parts}


def _assert_protected(response: Any, *, cacheable: bool = False) -> None:
    headers = response.headers
    policy = _directives(headers["Content-Security-Policy"])
    assert policy["frame-ancestors"] == ["'none'"]
    script = policy.get("script-src", policy["default-src"])
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script
    assert "'unsafe-inline'" not in " ".join(policy.get("style-src", []))
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    if not cacheable:
        assert headers["Cache-Control"] == "no-store"


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match
    return match.group(1)


def _login(client: TestClient, username: str = "chief") -> str:
    token = _csrf(client.get("/login").text)
    client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    return _csrf(client.get("/").text)


def _report(client: TestClient, team: Team) -> int:
    stored = client.post("/api/records", json=example_record(visit_id="V-HEAD"), headers=bearer(team.chief))
    assert stored.status_code == 201
    return int(stored.json()["report_id"])


def test_pages_fragments_and_redirects_carry_the_headers(web: Web) -> None:
    client, team = web
    rid = _report(client, team)
    _assert_protected(client.get("/login"))
    anonymous = TestClient(client.app)
    _assert_protected(anonymous.get("/", follow_redirects=False))
    csrf = _login(client)
    _assert_protected(client.get("/"))
    _assert_protected(client.get(f"/reports/{rid}"))
    _assert_protected(client.get(f"/reports/{rid}/kb-search", params={"q": "贫血"}, headers={"HX-Request": "true"}))
    conflict = client.post(
        f"/reports/{rid}/delete",
        data={"expected_version": "9", "conclusion_id": "anemia"},
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
    )
    assert conflict.status_code == 409
    _assert_protected(conflict)
    _assert_protected(client.get("/reports/999999"))  # the HTML error page


def test_api_answers_and_errors_carry_the_headers(web: Web) -> None:
    client, team = web
    _report(client, team)
    _assert_protected(client.get("/api/health"))
    _assert_protected(client.get("/api/worklist", headers=bearer(team.chief)))
    _assert_protected(client.get("/api/worklist"))  # 401
    _assert_protected(client.get("/api/reports/999999", headers=bearer(team.chief)))  # 404
    _assert_protected(client.get("/api/worklist", params={"limit": "x"}, headers=bearer(team.chief)))  # 422
    _assert_protected(client.get("/openapi.json"))


def test_an_unhandled_error_answer_carries_the_headers(web: Web) -> None:
    client, _ = web

    def boom() -> None:
        raise RuntimeError("unexpected")

    client.app.add_api_route("/api/boom-for-test", boom)  # type: ignore[attr-defined]
    answer = TestClient(client.app, raise_server_exceptions=False).get("/api/boom-for-test")
    assert answer.status_code == 500
    _assert_protected(answer)


def test_pdfs_are_not_cached_and_not_framed(web: Web) -> None:
    client, team = web
    rid = _report(client, team)
    api_pdf = client.get(f"/api/reports/{rid}.pdf", headers=bearer(team.chief))
    assert api_pdf.status_code == 200 and api_pdf.content.startswith(b"%PDF")
    _assert_protected(api_pdf)
    _login(client)
    page_pdf = client.get(f"/reports/{rid}/report.pdf")
    assert page_pdf.headers["content-type"] == "application/pdf"
    _assert_protected(page_pdf)
    # The browser's PDF viewer embeds the document itself: the policy lets it, and nothing else.
    policy = _directives(page_pdf.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"] and policy["object-src"] == ["'self'"]


def test_static_files_carry_the_headers_and_may_be_cached(web: Web) -> None:
    client, _ = web
    for name in ("app.css", "htmx.min.js", "review.js", "worklist.js"):
        response = client.get(f"/static/{name}")
        assert response.status_code == 200
        _assert_protected(response, cacheable=True)
        assert response.headers.get("Cache-Control") != "no-store"


class _InlineFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> element")
        self.problems += [f"{tag} {name}=" for name in names if name.startswith("on") or name == "style"]
        self.problems += [f"{tag} {n}" for n, v in attrs if v and v.strip().lower().startswith("javascript:")]
        self.problems += [f"{tag} {n} js:" for n, v in attrs if n in ("hx-vals", "hx-vars") and v and "js:" in v]


def _inline_problems(html: str) -> list[str]:
    finder = _InlineFinder()
    finder.feed(html)
    return finder.problems


def test_no_rendered_page_has_inline_script_handlers_or_styles(web: Web) -> None:
    client, team = web
    rid = _report(client, team)
    pages = {"login": client.get("/login").text}
    _login(client, "chief")
    pages["worklist"] = client.get("/").text
    pages["review"] = client.get(f"/reports/{rid}").text
    pages["kb"] = client.get(f"/reports/{rid}/kb-search", params={"q": "血"}).text
    pages["error"] = client.get("/reports/999999").text
    client.cookies.clear()
    _login(client, "auditor")
    pages["audit"] = client.get(f"/reports/{rid}/audit").text
    assert "<script" in pages["review"] and "/static/review.js" in pages["review"]
    assert {name: _inline_problems(html) for name, html in pages.items()} == {name: [] for name in pages}


def test_no_template_has_inline_script_or_style() -> None:
    found = {path.name: _inline_problems(path.read_text(encoding="utf-8")) for path in TEMPLATES.glob("*.html")}
    assert found == {name: [] for name in found}


def _sha256_sources(blocks: list[str]) -> set[str]:
    return {"'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'" for b in blocks}


@pytest.mark.parametrize(("path", "tag", "directive"), [("/docs", "script", "script-src"), ("/redoc", "style", "style-src")])
def test_api_documentation_pages_allow_only_their_own_inline_blocks(web: Web, path: str, tag: str, directive: str) -> None:
    client, _ = web
    response = client.get(path)
    assert response.status_code == 200
    _assert_protected(response)
    policy = _directives(response.headers["Content-Security-Policy"])
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", response.text, re.DOTALL)
    assert blocks, f"FastAPI's {path} page has inline {tag} blocks"
    allowed_hashes = {source for source in policy[directive] if source.startswith("'sha256-")}
    assert allowed_hashes == _sha256_sources(blocks)
    assert int(response.headers["Content-Length"]) == len(response.content)


# ------------------------------------------------------------------------------------------------ in Chromium

def test_chromium_reports_no_policy_violation_and_the_page_scripts_run(
    demo_server: tuple[str, dict[str, Any]],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, accounts = demo_server
    violations: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="zh-CN")
            page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{base}/login")
            page.fill("input[name=username]", "chief")
            page.fill("input[name=password]", accounts["chief"].password or "")
            page.click("button[type=submit]")
            rows = page.locator("table.worklist tbody tr")
            expect(rows.first).to_have_class(re.compile("selected"))
            page.keyboard.press("j")  # worklist.js moves the selection
            expect(rows.nth(1)).to_have_class(re.compile("selected"))
            page.keyboard.press("Enter")
            expect(page.locator("#report-status")).to_be_visible()
            page.locator("li.conclusion").first.click()  # review.js marks the chosen conclusion
            expect(page.locator("li.conclusion").first).to_have_class(re.compile("selected"))
            page.locator("input[name=q]").fill("贫血")  # htmx search runs under the policy
            expect(page.locator("#kb-results")).to_contain_text("添加")
        finally:
            browser.close()
    assert violations == []
