"""eGFR by CKD-EPI (2021 race-free creatinine and creatinine–cystatin C; 2009 creatinine) and KDIGO G/A categories.

Scr in mg/dL (µmol/L ÷ 88.4, see `units`), Scys in mg/L, eGFR in mL/min/1.73 m². Equations return the unrounded
value; rounding for display is the caller's (KDIGO asks for a whole number).
"""

from __future__ import annotations

import math
from typing import Final, Literal

from zhujian.risk.errors import CannotCompute, require_positive
from zhujian.risk.units import Sex, require_sex, round_half_up

GCategory = Literal["G1", "G2", "G3a", "G3b", "G4", "G5"]
ACategory = Literal["A1", "A2", "A3"]
AcrUnit = Literal["mg/g", "mg/mmol"]

SOURCE_2021: Final = (
    "CKD-EPI 2021 race-free equations: Inker LA et al., NEJM 2021;385:1737-49, Table 2 and Suppl. Table S10 "
    "(VERIFIED via 2 secondary transcriptions, CROSS-CHECKED against Suppl. Table S11; CLINICAL.md §3.1)."
)
SOURCE_2009: Final = (
    "CKD-EPI 2009 creatinine equation: Levey AS et al., Ann Intern Med 2009;150:604-12 (VERIFIED; CLINICAL.md §3.1)."
)
SOURCE_KDIGO: Final = (
    "KDIGO 2012 GFR and albuminuria categories, unchanged in KDIGO 2024 Tables 2-3 (CLINICAL.md §3.3)."
)

# The CKD-EPI equations were developed in adults; children need other equations.
MIN_AGE: Final = 18.0

# CKD-EPI 2021 creatinine (NEJM 2021 Table 2).
CR2021_MULTIPLIER: Final = 142.0
CR2021_KAPPA: Final[dict[Sex, float]] = {"female": 0.7, "male": 0.9}
CR2021_ALPHA: Final[dict[Sex, float]] = {"female": -0.241, "male": -0.302}
CR2021_ABOVE_KAPPA_EXPONENT: Final = -1.200
CR2021_AGE_BASE: Final = 0.9938
CR2021_FEMALE_FACTOR: Final = 1.012

# CKD-EPI 2021 creatinine–cystatin C (NEJM 2021 Table 2).
CRCYS2021_MULTIPLIER: Final = 135.0
CRCYS2021_KAPPA: Final[dict[Sex, float]] = {"female": 0.7, "male": 0.9}
CRCYS2021_ALPHA: Final[dict[Sex, float]] = {"female": -0.219, "male": -0.144}
CRCYS2021_CR_ABOVE_KAPPA_EXPONENT: Final = -0.544
CRCYS2021_CYS_KAPPA: Final = 0.8
CRCYS2021_CYS_BELOW_EXPONENT: Final = -0.323
CRCYS2021_CYS_ABOVE_EXPONENT: Final = -0.778
CRCYS2021_AGE_BASE: Final = 0.9961
CRCYS2021_FEMALE_FACTOR: Final = 0.963

# CKD-EPI 2009 creatinine (Levey 2009). Kept for comparison with older reports; 2021 is the default.
CR2009_MULTIPLIER: Final = 141.0
CR2009_KAPPA: Final[dict[Sex, float]] = {"female": 0.7, "male": 0.9}
CR2009_ALPHA: Final[dict[Sex, float]] = {"female": -0.329, "male": -0.411}
CR2009_ABOVE_KAPPA_EXPONENT: Final = -1.209
CR2009_AGE_BASE: Final = 0.993
CR2009_FEMALE_FACTOR: Final = 1.018
CR2009_BLACK_FACTOR: Final = 1.159

# KDIGO GFR categories, lower bounds in mL/min/1.73 m² (CLINICAL.md §3.3, VERIFIED secondary).
KDIGO_G_LOWER_BOUNDS: Final[tuple[tuple[float, GCategory], ...]] = (
    (90.0, "G1"),
    (60.0, "G2"),
    (45.0, "G3a"),
    (30.0, "G3b"),
    (15.0, "G4"),
)
# KDIGO albuminuria: A1 below the first cut-off, A2 from it up to and including the second, A3 above the second.
KDIGO_A_CUTOFFS: Final[dict[AcrUnit, tuple[float, float]]] = {"mg/g": (30.0, 300.0), "mg/mmol": (3.0, 30.0)}


def _check_common(age: float, sex: str, scr_mg_dl: float) -> Sex:
    checked = require_sex(sex)
    if not (MIN_AGE <= age < math.inf):
        raise CannotCompute.invalid("age", age, "must be ≥ 18 (CKD-EPI is an adult equation)")
    require_positive("scr_mg_dl", scr_mg_dl)
    return checked


