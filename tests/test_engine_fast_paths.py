"""The engine's fast paths agree with the general code they stand in for (docs/measurements.md, engine speed)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from zhujian.domain.record import Record
from zhujian.domain.report import Finding
from zhujian.examples import example_names, load_example
from zhujian.kb.loader import load_kb
from zhujian.pipeline.conditions import Facts
from zhujian.pipeline.evaluate import evaluate_items
from zhujian.pipeline.extract import extract_text
from zhujian.pipeline.rules import rules_for
from zhujian.pipeline.values import ParsedValue, parse_value, plain_number

_TRICKY: list[Any] = [
    "5.6", " 5.6 ", "5", "-1.2", "+3", "1e5", "1E-3", "1e400", "-1e400", "inf", "nan", "NaN", "1_000", "6,8",
    "1,234", "> 6.22", "5.6↑", "０.５", "", "   ", "未查", "3-5", ".5", "5.", 6.0, 0.0, -0.0, float("nan"),
    float("inf"), 6, True, None,
]  # fmt: skip


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _agrees(raw: object) -> None:
    number = plain_number(raw)
    if number is not None:
        # A plain number is exactly what parse_value reads: a number and nothing else.
        assert parse_value(raw) == ParsedValue("number", number=number)


@pytest.mark.parametrize("raw", _TRICKY)
def test_plain_number_is_parse_value_of_a_plain_number(raw: object) -> None:
    _agrees(raw)


@given(st.one_of(st.text(alphabet="0123456789.,+-eE_ infa ", max_size=12), st.floats(), st.text(max_size=8)))
def test_plain_number_agrees_with_parse_value(raw: object) -> None:
    _agrees(raw)


def test_plain_numbers_take_the_fast_path() -> None:
    # Without this, plain_number could answer None for everything and the agreement tests above would still pass.
    assert plain_number("5.6") == 5.6
    assert plain_number(" 7 ") == 7.0
    assert plain_number(6.0) == 6.0
    assert plain_number("5.6↑") is None and plain_number("> 6.22") is None


@pytest.mark.parametrize("name", example_names())
def test_rules_woken_by_index_are_those_of_the_trigger_keys(name: str) -> None:
    """`runnable_for` (per-item and per-finding indexes) wakes the rules `runnable` wakes from the record's trigger
    keys spelled out: item, flag, value, finding, history and questionnaire keys."""
    kb = load_kb()
    compiled = rules_for(kb)
    record = Record.model_validate(load_example(name))
    evaluation = evaluate_items(kb, record)
    findings: dict[str, list[Finding]] = {}
    for text in record.texts:
        for f in extract_text(kb, text.item, text.text).findings:
            findings.setdefault(f.finding_id, []).append(f)
    q = record.questionnaire
    facts = Facts(
        sex=record.sex,
        age=record.age_years(),
        items=evaluation.by_id,
        findings=findings,
        history={"history": q.history, "medications": q.medications, "family_history": q.family_history},
        smoking=q.smoking,
        drinking=q.drinking,
        grade_ranks={},
    )
    present: set[str] = set()
    for item_id, e in facts.items.items():
        if e.value is None:
            continue
        present |= {f"item:{item_id}", f"flag:{item_id}:{e.flag}"}
        if isinstance(e.value, float):
            for _code, threshold, key in compiled.value_tests.get(item_id, []):
                # The key spells the comparison: value:<item>:<op>:<threshold>.
                if _OPERATORS[key.split(":")[2]](e.value, threshold):
                    present.add(key)
    present |= {f"finding:{finding_id}" for finding_id in findings}
    present |= {f"history:{k}" for k, v in facts.history.items() if v}
    present |= {f"questionnaire:{k}" for k, v in (("smoking", q.smoking), ("drinking", q.drinking)) if v is not None}
    woken = compiled.runnable_for(facts)
    assert facts.present is not None
    present |= facts.present
    assert [cr.rule_id for cr in woken] == [cr.rule_id for cr in compiled.runnable(present)]
    assert len(woken) > len(compiled.always)
