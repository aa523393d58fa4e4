"""Every command given the wrong kind of file refuses it in one line (exit 2) instead of printing confident output;
JSON inputs in other encodings, empty, binary or broken files get one clear line, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from zhujian.cli import app
from zhujian.examples import load_example
from zhujian.input_files import InputFileError, Kind, decode_text, kind_of, parse_json

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file of every kind: the critical example record (K 2.6 mmol/L), its report, a FHIR bundle, JSON lines."""
    folder = tmp_path_factory.mktemp("inputs")
    record = load_example("female_67_critical")
    paths = {name: folder / name for name in ("record.json", "report.json", "bundle.json", "records.jsonl")}
    paths["record.json"].write_text(json.dumps(record, ensure_ascii=False, indent=2), encoding="utf-8")
    result = runner.invoke(app, ["report", str(paths["record.json"])])
    assert result.exit_code == 0, result.output
    paths["report.json"].write_text(result.stdout, encoding="utf-8")
    result = runner.invoke(app, ["export-fhir", str(paths["report.json"]), "--out", str(paths["bundle.json"])])
    assert result.exit_code == 0, result.output
    paths["records.jsonl"].write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["reports.jsonl"] = folder / "reports.jsonl"
    report = json.loads(paths["report.json"].read_text(encoding="utf-8"))
    paths["reports.jsonl"].write_text(json.dumps(report, ensure_ascii=False) + "\n", encoding="utf-8")
    return paths


def _one_line_refusal(result_output: str, got: str, needs: str) -> None:
    lines = [line for line in result_output.splitlines() if line.strip()]
    assert len(lines) == 1, result_output
    assert got in lines[0] and needs in lines[0], lines[0]
    assert "Traceback" not in result_output


def test_pdf_of_a_record_is_refused(files: dict[str, Path], tmp_path: Path) -> None:
    # Before: exit 0 and a PDF saying 0 conclusions, no critical values, for a patient with potassium 2.6 mmol/L.
    out = tmp_path / "x.html"
    result = runner.invoke(app, ["pdf", str(files["record.json"]), "--out", str(out)])
    assert result.exit_code == 2
    _one_line_refusal(result.output, "this is a checkup record", "needs a report JSON")
    assert not out.exists()


def test_pdf_record_option_must_be_the_reports_record(files: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps(load_example("male_56_metabolic"), ensure_ascii=False), encoding="utf-8")
    out = tmp_path / "x.html"
    result = runner.invoke(app, ["pdf", str(files["report.json"]), "--record", str(other), "--out", str(out)])
    assert result.exit_code == 2 and "is not the report's" in result.output
    result = runner.invoke(app, ["pdf", str(files["report.json"]), "--record", str(files["report.json"]), "--out",
                                 str(out)])
    assert result.exit_code == 2
    _one_line_refusal(result.output, "this is a report", "needs one checkup record")


@pytest.mark.parametrize(
    ("command", "given", "got", "needs"),
    [
        (["report"], "report.json", "this is a report", "needs one checkup record"),
        (["report"], "bundle.json", "this is a FHIR Bundle", "import-fhir"),
        (["export-fhir"], "record.json", "this is a checkup record", "needs a report JSON"),
        (["export-fhir"], "bundle.json", "this is a FHIR Bundle", "needs a report JSON"),
        (["import-fhir"], "record.json", "this is a checkup record", "needs a FHIR R4 Bundle"),
        (["import-fhir"], "report.json", "this is a report", "needs a FHIR R4 Bundle"),
        (["risk", "china-par", "--input"], "record.json", "this is a checkup record", "model's inputs"),
        (["risk", "egfr", "--input"], "report.json", "this is a report", "model's inputs"),
    ],
)
def test_json_document_commands_refuse_other_kinds(
    files: dict[str, Path], command: list[str], given: str, got: str, needs: str
) -> None:
    result = runner.invoke(app, [*command, str(files[given])])
    assert result.exit_code == 2, result.output
    # risk also writes {"error": message} on stdout: the message is the same one line.
    output = result.stderr if command[0] == "risk" else result.output
    _one_line_refusal(output, got, needs)


