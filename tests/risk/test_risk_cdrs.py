"""CDRS point table (CLINICAL.md §4) at every band edge, and the ≥ 25 threshold."""

from __future__ import annotations

from typing import Any

import pytest

from zhujian.risk.cdrs import cdrs_score
from zhujian.risk.errors import CannotCompute


def _score(**overrides: Any) -> Any:
    # A woman whose every item scores 0 (age 20–24, BMI < 22, waist < 70, SBP < 110, no family history), so that
    # each test moves one item only.
    inputs: dict[str, Any] = {
        "age": 22,
        "sex": "female",
        "bmi": 20.0,
        "waist_cm": 65.0,
        "sbp_mmhg": 100.0,
        "family_history_diabetes": False,
    }
    inputs.update(overrides)
    return cdrs_score(**inputs)


def test_zero_person() -> None:
    assert _score().score == 0


@pytest.mark.parametrize(
    ("age", "points"),
    [
        (20, 0),
        (24, 0),
        (25, 4),
        (34, 4),
        (35, 8),
        (39, 8),
        (40, 11),
        (44, 11),
        (45, 12),
        (49, 12),
        (50, 13),
        (54, 13),
        (55, 15),
        (59, 15),
        (60, 16),
        (64, 16),
        (65, 18),
        (74, 18),
    ],
)
def test_age_points(age: int, points: int) -> None:
    result = _score(age=age)
    assert result.points["age"] == points
    assert result.score == points


@pytest.mark.parametrize("age", [19, 75, 80])
def test_age_outside_20_74_refused(age: int) -> None:
    with pytest.raises(CannotCompute, match=f"cannot compute: age {age} outside 20–74"):
        _score(age=age)


@pytest.mark.parametrize(
    ("bmi", "points"),
    [(21.9, 0), (22.0, 1), (22.1, 1), (23.9, 1), (24.0, 3), (24.1, 3), (29.9, 3), (30.0, 5), (30.1, 5)],
)
def test_bmi_points(bmi: float, points: int) -> None:
    assert _score(bmi=bmi).points["bmi"] == points


@pytest.mark.parametrize(
    ("waist", "points"),
    [
        (74.9, 0),
        (75.0, 3),
        (75.1, 3),
        (79.9, 3),
        (80.0, 5),
        (84.9, 5),
        (85.0, 7),
        (89.9, 7),
        (90.0, 8),
        (94.9, 8),
        (95.0, 10),
        (95.1, 10),
    ],
)
def test_waist_points_men(waist: float, points: int) -> None:
    assert _score(sex="male", waist_cm=waist).points["waist"] == points


@pytest.mark.parametrize(
    ("waist", "points"),
    [
        (69.9, 0),
        (70.0, 3),
        (70.1, 3),
        (74.9, 3),
        (75.0, 5),
        (79.9, 5),
        (80.0, 7),
        (84.9, 7),
        (85.0, 8),
        (89.9, 8),
        (90.0, 10),
        (90.1, 10),
    ],
)
def test_waist_points_women(waist: float, points: int) -> None:
    assert _score(sex="female", waist_cm=waist).points["waist"] == points


@pytest.mark.parametrize(
    ("sbp", "points"),
    [
        (109, 0),
        (110, 1),
        (119, 1),
        (120, 3),
        (129, 3),
        (130, 6),
        (139, 6),
        (140, 7),
        (149, 7),
        (150, 8),
        (159, 8),
        (160, 10),
        (161, 10),
    ],
)
def test_sbp_points(sbp: float, points: int) -> None:
    assert _score(sbp_mmhg=sbp).points["sbp"] == points


def test_family_history_and_sex_points() -> None:
    assert _score(family_history_diabetes=True).score == 6
    assert _score(sex="male").score == 2


@pytest.mark.parametrize(
    ("sbp", "expected_score", "high_risk"),
    [
        # Woman, 60 y (16), BMI 24.0 (3), waist 75.0 (5): SBP 109 (0) → 24; SBP 110 (1) → 25; SBP 120 (3) → 27.
        (109, 24, False),
        (110, 25, True),
        (120, 27, True),
    ],
)
def test_high_risk_threshold(sbp: float, expected_score: int, high_risk: bool) -> None:
    result = _score(age=60, bmi=24.0, waist_cm=75.0, sbp_mmhg=sbp)
    assert result.score == expected_score
    assert result.high_risk is high_risk


def test_points_are_read_only() -> None:
    result = _score()
    with pytest.raises(TypeError):
        result.points["age"] = 99
