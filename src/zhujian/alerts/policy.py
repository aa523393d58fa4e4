"""The center's alert and follow-up policy: KB defaults (`kb/data/alerts.yaml`, validated here) with the center's
overrides from the settings, plus the two pure computations everything else relies on: an alert's due time and a
conclusion's recheck window.

Times: alerts are stored in UTC; "same working day" and "within N days" are counted in the center's time zone
(`ZHUJIAN_CENTER_TIMEZONE`), so a result stored at 23:30 in Shanghai (15:30 UTC) is due at the end of the Shanghai
day N days later, not of the UTC day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from functools import lru_cache
from importlib import resources
from typing import Literal
from zoneinfo import ZoneInfo

import yaml
from pydantic import Field, ValidationError, model_validator

from zhujian.kb.schema import StrictModel

AlertLevel = Literal["A", "B"]


class NotificationRule(StrictModel):
    level: AlertLevel
    within_hours: float | None = Field(default=None, gt=0)
    within_days: int | None = Field(default=None, ge=0)
    notified_by: tuple[str, ...] = Field(min_length=1)
    escalate_to: str
    source: str = Field(min_length=1)
    policy: Literal["guideline", "center"]

    @model_validator(mode="after")
    def _one_deadline(self) -> NotificationRule:
        if (self.within_hours is None) == (self.within_days is None):
            raise ValueError("give exactly one of within_hours and within_days")
        return self


class LabelledChoice(StrictModel):
    id: str = Field(pattern=r"^[a-z_]+$")
    label: str


class FollowUpOutcome(LabelledChoice):
    held: bool | None


class KeywordWindow(StrictModel):
    word: str = Field(min_length=1)
    months: int = Field(gt=0)


class UrgentWord(StrictModel):
    word: str = Field(min_length=1)
    days: int = Field(ge=0)


class FollowUpRules(StrictModel):
    # Calendar units: days per day-unit, months per month-unit ("12个月" is a year, not 360 days).
    day_units: dict[str, int]
    month_units: dict[str, int]
    keywords: tuple[KeywordWindow, ...] = ()
    no_task_words: tuple[str, ...] = ()
    # Words that ask for action sooner than any recheck window (立即, 急诊…): used to rank follow-ups by urgency.
    urgent_words: tuple[UrgentWord, ...] = ()
    categories: tuple[Literal["disease", "finding", "risk_factor"], ...]
    contact_lead_days: int = Field(ge=0)
    source: str = Field(min_length=1)


class AlertsFile(StrictModel):
    notification: tuple[NotificationRule, ...]
    unreachable_after_attempts: int = Field(ge=1)
    close_outcomes: tuple[LabelledChoice, ...]
    followup: FollowUpRules
    outcomes: tuple[FollowUpOutcome, ...]

    @model_validator(mode="after")
    def _both_levels(self) -> AlertsFile:
        levels = sorted(rule.level for rule in self.notification)
        if levels != ["A", "B"]:
            raise ValueError(f"notification needs exactly one rule for A and one for B, found {levels}")
        return self


class PolicyError(ValueError):
    """alerts.yaml or a center override is unusable; the message names the file and the path."""


def load_alerts_file(text: str, name: str = "alerts.yaml") -> AlertsFile:
    try:
        data = yaml.safe_load(text)
        return AlertsFile.model_validate(data)
    except yaml.YAMLError as exc:
        raise PolicyError(f"{name}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(root)"
        raise PolicyError(f"{name}: {where}: {first['msg']}") from exc


@lru_cache(maxsize=1)
def default_alerts_file() -> AlertsFile:
    text = resources.files("zhujian.kb").joinpath("data/alerts.yaml").read_text(encoding="utf-8")
    return load_alerts_file(text)


@dataclasses.dataclass(frozen=True, slots=True)
class AlertPolicy:
    """What a center decides: deadlines, which levels open alerts, who sees escalations, its time zone."""

    rules: AlertsFile
    timezone: ZoneInfo
    alert_class_b: bool = True
    a_within_hours: float | None = None  # center override of the KB default
    b_within_days: int | None = None

    def rule(self, level: str) -> NotificationRule:
        for rule in self.rules.notification:
            if rule.level == level:
                return rule
        raise KeyError(level)

    def opens_alert(self, level: str) -> bool:
        return level == "A" or (level == "B" and self.alert_class_b)

    def due_at(self, level: str, opened_at: dt.datetime) -> dt.datetime:
        """When notification is due. Hours count from the moment the alert opened; days end at the end of the
        center's local day `days` days after the day it opened (day 0 = the same working day)."""
        rule = self.rule(level)
        hours, days = rule.within_hours, rule.within_days
        if level == "A" and self.a_within_hours is not None:
            hours, days = self.a_within_hours, None
        if level == "B" and self.b_within_days is not None:
            hours, days = None, self.b_within_days
        if hours is not None:
            return opened_at + dt.timedelta(hours=hours)
        assert days is not None  # the schema requires one of the two
        local_day = opened_at.astimezone(self.timezone).date() + dt.timedelta(days=days)
        return local_end_of_day(local_day, self.timezone)

    def counts_as_notified(self, level: str, channel: str) -> bool:
        return channel in self.rule(level).notified_by

    def escalation_role(self, level: str) -> str:
        return self.rule(level).escalate_to

    def local_date(self, moment: dt.datetime) -> dt.date:
        return moment.astimezone(self.timezone).date()


def local_end_of_day(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """The first instant of the next local day, in UTC (a deadline "by the end of `day`")."""
    start_next = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tzinfo=zone)
    return start_next.astimezone(dt.UTC)


