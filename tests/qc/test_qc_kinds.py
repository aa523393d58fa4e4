"""Each QC issue kind on clinically grounded examples, and the clean counterpart that must raise nothing.

Values: TG ≥ 1.7 mmol/L high and ≥ 5.6 class B (中国血脂管理指南 2023); K ≤ 2.8 mmol/L class A critical (2019 consensus
typical list, CLINICAL.md §6.2); Hb < 120 g/L anaemia in men (CLINICAL.md §5.7); UA > 420 µmol/L hyperuricaemia;
FPG 3.9–6.1 mmol/L normal (中国2型糖尿病防治指南 2020), 1 mg/dL glucose = 0.0555 mmol/L.
"""

from __future__ import annotations

from typing import Any

import pytest
from qc_helpers import make_record

from zhujian.kb.loader import KnowledgeBase
from zhujian.kb.schema import QcCenterSettings
from zhujian.qc import qc_text

FATTY_LIVER = {"肝脏": "肝脏形态大小正常，实质回声细密增强，后方回声衰减，提示脂肪肝（中度）"}
LEFT_KIDNEY_CYST = {"超声提示": "左肾囊肿，大小约12x10mm"}
# Real Meinian ultrasound conclusions (texts_dev.csv, table 0102): advice and the next diagnosis run together.
MEINIAN_ADVICE = "肝:肝囊肿可能,建议定期检查脂肪肝（中度）胆:胆囊壁毛糙胰、脾、右肾、左肾未发现明显异常"
MEINIAN_NEGATION = "肝:脂肪肝趋势胆:胆囊未探及（自述已切除）右肾:右肾囊肿左肾:左肾囊肿胰、脾未发现明显异常"

# (case, record arguments, physician text, expected kind, expected `conclusion` of that issue or None to skip)
POSITIVE: list[tuple[str, dict[str, Any], str, str, str | None]] = [
    ("lipids called normal with TG 5.4", {"items": {"甘油三酯": 5.4}}, "1. 血脂正常", "contradiction", "血脂正常"),
    ("TG called low with TG 5.4", {"items": {"甘油三酯": 5.4}}, "1. 甘油三酯偏低", "contradiction", "甘油三酯偏低"),
    ("fatty liver denied", {"texts": FATTY_LIVER}, "1. 无脂肪肝", "contradiction", "无脂肪肝"),
    ("uncontrolled hypertension called controlled", {"items": {"收缩压": 156, "舒张压": 96}, "history": ["高血压"]},
     "1. 高血压病，血压控制达标，建议继续服药", "contradiction", "高血压病"),
    ("liver called normal with fatty liver", {"texts": FATTY_LIVER}, "1. 肝胆脾胰未见明显异常", "contradiction", None),
    ("TG quoted wrong", {"items": {"甘油三酯": 2.85}}, "1. 高甘油三酯血症：甘油三酯 3.85 mmol/L，建议低脂饮食",
     "value_mismatch", "高甘油三酯血症"),
    ("glucose quoted wrong in mg/dL", {"items": {"空腹血糖": 7.0}}, "1. 血糖升高：空腹血糖 160 mg/dL，建议内分泌科复查",
     "value_mismatch", "血糖升高"),
    ("blood pressure pair quoted wrong", {"items": {"收缩压": 156, "舒张压": 96}, "history": ["高血压"]},
     "1. 高血压病：血压 146/96 mmHg，建议心内科随访", "value_mismatch", "高血压病"),
    ("prostate for a woman", {"sex": "female"}, "1. 前列腺增生", "sex_mismatch", "前列腺增生"),
    ("uterus for a man", {"sex": "male"}, "1. 子宫肌瘤", "sex_mismatch", "子宫肌瘤"),
    ("right for a left kidney cyst", {"texts": LEFT_KIDNEY_CYST}, "1. 右肾囊肿", "side_mismatch", "右肾囊肿"),
    ("anaemia with Hb 150", {"items": {"血红蛋白": 150}}, "1. 贫血", "unsupported", "贫血"),
    ("hyperuricaemia with UA 330", {}, "1. 高尿酸血症", "unsupported", "高尿酸血症"),
    ("gout with a denied history and UA 330", {"history": ["否认痛风"]}, "1. 痛风", "unsupported", "痛风"),
    ("hypertriglyceridaemia with TG 1.2 beside high cholesterol", {"items": {"总胆固醇": 6.8}},
     "1. 高甘油三酯血症", "unsupported", "高甘油三酯血症"),
    ("critical potassium not mentioned", {"items": {"钾": 2.6}}, "1. 未见明显异常", "missed", "严重低钾血症"),
    ("fatty liver not mentioned", {"texts": FATTY_LIVER, "items": {"甘油三酯": 2.4}},
     "1. 血脂异常，建议低脂饮食", "missed", "脂肪肝"),
    ("same conclusion twice", {"texts": FATTY_LIVER}, "1. 脂肪肝\n2. 胆囊息肉\n3. 脂肪肝", "duplicate", "脂肪肝"),
    ("class A without advice", {"items": {"钾": 2.6}}, "1. 低钾血症", "missing_advice", "低钾血症"),
]