@pytest.mark.parametrize(
    ("command", "given", "got", "needs"),
    [
        (["batch"], "report.json", "this is a report", "canonical records as JSON lines"),
        (["batch"], "reports.jsonl", "this is a report", "canonical records as JSON lines"),
        (["batch"], "bundle.json", "this is a FHIR Bundle", "canonical records as JSON lines"),
        (["batch"], "record.json", "one JSON document (a checkup record", "one record per line"),
        (["deid"], "reports.jsonl", "this is a report", "canonical records as JSON lines"),
        (["deid"], "bundle.json", "this is a FHIR Bundle", "canonical records as JSON lines"),
        (["extract", "--in"], "records.jsonl", "this is a checkup record", '{"id", "item", "text"}'),
        (["ingest"], "record.json", "this is a checkup record", "reads CSV, TSV and .xlsx"),
        (["ingest"], "records.jsonl", "this is a checkup record", "reads CSV, TSV and .xlsx"),
        (["ingest"], "bundle.json", "this is a FHIR Bundle", "--format fhir"),
        (["ingest", "--format", "fhir"], "record.json", "this is a checkup record", "needs a FHIR R4 Bundle"),
    ],
)
def test_file_commands_refuse_other_kinds(
    files: dict[str, Path], tmp_path: Path, command: list[str], given: str, got: str, needs: str
) -> None:
    out = tmp_path / "out.jsonl"
    extra = {"batch": ["--out", str(out), "--no-progress"], "deid": ["--out", str(out), "--key-file",
                                                                          str(tmp_path / "k.key")],
             "extract": ["--out", str(out)], "ingest": ["--out", str(out)]}[command[0]]
    args = [command[0], *command[1:], str(files[given]), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    _one_line_refusal(result.output, got, needs)
    assert not out.exists()


def test_batch_still_takes_records_with_a_bad_first_line(files: dict[str, Path], tmp_path: Path) -> None:
    # A broken line is the batch's to reject; it must not make the file look like something else.
    source = tmp_path / "in.jsonl"
    source.write_text("{broken\n" + files["records.jsonl"].read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["batch", str(source), "--out", str(out), "--no-progress", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_report_reads_gb18030_json(tmp_path: Path) -> None:
    # Before: a UnicodeDecodeError traceback. GB18030 is what Chinese hospital systems write.
    path = tmp_path / "gb.json"
    path.write_bytes(json.dumps(load_example("female_67_critical"), ensure_ascii=False).encode("gb18030"))
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 0, result.output
    assert "read as GB18030" in result.stderr
    report = json.loads(result.stdout)
    assert report["critical"][0]["item_id"] == "k"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"  \n\n", "the file is empty"),
        (bytes(range(256)) * 4, "a binary file, not JSON text (a zero byte at offset 0)"),
        (b"\x89PNG\r\n\x1a\n" + b"\xff\xfe\xfd" * 10, "not UTF-8 or GB18030 text (byte 0x89 at offset 0)"),
        # Before: "Invalid control character at)" — the position cut off.
        (b'{"visit_id": "a\tb"}', "line 1, column 16: a raw control character (U+0009) inside a string"),
        (b'{"visit_id": "a",\n "items": [}', "line 2, column 12"),
        (b'{"visit_id": "a', "a string that starts here is never closed"),
        (b'{"visit_id": "a"}\n{"visit_id": "b"}\n', "more JSON after the first value"),
    ],
)
def test_unreadable_json_is_one_clear_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(content)
    result = runner.invoke(app, ["report", str(path)])
    assert result.exit_code == 2
    assert message in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


@pytest.mark.parametrize("codec", ["utf-8-sig", "utf-16", "utf-32", "utf-16-le", "utf-32-be"])
def test_json_in_unicode_encodings(codec: str) -> None:
    text = '{"visit_id": "钾-1", "items": []}'
    decoded = decode_text(text.encode(codec), "x.json")
    assert decoded.text.lstrip("\ufeff") == text
    assert kind_of(parse_json(decoded.text.lstrip("\ufeff"), "x.json")) is Kind.RECORD


def test_kinds_by_shape() -> None:
    assert kind_of({"visit_id": "v", "items": []}) is Kind.RECORD
    assert kind_of({"visit_id": "v", "conclusions": [], "critical": []}) is Kind.REPORT
    assert kind_of({"resourceType": "Bundle", "entry": []}) is Kind.FHIR_BUNDLE
    assert kind_of({"resourceType": "Patient"}) is Kind.FHIR_RESOURCE
    assert kind_of({"id": "1", "item": "肝脏", "text": "脂肪肝"}) is Kind.TEXT_LINE
    # Risk-model inputs share age and sex with records but are neither.
    assert kind_of({"age": 55, "sex": "male", "sbp_mmhg": 140}) is Kind.OBJECT
    with pytest.raises(InputFileError, match="the file is empty"):
        parse_json("", "e.json")


@pytest.mark.parametrize("command", ["batch", "deid", "extract"])
def test_json_lines_in_gb18030_are_refused_with_the_conversion(tmp_path: Path, command: str) -> None:
    # These commands stream UTF-8 lines; before, every line of a GB18030 file became a reject (or a traceback).
    source = tmp_path / "in.jsonl"
    line = {"id": "t1", "item": "肝脏", "text": "脂肪肝"} if command == "extract" else load_example("female_67_critical")
    source.write_bytes((json.dumps(line, ensure_ascii=False) + "\n").encode("gb18030"))
    out = tmp_path / "out.jsonl"
    options = {"batch": [str(source), "--out", str(out), "--no-progress"],
               "deid": [str(source), "--out", str(out), "--key-file", str(tmp_path / "k.key")],
               "extract": ["--in", str(source), "--out", str(out)]}[command]
    result = runner.invoke(app, [command, *options])
    assert result.exit_code == 2, result.output
    _one_line_refusal(result.output, "GB18030 text, not UTF-8", "iconv -f GB18030 -t UTF-8")


def test_center_and_kb_options_name_an_unusable_file(files: dict[str, Path], tmp_path: Path) -> None:
    # Before: FileNotFoundError and UnicodeDecodeError tracebacks.
    binary = tmp_path / "center.yaml"
    binary.write_bytes(bytes(range(256)))
    for option, value, message in [
        ("--center", str(tmp_path / "absent.yaml"), "absent.yaml: cannot read: No such file or directory"),
        ("--center", str(binary), "center.yaml: not UTF-8 text"),
        ("--kb", str(files["record.json"]), "record.json: not a folder"),
    ]:
        result = runner.invoke(app, ["report", str(files["record.json"]), option, value])
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output


def test_unwritable_outputs_are_one_line(tmp_path: Path) -> None:
    texts = tmp_path / "texts.jsonl"
    texts.write_text('{"id": "1", "item": "肝脏", "text": "脂肪肝"}\n', encoding="utf-8")
    missing = tmp_path / "no" / "such" / "folder" / "out.json"
    table = tmp_path / "t.csv"
    table.write_text("visit_id,钾\nv1,4.1\n", encoding="utf-8")
    for args in (
        ["schema", "--out", str(missing)],
        ["extract", "--in", str(texts), "--out", str(missing)],
        ["ingest", str(table), "--out", str(tmp_path / "r.jsonl"), "--report-json", str(missing)],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert f"cannot write {missing}: No such file or directory" in result.output
