"""Risk models and guideline classes as pure functions.

Each function takes keyword inputs in the model's own units, returns a frozen result, and raises `CannotCompute`
(naming the field) when an input is missing, malformed or outside the model's valid range. Coefficients live in
module constants that name their source and their verification status in CLINICAL.md.
"""

from zhujian.risk.cdrs import CdrsResult, cdrs_score
from zhujian.risk.china_par import (
    ChinaParResult,
    DirectHighRisk,
    china_par_10y,
    china_par_category,
    china_par_direct_high_risk,
    china_par_ideal_10y,
)
from zhujian.risk.classes import BpClassResult, bmi_class, bmi_value, bp_class, waist_class
from zhujian.risk.egfr import (
    egfr_ckd_epi_2009_cr,
    egfr_ckd_epi_2021_cr,
    egfr_ckd_epi_2021_cr_cys,
    kdigo_a,
    kdigo_g,
)
from zhujian.risk.errors import CannotCompute
from zhujian.risk.metabolic_syndrome import MetabolicSyndromeResult, metabolic_syndrome
from zhujian.risk.pce import PceResult, pce_10y
from zhujian.risk.units import Sex

__all__ = [
    "BpClassResult",
    "CannotCompute",
    "CdrsResult",
    "ChinaParResult",
    "DirectHighRisk",
    "MetabolicSyndromeResult",
    "PceResult",
    "Sex",
    "bmi_class",
    "bmi_value",
    "bp_class",
    "cdrs_score",
    "china_par_10y",
    "china_par_category",
    "china_par_direct_high_risk",
    "china_par_ideal_10y",
    "egfr_ckd_epi_2009_cr",
    "egfr_ckd_epi_2021_cr",
    "egfr_ckd_epi_2021_cr_cys",
    "kdigo_a",
    "kdigo_g",
    "metabolic_syndrome",
    "pce_10y",
    "waist_class",
]