# The same records, correctly written: no issue at all.
CLEAN: list[tuple[str, dict[str, Any], str]] = [
    ("TG 5.4 as 高甘油三酯血症 with value", {"items": {"甘油三酯": 5.4}}, "1. 高甘油三酯血症：TG 5.4 mmol/L，建议低脂饮食"),
    ("TG 5.4 as 血脂异常", {"items": {"甘油三酯": 5.4}}, "1、血脂异常"),
    ("TG 2.85 quoted rounded", {"items": {"甘油三酯": 2.85}}, "1. 血脂偏高：甘油三酯 2.9 mmol/L"),
    ("glucose in mg/dL", {"items": {"空腹血糖": 7.0}}, "1. 血糖升高：空腹血糖 126 mg/dL，建议内分泌科复查"),
    ("fatty liver, short form", {"texts": FATTY_LIVER}, "① 脂肪肝（中度），建议低脂饮食、减重"),
    ("left kidney cyst", {"texts": LEFT_KIDNEY_CYST}, "1. 左肾囊肿 12mm，建议泌尿外科随访"),
    ("hypertension by history, controlled", {"history": ["高血压"]}, "1. 高血压病史，服药控制可"),
    ("uncontrolled hypertension as such", {"items": {"收缩压": 156, "舒张压": 96}, "history": ["高血压"]},
     "1. 高血压病，血压控制未达标：血压 156/96 mmHg，建议心内科调整用药"),
    ("critical potassium with advice", {"items": {"钾": 2.6}}, "1. 低钾血症：血钾 2.6 mmol/L，建议立即急诊就诊"),
    ("nothing abnormal", {}, "体检未见明显异常"),
    ("real ultrasound conclusion with advice inside", {"texts": {"超声提示": MEINIAN_ADVICE}}, MEINIAN_ADVICE),
    ("real ultrasound conclusion with a negation", {"texts": {"超声提示": MEINIAN_NEGATION}}, MEINIAN_NEGATION),
    ("gout by history, uric acid normal", {"history": ["痛风"]}, "1. 痛风病史，建议低嘌呤饮食"),
    ("prostate in a man", {"texts": {"前列腺": "前列腺增大，内腺回声不均，提示前列腺增生"}}, "1. 前列腺增生"),
]


@pytest.mark.parametrize(("case", "record", "text", "kind", "conclusion"), POSITIVE, ids=[c[0] for c in POSITIVE])
def test_issue_is_found(
    kb: KnowledgeBase, case: str, record: dict[str, Any], text: str, kind: str, conclusion: str | None
) -> None:
    issues = qc_text(kb, make_record(**record), text)
    found = [i for i in issues if i.kind == kind]
    assert found, f"{case}: no {kind} in {[i.to_dict() for i in issues]}"
    if conclusion is not None:
        assert conclusion in [i.conclusion for i in found]
    assert all(i.detail for i in found)


@pytest.mark.parametrize(("case", "record", "text"), CLEAN, ids=[c[0] for c in CLEAN])
def test_clean_list_has_no_issue(kb: KnowledgeBase, case: str, record: dict[str, Any], text: str) -> None:
    issues = qc_text(kb, make_record(**record), text)
    assert issues == [], f"{case}: {[i.to_dict() for i in issues]}"


def test_missed_names_the_engine_conclusion_and_its_code(kb: KnowledgeBase) -> None:
    issues = qc_text(kb, make_record(items={"钾": 2.6}), "1. 未见明显异常")
    missed = [i for i in issues if i.kind == "missed"]
    # 严重低钾血症 is E87.6 in ICD-10 (hypokalaemia).
    assert [(i.conclusion, i.icd10) for i in missed] == [("严重低钾血症", "E87.6")]
    assert "2.6" in missed[0].detail


def test_minor_findings_are_missed_only_by_center_setting(kb: KnowledgeBase) -> None:
    record = make_record(texts={"心电图": "窦性心律不齐"})
    assert qc_text(kb, record, "1. 未见明显异常") == []
    strict = QcCenterSettings(missed_minor=True)
    issues = qc_text(kb, record, "1. 未见明显异常", strict)
    assert [(i.kind, i.conclusion) for i in issues] == [("missed", "窦性心律不齐")]
    # 窦不齐 is the usual short form of 窦性心律不齐.
    assert qc_text(kb, record, "1. 窦不齐", strict) == []


def test_advice_levels_are_a_center_setting(kb: KnowledgeBase) -> None:
    record = make_record(items={"钾": 2.6})
    lenient = QcCenterSettings(advice_required_levels=[])
    assert qc_text(kb, record, "1. 低钾血症", lenient) == []


def test_value_tolerance_is_a_center_setting(kb: KnowledgeBase) -> None:
    record = make_record(items={"甘油三酯": 2.85})
    text = "1. 血脂异常：甘油三酯 3.0 mmol/L"
    assert [i.kind for i in qc_text(kb, record, text)] == ["value_mismatch"]
    assert qc_text(kb, record, text, QcCenterSettings(value_tolerance=0.1)) == []


def test_sex_unknown_is_never_a_sex_mismatch(kb: KnowledgeBase) -> None:
    issues = qc_text(kb, make_record(sex="unknown"), "1. 子宫肌瘤\n2. 前列腺增生")
    assert not [i for i in issues if i.kind == "sex_mismatch"]
