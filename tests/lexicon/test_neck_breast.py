"""Thyroid, breast/axilla, neck lymph node and carotid wording (lexicon/neck_breast.yaml).

Short texts written for these tests in the style of Meinian 0101 (超声所见) and 0102 (超声提示); expected names and
ICD-10 categories follow ../shared/FINDINGS.md. Only findings of this area (id prefixes below) are compared, so that
other lexicon files cannot make these tests fail.
"""

from __future__ import annotations

import pytest

from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text

PREFIXES = ("thyroid_", "breast_", "neck_", "carotid_")
FINDING_ITEM = "超声所见"
CONCLUSION_ITEM = "超声提示"


def _mine(item: str, text: str):
    result = extract_text(default_kb(), item, text)
    return [f for f in result.findings if f.finding_id.startswith(PREFIXES)], result


def _codes(item: str, text: str) -> set[tuple[str, str]]:
    found, _ = _mine(item, text)
    return {(f.name, f.icd10[:3]) for f in found}


CASES = [
    # ---------------------------------------------------------------- thyroid
    ("甲状腺形态大小正常，右叶内见一个低回声结节，大小约6mm×4mm，边界清。", {("甲状腺结节", "E04")}),
    ("双侧甲状腺大小形态正常，左叶见一等回声结节，约0.8x0.5cm。", {("甲状腺结节", "E04")}),
    ("甲状腺右叶见一混合回声区，大小约12×9mm，周边可见血流。", {("甲状腺结节", "E04")}),
    ("甲状腺左叶内见一囊实性结节，大小约15mm×10mm。", {("甲状腺结节", "E04")}),
    ("甲状腺左叶见一类圆形无回声区，大小约3x2mm，后方回声增强。", {("甲状腺囊肿", "E04")}),
    ("甲状腺形态大小正常，实质回声欠均匀，未见明显异常回声。", {("甲状腺回声不均", "E06")}),
    ("甲状腺形态大小正常，边界清晰，内部回声分布稍欠均匀。", {("甲状腺回声不均", "E06")}),
    ("双侧甲状腺体积增大，回声弥漫性减低，呈网格样改变。", {("甲状腺肿大", "E04"), ("甲状腺弥漫性病变", "E06")}),
    ("甲状腺左叶见斑点状强回声，大小约2mm×1mm，后方伴声影。", {("甲状腺钙化灶", "E07")}),
    ("甲状腺右叶部分切除术后，残余腺体回声均匀。", {("甲状腺术后", "Z90")}),
    ("甲状腺右叶未显示（自述已切除），左叶未见明显异常。", {("甲状腺术后", "Z90")}),
    ("甲状腺右叶结节（多发）", {("甲状腺结节", "E04")}),
    ("甲状腺双叶回声不均匀", {("甲状腺回声不均", "E06")}),
    ("甲状腺弥漫性病变", {("甲状腺弥漫性病变", "E06")}),
    # ---------------------------------------------------------------- breast
    ("双侧乳腺腺体层增厚，内部结构紊乱，回声不均，未见异常血流。", {("乳腺增生", "N60")}),
    ("双侧乳腺腺体层轻度增厚,内部结构稍紊乱,回声欠均匀。", {("乳腺增生", "N60")}),
    ("双侧乳腺小叶增生", {("乳腺增生", "N60")}),
    ("右侧乳腺10点钟方向见一低回声区，大小约7mm×4mm，边界清。", {("乳腺结节", "N63")}),
    ("左侧乳腺外上象限见一无回声区，大小约5x4mm，后方回声增强。", {("乳腺囊肿", "N60")}),
    ("双乳腺腺体层增厚，回声减低，乳晕周围导管扩张，呈管状无回声区。", {("乳腺增生", "N60"), ("乳腺导管扩张", "N60")}),
    ("双侧乳腺层次结构清晰。右侧腋下见肿大淋巴结，大小约15mm×7mm，淋巴门消失。", {("腋下淋巴结肿大", "R59")}),
    ("双侧乳腺小叶增生左侧乳腺结节", {("乳腺增生", "N60"), ("乳腺结节", "N63")}),
    ("双腋下副乳", {("副乳", "Q83")}),
    ("右乳头外上象限可见一低回声结节，大小约5mm×3mm，边界清晰。", {("乳腺结节", "N63")}),
    # ---------------------------------------------------------------- neck lymph nodes
    ("甲状腺大小形态正常。左侧颈部可见低回声区，大小约18x8mm，呈椭圆形。", {("颈部淋巴结肿大", "R59")}),
    # ---------------------------------------------------------------- carotid
    ("双侧颈总动脉管径对称，右侧颈总动脉分叉处探及低回声斑块，大小约6.8mm×1.6mm。", {("颈动脉斑块", "I65")}),
    ("双侧颈动脉内径正常，左侧颈总动脉内中膜增厚，厚约1.3mm。", {("颈动脉内中膜增厚", "I65")}),
    ("双侧颈总动脉内膜-中膜增厚，欠平滑，IMT约1.2mm。", {("颈动脉内中膜增厚", "I65")}),
    ("双侧颈总动脉管径对称，内-中膜（IMT）厚度0.14cm（左侧）。", {("颈动脉内中膜增厚", "I65")}),
    ("双侧颈动脉内-中膜毛糙", {("颈动脉内中膜毛糙", "I65")}),
    ("双侧颈总动脉内壁不规则增厚，内膜面不光滑，内见多个混合回声斑块。", {("颈动脉斑块", "I65"), ("颈动脉内中膜增厚", "I65")}),
    ("左侧颈总动脉可见多个斑块，管腔狭窄率约60%。", {("颈动脉斑块", "I65"), ("颈动脉狭窄（≥50%）", "I65")}),
    ("右侧锁骨下动脉起始处可见大小约5.3x2.8mm强回声斑块。", {("颈动脉斑块", "I65")}),
    ("右侧椎动脉内径细", {("椎动脉内径细", "Q28")}),
]

