"""The workbench's working comforts in headless Chromium: signing asks first (cancel and Esc sign nothing), the action
bar stays in the window however far the page is scrolled, roles and statuses read in Chinese, times in the center's
time zone, a fragment from the middle of an id finds it, no button wraps its label at 1280 px or 1024 px, the
favicon, the audit page in the navigation, and each role's worklist opening on its own queue."""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select
from web_helpers import SECRET_KEY

from browser_testing import CHROMIUM, CHROMIUM_ARGS, browser_missing, live_server
from db_testing import FAST_HASHER
from zhujian.domain.record import Record
from zhujian.examples import load_example
from zhujian.kb.loader import KnowledgeBase
from zhujian.settings import Settings
from zhujian.storage import services
from zhujian.storage.db import create_db_engine, create_session_factory, session_scope
from zhujian.storage.models import User
from zhujian.storage.values import Actor
from zhujian.web.app import create_app
from zhujian.web.demo import DemoAccount, set_up_demo

if (missing := browser_missing()) is not None:
    pytest.skip(missing, allow_module_level=True)

# The alert loop's clock: alerts opened by the demo records carry this time, 04:30 the next day in Shanghai (UTC+8).
OPENED_AT = dt.datetime(2026, 3, 1, 20, 30, tzinfo=dt.UTC)
OPENED_AT_SHANGHAI = "2026-03-02 04:30"
EXTRA_VISIT = "TJ-20260301-0417"
ENGLISH_WORDS = re.compile(
    r"\b(draft|edited|signed|reviewed|published|rejected|chief_physician|reviewing_physician|health_manager)\b"
)


@dataclass
class Workbench:
    base: str
    accounts: dict[str, DemoAccount]
    factory: Any


@pytest.fixture
def workbench(sqlite_url: str, kb: KnowledgeBase) -> Iterator[Workbench]:
    """The demo data (six records and the demo accounts) plus one record with a long visit id, behind uvicorn; the
    app is made first so that the alerts the records open read its fixed clock."""
    engine = create_db_engine(sqlite_url)
    factory = create_session_factory(engine)
    settings = Settings(database_url=sqlite_url, secret_key=SECRET_KEY)
    app = create_app(settings, kb=kb, session_factory=factory, clock=lambda: OPENED_AT)
    with session_scope(factory) as session:
        accounts = set_up_demo(session, Settings(database_url=sqlite_url), kb, record_count=6, hasher=FAST_HASHER)
    with session_scope(factory) as session:
        data = copy.deepcopy(load_example("male_56_metabolic"))
        data["visit_id"] = EXTRA_VISIT
        data["person_id"] = "P-EXTRA-1"
        chief_actor = _actor(session, "chief")
        services.submit_record(session, Record.model_validate(data), kb=kb, actor=chief_actor)
    try:
        with live_server(app) as base:
            yield Workbench(base, {a.username: a for a in accounts}, factory)
    finally:
        engine.dispose()


def _actor(session: Any, username: str) -> Actor:
    user = session.scalar(select(User).where(User.username == username))
    return Actor(user.id, user.username, user.role, user.display_name)


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _page(browser: Any, workbench: Workbench, username: str, width: int = 1280, height: int = 800) -> Any:
    page = browser.new_page(viewport={"width": width, "height": height}, locale="zh-CN")
    page.goto(f"{workbench.base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", workbench.accounts[username].password or "")
    page.click("button[type=submit]")
    page.wait_for_selector("header .who")
    return page


def _first_report(page: Any) -> None:
    page.locator("table.worklist tbody tr a.open").first.click()
    page.wait_for_selector("#action-bar")


# ------------------------------------------------------------------------------------------------ signing


def test_sign_asks_for_confirmation_and_cancel_signs_nothing(browser: Any, workbench: Workbench) -> None:
    from playwright.sync_api import expect

    page = _page(browser, workbench, "chief")
    _first_report(page)
    dialog = page.locator("#sign-dialog")
    expect(page.locator("#report-status")).to_have_text("草稿")

    page.keyboard.press("s")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("确认主检签署")
    page.keyboard.press("j")  # shortcuts are off while the dialog is open: still on this report
    page.click("#cancel-sign")
    expect(dialog).to_be_hidden()
    page.click("#sign-button")
    expect(dialog).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    page.reload()
    expect(page.locator("#report-status")).to_have_text("草稿")  # nothing was posted

    page.keyboard.press("s")
    page.click("#confirm-sign")
    expect(page.locator("#report-status")).to_have_text("已签署")


