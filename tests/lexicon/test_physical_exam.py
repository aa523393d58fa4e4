"""Physical-examination text (items 内科, 外科, 耳鼻喉科, 口腔科, 妇科): findings, negation of template lists."""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text

OWN = ("pe_", "ecg_")


def _own(item: str, text: str) -> list[Any]:
    return [f for f in extract_text(default_kb(), item, text).findings if f.finding_id.startswith(OWN)]


def _pairs(item: str, text: str) -> set[tuple[str, str]]:
    return {(f.name, f.icd10[:3]) for f in _own(item, text)}


NORMAL = [
    (
        "内科",
        "心率78次/分，律齐，各瓣膜听诊区未闻及病理性杂音，双肺呼吸音清，未闻及干、湿性啰音，"
        "腹平软，无压痛、反跳痛及肌紧张，肝脾肋下未触及，双下肢无水肿。",
    ),
    ("内科", "腹软，全腹无压痛，肝区叩痛(-)，肾区叩击痛(-)，Murphy征阴性。"),
    (
        "外科",
        "皮肤巩膜无黄染，浅表淋巴结未触及肿大，甲状腺未触及肿大，脊柱四肢无畸形，双下肢无静脉曲张，"
        "肛门指检未触及肿物，前列腺不大。",
    ),
    ("外科", "双下肢无水肿、静脉曲张。皮肤无皮疹、出血点。"),
    ("耳鼻喉科", "外耳道通畅，鼓膜完整，鼻中隔居中，鼻甲不大，咽部无充血，扁桃体无肿大。"),
    ("口腔科", "口腔黏膜未见异常，牙列完整，无龋齿，牙石(-)，牙龈无红肿。"),
    ("妇科", "外阴正常，阴道通畅，宫颈光滑，子宫正常大小，双附件区未及异常。"),
]


@pytest.mark.parametrize(("item", "text"), NORMAL)
def test_normal_templates_give_no_finding(item: str, text: str) -> None:
    assert extract_text(default_kb(), item, text).findings == []


CASES: list[tuple[str, str, set[tuple[str, str]]]] = [
    ("内科", "心尖部可闻及3/6级收缩期杂音。", {("心脏杂音", "R01")}),
    ("内科", "双肺呼吸音粗，右下肺可闻及湿啰音。", {("肺部啰音", "R09")}),
    ("内科", "肝肋下2cm，质软。", {("肝大", "R16")}),
    ("内科", "腹软，右上腹压痛，Murphy征阳性。", {("腹部压痛", "R10")}),
    ("内科", "双下肢凹陷性水肿。", {("水肿", "R60")}),
    ("内科", "心率108次/分，律齐。", {("心动过速", "R00")}),
    ("外科", "脊柱侧弯。左下肢静脉曲张。混合痔。", {("脊柱侧弯", "M41"), ("下肢静脉曲张", "I83"), ("痔", "I84")}),
    ("外科", "右侧腹股沟斜疝。", {("腹股沟疝", "K40")}),
    ("外科", "直肠指检：前列腺Ⅱ度增大，中央沟变浅，未触及结节。", {("前列腺增大（指检）", "N40")}),
    ("外科", "右侧腹股沟淋巴结肿大。", {("浅表淋巴结肿大", "R59")}),
    ("外科", "背部皮脂腺囊肿，面部色素痣。", {("皮脂腺囊肿", "L72"), ("色素痣", "D22")}),
    ("外科", "双手湿疹。足癣。", {("湿疹/皮炎", "L30"), ("皮肤癣菌病", "B35")}),
    ("耳鼻喉科", "慢性咽炎，咽后壁淋巴滤泡增生。", {("慢性咽炎", "J31")}),
    ("耳鼻喉科", "扁桃体Ⅱ度肿大。", {("扁桃体肿大", "J35")}),
    ("耳鼻喉科", "鼻中隔右偏，下鼻甲肥大。", {("鼻中隔偏曲", "J34"), ("鼻甲肥大", "J34")}),
    ("耳鼻喉科", "右外耳道耵聍栓塞，左鼓膜内陷。", {("外耳道耵聍", "H61"), ("鼓膜内陷/混浊", "H73")}),
    ("耳鼻喉科", "左鼓膜紧张部穿孔。", {("鼓膜穿孔", "H72")}),
    ("耳鼻喉科", "双耳听力下降。", {("听力下降", "H91")}),
    ("耳鼻喉科", "过敏性鼻炎。", {("过敏性鼻炎", "J30")}),
    ("口腔科", "龋齿，牙结石（+），牙龈炎。", {("龋齿", "K02"), ("牙结石", "K03"), ("牙龈炎", "K05")}),
    ("口腔科", "左下8阻生齿，右上6缺失。", {("阻生齿", "K01"), ("牙列缺损", "K08")}),
    ("口腔科", "牙周炎，多颗牙齿松动。", {("牙周炎", "K05")}),
    ("妇科", "分泌物量多，呈豆腐渣样。", {("霉菌性阴道炎", "B37")}),
    ("妇科", "阴道黏膜充血，白带增多。", {("阴道炎", "N76")}),
    ("妇科", "宫颈轻度糜烂。", {("宫颈糜烂", "N86")}),
    ("妇科", "宫颈息肉。", {("宫颈息肉", "N84")}),
    ("妇科", "外阴白斑。", {("外阴白斑", "N90")}),
    ("妇科", "子宫Ⅰ度脱垂。", {("子宫脱垂/阴道壁膨出", "N81")}),
]


@pytest.mark.parametrize(("item", "text", "expected"), CASES)
def test_findings_and_categories(item: str, text: str, expected: set[tuple[str, str]]) -> None:
    assert _pairs(item, text) == expected


@pytest.mark.parametrize(
    ("item", "text"),
    [
        ("内科", "右下腹压痛、反跳痛(+)，麦氏点压痛。"),
        ("内科", "左侧呼吸音消失。"),
        ("耳鼻喉科", "鼻腔活动性出血。"),
        ("耳鼻喉科", "喉头水肿。"),
        ("妇科", "宫颈举痛，后穹窿饱满。"),
    ],
)
def test_level_a_signs(item: str, text: str) -> None:
    assert any(f.critical == "A" for f in _own(item, text))


def test_acute_abdomen_replaces_plain_tenderness() -> None:
    assert _pairs("内科", "心率156次/分，律齐。右下腹压痛、反跳痛(+)。") == {
        ("心动过速", "R00"),
        ("急腹症体征", "R10"),
    }


def test_rate_attribute_for_rule() -> None:
    (brady,) = [f for f in _own("内科", "心率42次/分，律齐。") if f.name == "心动过缓"]
    assert brady.attrs["rate_bpm"] == 42


def test_negation_inside_palpation_phrase() -> None:
    assert _own("外科", "肛门指检未触及肿物，前列腺未触及结节。") == []


def test_adnexal_mass_keeps_side() -> None:
    found = [f for f in _own("妇科", "左附件区可触及一约5cm包块。") if f.name.startswith("附件区包块")]
    assert [(f.icd10[:3], f.attrs.get("side"), f.attrs.get("size_mm")) for f in found] == [("N83", "左", 50.0)]


def test_breast_lump_on_palpation() -> None:
    found = [f for f in _own("外科", "左乳外上象限可触及一约2cm×1.5cm肿块，质硬。")]
    assert [(f.name, f.icd10[:3], f.attrs.get("size_mm")) for f in found] == [("乳腺肿块（触诊）", "N63", 20.0)]
