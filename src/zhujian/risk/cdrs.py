"""Chinese Diabetes Risk Score (中国糖尿病风险评分, CDRS; Zhou X et al., J Diabetes 2013; 中国2型糖尿病防治指南).

A point score for adults aged 20–74; a total ≥ 25 means high risk, to be screened with an OGTT.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from zhujian.risk.errors import CannotCompute, require_positive
from zhujian.risk.units import Sex, require_sex

SOURCE: Final = (
    "中国糖尿病风险评分 (CDRS), 中国2型糖尿病防治指南 2013/2017/2020 (Zhou X et al., J Diabetes 2013). Point table "
    "PARTIALLY VERIFIED (one open-source implementation agreeing with a recollection of the guideline table; check "
    "against 中华糖尿病杂志 2021;13(4):315-409). Threshold ≥ 25 VERIFIED (secondary). CLINICAL.md §4."
)

# Bands are (lower bound inclusive, points), each running up to the next lower bound. Half-open bands read the
# printed integer/one-decimal bands ("22.0–23.9", "110–119", "25–34 y") without gaps for values in between.
# CLINICAL.md §4 point table (PARTIALLY VERIFIED).
AGE_POINTS: Final[tuple[tuple[float, int], ...]] = (
    (20.0, 0),
    (25.0, 4),
    (35.0, 8),
    (40.0, 11),
    (45.0, 12),
    (50.0, 13),
    (55.0, 15),
    (60.0, 16),
    (65.0, 18),
)
BMI_POINTS: Final[tuple[tuple[float, int], ...]] = ((0.0, 0), (22.0, 1), (24.0, 3), (30.0, 5))
WAIST_POINTS: Final[dict[Sex, tuple[tuple[float, int], ...]]] = {
    "male": ((0.0, 0), (75.0, 3), (80.0, 5), (85.0, 7), (90.0, 8), (95.0, 10)),
    "female": ((0.0, 0), (70.0, 3), (75.0, 5), (80.0, 7), (85.0, 8), (90.0, 10)),
}
SBP_POINTS: Final[tuple[tuple[float, int], ...]] = (
    (0.0, 0),
    (110.0, 1),
    (120.0, 3),
    (130.0, 6),
    (140.0, 7),
    (150.0, 8),
    (160.0, 10),
)
FAMILY_HISTORY_POINTS: Final = 6  # diabetes in a parent, sibling or child
MALE_POINTS: Final = 2

# Age in completed years: 74.9 is still 74, 75 is outside the score's population.
MIN_AGE: Final = 20.0
AGE_LIMIT_EXCLUSIVE: Final = 75.0
HIGH_RISK_SCORE: Final = 25


@dataclass(frozen=True, slots=True)
class CdrsResult:
    """Total score, the high-risk flag (score ≥ 25) and the points of each item."""

    score: int
    high_risk: bool
    points: Mapping[str, int]
    source: str = SOURCE


def _points(value: float, bands: tuple[tuple[float, int], ...]) -> int:
    result = bands[0][1]
    for lower, points in bands:
        if value >= lower:
            result = points
    return result


def cdrs_score(
    *,
    age: float,
    sex: Sex,
    bmi: float,
    waist_cm: float,
    sbp_mmhg: float,
    family_history_diabetes: bool,
) -> CdrsResult:
    """CDRS total for one person aged 20–74 (outside → `CannotCompute`); `high_risk` is score ≥ 25."""
    sex = require_sex(sex)
    if not (MIN_AGE <= age < AGE_LIMIT_EXCLUSIVE):
        raise CannotCompute.out_of_range("age", age, MIN_AGE, AGE_LIMIT_EXCLUSIVE - 1)
    require_positive("bmi", bmi)
    require_positive("waist_cm", waist_cm)
    require_positive("sbp_mmhg", sbp_mmhg)
    points = {
        "age": _points(age, AGE_POINTS),
        "bmi": _points(bmi, BMI_POINTS),
        "waist": _points(waist_cm, WAIST_POINTS[sex]),
        "sbp": _points(sbp_mmhg, SBP_POINTS),
        "family_history_diabetes": FAMILY_HISTORY_POINTS if family_history_diabetes else 0,
        "sex": MALE_POINTS if sex == "male" else 0,
    }
    score = sum(points.values())
    return CdrsResult(score=score, high_risk=score >= HIGH_RISK_SCORE, points=MappingProxyType(points))
