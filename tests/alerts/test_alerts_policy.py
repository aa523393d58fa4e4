"""The policy's pure parts: due times in the center's time zone and follow-up windows read from the KB's texts."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from zhujian.alerts.policy import (
    MonthRange,
    PolicyError,
    default_alerts_file,
    default_policy,
    followup_month_range,
    followup_window,
    load_alerts_file,
)
from zhujian.kb.loader import KnowledgeBase

UTC = dt.UTC


def test_class_a_is_due_two_hours_after_the_result() -> None:
    # The consensus handling as reproduced in CLINICAL.md §6.1: notify the examinee within 2 h.
    policy = default_policy()
    opened = dt.datetime(2026, 3, 18, 1, 0, tzinfo=UTC)
    assert policy.due_at("A", opened) == dt.datetime(2026, 3, 18, 3, 0, tzinfo=UTC)
    rule = policy.rule("A")
    assert rule.policy == "guideline" and "2 h" in rule.source


def test_class_b_days_end_with_the_centers_local_day_not_the_utc_day() -> None:
    # 15:30 UTC on 18 March is 23:30 in Shanghai: still the 18th locally. Seven days later ends at Shanghai midnight
    # of the 26th = 16:00 UTC on the 25th. Counted in UTC the result would belong to the 18th as well, but its end of
    # day would be 00:00 UTC on the 26th, eight hours later.
    opened = dt.datetime(2026, 3, 18, 15, 30, tzinfo=UTC)
    shanghai = default_policy("Asia/Shanghai")
    assert shanghai.due_at("B", opened) == dt.datetime(2026, 3, 25, 16, 0, tzinfo=UTC)
    utc = default_policy("UTC")
    assert utc.due_at("B", opened) == dt.datetime(2026, 3, 26, 0, 0, tzinfo=UTC)
    # 16:30 UTC is already the 19th in Shanghai (00:30): its deadline moves a whole day.
    later = dt.datetime(2026, 3, 18, 16, 30, tzinfo=UTC)
    assert shanghai.due_at("B", later) == dt.datetime(2026, 3, 26, 16, 0, tzinfo=UTC)
    assert shanghai.rule("B").policy == "center"


def test_center_overrides_win_over_the_kb_defaults() -> None:
    policy = dataclasses.replace(default_policy(), a_within_hours=1.0, b_within_days=0)
    opened = dt.datetime(2026, 3, 18, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
    assert policy.due_at("A", opened) == dt.datetime(2026, 3, 18, 2, 0, tzinfo=UTC)
    # Same working day: the end of 18 March in Shanghai.
    assert policy.due_at("B", opened) == dt.datetime(2026, 3, 18, 16, 0, tzinfo=UTC)
    assert not dataclasses.replace(policy, alert_class_b=False).opens_alert("B")
    assert policy.opens_alert("A")


def test_a_daylight_saving_zone_keeps_local_midnight() -> None:
    # Europe/Berlin switches to summer time on 29 March 2026: the local day ends at 22:00 UTC, not 23:00.
    policy = default_policy("Europe/Berlin")
    opened = dt.datetime(2026, 3, 27, 12, 0, tzinfo=UTC)
    due = dataclasses.replace(policy, b_within_days=2).due_at("B", opened)
    assert due == dt.datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert due.astimezone(ZoneInfo("Europe/Berlin")).hour == 0


@pytest.mark.parametrize(
    ("text", "start", "due"),
    [
        ("1-3个月复查血脂", dt.date(2026, 3, 18), dt.date(2026, 6, 18)),  # upper end of the range
        ("2周内就诊", dt.date(2026, 3, 18), dt.date(2026, 4, 1)),
        ("每年眼科复查", dt.date(2026, 3, 18), dt.date(2027, 3, 18)),
        ("12个月复查低剂量胸部CT", dt.date(2026, 3, 18), dt.date(2027, 3, 18)),  # a year, not 360 days
        ("2周至1个月内乳腺外科就诊，评估穿刺活检", dt.date(2026, 3, 18), dt.date(2026, 4, 18)),
        ("3-6个月随访体重，每年体检复查", dt.date(2026, 3, 18), dt.date(2026, 9, 18)),  # the first window
        ("1个月内复查血常规", dt.date(2026, 1, 31), dt.date(2026, 2, 28)),  # no 31 February
        ("6–12个月复查肝脏超声", dt.date(2026, 3, 18), dt.date(2027, 3, 18)),  # en dash
    ],
)
def test_followup_windows_from_kb_texts(text: str, start: dt.date, due: dt.date) -> None:
    window = followup_window(text, default_alerts_file().followup)
    assert window is not None and window.due_date(start) == due


@pytest.mark.parametrize(
    "text",
    [
        "立即就诊",
        "有症状时就诊",
        "无需特殊随访",
        "定期复查心电图",
        "遵医嘱定期随访，每3个月复查糖化血红蛋白",
        "建议40岁起（或比亲属发病年龄早10年）行结肠镜检查",
        "",
        None,
    ],
)
def test_texts_without_a_datable_recheck_open_no_task(text: str | None) -> None:
    assert followup_window(text, default_alerts_file().followup) is None


def test_every_kb_follow_up_text_is_read_without_error(kb: KnowledgeBase) -> None:
    rules = default_alerts_file().followup
    windows = [followup_window(c.follow_up, rules) for c in kb.conclusions.values()]
    dated = [w for w in windows if w is not None]
    # Most conclusions carry a dated recheck; none gives a window beyond the KB's longest (2 years, 骨密度).
    assert len(dated) > len(windows) // 2
    assert all(w.due_date(dt.date(2026, 1, 1)) <= dt.date(2028, 1, 1) for w in dated)


def test_schema_names_the_bad_field() -> None:
    import yaml

    good = default_alerts_file().model_dump(mode="json")
    good["notification"][0]["within_days"] = 1  # both a deadline in hours and one in days
    with pytest.raises(PolicyError, match=r"notification\.0"):
        load_alerts_file(yaml.safe_dump(good, allow_unicode=True))
    typo = {**default_alerts_file().model_dump(mode="json"), "unreachable_after_attemps": 3}
    with pytest.raises(PolicyError, match="unreachable_after_attemps"):
        load_alerts_file(yaml.safe_dump(typo, allow_unicode=True))


def test_an_unknown_center_time_zone_is_refused_with_its_name() -> None:
    from pydantic import ValidationError

    from zhujian.settings import load_settings

    with pytest.raises(ValidationError, match="ZHUJIAN_CENTER_TIMEZONE 'Mars/Olympus'"):
        load_settings(center_timezone="Mars/Olympus")
    assert load_settings(center_timezone="UTC").center_timezone == "UTC"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3-6个月复查血脂", MonthRange(3, 6, False)),
        ("1个月内就诊", MonthRange(1, None, True)),
        ("1-2年复查", MonthRange(12, 24, False)),
        ("每3个月复查糖化血红蛋白", None),  # a repeating schedule names no date
        ("2周内复查", None),  # weeks are not months
        ("立即就诊", None),
        ("6-3个月", None),  # a backwards range
    ],
)
def test_month_ranges_of_follow_up_texts(text: str, expected: MonthRange | None) -> None:
    assert followup_month_range(text, default_alerts_file().followup) == expected
