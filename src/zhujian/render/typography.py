"""Typography of every printed output: units, measured numbers and Chinese punctuation.

Units are stored in the knowledge base in the ASCII spelling labs and adapters use (`umol/L`, `10^9/L`, `kg/m2`);
that spelling is a key, not something to print. `display_unit` gives the SI typography (micro sign, ×10ⁿ with a
superscript exponent, m² with a superscript and a space between a number and its unit). `format_measured` prints a
number at the precision it was measured: the decimals of the value as the record gave it, else the item's declared
decimals, never a trailing ".0" the measurement did not have. `tidy_zh` applies GB/T 15834-2011 to Chinese text:
full-width ，；：？！（） in Chinese context and no half-width space after full-width punctuation or between two
Chinese characters, leaving ASCII tokens ("C-TIRADS 4A", "LDL-C", "2.6 mmol/L", URLs) as they are.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

MICRO = "µ"  # U+00B5, the sign the knowledge base's own text uses

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")

# "10^9/L", "10*9/L", "10E9/L", "x10^9/L", "×10^9/L", "10⁹/L" written with ASCII: the power of ten of a count.
_POWER_OF_TEN = re.compile(r"^(?:[x×*]\s*)?10\s*(?:\^|\*|E|e)\s*(-?\d+)\s*(?=/)")
# An SI prefix "u" standing for micro: at the start of the unit or after "/", before a base unit.
_ASCII_MICRO = re.compile(r"(?:(?<=^)|(?<=/)|(?<=\s))u(?=(?:mol|g|IU|U|L|l|kat|m|eq|Eq)\b)")
# A squared or cubed metre (or centimetre) written "m2"/"m3" after a letter boundary: "kg/m2", "1.73m2".
_ASCII_POWER = re.compile(r"(?<![A-Za-z])(c?m)([23])(?![0-9A-Za-z])")
# A number glued to the unit that follows it ("1.73m²"): SI puts a space between a number and its unit.
_NUMBER_GLUED = re.compile(r"(\d)(c?m[²³])")


def display_unit(unit: str | None) -> str:
    """The unit as it should be printed: `umol/L` → `µmol/L`, `10^9/L` → `×10⁹/L`, `kg/m2` → `kg/m²`,
    `mL/min/1.73m2` → `mL/min/1.73 m²`. Units already in print form, and units without such spellings
    (mmHg, %, 次/分, /HPF), come back unchanged; None and "" give ""."""
    if not unit:
        return ""
    text = unit.strip().replace("μ", MICRO)  # Greek mu (U+03BC) → the micro sign used everywhere else
    power = _POWER_OF_TEN.match(text)
    if power:
        text = "×10" + power.group(1).translate(_SUPERSCRIPT) + text[power.end() :]
    elif text.startswith(("10⁹", "10¹²", "10³", "10⁶")):
        text = "×" + text
    text = _ASCII_MICRO.sub(MICRO, text)
    text = _ASCII_POWER.sub(lambda m: m.group(1) + m.group(2).translate(_SUPERSCRIPT), text)
    return _NUMBER_GLUED.sub(r"\1 \2", text)


_NUMBER_IN_RAW = re.compile(r"[-+]?\d+(?:\.(\d+))?")


def raw_decimals(raw: str | None) -> int | None:
    """How many decimals the value had as the record wrote it ("148" → 0, "6.20" → 2, "> 6.22" → 2);
    None when the text holds no single number (a range, "阴性", nothing)."""
    if raw is None:
        return None
    numbers = _NUMBER_IN_RAW.findall(raw.replace(",", "").replace("，", ""))
    if len(numbers) != 1:
        return None
    return len(numbers[0])


def _shortest(value: float) -> str:
    """The shortest decimal text of a float, without exponent or trailing zeros (148.0 → "148", 0.1 → "0.1")."""
    try:
        # 12 significant digits drop binary noise (0.1 + 0.2) that no instrument measured.
        text = format(Decimal(f"{value:.12g}").normalize(), "f")
    except InvalidOperation:
        return str(value)
    return "0" if text in ("-0", "") else text


def format_measured(value: float | int | str | None, raw: str | None = None, decimals: int | None = None) -> str:
    """A measured number printed at the precision it was measured.

    `raw` is the value as the record gave it: when it holds one number equal to `value` (same unit), its count of
    decimals is kept ("6.20" stays "6.20", "148" is never "148.0"). Otherwise `decimals` (the item's declared
    precision) rounds the value and trailing zeros are dropped; without either the shortest text is printed.
    Text values come back unchanged; None gives ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"a measured value is a number, not {value!r}")
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    places = raw_decimals(raw)
    if places is not None and raw is not None:
        given = _NUMBER_IN_RAW.search(raw.replace(",", "").replace("，", ""))
        if given is not None and math.isclose(float(given.group(0)), value, rel_tol=0, abs_tol=0.5 * 10**-places):
            return f"{value:.{places}f}"
    if decimals is not None:
        # The declared decimals are the most the item is measured to; without the raw text the trailing zeros are
        # unknown, so none is invented (148.0 → "148", 6.20 → "6.2"), as a lab prints its results.
        return _shortest(round(value, decimals))
    return _shortest(value)


# Chinese characters (CJK unified ideographs with extension A and compatibility ideographs) and full-width marks.
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# The dash, ellipsis and swung dash are left out: English notes use them with spaces.
FULL_WIDTH_PUNCTUATION = "，。、；：？！（）【】〔〕《》〈〉「」『』“”‘’"
_CJK_CHAR = f"[{CJK}]"
_FULL = f"[{FULL_WIDTH_PUNCTUATION}]"
_HALF_TO_FULL = {",": "，", ";": "；", ":": "：", "?": "？", "!": "！"}

