"""Splitting a physician's conclusion list, in the numbering styles physicians use."""

from __future__ import annotations

import pytest

from zhujian.qc.parse import split_conclusions

CASES = [
    ("主检结论：\n1. 血脂异常：甘油三酯 2.85 mmol/L，建议低脂饮食\n2. 左肾囊肿",
     ["血脂异常：甘油三酯 2.85 mmol/L，建议低脂饮食", "左肾囊肿"]),
    ("1、脂肪肝\n2、胆囊息肉\n3、窦缓", ["脂肪肝", "胆囊息肉", "窦缓"]),
    ("（1）高血压\n（2）糖尿病", ["高血压", "糖尿病"]),
    ("(1) 高血压 (2) 糖尿病", ["高血压", "糖尿病"]),
    ("1) ALT 68 U/L\n2) 血压150/95mmHg", ["ALT 68 U/L", "血压150/95mmHg"]),
    # A conclusion that begins with a digit after the marker ("6）2型糖尿病").
    ("5）肾功能不全\n6）2型糖尿病", ["肾功能不全", "2型糖尿病"]),
    ("①甲状腺结节②乳腺增生", ["甲状腺结节", "乳腺增生"]),
    ("一、高尿酸血症\n二、脂肪肝", ["高尿酸血症", "脂肪肝"]),
    # Several conclusions on one line, a number glued to the previous conclusion, a size with a decimal point.
    ("1.脂肪肝 2.肾囊肿（1.5cm）3、窦缓", ["脂肪肝", "肾囊肿（1.5cm）", "窦缓"]),
    # Advice on its own unnumbered line belongs to the conclusion above it.
    ("1. 高尿酸血症\n建议低嘌呤饮食\n2. 脂肪肝", ["高尿酸血症 建议低嘌呤饮食", "脂肪肝"]),
    ("脂肪肝\n建议：控制体重\n胆囊息肉", ["脂肪肝，建议：控制体重", "胆囊息肉"]),
    # No numbers at all.
    ("脂肪肝；肾囊肿；血脂异常", ["脂肪肝", "肾囊肿", "血脂异常"]),
    ("【体检结论】\n脂肪肝\n肾囊肿", ["脂肪肝", "肾囊肿"]),
    # A decimal value is never a list marker.
    ("1. 糖化血红蛋白6.5%，空腹血糖7.2 mmol/L", ["糖化血红蛋白6.5%，空腹血糖7.2 mmol/L"]),
    ("", []),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_split(text: str, expected: list[str]) -> None:
    lines = split_conclusions(text)
    assert [line.text for line in lines] == expected
    assert [line.number for line in lines] == list(range(1, len(expected) + 1))
