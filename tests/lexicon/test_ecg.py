"""ECG conclusions (table 1001, item 心电图): findings, ICD-10 categories, negation and attributes.

Texts are composed in the style of machine/physician ECG conclusions (run-together statements, rate in brackets,
"大致正常心电图" tails); expected names and categories follow ../shared/FINDINGS.md.
"""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.kb.loader import default_kb
from zhujian.pipeline.extract import extract_text

ITEM = "心电图"
OWN = ("ecg_", "pe_")


def _own(text: str, item: str = ITEM) -> list[Any]:
    result = extract_text(default_kb(), item, text)
    return [f for f in result.findings if f.finding_id.startswith(OWN)]


def _pairs(text: str, item: str = ITEM) -> set[tuple[str, str]]:
    return {(f.name, f.icd10[:3]) for f in _own(text, item)}


NORMAL = [
    "窦性心律正常心电图",
    "窦性心律，正常心电图。",
    "窦性心律大致正常心电图",
    "正常范围心电图",
    "心电图未发现明显异常",
    "窦性心律",
    "1.窦性心律  2.正常心电图",
    "窦性心律建议复查心电图",
    "详见纸质报告",
    "窦性心律V1  V3  呈rS型大致正常心电图",
    "窦性心律Ⅰ  avL  呈qR型",
]


@pytest.mark.parametrize("text", NORMAL)
def test_normal_texts_give_no_finding(text: str) -> None:
    assert extract_text(default_kb(), ITEM, text).findings == []


CASES: list[tuple[str, set[tuple[str, str]]]] = [
    ("窦性心动过缓(52次/分)", {("窦性心动过缓", "R00")}),
    ("窦性心动过速(112次/分)大致正常心电图", {("窦性心动过速", "R00")}),
    ("窦性心律不齐", {("窦性心律不齐", "I49")}),
    ("窦性心动过缓伴不齐(55次/分)", {("窦性心动过缓", "R00"), ("窦性心律不齐", "I49")}),
    ("窦性心律心电轴左偏大致正常心电图", {("心电轴左偏", "R94")}),
    ("窦性心律心电轴右偏正常心电图", {("心电轴右偏", "R94")}),
    ("窦性心律T波低平", {("T波改变", "R94")}),
    ("窦性心律ⅡⅢaVFT波 低平", {("T波改变", "R94")}),
    ("窦性心律TV1＞TV5", {("T波改变", "R94")}),
    ("窦性心律ST-T轻度改变", {("ST-T改变", "R94")}),
    ("窦性心律ST段压低", {("ST段压低", "R94")}),
    ("窦性心律ST段轻度抬高大致正常心电图", {("ST段抬高", "R94")}),
    ("窦性心律部分导联ST段改变", {("ST段改变", "R94")}),
    ("窦性心律肢体导联低电压", {("低电压", "R94")}),
    ("窦性心律左室高电压", {("左室高电压", "R94")}),
    ("窦性心律V1 R/S ＞1", {("右室高电压", "R94")}),
    ("窦性心律Q波异常", {("异常Q波", "R94")}),
    ("窦性心律V1  呈QS型R波递增不良", {("异常Q波", "R94"), ("R波递增不良", "R94")}),
    ("窦性心律顺钟向转位", {("顺钟向转位", "R94")}),
    ("窦性心律逆钟向转位", {("逆钟向转位", "R94")}),
    ("窦性心律偶发房性早搏", {("房性早搏", "I49")}),
    ("窦性心律偶发室性期前收缩", {("室性早搏", "I49")}),
    ("窦性心律频发室性早搏二联律", {("频发室性早搏", "I49")}),
    ("窦性心律偶发交界性早搏", {("交界性早搏", "I49")}),
    ("心房颤动(心室率83次/分)", {("心房颤动", "I48")}),
    ("窦性心律Ⅰ度房室传导阻滞", {("一度房室传导阻滞", "I44")}),
    ("窦性心动过缓(49次/分)Ⅱ度Ⅰ型房室传导阻滞", {("窦性心动过缓", "R00"), ("二度房室传导阻滞", "I44")}),
    ("窦性心律不完全性右束支传导阻滞", {("不完全性右束支传导阻滞", "I45")}),
    ("窦性心律完全性右束支传导阻滞心电轴右偏", {("完全性右束支传导阻滞", "I45"), ("心电轴右偏", "R94")}),
    ("窦性心律完全性左束支传导阻滞", {("完全性左束支传导阻滞", "I45")}),
    ("窦性心律心电轴左偏左前分支传导阻滞", {("心电轴左偏", "R94"), ("左前分支传导阻滞", "I44")}),
    ("窦性心律预激综合征（B型）", {("预激综合征", "I45")}),
    ("窦性心律短P-R间期", {("短P-R间期", "R94")}),
    ("窦性心律短P-R间期综合征大致正常心电图", {("短P-R间期综合征", "I45")}),
    ("窦性心律早期复极综合征", {("早期复极", "R94")}),
    ("窦性心律P波增宽", {("P波异常", "R94")}),
    ("窦性心律QT间期延长", {("QT间期延长", "R94")}),
    ("窦性心律陈旧性下壁心肌梗塞", {("陈旧性心肌梗死", "I25")}),
    # An ECG describes ischaemic ST-T changes; it does not diagnose ischaemic heart disease (R94, not I25).
    ("窦性心律心肌供血不足", {("心肌缺血", "R94")}),
    ("心室起搏心律", {("起搏器心电图", "Z95")}),
    ("窦性心律左心室肥大伴劳损ST-T改变", {("左心室肥大", "I51"), ("ST-T改变", "R94")}),
    ("冠状窦性心律T波改变", {("异位心律", "I49"), ("T波改变", "R94")}),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_findings_and_categories(text: str, expected: set[tuple[str, str]]) -> None:
    assert _pairs(text) == expected


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("窦性心动过缓(57次/分)", 57),
        ("窦性心动过缓   HR47次/分", 47),
        ("窦性心动过缓 HR 52 次/分心电轴右偏", 52),
        ("心房颤动(心室率111次/分)", 111),
    ],
)
def test_rate_attribute(text: str, rate: int) -> None:
    found = _own(text)
    assert found
    assert found[0].attrs["rate_bpm"] == rate


