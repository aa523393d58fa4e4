"""`zhujian export-fhir` and `zhujian import-fhir` through a small Typer app, the report JSON reader, and the engine's
own report exported end to end."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from zhujian.adapters.fhir import ReportFormatError, report_from_dict, report_to_fhir_bundle, validate_fhir_bundle
from zhujian.domain.record import Record
from zhujian.examples import load_example
from zhujian.fhir_cli import export_fhir_command, import_fhir_command
from zhujian.kb.loader import default_kb
from zhujian.pipeline.run import build_report

app = typer.Typer()
app.command("export-fhir")(export_fhir_command)
app.command("import-fhir")(import_fhir_command)
runner = CliRunner()


@pytest.fixture(scope="module")
def example() -> tuple[Record, dict[str, object]]:
    record = Record.model_validate(load_example("female_67_critical"))
    return record, build_report(default_kb(), record).to_dict()


def test_report_json_reads_back_to_the_same_report(example: tuple[Record, dict[str, object]]) -> None:
    _, report_json = example
    assert report_from_dict(json.loads(json.dumps(report_json, ensure_ascii=False))).to_dict() == report_json


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("visit_id"), r"report\.visit_id: missing"),
        (lambda d: d["conclusions"][0].pop("name"), r"report\.conclusions\[0\]\.name: missing"),
        (lambda d: d["items"][0].update(flag="very high"), r"report\.items\[0\]\.flag: expected normal"),
        (lambda d: d["items"][1].update(value=[1, 2]), r"report\.items\[1\]\.value: expected int/float/str"),
    ],
)
def test_broken_report_json_names_the_field(
    example: tuple[Record, dict[str, object]], change: Callable[[dict[str, Any]], object], message: str
) -> None:
    data = json.loads(json.dumps(example[1], ensure_ascii=False))
    change(data)
    with pytest.raises(ReportFormatError, match=message):
        report_from_dict(data)


def test_engine_report_exports_to_a_valid_bundle(example: tuple[Record, dict[str, object]]) -> None:
    record, report_json = example
    report = report_from_dict(report_json)
    bundle = report_to_fhir_bundle(report, record, kb=default_kb())
    assert validate_fhir_bundle(bundle) == []
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    # One Observation per evaluated item plus one per free-text result of the record (ECG and breast ultrasound).
    assert kinds.count("Observation") == len(report.items) + len(record.texts) == len(report.items) + 2
    assert kinds.count("Condition") == len(report.conclusions) > 0
    diagnostic = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DiagnosticReport")
    # Potassium 2.6 mmol/L is a class-A critical value (2019 consensus: K < 2.8); the conclusion says so.
    assert "危急值" in diagnostic["conclusion"]


def test_export_fhir_command_writes_a_valid_bundle(tmp_path: Path, example: tuple[Record, dict[str, object]]) -> None:
    record, report_json = example
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps(report_json, ensure_ascii=False), encoding="utf-8")
    record_file = tmp_path / "record.json"
    record_file.write_text(record.model_dump_json(), encoding="utf-8")
    out = tmp_path / "bundle.json"

    result = runner.invoke(app, ["export-fhir", str(report_file), "--record", str(record_file), "--out", str(out)])

    assert result.exit_code == 0, result.output
    bundle = json.loads(out.read_text(encoding="utf-8"))
    assert validate_fhir_bundle(bundle) == []
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    assert patient == {"resourceType": "Patient", "id": "P-demo-002", "gender": "female"}


def test_export_fhir_command_rejects_a_record_of_another_visit(
    tmp_path: Path, example: tuple[Record, dict[str, object]]
) -> None:
    record, report_json = example
    report_file = tmp_path / "report.json"
    report_file.write_text(json.dumps(report_json, ensure_ascii=False), encoding="utf-8")
    record_file = tmp_path / "record.json"
    record_file.write_text(record.model_copy(update={"visit_id": "OTHER"}).model_dump_json(), encoding="utf-8")
    result = runner.invoke(app, ["export-fhir", str(report_file), "--record", str(record_file)])
    assert result.exit_code == 2
    assert "visit_id 'OTHER'" in result.output


def test_export_fhir_command_reports_bad_json(tmp_path: Path) -> None:
    bad = tmp_path / "report.json"
    bad.write_text('{"visit_id": ', encoding="utf-8")
    result = runner.invoke(app, ["export-fhir", str(bad)])
    assert result.exit_code == 2
    assert "not valid JSON (line 1" in result.output


def test_import_fhir_command_writes_records_and_lists_problems(tmp_path: Path) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": {"resourceType": "Patient", "id": "p1", "gender": "male"}},
            {
                "resource": {
                    "resourceType": "Observation",
                    "id": "o1",
                    "status": "final",
                    "code": {"text": "空腹血糖"},
                    "subject": {"reference": "Patient/p1"},
                    "effectiveDateTime": "2025-01-02",
                    "valueQuantity": {"value": 7.2, "unit": "mmol/L"},
                }
            },
            {"resource": {"resourceType": "Practitioner", "id": "dr-wang"}},
        ],
    }
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(bundle, ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "records.jsonl"

    result = runner.invoke(app, ["import-fhir", str(source), "--out", str(out)])

    assert result.exit_code == 0, result.output
    (line,) = out.read_text(encoding="utf-8").splitlines()
    record = Record.model_validate_json(line)
    assert (record.visit_id, record.items[0].value, record.items[0].code) == ("p1-2025-01-02", 7.2, "glu")
    assert "Practitioner/dr-wang: resource type Practitioner is not read" in result.output
    assert "1 record(s), 1 problem(s)" in result.output
