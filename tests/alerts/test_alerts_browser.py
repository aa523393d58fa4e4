"""The alert, follow-up and operations pages in headless Chromium (Debian's /usr/bin/chromium driven by Playwright):
a health manager sees the class A alerts first with running countdowns, records a notification in the one form,
the app's clock moves past a deadline and the overdue alert is shown first and escalated to the chief physician;
a recheck task gets a contact; the operations page exports CSV. No page of this loop carries an inline script."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alerts_helpers import MovableClock

from browser_testing import CHROMIUM, CHROMIUM_ARGS, browser_missing, live_server
from db_testing import PASSWORD, Team, copy_of, load_case, make_team
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
from zhujian.storage.services import sign_report, submit_record
from zhujian.web.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from web_helpers import SECRET_KEY

SCREENSHOT = Path(__file__).resolve().parents[2] / "test-output" / "alerts_page.png"

if (missing := browser_missing()) is not None:
    pytest.skip(missing, allow_module_level=True)


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path, kb: KnowledgeBase) -> Iterator[tuple[str, Team, MovableClock]]:
    url = copy_of(sqlite_template, tmp_path)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    clock = MovableClock(dt.datetime.now(dt.UTC).replace(microsecond=0))
    app = create_app(Settings(database_url=url, secret_key=SECRET_KEY), kb=kb, session_factory=factory, clock=clock)
    with factory() as session:
        team = make_team(session)
    with session_scope(factory) as session:
        # Two class A records (the second one hour later) and a signed report with a recheck task.
        submit_record(session, load_case("05_critical_potassium"), kb=kb, actor=team.manager)
        clock.advance(hours=1)
        submit_record(session, load_case("06_critical_glucose"), kb=kb, actor=team.manager)
        ifg = load_case("10_impaired_fasting_glucose").model_copy(
            update={"person_id": "P-IFG", "exam_date": dt.date.today() - dt.timedelta(days=170)}
        )
        sign_report(session, submit_record(session, ifg, kb=kb, actor=team.manager).report_id, actor=team.chief)
    try:
        with live_server(app) as base:
            yield base, team, clock
    finally:
        engine.dispose()


def test_alert_worklist_notification_escalation_followup_and_operations(
    server: tuple[str, Team, MovableClock],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _team, clock = server
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900}, locale="zh-CN")

            def login(username: str) -> None:
                page.context.clear_cookies()
                page.goto(f"{base}/login?next=/alerts")
                page.fill("input[name=username]", username)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")

            login("manager")
            rows = page.locator("tr.alert-row")
            expect(rows.first).to_be_visible()
            expect(rows.first).to_contain_text("A类")
            expect(rows.first).to_contain_text("血钾")  # the earlier deadline first
            # The countdown is written by /static/alerts.js (the server renders minutes only).
            expect(rows.first.locator(".countdown")).to_contain_text("剩余 ")
            assert page.locator("script:not([src])").count() == 0
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT))

            first = rows.first
            first.locator("details.notify summary").click()
            first.locator("select[name=channel]").select_option("phone")
            first.locator("input[name=reached]").fill("本人")
            first.locator("textarea[name=note]").fill("已电话通知立即就诊")
            first.locator("form.notify-form button[type=submit]").click()
            notified = page.locator("tr.alert-row", has_text="血钾")
            expect(notified.locator(".status")).to_have_text("已通知")
            expect(notified).to_contain_text("钱健管")

            # Past the second alert's deadline (opened one hour after the first, due two hours after that).
            clock.advance(hours=2, minutes=1)
            page.goto(f"{base}/alerts")
            expect(page.locator("tr.alert-row").first.locator(".status")).to_have_text("已超时")
            expect(page.locator("tr.alert-row").first.locator(".countdown")).to_contain_text("已超时")
            expect(page.locator("#escalation")).to_have_count(0)  # the manager is not the escalation role

            login("chief")
            expect(page.locator("#escalation")).to_contain_text("已超时未通知的提醒 1 条")
            expect(page.locator("tr.alert-row").first).to_contain_text("已升级")

            page.goto(f"{base}/followup")
            task = page.locator("tr.task-row").first
            expect(task).to_contain_text("空腹血糖受损")
            expect(task.locator(".status")).to_have_text("待联系")  # due in 10 days: inside the 14-day lead time
            task.locator("details.contact summary").click()
            task.locator("input[name=reached][value=no]").check()
            task.locator("form.contact-form button[type=submit]").click()
            expect(page.locator("tr.task-row").first.locator("td").nth(7)).to_have_text("1")

            page.goto(f"{base}/operations")
            expect(page.locator("table.operations")).to_contain_text("李主检")
            assert page.locator("script:not([src])").count() == 0
            csv_response = page.request.get(f"{base}/operations.csv")
            assert csv_response.ok
            assert csv_response.text().lstrip("\ufeff").startswith("day,user,drafted,signed")
        finally:
            browser.close()
