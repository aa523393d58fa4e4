"""Boundary tables for the guideline thresholds: exactly at, just below and just above each cut-off, for each
sex and age band that matters. Expected outcomes come from the guideline text cited in each table (CLINICAL.md),
expressed as the ICD-10 categories the report must (or must not) contain."""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.domain.record import ItemInput, Record
from zhujian.kb.loader import default_kb
from zhujian.pipeline.run import build_report

DIABETES = ("E10", "E11", "E12", "E13", "E14")


def _report(sex: str, age: float, values: dict[str, Any]) -> dict[str, Any]:
    record = Record(
        visit_id="b",
        sex=sex,  # type: ignore[arg-type]
        age=age,
        items=[ItemInput(code=k, value=v) for k, v in values.items()],
    )
    return build_report(default_kb(), record).to_dict()


def _categories(report: dict[str, Any]) -> set[str]:
    return {c["icd10"][:3] for c in report["conclusions"]}


def _case(present: tuple[str, ...], absent: tuple[str, ...], report: dict[str, Any]) -> None:
    cats = _categories(report)
    names = [(c["name"], c["icd10"]) for c in report["conclusions"]]
    if present:
        assert cats & set(present), f"expected one of {present}: {names}"
    for code in absent:
        assert code not in cats, f"unexpected {code}: {names}"


# 中国2型糖尿病防治指南(2020年版): FPG < 6.1 normal; 6.1–<7.0 IFG; ≥ 7.0 diabetes range (CLINICAL.md §5.2).
@pytest.mark.parametrize(
    ("fpg", "present", "absent"),
    [
        (6.0, (), ("R73", *DIABETES)),
        (6.09, (), ("R73", *DIABETES)),
        (6.1, ("R73",), DIABETES),
        (6.99, ("R73",), DIABETES),
        (7.0, ("R73", *DIABETES), ()),
        (7.01, ("R73", *DIABETES), ()),
    ],
)
def test_fasting_glucose(fpg: float, present: tuple[str, ...], absent: tuple[str, ...]) -> None:
    _case(present, absent, _report("male", 45, {"glu": fpg}))


def test_fasting_glucose_ifg_is_not_diabetes_name() -> None:
    report = _report("female", 50, {"glu": 6.5})
    assert not any("糖尿病" in c["name"] and "风险" not in c["name"] for c in report["conclusions"])


# 中国血脂管理指南(2023年): TC ≥ 6.2, LDL-C ≥ 4.1, TG ≥ 2.3 raised; HDL-C < 1.0 low (CLINICAL.md §5.3).
@pytest.mark.parametrize(
    ("item", "value", "raised"),
    [
        ("tc", 6.19, False),
        ("tc", 6.2, True),
        ("tc", 6.21, True),
        ("ldl", 4.09, False),
        ("ldl", 4.1, True),
        ("ldl", 4.11, True),
        ("tg", 2.29, False),
        ("tg", 2.3, True),
        ("tg", 2.31, True),
        ("hdl", 1.01, False),
        ("hdl", 1.0, False),
        ("hdl", 0.99, True),
    ],
)
def test_lipid_cut_points(item: str, value: float, raised: bool) -> None:
    normal = {"tc": 4.5, "ldl": 2.5, "tg": 1.2, "hdl": 1.3}
    normal[item] = value
    report = _report("male", 50, normal)
    lipid = [c for c in report["conclusions"] if c["icd10"].startswith("E78")]
    if raised:
        assert lipid, f"{item}={value} must give an E78 conclusion"
        # The abnormal lipid is the evidence (一元化 keeps every lipid behind one conclusion).
        assert any(e.get("item_id") == item for c in lipid for e in c["evidence"])
    else:
        # A borderline value (边缘升高) may be noted, but never as evidence of a raised-lipid conclusion.
        strict = [c for c in lipid if "边缘" not in c["name"]]
        assert not any(e.get("item_id") == item for c in strict for e in c["evidence"]), lipid


# Uric acid: > 420 µmol/L for both sexes by default (CLINICAL.md Decisions, 2019 guidelines).
@pytest.mark.parametrize(
    ("sex", "value", "present"),
    [("male", 420, False), ("male", 421, True), ("female", 420, False), ("female", 421, True), ("female", 380, False)],
)
def test_uric_acid(sex: str, value: float, present: bool) -> None:
    cats = _categories(_report(sex, 40, {"ua": value}))
    assert ("E79" in cats) is present


