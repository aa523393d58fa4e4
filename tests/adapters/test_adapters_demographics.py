"""Column roles and the reading of sex, age and date cells."""

from __future__ import annotations

import datetime as dt

import pytest

from zhujian.adapters.demographics import (
    AgeBand,
    column_vocabulary,
    infer_date_order,
    read_age,
    read_date,
    read_sex,
)


@pytest.mark.parametrize(
    ("header", "role"),
    [
        ("id", "visit_id"),
        ("ID", "visit_id"),
        ("vid", "visit_id"),
        ("体检号", "visit_id"),
        ("体检编号", "visit_id"),
        ("性别", "sex"),
        ("Sex", "sex"),
        ("年龄", "age"),
        ("体检日期", "exam_date"),
        ("exam_date", "exam_date"),
        ("档案号", "person_id"),
        ("姓名", "withheld"),
        ("身份证号", "withheld"),
        ("血糖", None),
    ],
)
def test_column_roles_in_wide_files(header: str, role: str | None) -> None:
    assert column_vocabulary().role_of(header, long_format=False) == role


def test_long_roles_only_in_long_files() -> None:
    vocabulary = column_vocabulary()
    assert vocabulary.role_of("结果", long_format=True) == "value"
    assert vocabulary.role_of("field_results", long_format=True) == "value"
    assert vocabulary.role_of("table_id", long_format=True) == "item"
    assert vocabulary.role_of("结果", long_format=False) is None


@pytest.mark.parametrize(
    ("raw", "sex", "code"),
    [
        ("男", "male", None),
        ("女", "female", None),
        ("M", "male", None),
        ("f", "female", None),
        ("1", "male", None),
        ("2", "female", None),
        ("Male", "male", None),
        ("FEMALE", "female", None),
        ("男性", "male", None),
        ("??", "unknown", "sex_unreadable"),
        ("9", "unknown", "sex_unreadable"),
        ("", "unknown", "sex_missing"),
    ],
)
def test_read_sex(raw: str, sex: str, code: str | None) -> None:
    reading = read_sex(raw, column_vocabulary())
    assert (reading.value, reading.code) == (sex, code)


@pytest.mark.parametrize(
    ("raw", "age", "code"),
    [
        ("41", 41.0, None),
        ("41岁", 41.0, None),
        (" 7 ", 7.0, None),
        ("abc", None, "age_unreadable"),
        ("200", None, "age_unreadable"),
        ("-3", None, "age_unreadable"),
    ],
)
def test_read_age(raw: str, age: float | None, code: str | None) -> None:
    reading = read_age(raw)
    assert (reading.value, reading.code) == (age, code)


def test_age_band_midpoints() -> None:
    # Korean NHIS code 5 = 20–24 years: ages 20.0 … 24.99, middle 22.5; 85+ is read as 85–89.
    assert AgeBand(20, 24).midpoint == 22.5
    assert AgeBand(40, 44).midpoint == 42.5
    assert AgeBand(85, None).midpoint == 87.5


def test_infer_date_order() -> None:
    assert infer_date_order(["12/10/2017", "19/10/2017"])[0] == "dmy"
    assert infer_date_order(["10/12/2017", "10/19/2017"])[0] == "mdy"
    assert infer_date_order(["01/02/2017", "2017-10-12"])[0] is None
    assert infer_date_order(["13/01/2017", "01/13/2017"])[0] is None


@pytest.mark.parametrize(
    ("raw", "order", "expected", "code"),
    [
        ("12/10/2017", "dmy", dt.date(2017, 10, 12), None),
        ("12/10/2017", "mdy", dt.date(2017, 12, 10), None),
        ("12/10/2017", None, dt.date(2017, 10, 12), "date_ambiguous"),
        ("05/05/2017", None, dt.date(2017, 5, 5), None),  # the same either way
        ("25/10/2017", "mdy", dt.date(2017, 10, 25), "date_order_conflict"),
        ("31/02/2017", "dmy", None, "date_unreadable"),
        ("13/13/2017", None, None, "date_unreadable"),
        ("2017-9-5", None, dt.date(2017, 9, 5), None),
        ("2017.09.05", None, dt.date(2017, 9, 5), None),
        ("5 Sept", None, None, "date_unreadable"),
    ],
)
def test_read_date(raw: str, order: str | None, expected: dt.date | None, code: str | None) -> None:
    reading = read_date(raw, order)
    assert (reading.value, reading.code) == (expected, code)