def egfr_ckd_epi_2021_cr(scr_mg_dl: float, age: float, sex: Sex) -> float:
    """eGFR (mL/min/1.73 m², unrounded) by the race-free CKD-EPI 2021 creatinine equation."""
    sex = _check_common(age, sex, scr_mg_dl)
    ratio = scr_mg_dl / CR2021_KAPPA[sex]
    egfr = (
        CR2021_MULTIPLIER
        * math.pow(min(ratio, 1.0), CR2021_ALPHA[sex])
        * math.pow(max(ratio, 1.0), CR2021_ABOVE_KAPPA_EXPONENT)
        * math.pow(CR2021_AGE_BASE, age)
    )
    return egfr * CR2021_FEMALE_FACTOR if sex == "female" else egfr


def egfr_ckd_epi_2021_cr_cys(scr_mg_dl: float, scys_mg_l: float, age: float, sex: Sex) -> float:
    """eGFR (mL/min/1.73 m², unrounded) by the race-free CKD-EPI 2021 creatinine–cystatin C equation."""
    sex = _check_common(age, sex, scr_mg_dl)
    require_positive("scys_mg_l", scys_mg_l)
    cr_ratio = scr_mg_dl / CRCYS2021_KAPPA[sex]
    cys_ratio = scys_mg_l / CRCYS2021_CYS_KAPPA
    egfr = (
        CRCYS2021_MULTIPLIER
        * math.pow(min(cr_ratio, 1.0), CRCYS2021_ALPHA[sex])
        * math.pow(max(cr_ratio, 1.0), CRCYS2021_CR_ABOVE_KAPPA_EXPONENT)
        * math.pow(min(cys_ratio, 1.0), CRCYS2021_CYS_BELOW_EXPONENT)
        * math.pow(max(cys_ratio, 1.0), CRCYS2021_CYS_ABOVE_EXPONENT)
        * math.pow(CRCYS2021_AGE_BASE, age)
    )
    return egfr * CRCYS2021_FEMALE_FACTOR if sex == "female" else egfr


def egfr_ckd_epi_2009_cr(scr_mg_dl: float, age: float, sex: Sex, black: bool) -> float:
    """eGFR (mL/min/1.73 m², unrounded) by the CKD-EPI 2009 creatinine equation, with its race coefficient."""
    sex = _check_common(age, sex, scr_mg_dl)
    ratio = scr_mg_dl / CR2009_KAPPA[sex]
    egfr = (
        CR2009_MULTIPLIER
        * math.pow(min(ratio, 1.0), CR2009_ALPHA[sex])
        * math.pow(max(ratio, 1.0), CR2009_ABOVE_KAPPA_EXPONENT)
        * math.pow(CR2009_AGE_BASE, age)
    )
    if sex == "female":
        egfr *= CR2009_FEMALE_FACTOR
    if black:
        egfr *= CR2009_BLACK_FACTOR
    return egfr


def kdigo_g(egfr: float) -> GCategory:
    """KDIGO GFR category (G1 ≥ 90, G2 60–89, G3a 45–59, G3b 30–44, G4 15–29, G5 < 15).

    The eGFR is first rounded half-up to a whole number, because KDIGO 2024 reports eGFR as a whole number and the
    table's bands are whole numbers: a printed "60" must be G2, never G3a (so 59.5 → 60 → G2, 59.4 → 59 → G3a).
    """
    if not (0.0 <= egfr < math.inf):
        raise CannotCompute.invalid("egfr", egfr, "must be a finite number ≥ 0")
    reported = round_half_up(egfr)
    for lower, category in KDIGO_G_LOWER_BOUNDS:
        if reported >= lower:
            return category
    return "G5"


def kdigo_a(acr: float, unit: AcrUnit) -> ACategory:
    """KDIGO albuminuria category from the urine albumin-to-creatinine ratio.

    mg/g: A1 < 30, A2 30–300, A3 > 300. mg/mmol: A1 < 3, A2 3–30, A3 > 30. The value is used as given (no rounding).
    """
    if unit not in KDIGO_A_CUTOFFS:
        raise CannotCompute.invalid("acr_unit", unit, "must be 'mg/g' or 'mg/mmol'")
    if not (0.0 <= acr < math.inf):
        raise CannotCompute.invalid("acr", acr, "must be a finite number ≥ 0")
    a2_from, a3_above = KDIGO_A_CUTOFFS[unit]
    if acr > a3_above:
        return "A3"
    if acr >= a2_from:
        return "A2"
    return "A1"
