"""Echocardiography and gynecological / pelvic ultrasound wording (lexicon/heart_gyn.yaml).

Short texts written for these tests in the style of Meinian 0101 (超声所见) and 0102 (超声提示); expected names and
ICD-10 categories follow ../shared/FINDINGS.md (trivial/physiological regurgitation is not a finding; E峰<A峰 is
左室舒张功能减低 I51; 宫内节育器位置正常 and 绝经后子宫 are not findings). Only findings of this area are compared.
"""

from __future__ import annotations

import pytest

from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text

PREFIXES = ("heart_", "gyn_")
FINDING_ITEM = "超声所见"
CONCLUSION_ITEM = "超声提示"


def _mine(item: str, text: str):
    result = extract_text(default_kb(), item, text)
    return [f for f in result.findings if f.finding_id.startswith(PREFIXES)], result


def _codes(item: str, text: str) -> set[tuple[str, str]]:
    found, _ = _mine(item, text)
    return {(f.name, f.icd10[:3]) for f in found}


HEART_CASES = [
    ("各房室腔大小正常，二尖瓣下正向双峰层流血流频谱，E峰<A峰。CDFI:各瓣无反流", {("左室舒张功能减低", "I51")}),
    ("二尖瓣口血流频谱E/A<1，各瓣膜未见异常。", {("左室舒张功能减低", "I51")}),
    ("左心室舒张功能减低", {("左室舒张功能减低", "I51")}),
    ("左室顺应性减低", {("左室舒张功能减低", "I51")}),
    ("CDFI:二尖瓣轻度返流、三尖瓣轻度返流", {("二尖瓣反流", "I34"), ("三尖瓣反流", "I36")}),
    ("三尖瓣反流(轻度)", {("三尖瓣反流", "I36")}),
    ("二尖瓣三尖瓣少量反流", {("二尖瓣反流", "I34"), ("三尖瓣反流", "I36")}),
    ("CDFI:主动脉瓣少量反流，余各瓣无返流。", {("主动脉瓣反流", "I35")}),
    ("舒张期右室流出道内见以红色为主的五彩反流束及反流频谱。", {("肺动脉瓣反流", "I37")}),
    ("收缩期左房内见以蓝色为主的五彩反流束及负向频谱。", {("二尖瓣反流", "I34")}),
    ("CDFI:三尖瓣轻度返流，余瓣无反流。E峰>A峰。", {("三尖瓣反流", "I36")}),
    ("左房增大，余各房室腔大小正常。", {("左房增大", "I51")}),
    ("室间隔增厚，舒张期约13mm，左室后壁厚度正常。", {("室间隔增厚", "I51")}),
    ("升主动脉增宽，内径约38mm。", {("升主动脉增宽", "I77")}),
    ("主动脉壁回声增厚增强，重搏波消失。", {("主动脉硬化", "I70")}),
    ("心包腔内可见液性暗区，深约5mm。", {("心包积液", "I31")}),
    ("心功能测值：EF：42%，FS：21%。", {("左室收缩功能减低", "I50")}),
    ("主动脉瓣钙化二尖瓣反流(轻度)", {("主动脉瓣病变", "I35"), ("二尖瓣反流", "I34")}),
]

GYN_CASES = [
    ("子宫形态大小正常，子宫前壁可见一个低回声区，大小约23mm×18mm。双侧附件未见明显异常。", {("子宫肌瘤", "D25")}),
    ("子宫:子宫肌瘤(多发)左附件、右附件未发现明显异常", {("子宫肌瘤", "D25")}),
    ("子宫形态大小正常，肌层回声均匀，宫颈见多个类圆形无回声区，最大约6mmx5mm。", {("宫颈纳氏囊肿", "N88")}),
    ("子宫:宫颈囊肿（多发）左附件、右附件未发现明显异常", {("宫颈纳氏囊肿", "N88")}),
    ("子宫形态大小正常，肌层回声欠均匀，内膜居中。", {("子宫肌层回声不均", "N85")}),
    ("子宫:子宫内膜增厚左附件、右附件未发现明显异常", {("子宫内膜增厚", "N85")}),
    ("子宫:子宫腺肌症", {("子宫腺肌症", "N80")}),
    ("绝经后子宫宫腔积液", {("宫腔积液", "N85")}),
    ("子宫:宫内节育器下移左附件、右附件未发现明显异常", {("节育器位置异常", "T83")}),
    ("子宫:子宫未探及（自述已切除）左附件、右附件未发现明显异常", {("子宫切除术后", "Z90")}),
    ("子宫大小正常。左侧卵巢内见大小约26x17mm薄壁囊性无回声区，边界清。", {("附件囊肿", "N83")}),
    ("右附件:右侧卵巢囊肿", {("附件囊肿", "N83")}),
    ("左侧卵巢巧克力囊肿可能", {("卵巢巧克力囊肿", "N80")}),
    ("子宫大小形态正常。盆腔探及不规则无回声区深约15mm。", {("盆腔积液", "R19")}),
    ("子宫:盆腔积液左附件、右附件未发现明显异常", {("盆腔积液", "R19")}),
    ("子宫直肠窝内探及液性暗区，范围约22×18mm。", {("盆腔积液", "R19")}),
    ("子宫:子宫内膜息肉", {("子宫内膜息肉", "N84")}),
    ("宫内早孕", {("宫内妊娠", "Z33")}),
    ("右侧附件区探及一囊实性混合回声区，大小约13x10mm。", {("附件区包块", "N83")}),
]

