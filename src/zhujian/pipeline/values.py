"""Parsing of values and reference ranges exactly as checkup systems print them.

Every outcome is explicit: a number (with an optional bound qualifier or remark), a category, "not done", or a
reason why the text cannot be read. Nothing is guessed.
"""

from __future__ import annotations

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

_NUMBER = r"[-+]?\d+(?:\.\d+)?|[-+]?\.\d+"
_BOUND = re.compile(rf"^(>=|<=|>|<|≥|≤|＞|＜)\s*({_NUMBER})$")
_PLAIN = re.compile(rf"^({_NUMBER})$")
# A number followed by a lab flag or a remark: "4.15+", "5.6↑", "6.2 H", "7.75轻度乳糜".
_NUMBER_WITH_TAIL = re.compile(rf"^({_NUMBER})\s*(.+)$")
_RANGE_VALUE = re.compile(rf"^({_NUMBER})\s*[-~～—至]\s*({_NUMBER})$")
_FLAG_TAILS = {"+": "+", "↑": "↑", "↓": "↓", "h": "↑", "l": "↓", "*": "*", "(h)": "↑", "(l)": "↓", "高": "↑", "低": "↓"}


@dataclass(frozen=True, slots=True)
class ParsedValue:
    kind: str  # "number" | "text" | "not_done" | "empty" | "unparseable"
    number: float | None = None
    text: str | None = None
    bound: str | None = None  # ">" or "<" when the source printed a bound, e.g. "> 6.22"
    remark: str | None = None  # lab flag or remark that came with the number ("↑", "轻度乳糜")
    range_low: float | None = None  # for "3-5" (urine sediment): the printed range


def clean_text(raw: str) -> str:
    text = unicodedata.normalize("NFKC", raw).strip()
    return re.sub(r"\s+", " ", text)


def parse_value(raw: object) -> ParsedValue:
    if raw is None:
        return ParsedValue("empty")
    if isinstance(raw, bool):
        return ParsedValue("unparseable", text=str(raw))
    if isinstance(raw, int | float):
        if raw != raw:  # NaN from a spreadsheet
            return ParsedValue("empty")
        return ParsedValue("number", number=float(raw))
    if isinstance(raw, str) and "_" not in raw:
        try:
            # Fast path: most values are plain numbers.
            number = float(raw)
        except ValueError:
            pass
        else:
            if number == number and number not in (float("inf"), float("-inf")):
                return ParsedValue("number", number=number)
            # "1e400" overflows and "nan" is not a result: never read a prefix of such a text as a number.
            return ParsedValue("unparseable", text=raw.strip())
    text = clean_text(str(raw))
    if not text:
        return ParsedValue("empty")
    lowered = text.lower()
    if lowered in NOT_DONE_WORDS or any(w in text for w in NOT_DONE_WORDS[:13]):
        return ParsedValue("not_done", text=text)
    m = _PLAIN.match(text)
    if m:
        return ParsedValue("number", number=float(m.group(1)))
    m = _BOUND.match(text)
    if m:
        op = m.group(1)
        bound = ">" if op in (">", ">=", "≥", "＞") else "<"
        return ParsedValue("number", number=float(m.group(2)), bound=bound)
    m = _RANGE_VALUE.match(text)
    if m:
        low, high = float(m.group(1)), float(m.group(2))
        if low <= high:
            return ParsedValue("number", number=high, range_low=low, remark=f"{m.group(1)}-{m.group(2)}")
    m = _NUMBER_WITH_TAIL.match(text)
    if m:
        tail = m.group(2).strip()
        if tail and not re.match(r"^[\d.]|^[eE][-+]?\d", tail):
            return ParsedValue("number", number=float(m.group(1)), remark=_FLAG_TAILS.get(tail.lower(), tail))
    return ParsedValue("text", text=text)


@dataclass(frozen=True, slots=True)
class ParsedRange:
    low: float | None
    high: float | None


_RANGE = re.compile(rf"^({_NUMBER})\s*(?:-|~|～|—|–|至|到|－)\s*({_NUMBER})$")
_UPPER = re.compile(rf"^(?:<|≤|<=|＜|小于|低于)\s*({_NUMBER})$")
_LOWER = re.compile(rf"^(?:>|≥|>=|＞|大于|高于)\s*({_NUMBER})$")


@lru_cache(maxsize=16384)
def parse_range(raw: str | None) -> ParsedRange | None:
    """'3.9-6.1' → (3.9, 6.1); '<5.2' → (None, 5.2); '>1.04' → (1.04, None). None when unreadable."""
    if raw is None:
        return None
    text = clean_text(raw).replace(" ", "")
    text = re.sub(r"[\[\]()（）]", "", text)
    m = _RANGE.match(text)
    if m:
        low, high = float(m.group(1)), float(m.group(2))
        if low > high:
            return None
        return ParsedRange(low, high)
    m = _UPPER.match(text)
    if m:
        return ParsedRange(None, float(m.group(1)))
    m = _LOWER.match(text)
    if m:
        return ParsedRange(float(m.group(1)), None)
    return None