# A half-width space (or a run of them) after a full-width mark, before one, or between two Chinese characters.
_SPACE_AFTER_FULL = re.compile(f"(?<={_FULL}) +")
_SPACE_BEFORE_FULL = re.compile(f" +(?={_FULL})")
_SPACE_BETWEEN_CJK = re.compile(f"(?<={_CJK_CHAR}) +(?={_CJK_CHAR})")
# A half-width , ; : ? ! touching a Chinese character or a full-width mark on either side (spaces ignored).
_HALF_PUNCT = re.compile(
    f"(?<=[{CJK}{FULL_WIDTH_PUNCTUATION}]) *([,;:?!]) *|(?<![A-Za-z0-9/]) *([,;:?!]) *(?=[{CJK}])"
    f"|(?<=[A-Za-z0-9%)\\]]) *([,;:?!]) *(?=[{CJK}])"
)
# An innermost pair of half-width parentheses.
_PAREN_PAIR = re.compile(r"\(([^()\n]*)\)")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def _full_width_parens(text: str) -> str:
    """Half-width ( ) around Chinese text, or next to a Chinese character, become （）; "(-)" inside ASCII stays."""

    def replace(match: re.Match[str]) -> str:
        start, end = match.span()
        before = text[start - 1] if start > 0 else ""
        after = text[end] if end < len(text) else ""
        inner = match.group(1)
        chinese = re.compile(f"[{CJK}{FULL_WIDTH_PUNCTUATION}]")
        if chinese.search(inner) or chinese.match(before or " ") or chinese.match(after or " "):
            return f"（{inner.strip()}）"
        return match.group(0)

    previous = None
    while previous != text:
        previous = text
        text = _PAREN_PAIR.sub(replace, text)
    return text


def tidy_zh(text: str) -> str:
    """Chinese text set per GB/T 15834: full-width ，；：？！（） in Chinese context, no half-width space after or
    before full-width punctuation or between Chinese characters. ASCII tokens ("C-TIRADS 4A", "LDL-C",
    "2.6 mmol/L", "10:30", URLs), the ideographic space and line breaks are left as they are."""
    if not text:
        return text
    urls: list[str] = []

    def keep(match: re.Match[str]) -> str:
        urls.append(match.group(0))
        return f"\x00{len(urls) - 1}\x00"

    text = _URL.sub(keep, text)
    text = _full_width_parens(text)
    text = _HALF_PUNCT.sub(lambda m: _HALF_TO_FULL[m.group(1) or m.group(2) or m.group(3)], text)
    text = _SPACE_AFTER_FULL.sub("", text)
    text = _SPACE_BEFORE_FULL.sub("", text)
    text = _SPACE_BETWEEN_CJK.sub("", text)
    return re.sub("\x00(\\d+)\x00", lambda m: urls[int(m.group(1))], text)


def display_units_in_text(text: str) -> str:
    """ASCII unit spellings inside free text (advice, evidence, problems) in print form: `umol/L`, `10^9/L`,
    `kg/m2`, `1.73m2`. Only whole unit tokens are touched, so "m2" in an identifier is left alone."""
    return _UNIT_IN_TEXT.sub(lambda m: display_unit(m.group(0)), text)


_UNIT_IN_TEXT = re.compile(
    r"(?<![A-Za-z0-9µ.])(?:[x×*]?10\s*[\^*]\s*-?\d+/u?L"
    r"|u(?:mol|g|IU|kat)/(?:L|dL|mL|g)"
    r"|/uL"
    r"|(?:kg/|mL/min/1\.73\s?|1\.73\s?)m2|1\.73m²"
    r")(?![A-Za-z0-9])"
)


def typeset(text: str) -> str:
    """Free text ready to print: units in print form, then Chinese punctuation tidied."""
    return tidy_zh(display_units_in_text(text))


_COMPARISON_SIGNS = frozenset({">", "<", "≥", "≤", ">=", "<="})


def measured_text(value: float | int | str | None, raw: str | None = None, qualifier: str | None = None) -> str:
    """A result as the examinee's record states it: the record's own text when it is this very number (its digits,
    its bound sign), else the value at its measured precision with the bound sign of `qualifier`."""
    if isinstance(value, float) and raw is not None and raw_decimals(raw) is not None:
        given = _NUMBER_IN_RAW.search(raw.replace(",", "").replace("，", ""))
        tolerance = 0.5 * 10 ** -len((given.group(1) or "") if given else "")
        if given is not None and math.isclose(float(given.group(0)), value, rel_tol=0, abs_tol=tolerance):
            return raw.strip()
    if value is None:
        return raw or ""
    sign = qualifier if qualifier in _COMPARISON_SIGNS and not isinstance(value, str) else ""
    return f"{sign}{format_measured(value, raw)}"


def jinja_filters() -> dict[str, Callable[..., str]]:
    """The filters every page template uses to print: `unit`, `measured`, `result` (a report item's value as
    measured) and `zh` (free text: units in print form and Chinese punctuation)."""

    def result(item: Mapping[str, Any]) -> str:
        return measured_text(item.get("value"), item.get("raw_value"), item.get("qualifier"))

    def measured(value: float | int | str | None) -> str:
        return format_measured(value)

    def zh(text: str | None) -> str:
        return typeset(text) if text else ""

    return {"unit": display_unit, "measured": measured, "result": result, "zh": zh}
