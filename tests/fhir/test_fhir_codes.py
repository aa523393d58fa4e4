"""The codes file (adapters/fhir_codes.yaml) agrees with the knowledge base."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhujian.adapters.fhir import FhirCodesError, load_fhir_codes, loinc_index, ucum_code
from zhujian.kb.loader import default_kb


def test_every_mapped_item_exists_and_no_code_contradicts_the_kb() -> None:
    kb = default_kb()
    codes = load_fhir_codes()
    assert sorted(item for item in codes.loinc_to_item.values() if item not in kb.items) == []
    kb_codes = {item.loinc: item_id for item_id, item in kb.items.items() if item.loinc}
    assert [c for c, item in codes.loinc_to_item.items() if kb_codes.get(c, item) != item] == []
    index = loinc_index(kb, codes)
    # The KB's own code and the mass-unit term of the same analyte both reach the item (glucose.yaml, lipids.yaml).
    assert (index["14771-0"], index["1558-6"], index["14647-2"], index["2093-3"]) == ("glu", "glu", "tc", "tc")


def test_every_kb_unit_has_a_ucum_code() -> None:
    kb = default_kb()
    codes = load_fhir_codes()
    assert sorted({i.unit for i in kb.items.values() if i.unit and ucum_code(i.unit, codes) is None}) == []
    # UCUM spellings (ucum.org c/s): millimetre of mercury, degree Celsius, per minute, 10^9 per litre.
    assert [ucum_code(u, codes) for u in ("mmHg", "°C", "次/分", "10^9/L")] == ["mm[Hg]", "Cel", "/min", "10*9/L"]


def test_a_contradictory_codes_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "codes.yaml"
    bad.write_text(
        "source: test\n"
        "loinc:\n"
        "  - {code: '2345-7', item: glu, display: a}\n"
        "  - {code: '2345-7', item: tc, display: b}\n"
        "ucum: []\n",
        encoding="utf-8",
    )
    with pytest.raises(FhirCodesError, match="2345-7 maps to both 'glu' and 'tc'"):
        load_fhir_codes(bad)