# BMI (WS/T 428-2013): < 18.5 体重过低; 24.0–<28.0 超重; ≥ 28.0 肥胖 — applied to BMI as reported (one decimal).
@pytest.mark.parametrize(
    ("height", "weight", "expected"),
    [
        (170, 53.2, "体重过低"),  # BMI 18.41 → 18.4
        (170, 53.5, None),  # 18.51 → 18.5
        (170, 69.1, None),  # 23.91 → 23.9
        (170, 69.4, "超重"),  # 24.01 → 24.0
        (170, 80.6, "超重"),  # 27.89 → 27.9
        (170, 80.9, "肥胖"),  # 27.99 → 28.0
    ],
)
def test_bmi_classes(height: float, weight: float, expected: str | None) -> None:
    report = _report("male", 40, {"height": height, "weight": weight})
    names = [c["name"] for c in report["conclusions"]]
    if expected is None:
        assert not any(("超重" in n or "肥胖" in n or "体重过低" in n or "消瘦" in n) for n in names), names
    else:
        assert any(expected in n for n in names), names


# Waist (WS/T 428-2013): men ≥ 90, women ≥ 85 → 中心型肥胖.
@pytest.mark.parametrize(
    ("sex", "waist", "central"),
    [("male", 89.9, False), ("male", 90, True), ("female", 84.9, False), ("female", 85, True)],
)
def test_central_obesity(sex: str, waist: float, central: bool) -> None:
    names = [c["name"] for c in _report(sex, 40, {"waist": waist})["conclusions"]]
    assert any("中心型肥胖" in n and "前期" not in n for n in names) is central, names


# Office BP (中国高血压防治指南 2018): ≥ 140 and/or ≥ 90 → hypertension range.
@pytest.mark.parametrize(
    ("sbp", "dbp", "raised"),
    [(139, 89, False), (140, 80, True), (130, 90, True), (139, 90, True), (120, 80, False)],
)
def test_blood_pressure_threshold(sbp: float, dbp: float, raised: bool) -> None:
    # 正常高值 (120–139/80–89) may be noted as a risk factor, but it is not a raised-BP conclusion.
    report = _report("male", 50, {"sbp": sbp, "dbp": dbp})
    raised_bp = [
        c for c in report["conclusions"] if c["icd10"][:3] in ("I10", "R03") and "正常高值" not in c["name"]
    ]
    assert bool(raised_bp) is raised, [c["name"] for c in report["conclusions"]]


# 2019 consensus A class: SBP ≥ 180 and/or DBP ≥ 110.
@pytest.mark.parametrize(("sbp", "dbp", "critical"), [(179, 109, False), (180, 100, True), (170, 110, True)])
def test_blood_pressure_critical(sbp: float, dbp: float, critical: bool) -> None:
    report = _report("male", 50, {"sbp": sbp, "dbp": dbp})
    assert any(a["level"] == "A" and a["source"] == "item" for a in report["critical"]) is critical


# Laboratory critical values (CLINICAL.md Decisions: first threshold of each §6.2 row).
@pytest.mark.parametrize(
    ("item", "value", "critical"),
    [
        ("k", 2.8, True),
        ("k", 2.81, False),
        ("k", 6.19, False),
        ("k", 6.2, True),
        ("na", 120, True),
        ("na", 121, False),
        ("na", 159, False),
        ("na", 160, True),
        ("glu", 2.2, True),
        ("glu", 2.21, False),
        ("glu", 22.19, False),
        ("glu", 22.2, True),
        ("wbc", 2.0, True),
        ("wbc", 2.01, False),
        ("wbc", 29.9, False),
        ("wbc", 30, True),
        ("hgb", 60, True),
        ("hgb", 61, False),
        ("plt", 30, True),
        ("plt", 31, False),
    ],
)
def test_lab_critical_values(item: str, value: float, critical: bool) -> None:
    report = _report("female", 50, {item: value})
    hit = [a for a in report["critical"] if a["item_id"] == item and a["level"] == "A"]
    assert bool(hit) is critical, report["critical"]
    if critical:
        assert report["critical"][0]["level"] == "A"
        assert report["conclusions"][0]["critical"], [c["name"] for c in report["conclusions"]]


# Anaemia, Chinese clinical criterion (CLINICAL.md §5.7): men < 120, non-pregnant women < 110 g/L.
@pytest.mark.parametrize(
    ("sex", "hb", "anaemia"),
    [("male", 119, True), ("male", 120, False), ("female", 109, True), ("female", 110, False)],
)
def test_anaemia(sex: str, hb: float, anaemia: bool) -> None:
    cats = _categories(_report(sex, 40, {"hgb": hb}))
    assert any("D50" <= c <= "D64" for c in cats) is anaemia


