"""Value parsing: every dirty value seen in real checkup files has an explicit outcome (CLINICAL data README)."""

from __future__ import annotations

import pytest

from zhujian.pipeline.values import parse_range, parse_value


@pytest.mark.parametrize(
    ("raw", "kind", "number", "bound", "remark"),
    [
        ("未查", "not_done", None, None, None),
        ("弃查", "not_done", None, None, None),
        ("> 6.22", "number", 6.22, ">", None),
        ("<0.1", "number", 0.1, "<", None),
        ("≥ 5", "number", 5.0, ">", None),
        ("4.15+", "number", 4.15, None, "+"),
        ("7.75轻度乳糜", "number", 7.75, None, "轻度乳糜"),
        ("5.6↑", "number", 5.6, None, "↑"),
        ("100164", "number", 100164.0, None, None),
        ("-1.2", "number", -1.2, None, None),
        ("０.５", "number", 0.5, None, None),
        ("3-5", "number", 5.0, None, "3-5"),
        ("", "empty", None, None, None),
        ("   ", "empty", None, None, None),
        (None, "empty", None, None, None),
        (6, "number", 6.0, None, None),
        ("阴性(-)", "text", None, None, None),
        ("1.2.3", "text", None, None, None),
    ],
)
def test_parse_value(raw: object, kind: str, number: float | None, bound: str | None, remark: str | None) -> None:
    parsed = parse_value(raw)
    assert parsed.kind == kind
    assert parsed.number == (pytest.approx(number) if number is not None else None)
    assert parsed.bound == bound
    assert parsed.remark == remark


@pytest.mark.parametrize(
    ("raw", "low", "high"),
    [
        ("3.9-6.1", 3.9, 6.1),
        ("3.9～6.1", 3.9, 6.1),
        ("3.9 - 6.1", 3.9, 6.1),
        ("(0-40)", 0.0, 40.0),
        ("<5.2", None, 5.2),
        ("≤5.2", None, 5.2),
        (">1.04", 1.04, None),
    ],
)
def test_parse_range(raw: str, low: float | None, high: float | None) -> None:
    parsed = parse_range(raw)
    assert parsed is not None
    assert (parsed.low, parsed.high) == (low, high)


@pytest.mark.parametrize("raw", ["阴性", "6.1-3.9", "abc", ""])
def test_unreadable_range(raw: str) -> None:
    assert parse_range(raw) is None


@pytest.mark.parametrize(("raw", "kind", "number"), [("1e400", "unparseable", None), ("nan", "unparseable", None),
                                                      ("1.2E+3", "number", 1200.0), ("6.5e0", "number", 6.5)])
def test_exponent_forms(raw: str, kind: str, number: float | None) -> None:
    parsed = parse_value(raw)
    assert (parsed.kind, parsed.number) == (kind, number)
