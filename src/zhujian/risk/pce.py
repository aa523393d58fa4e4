"""Pooled Cohort Equations, 10-year ASCVD risk (Goff DC Jr et al., 2013 ACC/AHA guideline, Circulation
2014;129(25 Suppl 2):S49–73, Appendix 7 Table A).

`risk10 = 1 − S10 ^ exp(Σβ·X − mean)`; TC and HDL-C in mg/dL, SBP in mmHg; valid for ages 40–79. A US model: it is
here as a reference for centers that report it next to China-PAR, not as the Chinese default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from zhujian.risk.errors import CannotCompute, require_positive, require_range
from zhujian.risk.units import Sex, require_sex, round_half_up

Race = Literal["white", "african_american"]
Category2018 = Literal["low", "borderline", "intermediate", "high"]

SOURCE: Final = (
    "Pooled Cohort Equations: Goff DC Jr et al., 2013 ACC/AHA Guideline on the Assessment of Cardiovascular Risk, "
    "Circulation 2014;129(25 Suppl 2):S49-73, Appendix 7 Table A (coefficients VERIFIED via synthea ASCVD.java and "
    "PMC4608065 Table 1, CLINICAL.md §2)."
)

AGE_RANGE: Final = (40.0, 79.0)


@dataclass(frozen=True, slots=True)
class PceCoefficients:
    """One column of Appendix 7 Table A. Zero means the term is not in that group's model."""

    ln_age: float
    ln_age_sq: float
    ln_tc: float
    ln_age_x_ln_tc: float
    ln_hdl: float
    ln_age_x_ln_hdl: float
    ln_treated_sbp: float
    ln_age_x_ln_treated_sbp: float
    ln_untreated_sbp: float
    ln_age_x_ln_untreated_sbp: float
    smoker: float
    ln_age_x_smoker: float
    diabetes: float
    mean_sum: float
    baseline_survival: float


# Appendix 7 Table A (CLINICAL.md §2, VERIFIED). PMC4608065 misprints white-women untreated SBP (1.857) and
# white-men ln age × ln HDL (1.767); the original values 1.957 and 1.769 are used.
COEFFICIENTS: Final[dict[tuple[Race, Sex], PceCoefficients]] = {
    ("white", "female"): PceCoefficients(
        ln_age=-29.799,
        ln_age_sq=4.884,
        ln_tc=13.540,
        ln_age_x_ln_tc=-3.114,
        ln_hdl=-13.578,
        ln_age_x_ln_hdl=3.149,
        ln_treated_sbp=2.019,
        ln_age_x_ln_treated_sbp=0.0,
        ln_untreated_sbp=1.957,
        ln_age_x_ln_untreated_sbp=0.0,
        smoker=7.574,
        ln_age_x_smoker=-1.665,
        diabetes=0.661,
        mean_sum=-29.18,
        baseline_survival=0.9665,
    ),
    # The mean is 86.61; 86.16 printed on some pages is the worked example's individual sum (CLINICAL.md §2).
    ("african_american", "female"): PceCoefficients(
        ln_age=17.114,
        ln_age_sq=0.0,
        ln_tc=0.940,
        ln_age_x_ln_tc=0.0,
        ln_hdl=-18.920,
        ln_age_x_ln_hdl=4.475,
        ln_treated_sbp=29.291,
        ln_age_x_ln_treated_sbp=-6.432,
        ln_untreated_sbp=27.820,
        ln_age_x_ln_untreated_sbp=-6.087,
        smoker=0.691,
        ln_age_x_smoker=0.0,
        diabetes=0.874,
        mean_sum=86.61,
        baseline_survival=0.9533,
    ),
    ("white", "male"): PceCoefficients(
        ln_age=12.344,
        ln_age_sq=0.0,
        ln_tc=11.853,
        ln_age_x_ln_tc=-2.664,
        ln_hdl=-7.990,
        ln_age_x_ln_hdl=1.769,
        ln_treated_sbp=1.797,
        ln_age_x_ln_treated_sbp=0.0,
        ln_untreated_sbp=1.764,
        ln_age_x_ln_untreated_sbp=0.0,
        smoker=7.837,
        ln_age_x_smoker=-1.795,
        diabetes=0.658,
        mean_sum=61.18,
        baseline_survival=0.9144,
    ),
    ("african_american", "male"): PceCoefficients(
        ln_age=2.469,
        ln_age_sq=0.0,
        ln_tc=0.302,
        ln_age_x_ln_tc=0.0,
        ln_hdl=-0.307,
        ln_age_x_ln_hdl=0.0,
        ln_treated_sbp=1.916,
        ln_age_x_ln_treated_sbp=0.0,
        ln_untreated_sbp=1.809,
        ln_age_x_ln_untreated_sbp=0.0,
        smoker=0.549,
        ln_age_x_smoker=0.0,
        diabetes=0.645,
        mean_sum=19.54,
        baseline_survival=0.8954,
    ),
}

