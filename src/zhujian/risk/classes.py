"""Office blood-pressure, BMI and waist classes of the Chinese guidelines.

All bands are half-open on their lower bound ("120–139" is 120 ≤ x < 140), which reads the printed integer bands
without gaps for non-integer values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from zhujian.risk.errors import CannotCompute, require_positive
from zhujian.risk.units import Sex, require_sex

BpClass = Literal["正常血压", "正常高值", "1级高血压", "2级高血压", "3级高血压"]
BmiClass = Literal["体重过低", "体重正常", "超重", "肥胖"]
WaistClass = Literal["正常", "中心型肥胖前期", "中心型肥胖"]

BP_SOURCE: Final = (
    "中国高血压防治指南 2018年修订版 office BP classification, kept in the 2024 revision (CLINICAL.md §5.1, VERIFIED "
    "secondary; 2024 retention from secondary pages only)."
)
BMI_WAIST_SOURCE: Final = "WS/T 428-2013 成人体重判定 (CLINICAL.md §5.5, VERIFIED secondary)."

# 中国高血压防治指南 2018, office BP (CLINICAL.md §5.1). Lower bounds, in increasing order of severity; the class is the
# higher of the SBP class and the DBP class.
BP_CLASSES: Final[tuple[BpClass, ...]] = ("正常血压", "正常高值", "1级高血压", "2级高血压", "3级高血压")
SBP_LOWER_BOUNDS: Final[tuple[float, ...]] = (0.0, 120.0, 140.0, 160.0, 180.0)
DBP_LOWER_BOUNDS: Final[tuple[float, ...]] = (0.0, 80.0, 90.0, 100.0, 110.0)
HYPERTENSION_SBP: Final = 140.0
HYPERTENSION_DBP: Final = 90.0

# WS/T 428-2013 (CLINICAL.md §5.5).
BMI_LOWER_BOUNDS: Final[tuple[tuple[float, BmiClass], ...]] = (
    (0.0, "体重过低"),
    (18.5, "体重正常"),
    (24.0, "超重"),
    (28.0, "肥胖"),
)
WAIST_PRE_OBESITY_CM: Final[dict[Sex, float]] = {"male": 85.0, "female": 80.0}
WAIST_OBESITY_CM: Final[dict[Sex, float]] = {"male": 90.0, "female": 85.0}


@dataclass(frozen=True, slots=True)
class BpClassResult:
    """Office BP class of one reading, and what it means for a person who may be on treatment.

    `category` is the class by the numbers alone (the higher of the SBP and the DBP class).
    `isolated_systolic` is 单纯收缩期高血压 (SBP ≥ 140 and DBP < 90), a subtype reported next to the grade.
    `hypertension` is True when the reading is ≥ 140/90 or the person is on antihypertensive treatment: the guideline
    keeps a treated person in the hypertensive group even when the reading is < 140/90. It is None when the reading is
    < 140/90 and the treatment status is unknown. It flags a threshold, not a diagnosis: diagnosis needs office
    readings on 3 different days without medication.
    `controlled` applies to treated people only (None otherwise): True when the reading is < 140/90.
    """

    category: BpClass
    isolated_systolic: bool
    hypertension: bool | None
    controlled: bool | None
    on_treatment: bool | None
    source: str = BP_SOURCE


def _grade(value: float, lower_bounds: tuple[float, ...]) -> int:
    grade = 0
    for index, lower in enumerate(lower_bounds):
        if value >= lower:
            grade = index
    return grade


def bp_class(sbp: float, dbp: float, on_treatment: bool | None = None) -> BpClassResult:
    """Classify one office reading (mmHg) by 中国高血压防治指南 2018/2024; see `BpClassResult` for the fields.

    `on_treatment` does not change `category`, which is always the class by the numbers; it decides `hypertension`
    and `controlled` for readings below 140/90. None means "not known".
    """
    require_positive("sbp", sbp)
    require_positive("dbp", dbp)
    if dbp >= sbp:
        raise CannotCompute.invalid("dbp", dbp, f"must be lower than sbp {sbp:g}")
    category = BP_CLASSES[max(_grade(sbp, SBP_LOWER_BOUNDS), _grade(dbp, DBP_LOWER_BOUNDS))]
    above_threshold = sbp >= HYPERTENSION_SBP or dbp >= HYPERTENSION_DBP
    hypertension: bool | None
    if above_threshold or on_treatment:
        hypertension = True
    elif on_treatment is None:
        hypertension = None
    else:
        hypertension = False
    return BpClassResult(
        category=category,
        isolated_systolic=sbp >= HYPERTENSION_SBP and dbp < HYPERTENSION_DBP,
        hypertension=hypertension,
        controlled=(not above_threshold) if on_treatment else None,
        on_treatment=on_treatment,
    )


def bmi_value(weight_kg: float, height_cm: float) -> float:
    """BMI in kg/m² (unrounded)."""
    require_positive("weight_kg", weight_kg)
    require_positive("height_cm", height_cm)
    height_m = height_cm / 100.0
    return weight_kg / (height_m * height_m)


def bmi_class(bmi: float) -> BmiClass:
    """WS/T 428-2013: < 18.5 体重过低, 18.5 – < 24.0 体重正常, 24.0 – < 28.0 超重, ≥ 28.0 肥胖."""
    require_positive("bmi", bmi)
    result: BmiClass = BMI_LOWER_BOUNDS[0][1]
    for lower, label in BMI_LOWER_BOUNDS:
        if bmi >= lower:
            result = label
    return result


def waist_class(sex: Sex, waist_cm: float) -> WaistClass:
    """WS/T 428-2013: 中心型肥胖前期 85 ≤ WC < 90 (men) / 80 ≤ WC < 85 (women); 中心型肥胖 ≥ 90 / ≥ 85."""
    sex = require_sex(sex)
    require_positive("waist_cm", waist_cm)
    if waist_cm >= WAIST_OBESITY_CM[sex]:
        return "中心型肥胖"
    if waist_cm >= WAIST_PRE_OBESITY_CM[sex]:
        return "中心型肥胖前期"
    return "正常"
