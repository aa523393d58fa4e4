"""Office BP (CLINICAL.md §5.1), BMI and waist (§5.5) classes at, just below and just above every cut-off."""

from __future__ import annotations

import pytest

from zhujian.risk.classes import bmi_class, bmi_value, bp_class, waist_class
from zhujian.risk.errors import CannotCompute
from zhujian.risk.units import Sex


@pytest.mark.parametrize(
    ("sbp", "category"),
    [
        (119, "正常血压"),
        (120, "正常高值"),
        (121, "正常高值"),
        (139, "正常高值"),
        (140, "1级高血压"),
        (141, "1级高血压"),
        (159, "1级高血压"),
        (160, "2级高血压"),
        (161, "2级高血压"),
        (179, "2级高血压"),
        (180, "3级高血压"),
        (181, "3级高血压"),
    ],
)
def test_sbp_edges(sbp: float, category: str) -> None:
    assert bp_class(sbp, 70, on_treatment=False).category == category


@pytest.mark.parametrize(
    ("dbp", "category"),
    [
        (79, "正常血压"),
        (80, "正常高值"),
        (81, "正常高值"),
        (89, "正常高值"),
        (90, "1级高血压"),
        (91, "1级高血压"),
        (99, "1级高血压"),
        (100, "2级高血压"),
        (101, "2级高血压"),
        (109, "2级高血压"),
        (110, "3级高血压"),
        (111, "3级高血压"),
    ],
)
def test_dbp_edges(dbp: float, category: str) -> None:
    assert bp_class(115, dbp, on_treatment=False).category == category


@pytest.mark.parametrize(
    ("sbp", "dbp", "category"),
    [
        (165, 95, "2级高血压"),
        (145, 105, "2级高血压"),
        (185, 85, "3级高血压"),
        (125, 112, "3级高血压"),
        (119, 80, "正常高值"),
    ],
)
def test_higher_grade_wins(sbp: float, dbp: float, category: str) -> None:
    assert bp_class(sbp, dbp, on_treatment=False).category == category


@pytest.mark.parametrize(
    ("sbp", "dbp", "isolated"),
    [(140, 89, True), (140, 90, False), (139, 70, False), (185, 85, True), (170, 95, False)],
)
def test_isolated_systolic(sbp: float, dbp: float, isolated: bool) -> None:
    assert bp_class(sbp, dbp, on_treatment=False).isolated_systolic is isolated


@pytest.mark.parametrize(
    ("sbp", "dbp", "on_treatment", "category", "hypertension", "controlled"),
    [
        # A treated person below 140/90 keeps the hypertension label; the class is still by the numbers.
        (130, 80, True, "正常高值", True, True),
        (150, 80, True, "1级高血压", True, False),
        (130, 80, False, "正常高值", False, None),
        (140, 80, False, "1级高血压", True, None),
        (139, 90, False, "1级高血压", True, None),
        (139, 89, None, "正常高值", None, None),
        (150, 95, None, "1级高血压", True, None),
    ],
)
def test_treatment(
    sbp: float,
    dbp: float,
    on_treatment: bool | None,
    category: str,
    hypertension: bool | None,
    controlled: bool | None,
) -> None:
    result = bp_class(sbp, dbp, on_treatment)
    assert result.category == category
    assert result.hypertension is hypertension
    assert result.controlled is controlled


@pytest.mark.parametrize(("sbp", "dbp"), [(0, 80), (120, -1), (80, 120), (float("nan"), 80)])
def test_bp_invalid(sbp: float, dbp: float) -> None:
    with pytest.raises(CannotCompute):
        bp_class(sbp, dbp)


@pytest.mark.parametrize(
    ("bmi", "category"),
    [
        (15.0, "体重过低"),
        (18.4, "体重过低"),
        (18.5, "体重正常"),
        (18.6, "体重正常"),
        (23.9, "体重正常"),
        (24.0, "超重"),
        (24.1, "超重"),
        (27.9, "超重"),
        (28.0, "肥胖"),
        (28.1, "肥胖"),
    ],
)
def test_bmi_class(bmi: float, category: str) -> None:
    assert bmi_class(bmi) == category


def test_bmi_invalid() -> None:
    with pytest.raises(CannotCompute, match="bmi"):
        bmi_class(0)


def test_bmi_value() -> None:
    assert bmi_value(72.0, 170.0) == pytest.approx(72.0 / 1.7**2)


@pytest.mark.parametrize(
    ("sex", "waist", "category"),
    [
        ("male", 84.9, "正常"),
        ("male", 85.0, "中心型肥胖前期"),
        ("male", 85.1, "中心型肥胖前期"),
        ("male", 89.9, "中心型肥胖前期"),
        ("male", 90.0, "中心型肥胖"),
        ("male", 90.1, "中心型肥胖"),
        ("female", 79.9, "正常"),
        ("female", 80.0, "中心型肥胖前期"),
        ("female", 80.1, "中心型肥胖前期"),
        ("female", 84.9, "中心型肥胖前期"),
        ("female", 85.0, "中心型肥胖"),
        ("female", 85.1, "中心型肥胖"),
    ],
)
def test_waist_class(sex: Sex, waist: float, category: str) -> None:
    assert waist_class(sex, waist) == category


def test_waist_invalid_sex() -> None:
    with pytest.raises(CannotCompute, match="sex"):
        waist_class("女", 80)  # type: ignore[arg-type]
