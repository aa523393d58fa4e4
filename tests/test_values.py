"""Value parsing: every dirty value seen in real checkup files has an explicit outcome (CLINICAL data README)."""

from __future__ import annotations

from typing import Any

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
        ("1.2.3", "unparseable", None, None, None),  # a malformed number, reported with the reason
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


# --- Separators: a number is read whole or not at all (issue: "6,8" potassium was read as 6.0) -----------------


@pytest.mark.parametrize(
    ("raw", "kind", "readings"),
    [
        ("6,8", "number", [6.8]),  # decimal comma
        ("6，8", "number", [6.8]),  # full-width comma
        ("5。6", "number", [5.6]),  # ideographic full stop typed as the decimal point
        ("5．6", "number", [5.6]),  # full-width full stop
        ("６.８", "number", [6.8]),  # full-width digits
        ("６，８", "number", [6.8]),
        ("5·6", "number", [5.6]),
        ("6,80", "number", [6.8]),  # "80" is no group of three digits: only a decimal comma
        ("0,5", "number", [0.5]),
        ("-6,8", "number", [-6.8]),
        ("203,182.83", "number", [203182.83]),  # thousands comma before a decimal point
        ("1.234,5", "number", [1234.5]),  # thousands point before a decimal comma
        ("1 234", "number", [1234.0]),  # thousands space
        ("1'234", "number", [1234.0]),
        ("1.234.567", "number", [1234567.0]),  # two points cannot both be decimal points
        ("1,234", "ambiguous", [1.234, 1234.0]),  # decimal comma or thousands comma
        ("6,800", "ambiguous", [6.8, 6800.0]),
        ("6.8.1", "unparseable", []),
        ("1,2.3,4", "unparseable", []),
        ("6,", "unparseable", []),
        ("6、8", "unparseable", []),
        ("120/80", "unparseable", []),  # two numbers: never the first one alone
        ("1:320", "unparseable", []),
        ("6-5", "unparseable", []),  # not a range (low above high), not 6
        ("6 8", "unparseable", []),
    ],
)
def test_separator_readings(raw: str, kind: str, readings: list[float]) -> None:
    parsed = parse_value(raw)
    assert parsed.kind == kind, parsed
    if kind == "number":
        assert parsed.number == pytest.approx(readings[0])
    elif kind == "ambiguous":
        assert parsed.number is None
        assert [r.number for r in parsed.readings] == pytest.approx(readings)
    else:
        assert parsed.number is None and parsed.reason


@pytest.mark.parametrize(
    ("raw", "leading_digits"),
    [("6,8", 6.0), ("5。6", 5.0), ("1,234", 1.0), ("203,182.83", 203.0), ("6.8.1", 6.8), ("1.234,5", 1.234),
     ("120/80", 120.0), ("6、8", 6.0), ("6-5", 6.0), ("0,5", 0.0)],
)
def test_never_a_prefix_of_the_number(raw: str, leading_digits: float) -> None:
    """The defect: the digits before the first unexpected separator were used as the value (6,8 → 6)."""
    parsed = parse_value(raw)
    assert parsed.number != leading_digits
    assert leading_digits not in [r.number for r in parsed.readings]


def test_bounds_and_remarks_keep_the_whole_number() -> None:
    assert (parse_value("> 6,22").number, parse_value("> 6,22").bound) == (6.22, ">")
    assert (parse_value("6,8↑").number, parse_value("6,8↑").remark) == (6.8, "↑")
    assert parse_value("<1,234").kind == "ambiguous"
    assert parse_value("6.8，溶血").number == 6.8  # a comma before a word is punctuation, not part of the number


def test_digit_lookalikes_are_not_digits() -> None:
    """NFKC turns "5²" into "52": a superscript is never read as a digit of the value."""
    assert parse_value("5²").number != 52.0


@pytest.mark.parametrize(
    ("raw", "low", "high"), [("3,5-5,3", 3.5, 5.3), ("3。5-5。3", 3.5, 5.3), ("<5,2", None, 5.2)]
)
def test_range_with_decimal_commas(raw: str, low: float | None, high: float | None) -> None:
    parsed = parse_range(raw)
    assert parsed is not None and (parsed.low, parsed.high) == (low, high)


@pytest.mark.parametrize("raw", ["1,000-2,000", "3.5-5.3.1", "3,5"])
def test_range_never_guessed(raw: str) -> None:
    assert parse_range(raw) is None


