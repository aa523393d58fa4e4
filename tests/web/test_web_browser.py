"""The workbench in headless Chromium (Debian's /usr/bin/chromium driven by Playwright): log in, open the top report
of the worklist, edit a conclusion's advice through htmx, sign (confirmed), and find the edit on the audit page."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from browser_testing import CHROMIUM, CHROMIUM_ARGS, browser_missing
from zhujian.web.demo import DemoAccount

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-output" / "review_page.png"

if (missing := browser_missing()) is not None:
    pytest.skip(missing, allow_module_level=True)


def test_edit_sign_and_audit_in_the_browser(demo_server: tuple[str, dict[str, DemoAccount]]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, accounts = demo_server
    advice = "浏览器测试：两周内复查血钾并就诊"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")

            def login(username: str) -> None:
                page.goto(f"{base}/login")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", accounts[username].password or "")
                page.click("button[type=submit]")

            login("chief")
            expect(page.locator("table.worklist")).to_be_visible()
            first_row = page.locator("table.worklist tbody tr").first
            expect(first_row).to_contain_text("危急值")
            first_row.locator("a.open").click()
            expect(page.locator("#report-status")).to_have_text("草稿")

            conclusion = page.locator("li.conclusion").first
            conclusion.locator("details.edit summary").click()
            conclusion.locator("textarea[name=advice]").fill(advice)
            conclusion.locator("button[type=submit]").click()
            expect(page.locator("li.conclusion").first.locator(".advice")).to_have_text(advice)
            expect(page.locator("#report-status")).to_have_text("已修改")
            expect(page.locator("mark").first).to_be_visible()
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=False)

            page.keyboard.press("s")  # the sign shortcut opens the confirmation
            expect(page.locator("#sign-dialog")).to_be_visible()
            page.click("#confirm-sign")
            expect(page.locator("#report-status")).to_have_text("已签署")
            report_url = page.url

            page.click("button:has-text('退出')")
            login("auditor")
            page.goto(f"{report_url}/audit")
            expect(page.locator("table.audit")).to_contain_text("修改结论")
            expect(page.locator("table.audit")).to_contain_text(advice)
            expect(page.locator("table.audit")).to_contain_text("主检签署")
        finally:
            browser.close()
    assert shutil.which(CHROMIUM) is not None
