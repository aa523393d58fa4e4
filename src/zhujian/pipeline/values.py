"""Parsing of values and reference ranges exactly as checkup systems print them.

Every outcome is explicit: a number (with an optional bound qualifier or remark), several readings of a number typed
with separators ("1,234": 1.234 or 1234, for the caller to decide with the item's plausible range), a category,
"not done", or a reason why the text cannot be read. Nothing is guessed, and a number is never read as its leading
digits ("6,8" is 6.8, never 6).
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Words a checkup system writes instead of a result when the test was not done.
NOT_DONE_WORDS = (
    "未查",
    "弃查",
    "未做",
    "拒查",
    "拒检",
    "未检",
    "未测",
    "缺项",
    "未检测",
    "放弃",
    "未送检",
    "不查",
    "免查",
    "无结果",
    "/",
    "-/-",
    "--",
    "—",
    "n/a",
    "na",
    "null",
    "none",
)

# A number as typed: digits with the separators keyboards and checkup systems produce (decimal point or comma,
# thousands comma, dot, apostrophe or space). Which separator means what is decided by `number_readings`, never by
# reading only the part of the number before an unexpected separator.
_TOKEN = r"[-+]?(?:\d(?:[\d,.' ]*\d)?(?:[eE][-+]?\d+)?|[.,]\d+)"
_BOUND = re.compile(rf"^(>=|<=|>|<|≥|≤)\s*({_TOKEN})$")
_TOKEN_WITH_TAIL = re.compile(rf"^({_TOKEN})\s*(.*)$")
_RANGE_VALUE = re.compile(rf"^({_TOKEN})\s*[-~～—至]\s*({_TOKEN})$")
# A tail that continues the number ("6,8" read up to the comma, "5、6", "120/80", "6-5") means the number is not
# where the text ends: such a text is never read as its leading digits.
_NUMBER_CONTINUES = re.compile(r"^(?:\d|[eE][-+]?\d|[.,'、/:;~～\-—–至+]\s*\d|[.,]$)")
# Between two digits these are decimal points typed with a Chinese input method (5。6, 5·6).
_DECIMAL_POINT_LOOKALIKES = re.compile(r"(?<=\d)[。·・](?=\d)")
_FLAG_TAILS = {"+": "+", "↑": "↑", "↓": "↓", "h": "↑", "l": "↓", "*": "*", "(h)": "↑", "(l)": "↓", "高": "↑", "低": "↓"}

_THOUSANDS_WITH_DECIMAL_POINT = tuple(
    (sep, re.compile(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+(?:\.\d+)?")) for sep in (",", "'", " ")
)
_THOUSANDS_WITH_DECIMAL_COMMA = tuple(
    (sep, re.compile(rf"\d{{1,3}}(?:{re.escape(sep)}\d{{3}})+(?:,\d+)?")) for sep in (".", "'", " ")
)
_DECIMAL_COMMA = re.compile(r"\d*,\d+")
_SEPARATOR_NAMES = {",": "逗号", ".": "点", "'": "撇号", " ": "空格"}


@dataclass(frozen=True, slots=True)
class Reading:
    """One way to read a number written with separators, and how it was read (for the report's problem text)."""

    number: float
    how: str  # "" for a plain number, else e.g. "逗号为小数点" or "逗号为千位分隔符"


@dataclass(frozen=True, slots=True)
class ParsedValue:
    kind: str  # "number" | "ambiguous" | "text" | "not_done" | "empty" | "unparseable"
    number: float | None = None
    text: str | None = None
    bound: str | None = None  # ">" or "<" when the source printed a bound, e.g. "> 6.22"
    remark: str | None = None  # lab flag or remark that came with the number ("↑", "轻度乳糜")
    range_low: float | None = None  # for "3-5" (urine sediment): the printed range
    # "ambiguous": every reading of the separators (two or more, ascending); "number": the one reading when the
    # separators were not a plain decimal point (e.g. a decimal comma), so the report can say how it was read.
    readings: tuple[Reading, ...] = ()
    reason: str | None = None  # "unparseable": why the text is not a usable number


def clean_text(raw: str) -> str:
    text = _nfkc_keeping_digit_lookalikes(raw).strip()
    return re.sub(r"\s+", " ", text)


def _is_digit_lookalike(ch: str) -> bool:
    """Superscripts, circled numbers, fractions: NFKC turns them into digits ("5²" → "52") that were never typed."""
    return ch > "\x7f" and unicodedata.decimal(ch, None) is None and unicodedata.numeric(ch, None) is not None


def _nfkc_keeping_digit_lookalikes(raw: str) -> str:
    if raw.isascii():
        return raw
    if not any(_is_digit_lookalike(ch) for ch in raw):
        return unicodedata.normalize("NFKC", raw)
    parts: list[str] = []
    start = 0
    for index, ch in enumerate(raw):
        if _is_digit_lookalike(ch):
            parts.append(unicodedata.normalize("NFKC", raw[start:index]))
            parts.append(ch)
            start = index + 1
    parts.append(unicodedata.normalize("NFKC", raw[start:]))
    return "".join(parts)


def number_readings(token: str) -> tuple[Reading, ...]:
    """Every reading of one number as typed, ascending; empty when no reading uses the whole text.

    "6.8" → 6.8; "6,8" → 6.8 (decimal comma); "1,234" → 1.234 or 1234; "203,182.83" → 203182.83; "1.234,5" → 1234.5;
    "1 234" → 1234; "6.8.1" → none. A single "." is always a decimal point (the convention of checkup systems).
    """
    sign = -1.0 if token.startswith("-") else 1.0
    digits = token.lstrip("+-")
    found: dict[float, str] = {}

    def add(text: str, how: str) -> None:
        try:
            number = float(text)
        except ValueError:
            return
        if math.isfinite(number):
            found.setdefault(sign * number, how)

    if not any(c in digits for c in ",' ") and digits.count(".") <= 1:
        add(digits, "")
    elif "e" not in digits.lower():
        for sep, pattern in _THOUSANDS_WITH_DECIMAL_POINT:
            if pattern.fullmatch(digits):
                add(digits.replace(sep, ""), f"{_SEPARATOR_NAMES[sep]}为千位分隔符")
        for sep, pattern in _THOUSANDS_WITH_DECIMAL_COMMA:
            if pattern.fullmatch(digits):
                decimal = "，逗号为小数点" if "," in digits else ""
                add(digits.replace(sep, "").replace(",", "."), f"{_SEPARATOR_NAMES[sep]}为千位分隔符{decimal}")
        if _DECIMAL_COMMA.fullmatch(digits):
            add(digits.replace(",", "."), "逗号为小数点")
    return tuple(Reading(number, how) for number, how in sorted(found.items()))


def _unreadable_reason(token: str) -> str:
    try:
        number = float(token.replace(",", "").replace("'", "").replace(" ", ""))
    except ValueError:
        return "数字中的分隔符无法解读"
    return "数字中的分隔符无法解读" if math.isfinite(number) else "数值超出可表示范围"


def _from_token(token: str, text: str, *, bound: str | None = None, remark: str | None = None) -> ParsedValue:
    readings = number_readings(token)
    if not readings:
        return ParsedValue("unparseable", text=text, reason=_unreadable_reason(token))
    if len(readings) > 1:
        return ParsedValue("ambiguous", text=text, bound=bound, remark=remark, readings=readings)
    only = readings[0]
    return ParsedValue(
        "number", number=only.number, text=None, bound=bound, remark=remark, readings=(only,) if only.how else ()
    )


def plain_number(raw: object) -> float | None:
    """The number of a value that `parse_value` reads as a plain number and nothing else (no bound, remark, range or
    separators to report), or None: then `parse_value` says what the value is. A finite float, or a text `float`
    reads as a finite number (checkup systems send most results so)."""
    if type(raw) is str:
        if "_" in raw:
            return None
        try:
            number = float(raw)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    if type(raw) is float:
        return raw if math.isfinite(raw) else None
    return None


def parse_value(raw: object) -> ParsedValue:
    if raw is None:
        return ParsedValue("empty")
    if isinstance(raw, bool):
        return ParsedValue("unparseable", text=str(raw), reason="布尔值不是检查结果")
    if isinstance(raw, int):
        try:
            return ParsedValue("number", number=float(raw))
        except OverflowError:
            return ParsedValue("unparseable", text=value_text(raw), reason="数值超出可表示范围")
    if isinstance(raw, float):
        if raw != raw:  # NaN from a spreadsheet
            return ParsedValue("empty")
        if not math.isfinite(raw):
            return ParsedValue("unparseable", text=str(raw), reason="数值超出可表示范围")
        return ParsedValue("number", number=raw)
    if isinstance(raw, str) and "_" not in raw:
        try:
            # Fast path: most values are plain numbers.
            number = float(raw)
        except ValueError:
            pass
        else:
            if math.isfinite(number):
                return ParsedValue("number", number=number)
            # "1e400" overflows and "nan" is not a result: never read a prefix of such a text as a number.
            reason = "不是数值（NaN）" if number != number else "数值超出可表示范围"
            return ParsedValue("unparseable", text=raw.strip(), reason=reason)
    text = clean_text(str(raw))
    if not text:
        return ParsedValue("empty")
    lowered = text.lower()
    if lowered in NOT_DONE_WORDS or any(w in text for w in NOT_DONE_WORDS[:13]):
        return ParsedValue("not_done", text=text)
    text = _DECIMAL_POINT_LOOKALIKES.sub(".", text)
    m = _BOUND.match(text)
    if m:
        op = m.group(1)
        bound = ">" if op in (">", ">=", "≥") else "<"
        return _from_token(m.group(2), text, bound=bound)
    m = _RANGE_VALUE.match(text)
    if m:
        lows, highs = number_readings(m.group(1)), number_readings(m.group(2))
        if len(lows) == 1 and len(highs) == 1 and lows[0].number <= highs[0].number:
            low, high = lows[0].number, highs[0].number
            return ParsedValue("number", number=high, range_low=low, remark=f"{m.group(1)}-{m.group(2)}")
    m = _TOKEN_WITH_TAIL.match(text)
    if m:
        token, tail = m.group(1), m.group(2).strip()
        if not tail:
            return _from_token(token, text)
        if _NUMBER_CONTINUES.match(tail):
            return ParsedValue("unparseable", text=text, reason="数字后面还有数字或分隔符，无法确定数值")
        return _from_token(token, text, remark=_FLAG_TAILS.get(tail.lower(), tail))
    return ParsedValue("text", text=text)


def value_text(raw: object) -> str:
    """A value as text for messages and the report; an integer too long for `str` is described, not printed."""
    try:
        return str(raw)
    except ValueError:
        assert isinstance(raw, int)
        return f"（约 {int(raw.bit_length() * 0.30103)} 位的整数）"


@dataclass(frozen=True, slots=True)
class ParsedRange:
    low: float | None
    high: float | None


_RANGE = re.compile(rf"^({_TOKEN})(?:-|~|～|—|–|至|到|－)({_TOKEN})$")
_UPPER = re.compile(rf"^(?:<|≤|<=|小于|低于)({_TOKEN})$")
_LOWER = re.compile(rf"^(?:>|≥|>=|大于|高于)({_TOKEN})$")


def _single_reading(token: str) -> float | None:
    readings = number_readings(token)
    return readings[0].number if len(readings) == 1 else None


@lru_cache(maxsize=16384)
def parse_range(raw: str | None) -> ParsedRange | None:
    """'3.9-6.1' → (3.9, 6.1); '<5.2' → (None, 5.2); '>1.04' → (1.04, None); '3,5-5,3' → (3.5, 5.3).
    None when unreadable, or when a bound has more than one reading (a range is never guessed)."""
    if raw is None:
        return None
    text = clean_text(raw).replace(" ", "")
    text = _DECIMAL_POINT_LOOKALIKES.sub(".", re.sub(r"[\[\]()（）]", "", text))
    m = _RANGE.match(text)
    if m:
        low, high = _single_reading(m.group(1)), _single_reading(m.group(2))
        if low is None or high is None or low > high:
            return None
        return ParsedRange(low, high)
    m = _UPPER.match(text)
    if m:
        high = _single_reading(m.group(1))
        return None if high is None else ParsedRange(None, high)
    m = _LOWER.match(text)
    if m:
        low = _single_reading(m.group(1))
        return None if low is None else ParsedRange(low, None)
    return None