def test_sign_and_open_the_next_report(browser: Any, workbench: Workbench) -> None:
    from playwright.sync_api import expect

    page = _page(browser, workbench, "chief")
    rows = page.locator("table.worklist tbody tr a.open")
    first, second = rows.nth(0).inner_text(), rows.nth(1).inner_text()
    _first_report(page)
    page.click("#sign-button")
    page.click("#confirm-sign-next")
    expect(page.locator("h1")).to_have_text(f"体检号 {second}")
    expect(page.locator("#report-status")).to_have_text("草稿")
    page.goto(f"{workbench.base}/?search={first}")
    expect(page.locator("table.worklist tbody tr").first).to_contain_text("已签署")


def _box(page: Any, selector: str) -> dict[str, float]:
    box: dict[str, float] = page.locator(selector).bounding_box()
    return box


def test_the_action_bar_stays_in_the_window(browser: Any, workbench: Workbench) -> None:
    page = _page(browser, workbench, "chief")
    _first_report(page)
    viewport_height = 800
    assert page.evaluate("document.documentElement.scrollHeight") > 2 * viewport_height  # a long page
    for where in ("0", "document.documentElement.scrollHeight / 2", "document.documentElement.scrollHeight"):
        page.evaluate(f"window.scrollTo(0, {where})")
        bar, sign = _box(page, "#action-bar"), _box(page, "#sign-button")
        assert bar["y"] >= 0 and bar["y"] + bar["height"] <= viewport_height + 0.5, where
        # Nothing covers the sign button: the element at its centre is the button itself.
        hit = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y)?.id", [sign["x"] + sign["width"] / 2, sign["y"] + 5]
        )
        assert hit == "sign-button", where
        assert page.locator("#next-report").is_visible()
    # At the very bottom the end of the panel is above the bar, not hidden behind it.
    panel = _box(page, "#workspace")
    assert panel["y"] + panel["height"] <= _box(page, "#action-bar")["y"] + 0.5


# ------------------------------------------------------------------------------------------------ words and times


def test_roles_and_statuses_read_in_chinese(browser: Any, workbench: Workbench) -> None:
    from playwright.sync_api import expect

    page = _page(browser, workbench, "chief")
    expect(page.locator("header .who")).to_contain_text("（主检医生）")
    _first_report(page)
    page.locator("li.conclusion").first.locator("details.edit summary").click()
    page.locator("li.conclusion").first.locator("textarea[name=advice]").fill("一个月后复查")
    page.locator("li.conclusion").first.locator("button[type=submit]").click()
    page.wait_for_selector("#report-status:has-text('已修改')")
    report_url = page.url
    assert not ENGLISH_WORDS.search(page.inner_text("body"))
    page.close()

    page = _page(browser, workbench, "auditor")
    expect(page.locator("header .who")).to_contain_text("（审计员）")
    page.goto(f"{report_url}/audit")
    expect(page.locator("table.audit")).to_contain_text("状态：草稿 → 已修改")
    assert not ENGLISH_WORDS.search(page.inner_text("body"))


