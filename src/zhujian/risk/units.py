"""Unit conversions used by the risk models, and the input vocabulary they share.

Conversion factors are the ones the source of each model uses, so that a model fed with converted values
reproduces its published examples. They are not general-purpose laboratory conversion factors.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Literal, get_args

from zhujian.risk.errors import CannotCompute

Sex = Literal["male", "female"]
SEXES: tuple[str, ...] = get_args(Sex)

# China-PAR paper and official calculator: mg/dL = mmol/L ÷ 0.0259 (CLINICAL.md §1.1, VERIFIED secondary).
# Used for both TC and HDL-C.
CHOLESTEROL_MMOL_L_PER_MG_DL = 0.0259

# CKD-EPI: Scr µmol/L ÷ 88.4 = mg/dL (CLINICAL.md §3.1; the kidney.org 2009 examples reproduce with it).
CREATININE_UMOL_L_PER_MG_DL = 88.4


def cholesterol_mmol_l_to_mg_dl(value_mmol_l: float) -> float:
    """Total or HDL cholesterol from mmol/L to mg/dL (÷ 0.0259, the China-PAR convention)."""
    return value_mmol_l / CHOLESTEROL_MMOL_L_PER_MG_DL


def cholesterol_mg_dl_to_mmol_l(value_mg_dl: float) -> float:
    """Total or HDL cholesterol from mg/dL to mmol/L (× 0.0259)."""
    return value_mg_dl * CHOLESTEROL_MMOL_L_PER_MG_DL


def creatinine_umol_l_to_mg_dl(value_umol_l: float) -> float:
    """Serum creatinine from µmol/L to mg/dL (÷ 88.4)."""
    return value_umol_l / CREATININE_UMOL_L_PER_MG_DL


def creatinine_mg_dl_to_umol_l(value_mg_dl: float) -> float:
    """Serum creatinine from mg/dL to µmol/L (× 88.4)."""
    return value_mg_dl * CREATININE_UMOL_L_PER_MG_DL


def require_sex(sex: str) -> Sex:
    """Return `sex` narrowed to `Sex`; anything but "male"/"female" raises `CannotCompute`."""
    if sex == "male":
        return "male"
    if sex == "female":
        return "female"
    raise CannotCompute.invalid("sex", sex, "must be 'male' or 'female'")


def round_half_up(value: float, ndigits: int = 0) -> float:
    """Round like a printed report does (2.45 → 2.5), not like `round()` (banker's rounding on binary floats)."""
    quantum = Decimal(1).scaleb(-ndigits)
    return float(Decimal(repr(value)).quantize(quantum, rounding=ROUND_HALF_UP))