# 2018 AHA/ACC cholesterol guideline bands (CLINICAL.md §2, third-party reference file): < 5 low, 5 – < 7.5
# borderline, 7.5 – < 20 intermediate, ≥ 20 high.
BORDERLINE_PCT: Final = 5.0
INTERMEDIATE_PCT: Final = 7.5
HIGH_PCT: Final = 20.0


@dataclass(frozen=True, slots=True)
class PceResult:
    """One PCE evaluation. `risk10_pct` is unrounded; `category_2018` is the band of the risk rounded to one
    decimal, the precision the ACC calculator prints, so that the printed figure and the band always agree."""

    risk10_pct: float
    category_2018: Category2018
    individual_sum: float
    mean_sum: float
    baseline_survival: float
    race: Race
    sex: Sex
    source: str = SOURCE


def pce_category_2018(risk10_pct: float) -> Category2018:
    """2018 AHA/ACC band of a 10-year risk in percent."""
    if risk10_pct >= HIGH_PCT:
        return "high"
    if risk10_pct >= INTERMEDIATE_PCT:
        return "intermediate"
    if risk10_pct >= BORDERLINE_PCT:
        return "borderline"
    return "low"


def _require_race(race: str) -> Race:
    if race == "white":
        return "white"
    if race == "african_american":
        return "african_american"
    raise CannotCompute.invalid("race", race, "must be 'white' or 'african_american'")


def pce_individual_sum(
    *,
    age: float,
    sex: Sex,
    race: Race,
    tc_mg_dl: float,
    hdl_mg_dl: float,
    sbp_mmhg: float,
    bp_treated: bool,
    smoker: bool,
    diabetes: bool,
) -> float:
    """Σβ·X of the PCE for one person (inputs checked as in `pce_10y`)."""
    c = COEFFICIENTS[(_require_race(race), require_sex(sex))]
    require_range("age", age, *AGE_RANGE)
    ln_age = math.log(age)
    ln_tc = math.log(require_positive("tc_mg_dl", tc_mg_dl))
    ln_hdl = math.log(require_positive("hdl_mg_dl", hdl_mg_dl))
    ln_sbp = math.log(require_positive("sbp_mmhg", sbp_mmhg))
    smoke = float(smoker)
    if bp_treated:
        sbp_terms = c.ln_treated_sbp * ln_sbp + c.ln_age_x_ln_treated_sbp * ln_age * ln_sbp
    else:
        sbp_terms = c.ln_untreated_sbp * ln_sbp + c.ln_age_x_ln_untreated_sbp * ln_age * ln_sbp
    return (
        c.ln_age * ln_age
        + c.ln_age_sq * ln_age * ln_age
        + c.ln_tc * ln_tc
        + c.ln_age_x_ln_tc * ln_age * ln_tc
        + c.ln_hdl * ln_hdl
        + c.ln_age_x_ln_hdl * ln_age * ln_hdl
        + sbp_terms
        + c.smoker * smoke
        + c.ln_age_x_smoker * ln_age * smoke
        + c.diabetes * float(diabetes)
    )


def pce_10y(
    *,
    age: float,
    sex: Sex,
    race: Race,
    tc_mg_dl: float,
    hdl_mg_dl: float,
    sbp_mmhg: float,
    bp_treated: bool,
    smoker: bool,
    diabetes: bool,
) -> PceResult:
    """PCE 10-year ASCVD risk in percent for ages 40–79 (outside → `CannotCompute`).

    Only the age range is enforced: the ACC calculator's other input limits are not in the project's sources.
    """
    race = _require_race(race)
    sex = require_sex(sex)
    c = COEFFICIENTS[(race, sex)]
    individual_sum = pce_individual_sum(
        age=age,
        sex=sex,
        race=race,
        tc_mg_dl=tc_mg_dl,
        hdl_mg_dl=hdl_mg_dl,
        sbp_mmhg=sbp_mmhg,
        bp_treated=bp_treated,
        smoker=smoker,
        diabetes=diabetes,
    )
    try:
        risk = 100.0 * (1.0 - math.pow(c.baseline_survival, math.exp(individual_sum - c.mean_sum)))
    except OverflowError as exc:
        # Only absurd inputs (no range limits apart from age are enforced) can push the exponent this far.
        raise CannotCompute("cannot compute: inputs outside the range the equations can evaluate") from exc
    return PceResult(
        risk10_pct=risk,
        category_2018=pce_category_2018(round_half_up(risk, 1)),
        individual_sum=individual_sum,
        mean_sum=c.mean_sum,
        baseline_survival=c.baseline_survival,
        race=race,
        sex=sex,
    )
