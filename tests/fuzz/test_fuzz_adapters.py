"""Fuzzing every reader: wide CSV, xlsx, long, Meinian `$`, FHIR JSON (structured Bundles and raw bytes). A file is
read (its problems reported) or refused with an IngestError; nothing else. CI size; `benchmarks/fuzz.py` runs the
same targets at length."""

from __future__ import annotations

from typing import Any

import pytest
from fuzz_targets import TARGETS, workspace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CI_EXAMPLES = {"wide-csv": 40, "xlsx": 20, "long": 40, "meinian": 40, "fhir": 60, "fhir-bytes": 30}


@pytest.mark.parametrize("name", sorted(CI_EXAMPLES))
def test_fuzz_reader(name: str) -> None:
    target = TARGETS[name]
    space = workspace()

    @settings(
        max_examples=CI_EXAMPLES[name],
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case: Any = data.draw(target.strategy())
        target.check(case, space)

    run()