@pytest.mark.parametrize(
    "text",
    [
        "窦性心律可能急性下壁心肌梗塞",
        "窦性心动过缓(51次/分)Ⅲ度房室传导阻滞交界性逸搏心律",
        "窦性心律阵发性室性心动过速",
        "心室颤动",
        "窦性心律ST段弓背向上抬高",
        "窦性心律T波高尖，提示高血钾",
        "窦性停搏，最长RR间期3.6秒",
    ],
)
def test_level_a_findings_are_flagged_critical(text: str) -> None:
    assert any(f.critical == "A" for f in _own(text))


def test_uncertain_statement_is_kept_and_marked() -> None:
    found = _own("窦性心律疑似左前分支传导阻滞")
    assert [(f.name, f.uncertain) for f in found] == [("左前分支传导阻滞", True)]


def test_short_pause_is_not_a_long_pause() -> None:
    names = {f.name for f in _own("窦性停搏，RR间期2.5秒")}
    assert names == {"窦性停搏"}


def test_normal_ecg_tail_does_not_negate_the_finding_before_it() -> None:
    assert _pairs("窦性心动过缓伴不齐(58次/分)正常心电图") == {
        ("窦性心动过缓", "R00"),
        ("窦性心律不齐", "I49"),
    }


def test_unspecified_myocardial_infarction_is_separate_from_old_one() -> None:
    assert _pairs("窦性心律Q波异常前壁心肌梗死") == {("异常Q波", "R94"), ("心肌梗死（分期未定）", "I25")}
    assert _pairs("窦性心律前壁心肌梗死可能陈旧性下壁心肌梗塞") == {("陈旧性心肌梗死", "I25")}


def test_echo_text_rhythm_statements() -> None:
    assert _pairs("各房室腔大小正常。检查过程中，心律不齐。", "超声所见") == {("心律不齐", "I49")}
    assert _pairs("左房增大心房颤动二尖瓣反流(中度)", "超声提示") == {("心房颤动", "I48")}


def test_auscultation_rate_in_internal_medicine_text() -> None:
    found = _own("心率46次/分，律不齐，各瓣膜听诊区未闻及杂音。", "内科")
    assert {(f.name, f.icd10[:3]) for f in found} == {("心动过缓", "R00"), ("心律不齐", "I49")}
    assert next(f for f in found if f.name == "心动过缓").attrs["rate_bpm"] == 46


def test_health_status_table_gives_nothing() -> None:
    for text in ("健康", "亚健康", ""):
        assert extract_text(default_kb(), "健康状况", text).findings == []
