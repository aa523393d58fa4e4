"""Who and when: column roles (visit id, person id, sex, age, dates, personal data) and the reading of their cells.

The vocabulary of header names is data (`columns.yaml`); this module only applies it. Every cell that cannot be
read gives a reason in Chinese (it ends up in the report's problems) and never a guess that is not stated.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Generic, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict

from zhujian.domain.record import RecordSex
from zhujian.kb.loader import normalize_label

T = TypeVar("T")

ColumnRole = Literal[
    "visit_id",
    "person_id",
    "sex",
    "age",
    "exam_date",
    "birth_date",
    "withheld",
    "item",
    "item_code",
    "value",
    "unit",
    "reference_range",
    "section",
]

DEMOGRAPHIC_ROLES: frozenset[str] = frozenset({"visit_id", "person_id", "sex", "age", "exam_date", "birth_date"})
LONG_ROLES: frozenset[str] = frozenset({"item", "item_code", "value", "unit", "reference_range", "section"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Roles(_Strict):
    visit_id: list[str]
    person_id: list[str]
    sex: list[str]
    age: list[str]
    exam_date: list[str]
    birth_date: list[str]
    withheld: list[str]
    item: list[str]
    item_code: list[str]
    value: list[str]
    unit: list[str]
    reference_range: list[str]
    section: list[str]


class _SexValues(_Strict):
    male: list[str]
    female: list[str]
    unknown: list[str]


class _VocabularyFile(_Strict):
    source: str
    roles: _Roles
    sex_values: _SexValues


@dataclass(frozen=True)
class ColumnVocabulary:
    """Header name → role, and sex words → sex, from `columns.yaml`."""

    roles: dict[str, ColumnRole]
    sex_words: dict[str, RecordSex]
    source: str

    def role_of(self, header: str, *, long_format: bool) -> ColumnRole | None:
        role = self.roles.get(normalize_label(header))
        if role is not None and role in LONG_ROLES and not long_format:
            # In a wide file "结果" or "value" is just an item column with an odd name.
            return None
        return role


@lru_cache(maxsize=1)
def column_vocabulary() -> ColumnVocabulary:
    text = resources.files("zhujian.adapters").joinpath("columns.yaml").read_text(encoding="utf-8")
    parsed = _VocabularyFile.model_validate(yaml.safe_load(text))
    roles: dict[str, ColumnRole] = {}
    for role in get_args(ColumnRole):
        for label in getattr(parsed.roles, role):
            roles[normalize_label(label)] = role
    sex_words: dict[str, RecordSex] = {}
    for sex in get_args(RecordSex):
        for word in getattr(parsed.sex_values, sex):
            sex_words[_sex_key(word)] = sex
    return ColumnVocabulary(roles=roles, sex_words=sex_words, source=parsed.source)


def _sex_key(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip().lower()


@dataclass(frozen=True, slots=True)
class CellReading(Generic[T]):
    """The value read from one cell, or None with the problem code and the Chinese reason."""

    value: T | None
    code: str | None = None
    reason: str | None = None


def read_sex(raw: str, vocabulary: ColumnVocabulary) -> CellReading[RecordSex]:
    key = _sex_key(raw)
    if not key:
        return CellReading("unknown", "sex_missing", "性别为空，按“未知”处理")
    sex = vocabulary.sex_words.get(key)
    if sex is None:
        return CellReading("unknown", "sex_unreadable", f"性别“{raw}”无法识别（应为 男/女、M/F、1/2），按“未知”处理")
    if sex == "unknown":
        return CellReading("unknown", "sex_unreadable", f"性别记为“{raw}”（未知或未说明）")
    return CellReading(sex)


_AGE = re.compile(r"^(\d+(?:\.\d+)?)\s*(?:岁|years?|y)?$", re.IGNORECASE)


def read_age(raw: str) -> CellReading[float]:
    text = unicodedata.normalize("NFKC", raw).strip()
    match = _AGE.match(text)
    if match is None:
        return CellReading(None, "age_unreadable", f"年龄“{raw}”无法解读为岁数，年龄未使用")
    age = float(match.group(1))
    if age > 130:
        return CellReading(None, "age_unreadable", f"年龄“{raw}”超出 0–130 岁，疑为录入错误，年龄未使用")
    return CellReading(age)


@dataclass(frozen=True, slots=True)
class AgeBand:
    """An age class such as the Korean NHIS 5-year codes: `low`–`high` years inclusive, or open-ended."""

    low: int
    high: int | None

    @property
    def midpoint(self) -> float:
        # Ages are completed years, so the band 20–24 covers [20, 25) and its middle is 22.5. An open band
        # (85+) is given the middle of a band of the same width.
        upper = self.high + 1 if self.high is not None else self.low + 5
        return (self.low + upper) / 2

    def label(self) -> str:
        return f"{self.low}–{self.high} 岁" if self.high is not None else f"{self.low} 岁及以上"


# ---------------------------------------------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------------------------------------------

DateOrder = Literal["dmy", "mdy"]

_YEAR_FIRST = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")
_COMPACT = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_YEAR_LAST = re.compile(r"^(\d{1,2})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{4})$")
_TIME_TAIL = re.compile(r"[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?$")


def _clean_date(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip()
    return _TIME_TAIL.sub("", text).strip()


def infer_date_order(values: Iterable[str]) -> tuple[DateOrder | None, str]:
    """The day/month order of `a/b/yyyy` dates in one column, from the values that can only be read one way.

    Returns the order (None when the values do not tell, or contradict each other) and a sentence saying why.
    """
    day_first = month_first = 0
    for raw in values:
        match = _YEAR_LAST.match(_clean_date(raw))
        if match is None:
            continue
        first, second = int(match.group(1)), int(match.group(2))
        if first > 12 >= second:
            day_first += 1
        elif second > 12 >= first:
            month_first += 1
    if day_first and month_first:
        return None, f"{day_first} dates read only as day/month/year and {month_first} only as month/day/year"
    if day_first:
        return "dmy", f"{day_first} dates have a first part above 12, so the column is day/month/year"
    if month_first:
        return "mdy", f"{month_first} dates have a second part above 12, so the column is month/day/year"
    return None, "no date tells day/month from month/day"


def read_date(raw: str, order: DateOrder | None) -> CellReading[dt.date]:
    """Read `yyyy-mm-dd`, `yyyy/m/d`, `yyyymmdd`, `yyyy年m月d日` or `dd/mm/yyyy` (`mm/dd/yyyy` when `order` says so).

    A `dd/mm` vs `mm/dd` date that the file's order does not settle is read day first with a `date_ambiguous`
    problem saying so; a date that is impossible either way is a `date_unreadable` problem.
    """
    text = _clean_date(raw)
    if not text:
        return CellReading(None, "date_missing", "日期为空")
    match = _YEAR_FIRST.match(text) or _COMPACT.match(text)
    if match is not None:
        return _make_date(raw, int(match.group(1)), int(match.group(2)), int(match.group(3)))
    match = _YEAR_LAST.match(text)
    if match is None:
        return CellReading(
            None, "date_unreadable", f"日期“{raw}”无法解读（支持 yyyy-mm-dd、yyyy/m/d、dd/mm/yyyy），日期未使用"
        )
    first, second, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
    if first > 12 and second > 12:
        return CellReading(None, "date_unreadable", f"日期“{raw}”中没有可作为月份的数字，日期未使用")
    if first > 12:
        reading = _make_date(raw, year, second, first)
        if order == "mdy" and reading.value is not None:
            return CellReading(
                reading.value,
                "date_order_conflict",
                f"日期“{raw}”只能按 日/月/年 读取，与本列其他日期的 月/日/年 顺序不一致",
            )
        return reading
    if second > 12:
        reading = _make_date(raw, year, first, second)
        if order == "dmy" and reading.value is not None:
            return CellReading(
                reading.value,
                "date_order_conflict",
                f"日期“{raw}”只能按 月/日/年 读取，与本列其他日期的 日/月/年 顺序不一致",
            )
        return reading
    if order == "mdy":
        return _make_date(raw, year, first, second)
    reading = _make_date(raw, year, second, first)
    if order is None and first != second and reading.value is not None:
        return CellReading(
            reading.value,
            "date_ambiguous",
            f"日期“{raw}”可读作 日/月/年 或 月/日/年，本列没有能区分的日期，"
            f"按 日/月/年 读作 {reading.value.isoformat()}",
        )
    return reading


def _make_date(raw: str, year: int, month: int, day: int) -> CellReading[dt.date]:
    try:
        return CellReading(dt.date(year, month, day))
    except ValueError:
        return CellReading(
            None, "date_unreadable", f"日期“{raw}”不是有效日期（{year} 年 {month} 月 {day} 日），日期未使用"
        )
