"""Conversions (CLINICAL.md §1.1, §3.1), display rounding and the error messages."""

from __future__ import annotations

import pytest

from zhujian.risk.errors import CannotCompute, require_range
from zhujian.risk.units import (
    cholesterol_mg_dl_to_mmol_l,
    cholesterol_mmol_l_to_mg_dl,
    creatinine_mg_dl_to_umol_l,
    creatinine_umol_l_to_mg_dl,
    require_sex,
    round_half_up,
)


def test_cholesterol_uses_china_par_factor() -> None:
    # mg/dL = mmol/L ÷ 0.0259 (CLINICAL.md §1.1).
    assert cholesterol_mmol_l_to_mg_dl(5.18) == pytest.approx(200.0)
    assert cholesterol_mg_dl_to_mmol_l(200.0) == pytest.approx(5.18)


def test_creatinine_factor() -> None:
    # µmol/L ÷ 88.4 = mg/dL (CLINICAL.md §3.1).
    assert creatinine_umol_l_to_mg_dl(176.8) == pytest.approx(2.0)
    assert creatinine_mg_dl_to_umol_l(1.0) == pytest.approx(88.4)


@pytest.mark.parametrize(
    ("value", "ndigits", "expected"),
    [(2.45, 1, 2.5), (2.44, 1, 2.4), (4.95, 1, 5.0), (89.5, 0, 90.0), (89.49, 0, 89.0), (0.5, 0, 1.0)],
)
def test_round_half_up(value: float, ndigits: int, expected: float) -> None:
    assert round_half_up(value, ndigits) == expected


def test_messages() -> None:
    assert CannotCompute.missing("waist_cm").message == "cannot compute: missing waist_cm"
    assert (
        CannotCompute.out_of_range("waist_cm", 30.0, 50.0, 130.0).message
        == "cannot compute: waist_cm 30 outside 50–130"
    )
    assert (
        str(CannotCompute.out_of_range("hdl_mg_dl", 19.5, 20, 130)) == "cannot compute: hdl_mg_dl 19.5 outside 20–130"
    )


def test_require_range_rejects_nan() -> None:
    with pytest.raises(CannotCompute):
        require_range("age", float("nan"), 20, 85)


def test_require_sex() -> None:
    assert require_sex("female") == "female"
    with pytest.raises(CannotCompute, match="cannot compute: sex F must be 'male' or 'female'"):
        require_sex("F")
