"""CKD-EPI equations and KDIGO categories against CLINICAL.md §3 (NEJM 2021 Table S11, NKF and kidney.org values)."""

from __future__ import annotations

import pytest

from zhujian.risk.egfr import (
    AcrUnit,
    egfr_ckd_epi_2009_cr,
    egfr_ckd_epi_2021_cr,
    egfr_ckd_epi_2021_cr_cys,
    kdigo_a,
    kdigo_g,
)
from zhujian.risk.errors import CannotCompute
from zhujian.risk.units import Sex, creatinine_umol_l_to_mg_dl, round_half_up

SCR_COLUMNS = (0.6, 1.0, 1.5, 2.0)

# NEJM 2021 Suppl. Table S11, eGFRcr (identical for Black and non-Black rows).
S11_CR: list[tuple[Sex, float, tuple[int, int, int, int]]] = [
    ("male", 50, (118, 92, 56, 40)),
    ("male", 75, (101, 79, 48, 34)),
    ("female", 50, (109, 69, 42, 30)),
    ("female", 75, (94, 59, 36, 26)),
]

# NEJM 2021 Suppl. Table S11, eGFRcr-cys (non-Black rows): (Scys, sex, age, values for Scr 0.6/1.0/1.5/2.0).
S11_CR_CYS: list[tuple[float, Sex, float, tuple[int, int, int, int]]] = [
    (1.0, "male", 50, (98, 88, 70, 60)),
    (1.0, "male", 75, (89, 79, 64, 55)),
    (1.0, "female", 50, (92, 74, 59, 51)),
    (1.0, "female", 75, (84, 67, 54, 46)),
    (1.5, "male", 50, (72, 64, 51, 44)),
    (1.5, "male", 75, (65, 58, 47, 40)),
    (1.5, "female", 50, (67, 54, 43, 37)),
    (1.5, "female", 75, (61, 49, 39, 33)),
]

# The printed integers were not produced by the rounded Table 2 coefficients; every cell is within 1 of the equation
# (CLINICAL.md §3.2), hence ±1.
S11_TOLERANCE = 1.0


@pytest.mark.parametrize(
    ("sex", "age", "scr", "printed"),
    [(sex, age, scr, printed) for sex, age, row in S11_CR for scr, printed in zip(SCR_COLUMNS, row, strict=True)],
)
def test_2021_cr_table_s11(sex: Sex, age: float, scr: float, printed: int) -> None:
    assert egfr_ckd_epi_2021_cr(scr, age, sex) == pytest.approx(printed, abs=S11_TOLERANCE)


@pytest.mark.parametrize(
    ("scys", "sex", "age", "scr", "printed"),
    [
        (scys, sex, age, scr, printed)
        for scys, sex, age, row in S11_CR_CYS
        for scr, printed in zip(SCR_COLUMNS, row, strict=True)
    ],
)
def test_2021_cr_cys_table_s11(scys: float, sex: Sex, age: float, scr: float, printed: int) -> None:
    assert egfr_ckd_epi_2021_cr_cys(scr, scys, age, sex) == pytest.approx(printed, abs=S11_TOLERANCE)


def test_2021_cr_nkf_calculator() -> None:
    # NKF calculator: male 55 y, Scr 1.2 mg/dL → 71 (printed as an integer).
    assert round_half_up(egfr_ckd_epi_2021_cr(1.2, 55, "male")) == 71


@pytest.mark.parametrize(
    ("age", "scr_umol_l", "sex", "printed"),
    [
        (40, 50, "male", 129),
        (40, 50, "female", 116),
        (50, 30, "male", 148),
        (50, 30, "female", 128),
        (60, 60, "male", 104),
        (60, 60, "female", 95),
        (70, 100, "male", 65),
        (70, 100, "female", 49),
    ],
)
def test_2009_cr_kidney_org(age: float, scr_umol_l: float, sex: Sex, printed: int) -> None:
    # kidney.org values equal the round-half-up of the standard equation with Scr = µmol/L ÷ 88.4 (CLINICAL.md §3.2).
    egfr = egfr_ckd_epi_2009_cr(creatinine_umol_l_to_mg_dl(scr_umol_l), age, sex, black=False)
    assert round_half_up(egfr) == printed


