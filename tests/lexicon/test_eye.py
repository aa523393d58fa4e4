"""Ophthalmology text (table 1308, item 眼科): findings per eye, ICD-10 categories, negation, acuity decision."""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text

ITEM = "眼科"


def _own(text: str) -> list[Any]:
    return [f for f in extract_text(default_kb(), ITEM, text).findings if f.finding_id.startswith("eye_")]


def _triples(text: str) -> set[tuple[str, str, str | None]]:
    return {(f.name, f.icd10[:3], f.attrs.get("side")) for f in _own(text)}


NORMAL = [
    "未见异常",
    "眼科检查(裂隙灯)未发现明显异常",
    "裸眼视力右:1.0裸眼视力左:1.0余眼科检查未见异常",
    "矫正视力右:0.8矫正视力左:1.0",
    "裸眼视力右:1.0裸眼视力左:0.8",
    "色觉：正常余眼科检查未见异常",
    "两眼压正常。",
    "其它:排除青光眼检查余眼科检查未见异常",
    "青光眼筛查详见纸质报告",
    "眼科门诊进一步检查",
]


@pytest.mark.parametrize("text", NORMAL)
def test_normal_texts_give_no_finding(text: str) -> None:
    assert extract_text(default_kb(), ITEM, text).findings == []


CASES: list[tuple[str, set[tuple[str, str, str | None]]]] = [
    ("屈光不正", {("屈光不正", "H52", None)}),
    ("其它:双侧屈光不正余眼科检查未见异常", {("屈光不正", "H52", "双侧")}),
    ("晶体:双眼轻度白内障余眼科检查未见异常", {("白内障", "H26", "双侧")}),
    ("晶体:右晶体皮质密度增高", {("白内障", "H26", "右")}),
    ("晶体:左眼晶状体先天性点状混浊", {("先天性白内障", "Q12", "左")}),
    ("晶体:右眼白内障术后人工晶体植入", {("白内障术后", "Z96", "右")}),
    ("晶体:右眼晶体混浊,左眼白内障术后余眼科检查未见异常", {("白内障", "H26", "右"), ("白内障术后", "Z96", "左")}),
    ("结膜:右眼翼状胬肉", {("翼状胬肉", "H11", "右")}),
    ("结膜:双内眼睑裂斑", {("睑裂斑", "H11", "双侧")}),
    ("结膜:左眼睑结膜结石余眼科检查未见异常", {("结膜结石", "H11", "左")}),
    ("结膜:双眼慢性结膜炎", {("结膜炎", "H10", "双侧")}),
    ("结膜:双眼结膜轻度充血", {("结膜充血", "H11", "双侧")}),
    ("结膜:双眼沙眼", {("沙眼", "A71", "双侧")}),
    ("眼底:双眼动脉硬化Ⅰ级余眼科检查未见异常", {("眼底动脉硬化", "H35", "双侧")}),
    ("眼底:双眼视网膜动脉变细", {("眼底动脉硬化", "H35", "双侧")}),
    ("眼底:右黄斑病变", {("黄斑病变", "H35", "右")}),
    ("眼底:双侧高度近视眼底", {("高度近视眼底改变", "H44", "双侧")}),
    ("眼底:双豹纹状眼底", {("豹纹状眼底", "H52", "双侧")}),
    ("眼底:双视神经乳头生理凹陷扩大余眼科检查未见异常", {("可疑青光眼", "H40", "双侧")}),
    ("右眼压偏高(非接触式眼压计测定值)", {("眼压偏高", "H40", "右")}),
    ("眼底:左眼玻璃体混浊", {("玻璃体混浊", "H43", "左")}),
    ("眼睑:右下睑倒睫", {("倒睫", "H02", "右")}),
    ("眼睑:左上霰粒肿", {("睑板腺囊肿/睑腺炎", "H00", "左")}),
    ("角膜:双角膜老年环", {("角膜老年环", "H18", "双侧")}),
    ("角膜:左眼角膜云翳", {("角膜云翳", "H17", "左")}),
    ("色觉:双眼色弱", {("色觉异常", "H53", "双侧")}),
    ("眼球:左眼斜视", {("斜视", "H50", "左")}),
    ("眼底:双眼糖尿病性视网膜病变", {("糖尿病视网膜病变", "H36", "双侧")}),
    (
        "结膜:双眼翼状胬肉,双眼沙眼晶体:双眼轻度白内障",
        {("翼状胬肉", "H11", "双侧"), ("沙眼", "A71", "双侧"), ("白内障", "H26", "双侧")},
    ),
    # One finding per kind for both eyes (FINDINGS.md thyroid convention), the side 双侧.
    ("晶体:右眼中度白内障,左眼轻度白内障", {("白内障", "H26", "双侧")}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_findings_sides_and_categories(text: str, expected: set[tuple[str, str, str | None]]) -> None:
    assert _triples(text) == expected


def test_acuity_below_0_8_is_reduced_vision() -> None:
    # Checkup convention (eye.yaml): acuity below 0.8 in either eye is 视力下降 (H54), one finding for both eyes.
    assert _triples("裸眼视力右:0.15裸眼视力左:0.8") == {("视力下降", "H54", "右")}
    assert _triples("裸眼视力右:指数裸眼视力左:0.05") == {("视力下降", "H54", "双侧")}
    assert _triples("矫正视力右:0.8矫正视力左:0.6") == {("视力下降", "H54", "左")}


def test_acuity_0_8_and_better_is_not_a_finding() -> None:
    assert _own("裸眼视力右:0.8裸眼视力左:1.2余眼科检查未见异常") == []


def test_stated_refractive_error_is_listed_with_reduced_vision() -> None:
    names = {f.name for f in _own("裸眼视力右:0.1裸眼视力左:0.1屈光不正")}
    assert names == {"屈光不正", "视力下降"}


def test_grade_is_read() -> None:
    found = _own("晶体:双眼中度白内障")
    assert found[0].attrs["grade"] == "中度"
    found = _own("眼底:双眼动脉硬化Ⅱ级")
    assert found[0].attrs["grade"] == "Ⅱ级"


def test_fundus_not_visible_is_incomplete_without_finding() -> None:
    result = extract_text(default_kb(), ITEM, "眼底:双眼底不能窥视")
    assert result.findings == []
    assert result.incomplete


def test_declined_exam_is_incomplete() -> None:
    result = extract_text(default_kb(), ITEM, "裸眼视力右:弃查裸眼视力左:弃查")
    assert result.findings == []
    assert result.incomplete


def test_uncertain_cataract_is_marked() -> None:
    found = _own("晶体:双眼晶体混浊? ,建议医院进一步检查")
    assert [(f.name, f.uncertain) for f in found] == [("白内障", True)]


@pytest.mark.parametrize("text", ["双眼急性闭角型青光眼发作可能", "右眼突发视力下降", "双眼流行性出血性结膜炎"])
def test_level_a_eye_findings(text: str) -> None:
    assert any(f.critical == "A" for f in _own(text))
