"""Metabolic syndrome, CDS 2017/2020 criteria (CLINICAL.md §5.6): ≥ 3 of 5 components, undetermined when missing
inputs could change the answer."""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.risk.errors import CannotCompute
from zhujian.risk.metabolic_syndrome import MetabolicSyndromeResult, metabolic_syndrome


def _none_met(**overrides: Any) -> MetabolicSyndromeResult:
    # A man with every component known and not met.
    inputs: dict[str, Any] = {
        "sex": "male",
        "waist_cm": 80.0,
        "fpg_mmol_l": 5.0,
        "diabetes_treated": False,
        "sbp": 120.0,
        "dbp": 75.0,
        "hypertension_treated": False,
        "tg_mmol_l": 1.0,
        "hdl_mmol_l": 1.3,
    }
    inputs.update(overrides)
    return metabolic_syndrome(**inputs)


def test_none_met() -> None:
    result = _none_met()
    assert result.present is False
    assert result.criteria_met == ()
    assert result.criteria_unknown == ()


def test_two_components_is_not_metabolic_syndrome() -> None:
    result = _none_met(waist_cm=90.0, tg_mmol_l=1.70)
    assert result.present is False
    assert result.criteria_met == ("abdominal_obesity", "high_tg")


def test_three_components_is_metabolic_syndrome() -> None:
    result = _none_met(waist_cm=90.0, tg_mmol_l=1.70, hdl_mmol_l=1.03)
    assert result.present is True
    assert result.criteria_met == ("abdominal_obesity", "high_tg", "low_hdl")


def test_two_met_and_one_unknown_is_undetermined() -> None:
    result = _none_met(waist_cm=90.0, tg_mmol_l=1.70, hdl_mmol_l=None)
    assert result.present is None
    assert result.criteria_unknown == ("low_hdl",)
    assert result.missing_inputs == ("hdl_mmol_l",)


def test_three_met_with_missing_inputs_is_present() -> None:
    result = metabolic_syndrome(
        sex="female",
        waist_cm=85.0,
        fpg_mmol_l=6.1,
        diabetes_treated=None,
        sbp=None,
        dbp=None,
        hypertension_treated=None,
        tg_mmol_l=2.0,
        hdl_mmol_l=None,
    )
    assert result.present is True
    assert result.criteria_met == ("abdominal_obesity", "hyperglycemia", "high_tg")
    assert result.criteria_unknown == ("hypertension", "low_hdl")


def test_one_met_and_one_unknown_cannot_reach_three() -> None:
    result = _none_met(tg_mmol_l=1.8, hdl_mmol_l=None)
    assert result.present is False


@pytest.mark.parametrize(
    ("overrides", "component", "met"),
    [
        ({"sex": "male", "waist_cm": 89.9}, "abdominal_obesity", False),
        ({"sex": "male", "waist_cm": 90.0}, "abdominal_obesity", True),
        ({"sex": "female", "waist_cm": 84.9}, "abdominal_obesity", False),
        ({"sex": "female", "waist_cm": 85.0}, "abdominal_obesity", True),
        ({"fpg_mmol_l": 6.0}, "hyperglycemia", False),
        ({"fpg_mmol_l": 6.1}, "hyperglycemia", True),
        ({"pg2h_mmol_l": 7.7}, "hyperglycemia", False),
        ({"pg2h_mmol_l": 7.8}, "hyperglycemia", True),
        ({"diabetes_treated": True}, "hyperglycemia", True),
        ({"sbp": 129.0, "dbp": 84.0}, "hypertension", False),
        ({"sbp": 130.0, "dbp": 70.0}, "hypertension", True),
        ({"sbp": 120.0, "dbp": 85.0}, "hypertension", True),
        ({"hypertension_treated": True}, "hypertension", True),
        ({"tg_mmol_l": 1.69}, "high_tg", False),
        ({"tg_mmol_l": 1.70}, "high_tg", True),
        ({"hdl_mmol_l": 1.04}, "low_hdl", False),
        ({"hdl_mmol_l": 1.03}, "low_hdl", True),
        ({"sex": "female", "hdl_mmol_l": 1.04}, "low_hdl", False),
    ],
)
def test_component_cut_offs(overrides: dict[str, Any], component: str, met: bool) -> None:
    result = _none_met(**overrides)
    assert (component in result.criteria_met) is met
    assert (component in result.criteria_not_met) is not met


def test_no_ogtt_does_not_make_glycemia_unknown() -> None:
    result = _none_met(pg2h_mmol_l=None)
    assert "hyperglycemia" in result.criteria_not_met


def test_unknown_treatment_history_makes_a_normal_reading_unknown() -> None:
    result = _none_met(hypertension_treated=None)
    assert result.criteria_unknown == ("hypertension",)
    assert result.missing_inputs == ("hypertension_treated",)


@pytest.mark.parametrize(("waist", "judged"), [(92.0, True), (80.0, False), (87.0, None)])
def test_waist_without_sex(waist: float, judged: bool | None) -> None:
    # ≥ 90 meets both sexes' cut-offs and < 85 meets neither; only 85–< 90 depends on sex.
    result = _none_met(sex=None, waist_cm=waist)
    if judged is None:
        assert "abdominal_obesity" in result.criteria_unknown
        assert "sex" in result.missing_inputs
    else:
        assert ("abdominal_obesity" in result.criteria_met) is judged


def test_everything_missing_is_undetermined() -> None:
    result = metabolic_syndrome(
        sex=None,
        waist_cm=None,
        fpg_mmol_l=None,
        diabetes_treated=None,
        sbp=None,
        dbp=None,
        hypertension_treated=None,
        tg_mmol_l=None,
        hdl_mmol_l=None,
    )
    assert result.present is None
    assert len(result.criteria_unknown) == 5


def test_invalid_value_refused() -> None:
    with pytest.raises(CannotCompute, match="tg_mmol_l"):
        _none_met(tg_mmol_l=-1.0)
