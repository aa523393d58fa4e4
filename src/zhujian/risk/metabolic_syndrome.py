"""Metabolic syndrome by the 中华医学会糖尿病学分会 (CDS) criteria of 中国2型糖尿病防治指南 2017/2020.

Present when at least 3 of 5 components are met. Each component is judged in three-valued logic (met, not met,
unknown): a component is unknown only when the missing inputs could still make it met. The overall answer is
None ("undetermined") when the unknown components could change it, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

from zhujian.risk.errors import require_positive
from zhujian.risk.units import Sex, require_sex

Component = Literal["abdominal_obesity", "hyperglycemia", "hypertension", "high_tg", "low_hdl"]

SOURCE: Final = (
    "代谢综合征 criteria of 中华医学会糖尿病学分会, 中国2型糖尿病防治指南 2017/2020 (CLINICAL.md §5.6, VERIFIED "
    "secondary). Not the CDS 2004 criteria."
)

COMPONENTS: Final[tuple[Component, ...]] = ("abdominal_obesity", "hyperglycemia", "hypertension", "high_tg", "low_hdl")
# Chinese labels for reports; the English ids are the stable keys.
COMPONENT_LABELS: Final[Mapping[Component, str]] = {
    "abdominal_obesity": "腹型肥胖",
    "hyperglycemia": "高血糖",
    "hypertension": "高血压",
    "high_tg": "高甘油三酯",
    "low_hdl": "低HDL-C",
}

# CDS 2017/2020 (CLINICAL.md §5.6).
WAIST_CM: Final[dict[Sex, float]] = {"male": 90.0, "female": 85.0}  # ≥
FPG_MMOL_L: Final = 6.1  # ≥
PG2H_MMOL_L: Final = 7.8  # ≥
SBP_MMHG: Final = 130.0  # ≥
DBP_MMHG: Final = 85.0  # ≥
TG_MMOL_L: Final = 1.70  # ≥
HDL_MMOL_L: Final = 1.04  # <, the same for both sexes
MIN_COMPONENTS: Final = 3


@dataclass(frozen=True, slots=True)
class MetabolicSyndromeResult:
    """`present` is True (≥ 3 met), False (cannot reach 3 even if every unknown component were met), or None.

    `criteria_met`, `criteria_not_met` and `criteria_unknown` partition the five components (in a fixed order);
    `missing_inputs` names the inputs whose absence made a component unknown.
    """

    present: bool | None
    criteria_met: tuple[Component, ...]
    criteria_not_met: tuple[Component, ...]
    criteria_unknown: tuple[Component, ...]
    missing_inputs: tuple[str, ...]
    source: str = SOURCE


def _any_of(flags: list[bool | None]) -> bool | None:
    """Three-valued OR: met if any is met; not met only if every one is known and not met."""
    if any(flag is True for flag in flags):
        return True
    if any(flag is None for flag in flags):
        return None
    return False


def _at_least(value: float | None, threshold: float, field: str) -> bool | None:
    if value is None:
        return None
    return require_positive(field, value) >= threshold


def metabolic_syndrome(
    *,
    sex: Sex | None,
    waist_cm: float | None,
    fpg_mmol_l: float | None,
    diabetes_treated: bool | None,
    sbp: float | None,
    dbp: float | None,
    hypertension_treated: bool | None,
    tg_mmol_l: float | None,
    hdl_mmol_l: float | None,
    pg2h_mmol_l: float | None = None,
) -> MetabolicSyndromeResult:
    """Judge the five CDS components and whether metabolic syndrome is present.

    None for any input means "not known". `pg2h_mmol_l` (OGTT 2-h glucose) is different: None means the OGTT was not
    done, which is routine at a checkup, so hyperglycemia is then judged on FPG and treated diabetes alone and the
    missing OGTT never makes the component unknown. `diabetes_treated` / `hypertension_treated`: diagnosed and
    treated diabetes / hypertension (history), which meet their component whatever the readings.
    """
    checked_sex = require_sex(sex) if sex is not None else None
    missing: list[str] = []

    # Waist ≥ 90 meets the cut-off of both sexes and < 85 meets neither, so sex is only needed in between.
    abdominal: bool | None
    if waist_cm is None:
        abdominal = None
        missing.append("waist_cm")
    elif checked_sex is not None:
        abdominal = require_positive("waist_cm", waist_cm) >= WAIST_CM[checked_sex]
    elif waist_cm >= max(WAIST_CM.values()):
        abdominal = True
    elif require_positive("waist_cm", waist_cm) < min(WAIST_CM.values()):
        abdominal = False
    else:
        abdominal = None
        missing.append("sex")

    glycemia_flags: list[bool | None] = [
        _at_least(fpg_mmol_l, FPG_MMOL_L, "fpg_mmol_l"),
        diabetes_treated,
    ]
    if pg2h_mmol_l is not None:
        glycemia_flags.append(_at_least(pg2h_mmol_l, PG2H_MMOL_L, "pg2h_mmol_l"))
    hyperglycemia = _any_of(glycemia_flags)
    if hyperglycemia is None:
        missing.extend(
            name
            for name, value in (("fpg_mmol_l", fpg_mmol_l), ("diabetes_treated", diabetes_treated))
            if value is None
        )

    hypertension = _any_of([_at_least(sbp, SBP_MMHG, "sbp"), _at_least(dbp, DBP_MMHG, "dbp"), hypertension_treated])
    if hypertension is None:
        missing.extend(
            name
            for name, value in (("sbp", sbp), ("dbp", dbp), ("hypertension_treated", hypertension_treated))
            if value is None
        )

    high_tg = _at_least(tg_mmol_l, TG_MMOL_L, "tg_mmol_l")
    if high_tg is None:
        missing.append("tg_mmol_l")
    low_hdl = None if hdl_mmol_l is None else require_positive("hdl_mmol_l", hdl_mmol_l) < HDL_MMOL_L
    if low_hdl is None:
        missing.append("hdl_mmol_l")

    judged: dict[Component, bool | None] = {
        "abdominal_obesity": abdominal,
        "hyperglycemia": hyperglycemia,
        "hypertension": hypertension,
        "high_tg": high_tg,
        "low_hdl": low_hdl,
    }
    met = tuple(c for c in COMPONENTS if judged[c] is True)
    not_met = tuple(c for c in COMPONENTS if judged[c] is False)
    unknown = tuple(c for c in COMPONENTS if judged[c] is None)

    present: bool | None
    if len(met) >= MIN_COMPONENTS:
        present = True
    elif len(met) + len(unknown) < MIN_COMPONENTS:
        present = False
    else:
        present = None
    return MetabolicSyndromeResult(
        present=present,
        criteria_met=met,
        criteria_not_met=not_met,
        criteria_unknown=unknown,
        missing_inputs=tuple(missing),
    )
