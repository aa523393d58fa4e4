"""The risk section built from a whole record: inputs taken from items and questionnaire, published examples
reproduced, missing inputs listed instead of guessed."""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.domain.record import ItemInput, Questionnaire, Record
from zhujian.kb.loader import default_kb
from zhujian.pipeline.run import build_report


def _risk(record: Record) -> dict[str, dict[str, Any]]:
    report = build_report(default_kb(), record).to_dict()
    return {a["model"]: a for a in report["risk"]}


def _items(**values: float) -> list[ItemInput]:
    return [ItemInput(code=k, value=v) for k, v in values.items()]


def test_china_par_guideline_example() -> None:
    # 2019 guideline appendix example (CLINICAL.md §1.4): man 40, north, urban, waist 80, TC 5.2, HDL-C 1.3 mmol/L,
    # BP 145/80 untreated, no diabetes, non-smoker, family history yes → 4.7% published (4.87 recomputed), 低危.
    record = Record(
        visit_id="cp", sex="male", age=40,
        questionnaire=Questionnaire(smoking=False, north=True, urban=True, family_history=["父亲 冠心病"]),
        items=_items(sbp=145, dbp=80, tc=5.2, hdl=1.3, waist=80, glu=5.0),
    )
    cp = _risk(record)["china-par"]
    assert cp["computed"] is True
    assert cp["category"] == "低危"
    assert cp["result"]["risk10_pct"] == pytest.approx(4.87, abs=0.2)
    assert cp["result"]["ideal_risk10_pct"] == pytest.approx(1.1, abs=0.1)
    assert cp["inputs"]["family_history"] is True and cp["inputs"]["bp_treated"] is False
    assert any("收缩压" in m for m in cp["modifiable"])


def test_china_par_missing_inputs_are_listed() -> None:
    record = Record(visit_id="m", sex="male", age=50, items=_items(sbp=130, tc=5.0, hdl=1.2))
    cp = _risk(record)["china-par"]
    assert cp["computed"] is False
    for label in ("腰围", "是否吸烟（问卷）", "居住地是否在长江以北（问卷）"):
        assert label in cp["missing"]
    assert cp["message"].startswith("无法计算")


def test_cdrs_from_record() -> None:
    # CDRS table (CLINICAL.md §4): age 50 → 13, male → 2, BMI 25.0 → 3, waist 88 → 7, SBP 135 → 6, no FH → 0 = 31.
    record = Record(visit_id="c", sex="male", age=50, items=_items(height=160, weight=64, waist=88, sbp=135, dbp=80))
    cdrs = _risk(record)["cdrs"]
    assert cdrs["result"]["score"] == 31
    assert cdrs["result"]["high_risk"] is True


def test_metabolic_syndrome_from_record() -> None:
    # CDS 2020: waist ≥ 90 (men), TG ≥ 1.70, HDL-C < 1.04 → 3 of 5 → present.
    record = Record(visit_id="ms", sex="male", age=45,
                    items=_items(waist=95, tg=2.0, hdl=0.9, glu=5.2, sbp=120, dbp=78))
    ms = _risk(record)["metabolic-syndrome"]
    assert ms["result"]["present"] is True
    assert len(ms["result"]["criteria_met"]) == 3


def test_egfr_stage_from_creatinine() -> None:
    # NEJM 2021 Table S11: male 75, Scr 1.5 mg/dL (132.6 µmol/L) → 48 → G3a.
    record = Record(visit_id="e", sex="male", age=75, items=_items(crea=132.6))
    egfr = _risk(record)["egfr"]
    assert egfr["result"]["egfr"] == pytest.approx(48, abs=1)
    assert egfr["result"]["G"] == "G3a"


def test_bp_class_uses_higher_grade() -> None:
    # 2018 guideline: SBP 150 (grade 1) with DBP 102 (grade 2) → 2级高血压.
    record = Record(visit_id="b", sex="female", age=50, items=_items(sbp=150, dbp=102))
    assert _risk(record)["bp-class"]["category"] == "2级高血压"


def test_negated_history_is_not_a_risk_input() -> None:
    # "否认糖尿病" is no history of diabetes: with FPG 5.0 (< 7.0, CDS 2020) the China-PAR diabetes input is false,
    # while an affirmed history makes it true.
    def diabetes_input(history: list[str]) -> bool:
        record = Record(
            visit_id="d", sex="male", age=50,
            questionnaire=Questionnaire(smoking=False, north=True, urban=True, history=history),
            items=_items(sbp=130, dbp=80, tc=5.0, hdl=1.2, waist=85, glu=5.0),
        )
        return bool(_risk(record)["china-par"]["inputs"]["diabetes"])

    assert diabetes_input(["否认高血压、糖尿病史"]) is False
    assert diabetes_input(["2型糖尿病5年"]) is True
