"""`zhujian risk MODEL --input JSON` through typer's CliRunner, for every model, input mode and error path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from zhujian.risk.cli import risk_app

runner = CliRunner()


def _invoke(model: str, payload: dict[str, Any] | str, stdin: str | None = None) -> Result:
    raw = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return runner.invoke(risk_app, [model, "--input", raw], input=stdin)


def _ok(model: str, payload: dict[str, Any] | str, stdin: str | None = None) -> dict[str, Any]:
    result = _invoke(model, payload, stdin)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _fails(model: str, payload: dict[str, Any] | str) -> Result:
    result = _invoke(model, payload)
    assert result.exit_code == 2, result.output
    assert json.loads(result.stdout)["error"] in result.stderr
    return result


# China-PAR guideline appendix example (CLINICAL.md §1.4), given in mmol/L as in the guideline.
GUIDELINE_CHINA_PAR: dict[str, Any] = {
    "age": 40,
    "sex": "male",
    "sbp_mmhg": 145,
    "bp_treated": False,
    "tc_mmol_l": 5.2,
    "hdl_mmol_l": 1.3,
    "waist_cm": 80,
    "smoker": False,
    "diabetes": False,
    "north": True,
    "urban": True,
    "family_history": True,
}

# Paper worked example, man aged 60 (CLINICAL.md §1.4): 11.0 %.
PAPER_MAN_60: dict[str, Any] = {
    "age": 60,
    "sex": "male",
    "sbp_mmhg": 130,
    "bp_treated": False,
    "tc_mg_dl": 210,
    "hdl_mg_dl": 55,
    "waist_cm": 80,
    "smoker": False,
    "diabetes": True,
    "north": True,
    "urban": True,
    "family_history": False,
}


def test_china_par_guideline_example_inline_json() -> None:
    data = _ok("china-par", GUIDELINE_CHINA_PAR)
    assert data["category"] == "低危"
    # Published 4.7 % / ideal 1.1 %; tolerances as in test_risk_china_par (CLINICAL.md §1.4 recomputation note).
    assert data["risk10_pct"] == pytest.approx(4.7, abs=0.2)
    assert data["ideal_risk10_pct"] == pytest.approx(1.1, abs=0.1)


def test_china_par_output_is_not_ascii_escaped() -> None:
    result = _invoke("china-par", GUIDELINE_CHINA_PAR)
    assert "低危" in result.stdout


def test_china_par_mg_dl_keys() -> None:
    data = _ok("china-par", PAPER_MAN_60)
    assert data["risk10_pct"] == pytest.approx(11.0, abs=0.15)
    assert data["category"] == "高危"


def test_china_par_woman_needs_no_urban_or_family_history() -> None:
    payload = {k: v for k, v in PAPER_MAN_60.items() if k not in {"urban", "family_history"}}
    payload["sex"] = "female"
    data = _ok("china-par", payload)
    assert data["risk10_pct"] == pytest.approx(10.1, abs=0.15)  # paper, woman aged 60


def test_input_from_file(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_text(json.dumps(PAPER_MAN_60), encoding="utf-8")
    assert _ok("china-par", str(path))["category"] == "高危"


def test_input_from_stdin() -> None:
    assert _ok("china-par", "-", stdin=json.dumps(PAPER_MAN_60))["category"] == "高危"


def test_unknown_keys_named() -> None:
    result = _fails("china-par", {**PAPER_MAN_60, "ldl": 3.0, "bmi": 24})
    assert "unknown keys: ldl, bmi" in result.stderr


def test_missing_key_named() -> None:
    payload = {k: v for k, v in PAPER_MAN_60.items() if k != "waist_cm"}
    result = _fails("china-par", payload)
    assert "cannot compute: missing waist_cm" in result.stderr


def test_missing_unit_alternative_named() -> None:
    payload = {k: v for k, v in PAPER_MAN_60.items() if k != "tc_mg_dl"}
    assert "cannot compute: missing tc_mg_dl (or tc_mmol_l)" in _fails("china-par", payload).stderr


def test_both_unit_alternatives_refused() -> None:
    assert "either tc_mg_dl or tc_mmol_l" in _fails("china-par", {**PAPER_MAN_60, "tc_mmol_l": 5.4}).stderr


def test_out_of_range_named() -> None:
    assert "cannot compute: waist_cm 30 outside 50–130" in _fails("china-par", {**PAPER_MAN_60, "waist_cm": 30}).stderr


def test_out_of_range_after_conversion_names_the_given_key() -> None:
    result = _fails("china-par", {**GUIDELINE_CHINA_PAR, "hdl_mmol_l": 0.3})
    assert "hdl_mmol_l 0.3" in result.stderr


def test_man_without_urban() -> None:
    payload = {k: v for k, v in PAPER_MAN_60.items() if k != "urban"}
    assert "cannot compute: missing urban" in _fails("china-par", payload).stderr


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({**PAPER_MAN_60, "age": "60"}, "invalid age"),
        ({**PAPER_MAN_60, "smoker": 1}, "invalid smoker"),
        ({**PAPER_MAN_60, "sex": "男"}, "invalid sex"),
    ],
)
def test_wrong_types(payload: dict[str, Any], fragment: str) -> None:
    assert fragment in _fails("china-par", payload).stderr


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [("{not json", "not valid JSON"), ("[1, 2]", "must be a JSON object"), ("/no/such/file.json", "cannot read")],
)
def test_unreadable_input(raw: str, fragment: str) -> None:
    assert fragment in _fails("bmi-class", raw).stderr


def test_pce_table_a_white_men() -> None:
    data = _ok(
        "pce",
        {
            "age": 55,
            "sex": "male",
            "race": "white",
            "tc_mg_dl": 213,
            "hdl_mg_dl": 50,
            "sbp_mmhg": 120,
            "bp_treated": False,
            "smoker": False,
            "diabetes": False,
        },
    )
    assert data["risk10_pct"] == pytest.approx(5.3, abs=0.1)  # Table A; 0.1 explained in test_risk_pce


def test_pce_age_outside_range() -> None:
    payload = {
        "age": 35,
        "sex": "female",
        "race": "african_american",
        "tc_mg_dl": 213,
        "hdl_mg_dl": 50,
        "sbp_mmhg": 120,
        "bp_treated": False,
        "smoker": False,
        "diabetes": False,
    }
    assert "cannot compute: age 35 outside 40–79" in _fails("pce", payload).stderr


def test_egfr_2021_nkf_example() -> None:
    data = _ok("egfr", {"equation": "ckd-epi-2021", "age": 55, "sex": "male", "scr_mg_dl": 1.2})
    assert data["egfr_rounded"] == 71  # NKF calculator
    assert data["egfr"] == pytest.approx(71, abs=0.5)
    assert data["G"] == "G2"


def test_egfr_2021_cys_table_s11() -> None:
    payload = {"equation": "ckd-epi-2021-cys", "age": 50, "sex": "female", "scr_mg_dl": 0.6, "scys_mg_l": 1.0}
    assert _ok("egfr", payload)["egfr"] == pytest.approx(92, abs=1)  # Table S11, ±1


def test_egfr_2009_umol_kidney_org() -> None:
    payload = {"equation": "ckd-epi-2009", "age": 70, "sex": "female", "scr_umol_l": 100, "black": False}
    data = _ok("egfr", payload)
    assert data["egfr_rounded"] == 49  # kidney.org
    assert data["G"] == "G3a"


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"equation": "ckd-epi-2021", "age": 55, "sex": "male"}, "missing scr_mg_dl (or scr_umol_l)"),
        ({"equation": "ckd-epi-2021-cys", "age": 55, "sex": "male", "scr_mg_dl": 1.0}, "missing scys_mg_l"),
        ({"equation": "ckd-epi-2009", "age": 55, "sex": "male", "scr_mg_dl": 1.0}, "missing black"),
        ({"equation": "ckd-epi-2021", "age": 55, "sex": "male", "scr_mg_dl": 1.0, "black": True}, "black applies only"),
        (
            {"equation": "ckd-epi-2021", "age": 55, "sex": "male", "scr_mg_dl": 1.0, "scys_mg_l": 1.0},
            "scys_mg_l applies only",
        ),
        ({"equation": "mdrd", "age": 55, "sex": "male", "scr_mg_dl": 1.0}, "invalid equation"),
        ({"equation": "ckd-epi-2021", "age": 55, "sex": "male", "scr_mg_dl": 1.0, "cys": 1.0}, "unknown keys: cys"),
    ],
)
def test_egfr_errors(payload: dict[str, Any], fragment: str) -> None:
    assert fragment in _fails("egfr", payload).stderr


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"egfr": 60}, {"G": "G2"}),
        ({"egfr": 59.4}, {"G": "G3a"}),
        ({"acr": 30, "acr_unit": "mg/g"}, {"A": "A2"}),
        ({"acr": 30.1, "acr_unit": "mg/mmol"}, {"A": "A3"}),
        ({"egfr": 14, "acr": 2.9, "acr_unit": "mg/mmol"}, {"G": "G5", "A": "A1"}),
    ],
)
def test_kdigo(payload: dict[str, Any], expected: dict[str, str]) -> None:
    data = _ok("kdigo", payload)
    for key, value in expected.items():
        assert data[key] == value
    # A category is reported only for the measurement that was given.
    assert {"G", "A"} & data.keys() == expected.keys()


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [({}, "missing egfr or acr"), ({"acr": 40}, "missing acr_unit"), ({"acr": 40, "acr_unit": "mg/L"}, "acr_unit")],
)
def test_kdigo_errors(payload: dict[str, Any], fragment: str) -> None:
    assert fragment in _fails("kdigo", payload).stderr


def test_cdrs_threshold() -> None:
    # Woman 60 y (16) + BMI 24.0 (3) + waist 75.0 (5) + SBP 110 (1) = 25 by the CLINICAL.md §4 table.
    payload = {
        "age": 60,
        "sex": "female",
        "bmi": 24.0,
        "waist_cm": 75.0,
        "sbp_mmhg": 110,
        "family_history_diabetes": False,
    }
    data = _ok("cdrs", payload)
    assert data["score"] == 25
    assert data["high_risk"] is True


def test_cdrs_age_outside_range() -> None:
    payload = {"age": 75, "sex": "male", "bmi": 24, "waist_cm": 80, "sbp_mmhg": 120, "family_history_diabetes": True}
    assert "cannot compute: age 75 outside 20–74" in _fails("cdrs", payload).stderr


def test_bp_class() -> None:
    data = _ok("bp-class", {"sbp": 140, "dbp": 89, "on_treatment": False})
    assert data["class"] == "1级高血压"
    assert data["isolated_systolic"] is True
    assert data["hypertension"] is True


def test_bp_class_treated_below_threshold() -> None:
    data = _ok("bp-class", {"sbp": 128, "dbp": 78, "on_treatment": True})
    assert data["class"] == "正常高值"
    assert data["hypertension"] is True
    assert data["controlled"] is True


def test_bp_class_missing_dbp() -> None:
    assert "cannot compute: missing dbp" in _fails("bp-class", {"sbp": 120}).stderr


def test_bmi_class() -> None:
    assert _ok("bmi-class", {"bmi": 24.0})["class"] == "超重"
    assert "cannot compute: missing bmi" in _fails("bmi-class", {}).stderr


def test_waist_class() -> None:
    assert _ok("waist-class", {"sex": "female", "waist_cm": 85})["class"] == "中心型肥胖"
    assert _ok("waist-class", {"sex": "male", "waist_cm": 85})["class"] == "中心型肥胖前期"
    assert "unknown keys: height" in _fails("waist-class", {"sex": "male", "waist_cm": 85, "height": 170}).stderr


METABOLIC_BASE: dict[str, Any] = {
    "sex": "male",
    "waist_cm": 92,
    "fpg_mmol_l": 5.2,
    "diabetes_treated": False,
    "sbp": 135,
    "dbp": 80,
    "hypertension_treated": False,
    "tg_mmol_l": 1.2,
    "hdl_mmol_l": 1.2,
}


def test_metabolic_syndrome_two_components() -> None:
    data = _ok("metabolic-syndrome", METABOLIC_BASE)
    assert data["present"] is False
    assert data["criteria_met"] == ["abdominal_obesity", "hypertension"]


def test_metabolic_syndrome_three_components() -> None:
    data = _ok("metabolic-syndrome", {**METABOLIC_BASE, "tg_mmol_l": 1.7})
    assert data["present"] is True
    assert data["criteria_met_labels"] == ["腹型肥胖", "高血压", "高甘油三酯"]


def test_metabolic_syndrome_undetermined() -> None:
    payload = {k: v for k, v in METABOLIC_BASE.items() if k != "hdl_mmol_l"}
    data = _ok("metabolic-syndrome", payload)
    assert data["present"] is None
    assert data["missing_inputs"] == ["hdl_mmol_l"]


def test_metabolic_syndrome_unknown_key() -> None:
    assert "unknown keys: ldl_mmol_l" in _fails("metabolic-syndrome", {**METABOLIC_BASE, "ldl_mmol_l": 3}).stderr


def test_every_model_is_a_command() -> None:
    result = runner.invoke(risk_app, ["--help"])
    assert result.exit_code == 0
    for model in (
        "china-par",
        "pce",
        "egfr",
        "kdigo",
        "cdrs",
        "bp-class",
        "bmi-class",
        "waist-class",
        "metabolic-syndrome",
    ):
        assert model in result.stdout