def test_2009_black_coefficient() -> None:
    # CLINICAL.md §3.1: × 1.159 [Black].
    base = egfr_ckd_epi_2009_cr(1.0, 50, "male", black=False)
    assert egfr_ckd_epi_2009_cr(1.0, 50, "male", black=True) == pytest.approx(base * 1.159)


def test_creatinine_conversion() -> None:
    assert creatinine_umol_l_to_mg_dl(88.4) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: egfr_ckd_epi_2021_cr(0.0, 50, "male"), "scr_mg_dl"),
        (lambda: egfr_ckd_epi_2021_cr(-1.0, 50, "male"), "scr_mg_dl"),
        (lambda: egfr_ckd_epi_2021_cr(1.0, 17, "male"), "age"),
        (lambda: egfr_ckd_epi_2021_cr_cys(1.0, 0.0, 50, "female"), "scys_mg_l"),
        (lambda: egfr_ckd_epi_2009_cr(float("nan"), 50, "female", black=False), "scr_mg_dl"),
        (lambda: egfr_ckd_epi_2021_cr(1.0, 50, "M"), "sex"),  # type: ignore[arg-type]
    ],
)
def test_invalid_inputs_refused(call: object, field: str) -> None:
    assert callable(call)
    with pytest.raises(CannotCompute) as info:
        call()
    assert info.value.field == field


# KDIGO GFR categories (CLINICAL.md §3.3): G1 ≥ 90, G2 60–89, G3a 45–59, G3b 30–44, G4 15–29, G5 < 15. The bands are
# whole numbers and eGFR is reported as a whole number, so values are classified after half-up rounding.
@pytest.mark.parametrize(
    ("egfr", "category"),
    [
        (120, "G1"),
        (90.1, "G1"),
        (90, "G1"),
        (89.5, "G1"),
        (89.4, "G2"),
        (89, "G2"),
        (60.1, "G2"),
        (60, "G2"),
        (59.5, "G2"),
        (59.4, "G3a"),
        (59, "G3a"),
        (45.1, "G3a"),
        (45, "G3a"),
        (44.9, "G3a"),
        (44.4, "G3b"),
        (44, "G3b"),
        (30.1, "G3b"),
        (30, "G3b"),
        (29.4, "G4"),
        (29, "G4"),
        (15.1, "G4"),
        (15, "G4"),
        (14.5, "G4"),
        (14.4, "G5"),
        (14, "G5"),
        (0, "G5"),
    ],
)
def test_kdigo_g_boundaries(egfr: float, category: str) -> None:
    assert kdigo_g(egfr) == category


@pytest.mark.parametrize("egfr", [-1.0, float("nan"), float("inf")])
def test_kdigo_g_invalid(egfr: float) -> None:
    with pytest.raises(CannotCompute, match="egfr"):
        kdigo_g(egfr)


# KDIGO albuminuria (CLINICAL.md §3.3): A1 < 30 / < 3; A2 30–300 / 3–30; A3 > 300 / > 30.
@pytest.mark.parametrize(
    ("acr", "unit", "category"),
    [
        (0, "mg/g", "A1"),
        (29.9, "mg/g", "A1"),
        (30, "mg/g", "A2"),
        (30.1, "mg/g", "A2"),
        (299.9, "mg/g", "A2"),
        (300, "mg/g", "A2"),
        (300.1, "mg/g", "A3"),
        (0, "mg/mmol", "A1"),
        (2.99, "mg/mmol", "A1"),
        (3, "mg/mmol", "A2"),
        (3.01, "mg/mmol", "A2"),
        (29.99, "mg/mmol", "A2"),
        (30, "mg/mmol", "A2"),
        (30.01, "mg/mmol", "A3"),
    ],
)
def test_kdigo_a_boundaries(acr: float, unit: AcrUnit, category: str) -> None:
    assert kdigo_a(acr, unit) == category


def test_kdigo_a_invalid_unit_and_value() -> None:
    with pytest.raises(CannotCompute, match="acr_unit"):
        kdigo_a(10, "mg/L")  # type: ignore[arg-type]
    with pytest.raises(CannotCompute, match="acr"):
        kdigo_a(-1, "mg/g")
