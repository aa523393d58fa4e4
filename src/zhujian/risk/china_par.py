"""China-PAR 10-year ASCVD risk (Yang X et al., Circulation 2016;134:1430-1440) and the 2019 guideline's categories.

Equation: `risk10 = 1 − S10 ^ exp(Σβ·X − mean)`, continuous inputs as natural logs, TC and HDL-C in mg/dL.
Which constants are used, and why, is the project decision recorded in CLINICAL.md ("Decisions", §1.2):
the higher-precision men's coefficients and the paper-derived women's S10 0.9851, because only these reproduce the
paper's own worked examples (Table 2) within 0.1 percentage point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

from zhujian.risk.errors import CannotCompute, require_range
from zhujian.risk.units import Sex, require_sex, round_half_up

RiskCategory = Literal["低危", "中危", "高危"]

SOURCE: Final = (
    "China-PAR: Yang X et al., Circulation 2016;134:1430-1440, Supplemental Tables 1-2 (official supplement PDF "
    "https://www.cvdrisk.com.cn/uploadedFile/20171227114818843.pdf, transcribed in zwbao/longevity-skills). "
    "Men: higher-precision coefficients derived from the paper's 60-year worked example (CROSS-CHECKED); "
    "women: printed coefficients with S10 0.9851 derived from the paper's worked example (project decision). "
    "Categories: 中国心血管病风险评估和管理指南 2019."
)

# --- Men (CLINICAL.md §1.2). ln(age), ln(untreated SBP), ln(TC), ln(HDL-C), ln(waist) and ln(age)×ln(untreated SBP):
# higher-precision values derived from Suppl. Table 1's 60-year example (CROSS-CHECKED). All others: printed
# 2-decimal values of Suppl. Table 1 (VERIFIED, secondary transcription).
MEN_LN_AGE: Final = 31.96604
MEN_LN_TREATED_SBP: Final = 27.39
MEN_LN_UNTREATED_SBP: Final = 26.14876
MEN_LN_TC: Final = 0.62090
MEN_LN_HDL: Final = -0.69373
MEN_LN_WAIST: Final = -0.71200  # negative in men, as published
MEN_SMOKER: Final = 3.96
MEN_DIABETES: Final = 0.36
MEN_NORTH: Final = 0.48
MEN_URBAN: Final = -0.16
MEN_FAMILY_HISTORY: Final = 6.22
MEN_LN_AGE_X_LN_TREATED_SBP: Final = -6.02
MEN_LN_AGE_X_LN_UNTREATED_SBP: Final = -5.73074
MEN_LN_AGE_X_SMOKER: Final = -0.94
MEN_LN_AGE_X_FAMILY_HISTORY: Final = -1.53
MEN_MEAN_SUM: Final = 140.68  # Suppl. Table 1 (VERIFIED, secondary)
MEN_S10: Final = 0.9707  # Suppl. Table 2 formula (VERIFIED, secondary); official calculator implies 0.9704-0.9707

# --- Women (CLINICAL.md §1.2): printed 2-decimal coefficients of Suppl. Table 1 (VERIFIED, secondary).
# The women's model has no urban/rural and no family-history term.
WOMEN_LN_AGE: Final = 24.87
WOMEN_LN_TREATED_SBP: Final = 20.71
WOMEN_LN_UNTREATED_SBP: Final = 19.98
WOMEN_LN_TC: Final = 0.06
WOMEN_LN_HDL: Final = -0.22
WOMEN_LN_WAIST: Final = 1.48
WOMEN_SMOKER: Final = 0.49
WOMEN_DIABETES: Final = 0.57
WOMEN_NORTH: Final = 0.54
WOMEN_LN_AGE_X_LN_TREATED_SBP: Final = -4.53
WOMEN_LN_AGE_X_LN_UNTREATED_SBP: Final = -4.36
WOMEN_MEAN_SUM: Final = 117.26  # Suppl. Table 1 (VERIFIED, secondary)
# Printed 0.99; 0.9851 is solved from the paper's women's example (sum 119.22 → 10.1%). Project decision (CLINICAL.md
# "Decisions"); the official calculator implies ≈0.9846 instead.
WOMEN_S10: Final = 0.9851

# Input ranges accepted by the official calculator (CLINICAL.md §1.3, from original123/cardiovascular-risk-demo
# valid_input_cases.jsonl; VERIFIED secondary). Derivation ages were 35-74; the calculator extrapolates to 20-85.
AGE_RANGE: Final = (20.0, 85.0)
WAIST_CM_RANGE: Final = (50.0, 130.0)
TC_MG_DL_RANGE: Final = (80.0, 400.0)
HDL_MG_DL_RANGE: Final = (20.0, 130.0)
SBP_MMHG_RANGE: Final = (70.0, 200.0)

# 中国心血管病风险评估和管理指南 2019 (CLINICAL.md §1.3): < 5 % 低危, 5 – < 10 % 中危, ≥ 10 % 高危.
MODERATE_RISK_PCT: Final = 5.0
HIGH_RISK_PCT: Final = 10.0

# The official "ideal risk factors" comparison (CLINICAL.md §1.3, original123/.../官网规则反推.md §7; VERIFIED
# secondary): these replace the person's values; age, sex, region and urban/rural are kept.
IDEAL_TC_MG_DL: Final = 200.0
IDEAL_HDL_MG_DL: Final = 40.0
IDEAL_SBP_MMHG: Final = 120.0
IDEAL_WAIST_CM: Final[dict[Sex, float]] = {"male": 90.0, "female": 85.0}

# Conditions that make a person high-risk without the equation, 2019 guideline. UNVERIFIED (recalled; check the
# guideline's Figure 1 before relying on them), CLINICAL.md §1.3.
DIRECT_HIGH_RISK_SOURCE: Final = (
    "中国心血管病风险评估和管理指南 2019, direct high-risk conditions (diabetes at age ≥ 40; LDL-C ≥ 4.9 or "
    "TC ≥ 7.2 mmol/L; CKD stage 3-4). UNVERIFIED: recalled, not checked against the guideline's Figure 1."
)
DIRECT_DIABETES_MIN_AGE: Final = 40.0
DIRECT_LDL_MMOL_L: Final = 4.9
DIRECT_TC_MMOL_L: Final = 7.2
DIRECT_CKD_STAGES: Final = frozenset({3, 4})


@dataclass(frozen=True, slots=True)
class ChinaParResult:
    """One China-PAR evaluation.

    `risk10_pct` is unrounded. `category` is the category of the risk rounded to one decimal, the precision the paper
    and the official calculator print, so that a printed "5.0%" is never labelled 低危.
    """

    risk10_pct: float
    category: RiskCategory
    individual_sum: float
    mean_sum: float
    baseline_survival: float
    sex: Sex
    source: str = SOURCE

    @property
    def risk10_pct_rounded(self) -> float:
        return round_half_up(self.risk10_pct, 1)


@dataclass(frozen=True, slots=True)
class DirectHighRisk:
    """Guideline conditions that classify a person as 高危 without the equation (UNVERIFIED, see the source).

    `high_risk` is True when any condition is met, False when none is met and every input was known, and None when
    none is met but a missing input could still meet one.
    """

    high_risk: bool | None
    reasons: tuple[str, ...]
    missing: tuple[str, ...]
    source: str = DIRECT_HIGH_RISK_SOURCE


def china_par_category(risk10_pct: float) -> RiskCategory:
    """Category of a 10-year risk in percent, 2019 guideline cut-offs (< 5 低危, 5 – < 10 中危, ≥ 10 高危)."""
    if not (0.0 <= risk10_pct <= 100.0):
        raise CannotCompute.out_of_range("risk10_pct", risk10_pct, 0.0, 100.0)
    if risk10_pct >= HIGH_RISK_PCT:
        return "高危"
    if risk10_pct >= MODERATE_RISK_PCT:
        return "中危"
    return "低危"


def china_par_individual_sum(
    *,
    age: float,
    sex: Sex,
    sbp_mmhg: float,
    bp_treated: bool,
    tc_mg_dl: float,
    hdl_mg_dl: float,
    waist_cm: float,
    smoker: bool,
    diabetes: bool,
    north: bool,
    urban: bool | None = None,
    family_history: bool | None = None,
) -> float:
    """Σβ·X of the China-PAR equation for one person (inputs range-checked as in `china_par_10y`)."""
    sex = require_sex(sex)
    require_range("age", age, *AGE_RANGE)
    require_range("sbp_mmhg", sbp_mmhg, *SBP_MMHG_RANGE)
    require_range("tc_mg_dl", tc_mg_dl, *TC_MG_DL_RANGE)
    require_range("hdl_mg_dl", hdl_mg_dl, *HDL_MG_DL_RANGE)
    require_range("waist_cm", waist_cm, *WAIST_CM_RANGE)

    ln_age = math.log(age)
    ln_sbp = math.log(sbp_mmhg)
    ln_tc = math.log(tc_mg_dl)
    ln_hdl = math.log(hdl_mg_dl)
    ln_waist = math.log(waist_cm)
    smoke = float(smoker)
    dm = float(diabetes)
    nth = float(north)

    if sex == "male":
        # Only the men's model has these terms, so only men need them.
        if urban is None:
            raise CannotCompute.missing("urban")
        if family_history is None:
            raise CannotCompute.missing("family_history")
        fh = float(family_history)
        if bp_treated:
            sbp_terms = MEN_LN_TREATED_SBP * ln_sbp + MEN_LN_AGE_X_LN_TREATED_SBP * ln_age * ln_sbp
        else:
            sbp_terms = MEN_LN_UNTREATED_SBP * ln_sbp + MEN_LN_AGE_X_LN_UNTREATED_SBP * ln_age * ln_sbp
        return (
            MEN_LN_AGE * ln_age
            + sbp_terms
            + MEN_LN_TC * ln_tc
            + MEN_LN_HDL * ln_hdl
            + MEN_LN_WAIST * ln_waist
            + MEN_SMOKER * smoke
            + MEN_LN_AGE_X_SMOKER * ln_age * smoke
            + MEN_DIABETES * dm
            + MEN_NORTH * nth
            + MEN_URBAN * float(urban)
            + MEN_FAMILY_HISTORY * fh
            + MEN_LN_AGE_X_FAMILY_HISTORY * ln_age * fh
        )

    if bp_treated:
        sbp_terms = WOMEN_LN_TREATED_SBP * ln_sbp + WOMEN_LN_AGE_X_LN_TREATED_SBP * ln_age * ln_sbp
    else:
        sbp_terms = WOMEN_LN_UNTREATED_SBP * ln_sbp + WOMEN_LN_AGE_X_LN_UNTREATED_SBP * ln_age * ln_sbp
    return (
        WOMEN_LN_AGE * ln_age
        + sbp_terms
        + WOMEN_LN_TC * ln_tc
        + WOMEN_LN_HDL * ln_hdl
        + WOMEN_LN_WAIST * ln_waist
        + WOMEN_SMOKER * smoke
        + WOMEN_DIABETES * dm
        + WOMEN_NORTH * nth
    )


def china_par_10y(
    *,
    age: float,
    sex: Sex,
    sbp_mmhg: float,
    bp_treated: bool,
    tc_mg_dl: float,
    hdl_mg_dl: float,
    waist_cm: float,
    smoker: bool,
    diabetes: bool,
    north: bool,
    urban: bool | None = None,
    family_history: bool | None = None,
) -> ChinaParResult:
    """China-PAR 10-year ASCVD risk in percent, with the 2019 guideline category.

    `bp_treated` selects the treated or the untreated SBP terms (never both). `north`: north of the Yangtze.
    `urban` and `family_history` (ASCVD in a parent or sibling) are required for men and ignored for women, whose
    model has no such terms. Inputs outside the official calculator's ranges (age 20–85, waist 50–130 cm,
    TC 80–400 mg/dL, HDL-C 20–130 mg/dL, SBP 70–200 mmHg) raise `CannotCompute`.
    """
    sex = require_sex(sex)
    individual_sum = china_par_individual_sum(
        age=age,
        sex=sex,
        sbp_mmhg=sbp_mmhg,
        bp_treated=bp_treated,
        tc_mg_dl=tc_mg_dl,
        hdl_mg_dl=hdl_mg_dl,
        waist_cm=waist_cm,
        smoker=smoker,
        diabetes=diabetes,
        north=north,
        urban=urban,
        family_history=family_history,
    )
    mean_sum, s10 = (MEN_MEAN_SUM, MEN_S10) if sex == "male" else (WOMEN_MEAN_SUM, WOMEN_S10)
    risk = 100.0 * (1.0 - math.pow(s10, math.exp(individual_sum - mean_sum)))
    return ChinaParResult(
        risk10_pct=risk,
        category=china_par_category(round_half_up(risk, 1)),
        individual_sum=individual_sum,
        mean_sum=mean_sum,
        baseline_survival=s10,
        sex=sex,
    )


def china_par_ideal_10y(*, age: float, sex: Sex, north: bool, urban: bool | None = None) -> ChinaParResult:
    """The official calculator's "ideal risk factors" comparison: same age, sex, region and urban/rural, with
    TC 200 mg/dL, HDL-C 40 mg/dL, untreated SBP 120, waist 90 cm (men) / 85 cm (women), no diabetes, non-smoker and
    no family history."""
    sex = require_sex(sex)
    return china_par_10y(
        age=age,
        sex=sex,
        sbp_mmhg=IDEAL_SBP_MMHG,
        bp_treated=False,
        tc_mg_dl=IDEAL_TC_MG_DL,
        hdl_mg_dl=IDEAL_HDL_MG_DL,
        waist_cm=IDEAL_WAIST_CM[sex],
        smoker=False,
        diabetes=False,
        north=north,
        urban=urban,
        family_history=False,
    )


def china_par_direct_high_risk(
    *,
    age: float,
    diabetes: bool | None,
    ldl_c_mmol_l: float | None,
    tc_mmol_l: float | None,
    ckd_stage: int | None,
) -> DirectHighRisk:
    """Conditions that make a person 高危 without the China-PAR equation, per the 2019 guideline.

    UNVERIFIED: the conditions (diabetes at age ≥ 40; LDL-C ≥ 4.9 or TC ≥ 7.2 mmol/L; CKD stage 3–4) are recalled,
    not read in the guideline (CLINICAL.md §1.3); the knowledge base must say so wherever this is used.

    `ckd_stage` is the established CKD stage (1–5), or None when unknown. This function does not stage CKD from a
    single eGFR: CKD needs the abnormality for more than 3 months, which a single checkup cannot show.
    None for any input means "not known"; it is listed in `missing` when it could still meet a condition.
    """
    reasons: list[str] = []
    missing: list[str] = []
    if age >= DIRECT_DIABETES_MIN_AGE:
        if diabetes is None:
            missing.append("diabetes")
        elif diabetes:
            reasons.append("diabetes at age ≥ 40")
    if ldl_c_mmol_l is None:
        missing.append("ldl_c_mmol_l")
    elif ldl_c_mmol_l >= DIRECT_LDL_MMOL_L:
        reasons.append("LDL-C ≥ 4.9 mmol/L")
    if tc_mmol_l is None:
        missing.append("tc_mmol_l")
    elif tc_mmol_l >= DIRECT_TC_MMOL_L:
        reasons.append("TC ≥ 7.2 mmol/L")
    if ckd_stage is None:
        missing.append("ckd_stage")
    elif ckd_stage not in {1, 2, 3, 4, 5}:
        raise CannotCompute.invalid("ckd_stage", ckd_stage, "must be 1–5")
    elif ckd_stage in DIRECT_CKD_STAGES:
        reasons.append("CKD stage 3–4")

    high_risk: bool | None
    if reasons:
        high_risk = True
    elif missing:
        high_risk = None
    else:
        high_risk = False
    return DirectHighRisk(high_risk=high_risk, reasons=tuple(reasons), missing=tuple(missing))