NORMAL = [
    "各房室腔大小正常，主、肺动脉内径不宽，各瓣膜形态结构及启闭运动正常。室间隔、左室后壁厚度及搏幅正常。房室间隔未见连续中断。心包腔未见液性暗区。",
    "各房室腔大小正常，主动脉活动幅度正常，重博波存在，室间隔，左室后壁无增厚，二尖瓣下录得正向双峰层流血流频谱，E峰>A峰。CDFI:各瓣无反流",
    "CDFI:二尖瓣及三尖瓣轻微反流。PW：二尖瓣口舒张期血流频谱E峰>A峰。",
    "彩色多普勒血流显示：三尖瓣微量反流。",
    "肺动脉瓣瓣口探及束状正常生理反流。",
    "心脏彩超未发现明显异常",
    "子宫大小、形态正常，包膜完整，轮廓清晰，宫腔线居中，宫体回声均匀。双侧附件未见明显异常。",
    "子宫体积缩小，轮廓光整，实质回声均匀，内膜不厚，未见明显异常回声。",
    "子宫形态大小正常，轮廓光整，实质回声均匀，宫内节育器位置正常。",
    "子宫:宫内节育器位置正常左附件、右附件未发现明显异常",
    "子宫:绝经后子宫膀胱、左附件、右附件未发现明显异常",
    "盆腔未见明显液性暗区。",
    "子宫、左附件、右附件未发现明显异常",
    "右侧卵巢内见一优势卵泡，大小约18x15mm。",
]


@pytest.mark.parametrize(("text", "expected"), HEART_CASES + GYN_CASES)
def test_findings(text: str, expected: set[tuple[str, str]]) -> None:
    item = FINDING_ITEM if ("，" in text or "。" in text) else CONCLUSION_ITEM
    assert _codes(item, text) == expected


@pytest.mark.parametrize("text", NORMAL)
def test_normal_texts_have_no_finding(text: str) -> None:
    item = FINDING_ITEM if ("，" in text or "。" in text) else CONCLUSION_ITEM
    found, _ = _mine(item, text)
    assert found == [], [(f.name, f.attrs) for f in found]


def test_regurgitation_grade() -> None:
    found, _ = _mine(CONCLUSION_ITEM, "主动脉瓣反流(中度)")
    (ar,) = found
    assert ar.attrs["grade"] == "中度"


def test_adnexal_cysts_per_side_with_size() -> None:
    found, _ = _mine(
        FINDING_ITEM,
        "子宫大小正常。左侧附件区见大小约52x40mm无回声区，壁薄。右侧卵巢内见大小约20x18mm无回声区，边界清。",
    )
    by_side = {f.attrs.get("side"): f for f in found if f.finding_id == "gyn_adnexal_cyst"}
    assert set(by_side) == {"左", "右"}
    assert by_side["左"].attrs["size_mm"] == 52.0


def test_myoma_count_and_size() -> None:
    found, _ = _mine(FINDING_ITEM, "子宫增大，肌层可见多个低回声区，最大约35mm×30mm，边界清。")
    by_id = {f.finding_id: f for f in found}
    assert by_id["gyn_myoma"].attrs["count"] == "多发"
    assert by_id["gyn_myoma"].attrs["size_mm"] == 35.0
    assert "gyn_uterus_enlarged" in by_id


def test_incomplete_adnexa() -> None:
    found, result = _mine(FINDING_ITEM, "子宫体积缩小，轮廓光整，内膜不厚。双侧卵巢显示不清。")
    assert found == []
    assert result.incomplete


def test_uncertain_myoma() -> None:
    found, _ = _mine(CONCLUSION_ITEM, "子宫肌瘤可能")
    (myoma,) = found
    assert myoma.uncertain


def test_ecg_lvh_is_not_an_echo_finding() -> None:
    found, _ = _mine("心电图", "窦性心律左心室肥厚T波改变")
    assert found == []
