"""Units, measured numbers and Chinese punctuation as printed.

Expected values follow the SI Brochure (9th ed.) §5.4: the micro prefix is µ, a power of ten is written ×10ⁿ with
a superscript exponent, m² carries a superscript and a space separates a number from its unit; and GB/T 15834-2011
标点符号用法: Chinese text uses the full-width marks ，；：？！（） with no space around them. The units exercised
are the ones the knowledge base declares (canonical units and every accepted conversion unit)."""

from __future__ import annotations

import re

import pytest

from zhujian.kb.loader import KnowledgeBase
from zhujian.render.typography import (
    display_unit,
    display_units_in_text,
    format_measured,
    raw_decimals,
    tidy_zh,
    typeset,
)


@pytest.mark.parametrize(
    ("stored", "printed"),
    [
        ("umol/L", "µmol/L"),
        ("μmol/L", "µmol/L"),  # Greek mu → the micro sign
        ("uIU/mL", "µIU/mL"),
        ("ug/L", "µg/L"),
        ("/uL", "/µL"),
        ("10^9/L", "×10⁹/L"),
        ("10*9/L", "×10⁹/L"),
        ("10^12/L", "×10¹²/L"),
        ("10^3/uL", "×10³/µL"),
        ("kg/m2", "kg/m²"),
        ("mL/min/1.73m2", "mL/min/1.73 m²"),
        ("mL/min/1.73 m2", "mL/min/1.73 m²"),
        ("mmHg", "mmHg"),
        ("mmol/L", "mmol/L"),
        ("mIU/mL", "mIU/mL"),
        ("mg/L FEU", "mg/L FEU"),
        ("%", "%"),
        ("‰", "‰"),
        ("次/分", "次/分"),
        ("/HPF", "/HPF"),
        ("cm/s", "cm/s"),
        ("°C", "°C"),
        ("", ""),
        (None, ""),
    ],
)
def test_display_unit(stored: str | None, printed: str) -> None:
    assert display_unit(stored) == printed


def test_display_unit_is_idempotent() -> None:
    for unit in ("µmol/L", "×10⁹/L", "kg/m²", "mL/min/1.73 m²"):
        assert display_unit(unit) == unit


# The ASCII spellings that must never be printed (issue 12): micro as "u", powers of ten with ^ or *, m2 for m².
ASCII_UNIT_FAULT = re.compile(r"(?<![A-Za-z])u(?:mol|g|IU|L|kat)\b|10\s*[\^*]\s*\d|(?<![A-Za-z])c?m2(?![0-9A-Za-z])")


def test_every_unit_the_knowledge_base_declares_prints_without_ascii_spellings(kb: KnowledgeBase) -> None:
    units = {item.unit for item in kb.items.values() if item.unit}
    units |= {c.unit for item in kb.items.values() for c in item.conversions}
    assert {"umol/L", "10^9/L", "10^12/L", "kg/m2", "mL/min/1.73m2"} <= units  # the data still stores ASCII keys
    faulty = {unit: display_unit(unit) for unit in units if ASCII_UNIT_FAULT.search(display_unit(unit))}
    assert faulty == {}


def test_units_inside_free_text() -> None:
    text = "肌酐 118 umol/L↑；eGFR 43.7 mL/min/1.73m2；BMI 28 kg/m2；白细胞 6.2 10^9/L；红细胞 4.5 10^12/L"
    assert display_units_in_text(text) == (
        "肌酐 118 µmol/L↑；eGFR 43.7 mL/min/1.73 m²；BMI 28 kg/m²；白细胞 6.2 ×10⁹/L；红细胞 4.5 ×10¹²/L"
    )
    assert display_units_in_text("eGFR 30-59 mL/min/1.73m²（KDIGO）") == "eGFR 30-59 mL/min/1.73 m²（KDIGO）"
    # Identifiers and words that merely contain the letters are left alone.
    assert display_units_in_text("CYP2C19 gum/L m2m HbA1c") == "CYP2C19 gum/L m2m HbA1c"