@pytest.mark.parametrize(
    ("raw", "number"), [(10**400, None), (-(10**400), None), (10**300, 1e300)], ids=["1e400", "-1e400", "1e300"]
)
def test_huge_integers(raw: int, number: float | None) -> None:
    parsed = parse_value(raw)
    assert parsed.number == number
    assert parsed.kind == ("number" if number is not None else "unparseable")


@pytest.mark.parametrize(
    "raw", [float("inf"), float("-inf"), "Infinity", "-inf", "1e999", "9" * 400], ids=lambda r: str(r)[:12]
)
def test_non_finite_numbers_are_unparseable(raw: object) -> None:
    parsed = parse_value(raw)
    assert parsed.kind == "unparseable" and parsed.reason == "数值超出可表示范围"


# --- Engine: the reading is chosen by the item's plausible range; an undecidable critical value is announced -----


def _report(items: list[dict[str, object]]) -> dict[str, Any]:
    from zhujian.domain.record import Record
    from zhujian.kb.loader import default_kb
    from zhujian.pipeline.run import build_report

    record = Record.model_validate({"visit_id": "v", "sex": "male", "age": 50, "items": items})
    return build_report(default_kb(), record).to_dict()


def test_potassium_decimal_comma_is_the_critical_conclusion_first() -> None:
    """6,8 mmol/L potassium is 6.8 ≥ 6.2, a class-A critical value (critical.yaml k_high)."""
    report = _report([{"name": "钾", "value": "6,8", "unit": "mmol/L"}, {"name": "总胆固醇", "value": "6.5"}])
    potassium = next(i for i in report["items"] if i["item_id"] == "k")
    assert (potassium["value"], potassium["flag"], potassium["critical"]) == (6.8, "high", True)
    first = report["conclusions"][0]
    assert first["critical"] and first["level"] == "A" and first["icd10"].startswith("E87")
    assert report["critical"][0]["rule_id"] == "k_high"
    assert any(p["code"] == "separator_read" and p["value"] == "6,8" for p in report["problems"])


@pytest.mark.parametrize(("raw", "value"), [("5。6", 5.6), ("６.８", 6.8), ("6，8", 6.8), ("1,234", 1.234)])
def test_potassium_separators_read_by_plausibility(raw: str, value: float) -> None:
    # "1,234" as 1234 mmol/L is beyond potassium's plausible 15 mmol/L: only 1.234 remains (and it is critical).
    potassium = next(i for i in _report([{"name": "钾", "value": raw}])["items"] if i["item_id"] == "k")
    assert potassium["value"] == pytest.approx(value)


def test_platelets_with_two_plausible_readings_are_unknown_and_announced() -> None:
    """1,234 ×10^9/L platelets: 1.234 and 1234 are both within [1, 3000]; both readings are critical values."""
    report = _report([{"name": "血小板计数", "value": "1,234", "unit": "10^9/L"}])
    plt = next(i for i in report["items"] if i["item_id"] == "plt")
    assert (plt["value"], plt["flag"]) == (None, "unknown")
    assert any(p["code"] == "ambiguous" and p["value"] == "1,234" for p in report["problems"])
    alerts = [a for a in report["critical"] if a["item_id"] == "plt"]
    assert {a["rule_id"] for a in alerts} == {"plt_low", "plt_high"}
    assert all("1,234" in a["reason"] and "核对" in a["reason"] for a in alerts)
    first = report["conclusions"][0]
    assert first["critical"] and first["level"] == "A" and "1,234" in first["name"]


def test_ambiguous_value_that_cannot_be_critical_is_only_a_problem() -> None:
    # 1,400 mmol/L sodium: 1.4 and 1400 are both implausible (80-220): no reading is used, nothing is critical.
    report = _report([{"name": "钠", "value": "1,400"}])
    sodium = next(i for i in report["items"] if i["item_id"] == "na")
    assert (sodium["value"], sodium["flag"], sodium["critical"]) == (None, "unknown", False)
    assert [p["code"] for p in report["problems"] if p["value"] == "1,400"] == ["ambiguous"]
    assert not report["critical"]


@pytest.mark.parametrize("raw", ["6.8.1", "6,", "120/80", "6、8"])
def test_unreadable_potassium_is_a_problem_naming_item_value_and_reason(raw: str) -> None:
    report = _report([{"name": "血钾", "value": raw}])
    potassium = next(i for i in report["items"] if i["item_id"] == "k")
    assert (potassium["value"], potassium["flag"]) == (None, "unknown")
    problem = next(p for p in report["problems"] if p["code"] == "unparseable")
    assert problem["item"] == "血钾" and problem["value"] == raw and "：" in problem["message"]