def default_policy(timezone: str = "Asia/Shanghai") -> AlertPolicy:
    return AlertPolicy(rules=default_alerts_file(), timezone=ZoneInfo(timezone))


# ------------------------------------------------------------------------------------------------ follow-up windows

_RANGE_SEPARATORS = "-–—~～至到"


@dataclasses.dataclass(frozen=True, slots=True)
class RecheckWindow:
    days: int = 0
    months: int = 0

    def due_date(self, start: dt.date) -> dt.date:
        """`start` plus the window; a month end that does not exist falls back to the month's last day."""
        month_index = start.month - 1 + self.months
        year, month = start.year + month_index // 12, month_index % 12 + 1
        last_day = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
        return dt.date(year, month, min(start.day, last_day)) + dt.timedelta(days=self.days)


@lru_cache(maxsize=8)
def _duration_pattern(units: tuple[str, ...]) -> re.Pattern[str]:
    # Longest unit first, so that 个月 wins over 月.
    alternatives = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))
    separators = re.escape(_RANGE_SEPARATORS)
    return re.compile(
        rf"(\d+(?:\.\d+)?)\s*(?:({alternatives})?\s*[{separators}]\s*(\d+(?:\.\d+)?))?\s*({alternatives})"
    )


def followup_window(text: str | None, rules: FollowUpRules) -> RecheckWindow | None:
    """The recheck a follow-up text asks for, counted from the exam date, or None when it asks for none we can date.

    "1-3个月复查" → 3 months (the upper end of the range), "2周内就诊" → 14 days, "每年眼科复查" → 12 months,
    "1周至1个月" → 1 month; "立即就诊", "有症状时就诊", "无需特殊随访", "定期复查" → None. The first duration in the
    text wins: it is the first recheck the advice asks for.
    """
    if not text or not text.strip():
        return None
    if any(word in text for word in rules.no_task_words):
        return None
    units = {**rules.day_units, **rules.month_units}
    match = _duration_pattern(tuple(units)).search(text)
    keyword_hits = sorted((text.index(k.word), k.months) for k in rules.keywords if k.word in text)
    if keyword_hits and (match is None or keyword_hits[0][0] < match.start()):
        return RecheckWindow(months=keyword_hits[0][1])
    if match is None:
        return None
    upper, unit = match.group(3), match.group(4)
    amount = float(upper) if upper is not None else float(match.group(1))
    if unit in rules.month_units:
        months = amount * rules.month_units[unit]
        if months.is_integer():
            return RecheckWindow(months=int(months))
        return RecheckWindow(days=max(1, round(months * 30.4)))
    return RecheckWindow(days=max(1, round(amount * rules.day_units[unit])))


def followup_urgency_days(text: str | None, rules: FollowUpRules) -> float | None:
    """How soon a follow-up text asks for action, in days (smaller is sooner), to pick the most urgent of several.

    An urgent word anywhere in the text ranks it by that word ("立即就诊" → 0, "尽快眼科就诊" → 7): a conditional
    "…者立即就诊" counts as urgent too, so an urgent follow-up is never ranked below a routine one. Otherwise the
    recheck window as `followup_window` reads it, without the no-task words: "遵医嘱定期随访，每1-3个月复诊" still
    asks for a visit within 3 months. None when the text gives no time ("有症状时就诊").
    """
    if not text or not text.strip():
        return None
    urgent = [w.days for w in rules.urgent_words if w.word in text]
    if urgent:
        return float(min(urgent))
    window = followup_window(text, rules.model_copy(update={"no_task_words": ()}))
    if window is None:
        return None
    return window.months * _DAYS_PER_MONTH + window.days


# Only for ranking windows against each other ("1个月内" before "6周"), never for due dates.
_DAYS_PER_MONTH = 30.4


@dataclasses.dataclass(frozen=True, slots=True)
class MonthRange:
    """A follow-up window stated in months or years: from `first` to `last` months after the exam (`last` None for
    a single point), `within` when the text says 内/以内 ("1个月内就诊": by then, not at then)."""

    first: int
    last: int | None
    within: bool


@lru_cache(maxsize=8)
def _month_window_pattern(units: tuple[str, ...]) -> re.Pattern[str]:
    # "每3个月" / "每1-3个月" is a repeating schedule, not a date: the optional 每 is captured so that such a match is
    # consumed whole and skipped instead of matching its "3个月" tail. Longest unit first (个月 before 月).
    alternatives = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))
    separators = re.escape(_RANGE_SEPARATORS)
    return re.compile(rf"(每\s*)?(?<!\d)(\d{{1,2}})\s*(?:[{separators}]\s*(\d{{1,2}}))?\s*({alternatives})(内|以内)?")


def followup_month_range(text: str | None, rules: FollowUpRules) -> MonthRange | None:
    """The first window of a follow-up text stated in months or years (the KB's `month_units`), for printing the
    calendar months it points to: "3-6个月复查" → 3 to 6, "1个月内就诊" → 1 (within), "1-2年" → 12 to 24. None when the
    text states none (立即就诊, 2周内, 每年, 每3个月) or the range is empty or backwards."""
    if not text:
        return None
    pattern = _month_window_pattern(tuple(rules.month_units))
    match = next((m for m in pattern.finditer(text) if m.group(1) is None), None)
    if match is None:
        return None
    factor = rules.month_units[match.group(4)]
    first = int(match.group(2)) * factor
    last = int(match.group(3)) * factor if match.group(3) else None
    if first == 0 or (last is not None and last < first):
        return None
    return MonthRange(first, last, bool(match.group(5)))
