"""Fuzzing the value and range parsers (CI size; `benchmarks/fuzz.py` runs the same targets at length)."""

from __future__ import annotations

from typing import Any

from fuzz_targets import TARGETS
from hypothesis import HealthCheck, given, settings

VALUES = TARGETS["values"]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VALUES.strategy())
def test_fuzz_value_parser(raw: Any) -> None:
    VALUES.check(raw)
