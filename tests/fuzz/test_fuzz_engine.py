"""Fuzzing the engine on generated records: any strings and numbers in values, units, ranges, texts, dates, ages,
sexes and prior visits. A record is either refused with a ValidationError naming the field, or reported (JSON
without NaN/Infinity, the text narration included). CI size; `benchmarks/fuzz.py` runs it at length."""

from __future__ import annotations

from typing import Any

from fuzz_targets import TARGETS
from hypothesis import HealthCheck, given, settings

ENGINE = TARGETS["engine"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(ENGINE.strategy())
def test_fuzz_engine(record: dict[str, Any]) -> None:
    ENGINE.check(record)
