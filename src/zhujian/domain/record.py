"""The canonical checkup record: what every adapter produces and the engine consumes.

Values are kept exactly as given (strings or numbers); parsing and unit conversion happen in the pipeline so that
the report can always show the original next to the interpretation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

RecordSex = Literal["male", "female", "unknown"]
MAX_AGE = 130.0  # years: an age above it is a data error
# JSON may escape half of a UTF-16 pair ("\ud800"): such a string is no text and cannot be written out as UTF-8.


def _plain(value: object) -> object:
    if isinstance(value, BaseModel):
        return value.__dict__
    return str(value)


def _has_lone_surrogate(data: object) -> bool:
    # One pass of the C JSON encoder over the whole input is far cheaper than walking it in Python; the strict UTF-8
    # encoder then refuses exactly the surrogate code points (U+D800–U+DFFF), faster than a regex search for them.
    try:
        json.dumps(data, ensure_ascii=False, default=_plain).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_path(value: object, path: str) -> str:
    """The path of the first string in `value` (dicts, lists, models) holding a lone surrogate."""
    if isinstance(value, BaseModel):
        value = value.__dict__
    if isinstance(value, dict):
        for key, inner in value.items():
            if _has_lone_surrogate(key) or _has_lone_surrogate(inner):
                return _surrogate_path(inner, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            if _has_lone_surrogate(inner):
                return _surrogate_path(inner, f"{path}.{index}")
    return path

# Identifiers are stored in columns of this width (visits.visit_id, persons.pseudonym).
MAX_ID_LENGTH = 128


@dataclass(frozen=True, slots=True)
class RecordLimits:
    """Upper bounds on one record, far above real checkups (about 100–300 items and 10–40 texts, a long ultrasound
    description has a few hundred characters) and low enough that one record cannot take a server's memory or
    minutes of engine time. Checked while the record is validated, before its items are: pass other limits as
    `Record.model_validate(data, context={RECORD_LIMITS: RecordLimits(...)})` (the workbench does, from its
    ZHUJIAN_MAX_RECORD_* settings)."""

    max_items: int = 1000
    max_texts: int = 200
    max_text_length: int = 10_000
    max_prior_visits: int = 50


DEFAULT_RECORD_LIMITS = RecordLimits()
# For records that were accepted once (stored ones): a later, lower limit must not make them unreadable.
NO_RECORD_LIMITS = RecordLimits(max_items=2**62, max_texts=2**62, max_text_length=2**62, max_prior_visits=2**62)
RECORD_LIMITS = "record_limits"  # the validation-context key


def _limits(info: ValidationInfo) -> RecordLimits:
    context = info.context
    found = context.get(RECORD_LIMITS) if isinstance(context, dict) else None
    return found if isinstance(found, RecordLimits) else DEFAULT_RECORD_LIMITS


def _check_count(value: Any, limit: int, what: str, setting: str) -> Any:
    if isinstance(value, list) and len(value) > limit:
        raise PydanticCustomError(
            "record_limit",
            "{count} {what}: more than the limit of {limit} per record (setting {setting})",
            {"count": len(value), "what": what, "limit": limit, "setting": setting},
        )
    return value


class _Model(BaseModel):
    # NaN and Infinity are no measurement and no age: they are refused where they arrive, naming the field, instead
    # of failing later in hashing or JSON output.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Questionnaire(_Model):
    """Self-reported history. Free text lists are matched by keyword against the KB."""

    history: list[str] = Field(default_factory=list, description="既往史: diagnosed conditions, surgeries")
    medications: list[str] = Field(default_factory=list, description="用药史")
    family_history: list[str] = Field(default_factory=list, description="家族史, e.g. '父亲 高血压'")
    symptoms: list[str] = Field(default_factory=list, description="现有症状")
    smoking: bool | None = Field(default=None, description="current smoker")
    drinking: bool | None = Field(default=None, description="regular alcohol use")
    north: bool | None = Field(default=None, description="lives north of the Yangtze River (China-PAR region)")
    urban: bool | None = Field(default=None, description="lives in a city (China-PAR urban/rural)")


class ItemInput(_Model):
    """One measured item, exactly as the source system printed it."""

    name: str | None = Field(default=None, description="item name as labelled by the source, e.g. '*丙氨酸氨基转换酶'")
    code: str | None = Field(default=None, description="KB item id or a source code (e.g. LOINC)")
    value: str | float | int | None = Field(description="value exactly as given: '5.6', '> 6.22', '阴性(-)', '1+'")
    unit: str | None = None
    reference_range: str | None = Field(default=None, description="range as printed by the lab, e.g. '3.9-6.1'")
    section: str | None = Field(default=None, description="section / panel in the source, e.g. '肝功能'")
    origin: str | None = Field(
        default=None, description="where the value came from, e.g. 'd_train.csv:row 12:column 血糖' (for problems)"
    )

    @field_validator("value", mode="before")
    @classmethod
    def _finite(cls, value: object) -> object:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(
                f"{value} is not a result: a number must be finite (send the value as text exactly as the source "
                "printed it, or leave it out)"
            )
        return value

    @model_validator(mode="after")
    def _named(self) -> ItemInput:
        if not (self.name or self.code):
            raise ValueError("an item needs a name or a code")
        return self


class TextInput(_Model):
    """One free-text result: an ultrasound, ECG, imaging or physical-exam description or conclusion."""

    item: str = Field(description="exam item as the checkup system labels it, e.g. '肝脏', '超声提示', '心电图'")
    section: str | None = Field(default=None, description="department or exam, e.g. '彩超', '内科'")
    text: str
    origin: str | None = Field(default=None, description="where the text came from (file, row, column)")

    @field_validator("text", mode="before")
    @classmethod
    def _text_length(cls, value: Any, info: ValidationInfo) -> Any:
        limit = _limits(info).max_text_length
        if isinstance(value, str) and len(value) > limit:
            raise PydanticCustomError(
                "record_limit",
                "text of {count} characters: more than the limit of {limit} (setting ZHUJIAN_MAX_TEXT_LENGTH)",
                {"count": len(value), "limit": limit},
            )
        return value


class _LimitedLists(_Model):
    """Items and texts counted before they are validated one by one."""

    @field_validator("items", mode="before", check_fields=False)
    @classmethod
    def _item_count(cls, value: Any, info: ValidationInfo) -> Any:
        return _check_count(value, _limits(info).max_items, "items", "ZHUJIAN_MAX_RECORD_ITEMS")

    @field_validator("texts", mode="before", check_fields=False)
    @classmethod
    def _text_count(cls, value: Any, info: ValidationInfo) -> Any:
        return _check_count(value, _limits(info).max_texts, "texts", "ZHUJIAN_MAX_RECORD_TEXTS")


class VisitData(_LimitedLists):
    visit_id: str = Field(max_length=MAX_ID_LENGTH)
    exam_date: dt.date | None = None
    age: float | None = Field(default=None, ge=0, le=MAX_AGE)
    items: list[ItemInput] = Field(default_factory=list)
    texts: list[TextInput] = Field(default_factory=list)
    questionnaire: Questionnaire | None = None


class Record(_LimitedLists):
    """One person's checkup: the input of the engine."""

    person_id: str | None = Field(
        default=None, max_length=MAX_ID_LENGTH, description="pseudonymous person id (never a name or ID number)"
    )
    visit_id: str = Field(max_length=MAX_ID_LENGTH)
    sex: RecordSex
    age: float | None = Field(default=None, ge=0, le=MAX_AGE, description="age in years at the exam")
    birth_date: dt.date | None = None
    exam_date: dt.date | None = None
    employer: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="employer or group (团检单位) the checkup was bought for; group reports split by it",
    )
    questionnaire: Questionnaire = Field(default_factory=Questionnaire)
    items: list[ItemInput] = Field(default_factory=list)
    texts: list[TextInput] = Field(default_factory=list)
    prior_visits: list[VisitData] = Field(default_factory=list)

    @field_validator("prior_visits", mode="before")
    @classmethod
    def _prior_visit_count(cls, value: Any, info: ValidationInfo) -> Any:
        return _check_count(value, _limits(info).max_prior_visits, "prior visits", "ZHUJIAN_MAX_PRIOR_VISITS")

    @model_validator(mode="before")
    @classmethod
    def _unicode_text(cls, data: object) -> object:
        if _has_lone_surrogate(data):
            where = _surrogate_path(data, "")
            raise ValueError(f"field {where or 'record'}: a text holds a lone UTF-16 surrogate (invalid Unicode)")
        return data

    def age_years(self) -> float | None:
        """Age at the exam: given directly, or from birth and exam dates."""
        if self.age is not None:
            return self.age
        if self.birth_date is not None and self.exam_date is not None:
            years = self.exam_date.year - self.birth_date.year
            if (self.exam_date.month, self.exam_date.day) < (self.birth_date.month, self.birth_date.day):
                years -= 1
            return float(years)
        return None


def record_json_schema() -> dict[str, Any]:
    return Record.model_json_schema()