NORMAL = [
    "双侧甲状腺大小形态正常，包膜光整，实质回声均匀，未见明显异常回声。CDFI：血流显示未见异常。",
    "甲状腺形态大小正常，边界清晰，内部回声分布尚均匀，未见明显异常回声。双侧颈部未探及明显肿大淋巴结回声。",
    "双侧乳腺层次结构清晰，内部回声分布均匀，未见明显异常回声。",
    "双侧乳腺轮廓清晰，层次清楚，腺体无增厚，分布均匀，腺管无扩张。双侧腋下未见肿大淋巴结。",
    "双乳腺腺组织萎缩，未见明显异常回声。",
    "双侧颈总动脉管径对称，内中膜不增厚,血流速度正常。双侧颈内、外动脉管径对称，管壁回声正常。",
    "双侧颈部各动脉内径正常，内膜-中膜薄而平滑，连续性好，管腔内未见异常回声。",
    "甲状腺彩超（双侧）未发现明显异常",
    "乳腺及腋下淋巴结B超（3楼B超室）未发现明显异常",
    "哺乳期乳腺",
    "双侧颈动脉走行正常，内膜面光滑，中-内膜不厚，未见斑块样回声。",
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_findings(text: str, expected: set[tuple[str, str]]) -> None:
    item = CONCLUSION_ITEM if "，" not in text and "。" not in text else FINDING_ITEM
    assert _codes(item, text) == expected


@pytest.mark.parametrize("text", NORMAL)
def test_normal_texts_have_no_finding(text: str) -> None:
    found, _ = _mine(FINDING_ITEM, text)
    assert found == [], [(f.name, f.attrs) for f in found]


def test_thyroid_nodule_attributes() -> None:
    found, _ = _mine(FINDING_ITEM, "甲状腺双叶内见多个低回声结节，最大位于右叶，大小约12mm×8mm。小结：甲状腺双叶结节（多发）（TI-RADS 3类）")
    (nodule,) = [f for f in found if f.finding_id == "thyroid_nodule"]
    assert nodule.attrs["size_mm"] == 12.0
    assert nodule.attrs["count"] == "多发"
    assert nodule.attrs["category"] == "TI-RADS 3"


def test_thyroid_is_one_finding_for_the_whole_gland() -> None:
    found, _ = _mine(FINDING_ITEM, "甲状腺右叶见一低回声结节，大小约4x3mm。甲状腺左叶见一低回声结节，大小约6x5mm。")
    nodules = [f for f in found if f.finding_id == "thyroid_nodule"]
    assert len(nodules) == 1
    assert nodules[0].attrs["side"] == "双侧"
    assert nodules[0].attrs["size_mm"] == 6.0


def test_c_tirads_4a_category() -> None:
    found, _ = _mine(FINDING_ITEM, "甲状腺右叶见一极低回声结节，大小约9x8mm，纵横比>1，C-TIRADS 4A类。")
    (nodule,) = [f for f in found if f.finding_id == "thyroid_nodule"]
    assert nodule.attrs["category"] == "C-TIRADS 4A"


def test_breast_nodules_per_side_with_birads() -> None:
    found, _ = _mine(
        FINDING_ITEM,
        "右侧乳腺2点见低回声结节，大小约8x5mm，BI-RADS 4a类。左侧乳腺10点见低回声结节，大小约4x3mm，BI-RADS 3类。",
    )
    by_side = {f.attrs.get("side"): f for f in found if f.finding_id == "breast_nodule"}
    assert set(by_side) == {"左", "右"}
    assert by_side["右"].attrs["category"] == "BI-RADS 4A"
    assert by_side["左"].attrs["category"] == "BI-RADS 3"


def test_carotid_plaque_per_side() -> None:
    found, _ = _mine(CONCLUSION_ITEM, "右侧颈总动脉斑块（硬斑）左侧颈总动脉斑块（软斑）")
    sides = sorted(f.attrs.get("side") for f in found if f.finding_id == "carotid_plaque")
    assert sides == ["右", "左"]


def test_uncertain_breast_nodule_is_kept_and_flagged() -> None:
    found, _ = _mine(CONCLUSION_ITEM, "右侧乳腺结节可能")
    (nodule,) = [f for f in found if f.finding_id == "breast_nodule"]
    assert nodule.uncertain


def test_negated_nodule_and_incomplete() -> None:
    found, result = _mine(FINDING_ITEM, "甲状腺显示不清，未见明显结节。")
    assert found == []
    assert result.incomplete


def test_comet_tail_colloid_is_not_a_separate_calcification() -> None:
    codes = _codes(FINDING_ITEM, "甲状腺左叶见一囊性结节，大小约3x2mm，其内可见点状强回声后伴彗星尾征。")
    # 囊性结节 is read as a cyst, as the hand-labelled gold set (tests/data/gold) labels it; both are E04.
    assert codes == {("甲状腺囊肿", "E04")}


# Heading-style category lists, one category per side (乳腺BI-RADS分类：右乳3类，左乳4a类), and a side-specific category
# after a bilateral finding: ACR BI-RADS 5th ed. and C-TIRADS 2020 manage a patient by the highest category, so the
# finding must carry the highest listed, whichever side it is on.
@pytest.mark.parametrize(
    ("text", "finding", "category"),
    [
        ("乳腺BI-RADS分类：右乳3类，左乳2类", "breast_nodule", "BI-RADS 3"),
        ("双乳低回声结节，乳腺BI-RADS分类：右乳2类，左乳4b类", "breast_nodule", "BI-RADS 4B"),
        ("双乳低回声结节。乳腺BI-RADS分类：右乳4a类，左乳2类", "breast_nodule", "BI-RADS 4A"),
        ("甲状腺双叶结节。TI-RADS分级：右叶3类，左叶4a类", "thyroid_nodule", "TI-RADS 4A"),
    ],
)
def test_listed_categories_give_the_highest(text: str, finding: str, category: str) -> None:
    found, _ = _mine(CONCLUSION_ITEM, text)
    categories = {f.attrs.get("category") for f in found if f.finding_id == finding}
    assert categories == {category}, [(f.finding_id, f.attrs) for f in found]