@pytest.mark.parametrize(
    ("raw", "places"),
    [("148", 0), ("6.20", 2), ("> 6.22", 2), ("<0.5", 1), ("1,234", 0), ("阴性", None), ("3-5", 1), (None, None)],
)
def test_raw_decimals(raw: str | None, places: int | None) -> None:
    # "3-5" reads as the numbers 3 and -5: not one number, so no precision is taken from it.
    assert raw_decimals(raw) == (None if raw == "3-5" else places)


@pytest.mark.parametrize(
    ("value", "raw", "decimals", "printed"),
    [
        (148.0, "148", None, "148"),  # measured as a whole number: never "148.0"
        (148.0, "148", 1, "148"),
        (148.0, None, 1, "148"),  # no raw text: the declared decimals are a maximum, no zero is invented
        (148.0, None, None, "148"),
        (6.2, "6.20", 2, "6.20"),  # the record's two decimals are kept
        (6.0, "6.0", 1, "6.0"),
        (6.22, "> 6.22", 2, "6.22"),
        (5.26, None, 1, "5.3"),
        (11.8, "212", 1, "11.8"),  # raw in another unit (mg/dL): the declared decimals apply
        (0.1 + 0.2, None, None, "0.3"),
        (7, None, None, "7"),
        ("阴性(-)", None, None, "阴性(-)"),
        (None, None, None, ""),
    ],
)
def test_format_measured(value: float | int | str | None, raw: str | None, decimals: int | None, printed: str) -> None:
    assert format_measured(value, raw, decimals) == printed


def test_format_measured_refuses_a_boolean() -> None:
    with pytest.raises(TypeError):
        format_measured(True)


@pytest.mark.parametrize(
    ("text", "tidied"),
    [
        ("新发现者高血糖明显， 指南建议此类", "新发现者高血糖明显，指南建议此类"),  # issue 12's own example
        ("控制血压、 血脂", "控制血压、血脂"),
        ("结节增大 （体积增加50%以上）", "结节增大（体积增加50%以上）"),
        ("危险因素等 危险", "危险因素等危险"),  # a folded line between two Chinese characters
        ("肌酐(酶法)", "肌酐（酶法）"),
        ("中国血脂管理指南(2023年)", "中国血脂管理指南（2023年）"),
        ("上次(2025-03)为“脂肪肝”", "上次（2025-03）为“脂肪肝”"),
        ("心血管病(ASCVD)风险", "心血管病（ASCVD）风险"),
        ("血糖,肾功能;血脂:正常?", "血糖，肾功能；血脂：正常？"),
        ("HbA1c≥9.0%,建议复查", "HbA1c≥9.0%，建议复查"),
        # ASCII tokens stay as they are.
        ("C-TIRADS 4A 结节", "C-TIRADS 4A 结节"),
        ("钾 2.6 mmol/L↓（参考 3.5-5.3）", "钾 2.6 mmol/L↓（参考 3.5-5.3）"),
        ("LDL-C目标<2.6 mmol/L", "LDL-C目标<2.6 mmol/L"),
        ("时间 10:30，比例 2:1", "时间 10:30，比例 2:1"),
        ("见 https://example.org/a?b=1,2 页", "见 https://example.org/a?b=1,2 页"),
        ("Fleischner (2017)", "Fleischner (2017)"),
        ("体检编号：X　性别：男", "体检编号：X　性别：男"),  # the ideographic space is deliberate
        ("第一行。\n   依据：", "第一行。\n   依据："),  # line breaks and indentation are layout
    ],
)
def test_tidy_zh(text: str, tidied: str) -> None:
    assert tidy_zh(text) == tidied


def test_tidy_zh_is_idempotent() -> None:
    text = "建议1周内内分泌科就诊， 查尿酮体(必要时)、 肝肾功能,评估并发症。"
    once = tidy_zh(text)
    assert once == "建议1周内内分泌科就诊，查尿酮体（必要时）、肝肾功能，评估并发症。"
    assert tidy_zh(once) == once


def test_typeset_does_units_and_punctuation() -> None:
    assert typeset("血尿酸>420 umol/L, 建议低嘌呤饮食") == "血尿酸>420 µmol/L，建议低嘌呤饮食"
