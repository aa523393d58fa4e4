"""Chest radiograph / CT report text (items 胸部DR, 胸部CT …): findings, nodule attributes, negation.

No real chest text ships with the project; the texts follow common Chinese radiology report wording and the
nodule vocabulary of Fleischner 2017 / 肺结节诊治中国专家共识 2018 / Lung-RADS (CLINICAL.md §5.10).
"""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text


def _own(text: str, item: str = "胸部CT") -> list[Any]:
    return [f for f in extract_text(default_kb(), item, text).findings if f.finding_id.startswith("chest_")]


def _pairs(text: str, item: str = "胸部CT") -> set[tuple[str, str]]:
    return {(f.name, f.icd10[:3]) for f in _own(text, item)}


NORMAL = [
    "两肺野清晰，肺纹理走行自然，心膈未见异常。",
    "双肺未见明显实质性病变，心影大小形态正常，双侧肋膈角锐利。",
    "双肺未见异常密度影、结节及肿块，纵隔未见肿大淋巴结，未见胸腔积液及气胸。",
    "胸廓对称，气管居中，双肺未见结节。",
]


@pytest.mark.parametrize("text", NORMAL)
def test_normal_reports_give_no_finding(text: str) -> None:
    assert extract_text(default_kb(), "胸部DR", text).findings == []


CASES: list[tuple[str, set[tuple[str, str]]]] = [
    ("两肺纹理增多、增粗。", {("肺纹理增多", "J98")}),
    ("右肺上叶见一实性结节，大小约5mm×4mm，边界清。", {("肺结节", "R91")}),
    ("左肺下叶见磨玻璃结节，直径约7mm。", {("肺磨玻璃结节", "R91")}),
    ("右肺上叶混合磨玻璃结节，大小约9mm。", {("肺部分实性结节", "R91")}),
    ("左肺上叶见团块影，约35mm×30mm，考虑肺癌可能。", {("肺占位", "R91")}),
    ("右肺中叶纤维条索影。", {("肺陈旧性病灶", "J98")}),
    ("右肺上叶钙化灶。", {("肺钙化灶", "J98")}),
    ("两肺透亮度增高，肺气肿。", {("肺气肿", "J43")}),
    ("右肺尖肺大疱。", {("肺大疱", "J43")}),
    ("左侧胸膜增厚粘连。", {("胸膜增厚", "J92")}),
    ("右侧胸腔少量积液。", {("胸腔积液", "J90")}),
    ("右侧气胸，右肺压缩约30%。", {("气胸", "J93")}),
    ("右下肺斑片状模糊影，考虑炎症。", {("肺部炎症", "J18")}),
    ("心影增大，心胸比约0.56。", {("心影增大", "I51")}),
    ("主动脉弓迂曲钙化。", {("主动脉硬化", "I70")}),
    ("胸椎骨质增生。", {("胸椎退行性变", "M47")}),
    ("左肺上叶陈旧性肺结核。", {("陈旧性肺结核", "B90")}),
    ("双下肺间质性改变。", {("肺间质性改变", "J84")}),
    ("左下肺支气管扩张。", {("支气管扩张", "J47")}),
    ("纵隔内见多发肿大淋巴结。", {("纵隔/肺门淋巴结肿大", "R59")}),
    ("纵隔淋巴结肿大，较大者短径约12mm。", {("纵隔/肺门淋巴结肿大", "R59")}),
    (
        "两肺纹理增多，右肺上叶见一实性结节，大小约6mm×5mm。心影不大，主动脉弓迂曲。双侧肋膈角锐利。",
        {("肺纹理增多", "J98"), ("肺结节", "R91"), ("主动脉硬化", "I70")},
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_findings_and_categories(text: str, expected: set[tuple[str, str]]) -> None:
    assert _pairs(text) == expected


def test_nodule_size_count_and_category() -> None:
    (nodule,) = _own("两肺多发小结节，较大者位于右肺下叶，大小约0.7cm×0.5cm，Lung-RADS 3类。")
    assert nodule.name == "肺结节"
    assert nodule.attrs["size_mm"] == 7.0
    assert nodule.attrs["count"] == "多发"
    assert nodule.attrs["category"] == "Lung-RADS 3"


def test_largest_nodule_wins_across_sentences() -> None:
    (nodule,) = _own("右肺上叶见一结节，大小约4mm；左肺下叶见一结节，大小约9mm。")
    assert nodule.attrs["size_mm"] == 9.0


def test_part_solid_with_lung_rads_4a() -> None:
    (nodule,) = _own("右肺上叶部分实性结节，大小约1.2cm×1.0cm，Lung-RADS 4A类。")
    assert nodule.name == "肺部分实性结节"
    assert nodule.attrs["category"] == "Lung-RADS 4A"
    assert nodule.attrs["size_mm"] == 12.0


def test_pneumothorax_is_level_a() -> None:
    assert [f.critical for f in _own("左侧少量气胸。")] == ["A"]


def test_negated_list_with_enumeration_comma() -> None:
    assert _own("两肺未见渗出、结节及占位，未见胸腔积液、气胸。") == []