def test_times_are_shown_in_the_center_time_zone(browser: Any, workbench: Workbench) -> None:
    from playwright.sync_api import expect

    page = _page(browser, workbench, "chief")
    page.goto(f"{workbench.base}/alerts")
    first = page.locator("table.alerts tbody tr").first
    expect(first.locator("td").nth(5)).to_have_text(OPENED_AT_SHANGHAI)  # 发现时间, opened 20:30 UTC
    page.close()

    page = _page(browser, workbench, "auditor")
    page.goto(f"{workbench.base}/audit")
    expect(page.locator("table.audit thead")).to_contain_text("时间（Asia/Shanghai）")
    newest_seq = int(page.locator("table.audit tbody tr").first.locator("td").first.inner_text())
    shown = page.locator("table.audit tbody tr").first.locator("td.time").inner_text()
    with session_scope(workbench.factory) as session:
        entries = services.report_audit(session, int(_report_of(page)), actor=_actor(session, "auditor"))
    occurred = next(e.occurred_at for e in entries if e.seq == newest_seq)
    assert shown == (occurred.astimezone(dt.UTC) + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M:%S")


def _report_of(page: Any) -> str:
    href: str = page.locator("table.audit tbody tr").first.locator("a").get_attribute("href")
    match = re.fullmatch(r"/reports/(\d+)/audit", href)
    assert match, href
    return match.group(1)


# ------------------------------------------------------------------------------------------------ search, layout


def test_a_middle_fragment_of_an_id_finds_the_report(browser: Any, workbench: Workbench) -> None:
    from playwright.sync_api import expect

    page = _page(browser, workbench, "chief")
    page.fill("input[name=search]", "0301-04")
    page.click("form.search button")
    rows = page.locator("table.worklist tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator("a.open")).to_have_text(EXTRA_VISIT)


_WRAPPED_BUTTONS = """() => Array.from(document.querySelectorAll("button, .chip")).filter((el) => {
  const style = getComputedStyle(el);
  if (el.offsetParent === null || style.visibility === "hidden") return false;
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set(Array.from(range.getClientRects()).map((r) => Math.round(r.top)));
  return tops.size > 1;
}).map((el) => el.textContent.trim())"""


@pytest.mark.parametrize("width", [1280, 1024])
def test_no_button_wraps_its_label(browser: Any, workbench: Workbench, width: int) -> None:
    chief = _page(browser, workbench, "chief", width=width)
    assert chief.evaluate(_WRAPPED_BUTTONS) == []  # worklist: 搜索, the queue chips, 退出
    search = _box(chief, "form.search button")
    assert search["width"] > search["height"]  # "搜索" on one line is wider than tall
    _first_report(chief)
    assert chief.evaluate(_WRAPPED_BUTTONS) == []  # review page: move, delete, merge, narrate, sign
    chief.click("#sign-button")
    chief.click("#confirm-sign")
    chief.wait_for_selector("#report-status:has-text('已签署')")

    reviewer = _page(browser, workbench, "reviewer", width=width)
    _first_report(reviewer)
    assert reviewer.locator("button:has-text('退回')").is_visible()
    assert reviewer.evaluate(_WRAPPED_BUTTONS) == []  # 审核通过, 退回 in the action bar
    reject = _box(reviewer, "button:has-text('退回')")
    assert reject["width"] > reject["height"]


# ------------------------------------------------------------------------------------------------ icon, nav, queues


def test_favicon_is_linked_and_served(browser: Any, workbench: Workbench) -> None:
    page = _page(browser, workbench, "chief")
    href = page.locator("link[rel=icon]").get_attribute("href")
    icon = page.request.get(f"{workbench.base}{href}")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    legacy = page.request.get(f"{workbench.base}/favicon.ico")
    assert legacy.status == 200 and legacy.url.endswith(href)


def test_audit_page_is_in_the_navigation(browser: Any, workbench: Workbench) -> None:
    from playwright.sync_api import expect

    page = _page(browser, workbench, "auditor")
    page.click("header nav a:has-text('审计记录')")
    expect(page).to_have_url(f"{workbench.base}/audit")
    expect(page.locator("table.audit tbody tr").first).to_contain_text("接收体检数据并生成草稿")
    page.close()
    chief = _page(browser, workbench, "chief")
    expect(chief.locator("header nav a:has-text('审计记录')")).to_have_count(0)


def test_each_role_opens_on_its_own_queue(browser: Any, workbench: Workbench) -> None:
    from playwright.sync_api import expect

    chief = _page(browser, workbench, "chief")
    expect(chief.locator("#my-queue")).to_have_class(re.compile(r"\bactive\b"))
    expect(chief.locator("#my-queue")).to_contain_text("待主检 7")
    _first_report(chief)
    chief.click("#sign-button")
    chief.click("#confirm-sign")
    expect(chief.locator("#report-status")).to_have_text("已签署")
    signed_visit = chief.locator("h1").inner_text().removeprefix("体检号 ")
    chief.goto(workbench.base + "/")
    expect(chief.locator("#my-queue")).to_contain_text("待主检 6")
    statuses = chief.locator("table.worklist tbody td span.status").all_inner_texts()
    assert len(statuses) == 6 and set(statuses) <= {"草稿", "已修改", "已退回"}

    reviewer = _page(browser, workbench, "reviewer")
    expect(reviewer.locator("#my-queue")).to_have_class(re.compile(r"\bactive\b"))
    expect(reviewer.locator("#my-queue")).to_contain_text("待审核 1")
    expect(reviewer.locator("table.worklist tbody tr")).to_have_count(1)
    expect(reviewer.locator("table.worklist tbody a.open")).to_have_text(signed_visit)
    reviewer.click("#all-reports")
    expect(reviewer.locator("table.worklist tbody tr")).to_have_count(7)