# eGFR (CKD-EPI 2021, KDIGO): < 60 → CKD G3a or worse (N18). Creatinine chosen from the equation:
# male 50 y, Scr 1.5 mg/dL → 56 (NEJM 2021 Table S11) = 132.6 µmol/L; Scr 1.0 → 92.
@pytest.mark.parametrize(("crea_umol", "ckd"), [(132.6, True), (88.4, False)])
def test_egfr_below_60(crea_umol: float, ckd: bool) -> None:
    report = _report("male", 50, {"crea": crea_umol})
    egfr = next(i for i in report["items"] if i["item_id"] == "egfr")
    assert egfr["value"] == pytest.approx(56 if ckd else 92, abs=1)
    assert bool(_categories(report) & {"N18", "N19"}) is ckd


# Reference intervals by sex (WS/T 404.1-2012): ALT men 9–50, women 7–40 U/L.
@pytest.mark.parametrize(
    ("sex", "alt", "flag"),
    [("male", 50, "normal"), ("male", 51, "high"), ("female", 40, "normal"), ("female", 41, "high")],
)
def test_alt_reference_by_sex(sex: str, alt: float, flag: str) -> None:
    report = _report(sex, 40, {"alt": alt})
    item = next(i for i in report["items"] if i["item_id"] == "alt")
    assert item["flag"] == flag
    assert item["ref_source"] == "kb"


# Creatinine by age band (WS/T 404.5-2015): men 57–97 (20–59 y), 57–111 (60–79 y).
@pytest.mark.parametrize(("age", "crea", "flag"), [(59, 100, "high"), (60, 100, "normal"), (60, 112, "high")])
def test_creatinine_age_band(age: float, crea: float, flag: str) -> None:
    report = _report("male", age, {"crea": crea})
    item = next(i for i in report["items"] if i["item_id"] == "crea")
    assert item["flag"] == flag


def test_input_range_wins_over_default() -> None:
    record = Record(
        visit_id="r", sex="male", age=40, items=[ItemInput(name="ALT", value="55", unit="U/L", reference_range="0-60")]
    )
    item = build_report(default_kb(), record).items[0]
    assert (item.ref_low, item.ref_high, item.ref_source, item.flag) == (0, 60, "input", "normal")


@pytest.mark.parametrize(
    ("history", "known"),
    [(["高血压病5年"], True), (["否认高血压、糖尿病史"], False), (["无高血压"], False), (["糖尿病；高血压3年"], True)],
)
def test_negated_history_is_not_history(history: list[str], known: bool) -> None:
    # A known hypertensive with BP 150/95 gets 高血压病 (I10); "否认高血压" must not count as a history.
    from zhujian.domain.record import Questionnaire

    record = Record(visit_id="h", sex="male", age=60, questionnaire=Questionnaire(history=history),
                    items=[ItemInput(code="sbp", value=150), ItemInput(code="dbp", value=95)])
    report = build_report(default_kb(), record).to_dict()
    evidence = [e["description"] for c in report["conclusions"] for e in c["evidence"] if e["kind"] == "history"]
    assert bool(evidence) is known, evidence


# 中国2型糖尿病防治指南(2020年版): in a person treated for diabetes a glucose ≤ 3.9 mmol/L is hypoglycaemia, which needs
# the treatment reviewed soon (the KB's 低血糖 line: 1-2 weeks), not at the next 3-monthly diabetes recheck.
@pytest.mark.parametrize(("fpg", "hypoglycaemia"), [(3.2, True), (3.89, True), (4.5, False)])
def test_low_glucose_of_a_treated_diabetic_keeps_its_own_urgent_line(fpg: float, hypoglycaemia: bool) -> None:
    record = Record.model_validate(
        {
            "visit_id": "b",
            "sex": "male",
            "age": 60,
            "items": [{"code": "glu", "value": fpg}],
            "questionnaire": {"history": ["2型糖尿病"], "medications": ["二甲双胍"]},
        }
    )
    report = build_report(default_kb(), record).to_dict()
    lines = {c["icd10"][:3]: c for c in report["conclusions"]}
    assert "E11" in lines or "E14" in lines, [c["name"] for c in report["conclusions"]]
    if hypoglycaemia:
        assert "E16" in lines, [c["name"] for c in report["conclusions"]]
        assert "1-2周" in lines["E16"]["follow_up"]
    else:
        assert "E16" not in lines
