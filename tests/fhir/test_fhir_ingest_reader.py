"""The FHIR reader in the shape `zhujian ingest` readers have (ReadRequest in, ReadRecords out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from zhujian.adapters.base import IngestError, ReadRequest, SourceInfo
from zhujian.adapters.fhir import read_fhir_for_ingest
from zhujian.kb.loader import default_kb


def _request(path: Path) -> ReadRequest:
    return ReadRequest(path=path, format="fhir", kb=default_kb(), info=SourceInfo(file=path.name, format="fhir"))


def test_visits_become_records_and_unusable_resources_rejections(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "status": "final",
                    "code": {"text": "血红蛋白"},
                    "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": "2025-02-03",
                    "valueQuantity": {"value": 96, "unit": "g/L"},
                }
            },
            {"resource": {"resourceType": "Practitioner", "id": "dr"}},
        ],
    }
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    request = _request(path)

    reads = list(read_fhir_for_ingest(request))

    record_reads = [r for r in reads if r.record is not None]
    rejections = [r for r in reads if r.rejection is not None]
    assert len(record_reads) == 1 and record_reads[0].item_keys == ["血红蛋白"]
    assert record_reads[0].record is not None and record_reads[0].record.items[0].code == "hgb"
    (rejected,) = rejections
    assert rejected.first_row == 3  # the Practitioner is entry[2]
    assert rejected.rejection is not None and rejected.rejection.field == "Practitioner/dr"
    assert request.info.notes == ["FHIR Bundle: 1 visit(s), 1 problem(s)"]


@pytest.mark.parametrize(
    ("content", "message"), [("{not json", "not a JSON file"), ('{"resourceType": "Patient"}', "Bundle")]
)
def test_unreadable_files_raise_ingest_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(IngestError, match=message):
        list(read_fhir_for_ingest(_request(path)))
