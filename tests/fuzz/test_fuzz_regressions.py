"""Crashes on valid input, each reproduced as it was found (issue: "Crashes on valid input") and by the fuzz run."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fuzz_targets import xlsx_bytes
from pydantic import ValidationError

from zhujian.adapters import IngestError, ingest_file
from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.pipeline.run import build_report


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


def _zhujian(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "zhujian", *args], input=stdin, capture_output=True, text=True, env=env, timeout=120
    )


def _record(value: Any, **extra: Any) -> dict[str, Any]:
    return {"visit_id": "v1", "sex": "male", "age": 50, "items": [{"name": "钾", "value": value}], **extra}


# --- An integer item value above 1e308 (OverflowError in values.py) ----------------------------------------------


def test_huge_integer_value_is_an_unreadable_value_with_a_problem(kb: KnowledgeBase) -> None:
    report = build_report(kb, Record.model_validate(_record(10**400)))
    potassium = report.items[0]
    assert (potassium.value, potassium.flag) == (None, "unknown")
    problem = next(p for p in report.problems if p.code == "unparseable")
    assert problem.item == "钾" and "超出可表示范围" in problem.message
    json.dumps(report.to_dict(), allow_nan=False)


def test_report_command_with_a_huge_integer(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(_record(10**400)), encoding="utf-8")
    done = _zhujian("report", str(path))
    assert done.returncode == 0, done.stderr
    assert any(p["code"] == "unparseable" for p in json.loads(done.stdout)["problems"])


# --- NaN / Infinity / 1e999 in a posted record (500 from the record hash) ------------------------------------------


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_number_is_refused_naming_the_field(literal: str) -> None:
    body = json.loads(json.dumps(_record(0)).replace('"value": 0', f'"value": {literal}'))
    with pytest.raises(ValidationError) as caught:
        Record.model_validate(body)
    error = caught.value.errors()[0]
    assert error["loc"] == ("items", 0, "value") and "finite" in error["msg"]
    # The web API parses with the same model (and answers 422 with the field); pydantic's own JSON parser agrees.
    with pytest.raises(ValidationError):
        Record.model_validate_json(json.dumps(_record(0)).replace('"value": 0', f'"value": {literal}'))


def test_non_finite_number_in_a_prior_visit_and_age_are_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        Record.model_validate(
            {**_record("4.0"), "prior_visits": [{"visit_id": "p", "items": [{"name": "钾", "value": float("inf")}]}]}
        )
    assert caught.value.errors()[0]["loc"] == ("prior_visits", 0, "items", 0, "value")
    with pytest.raises(ValidationError) as caught:
        Record.model_validate({**_record("4.0"), "age": float("nan")})
    assert caught.value.errors()[0]["loc"] == ("age",)


def test_report_command_refuses_nan_with_one_message(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(_record(0)).replace('"value": 0', '"value": NaN'), encoding="utf-8")
    done = _zhujian("report", str(path))
    assert done.returncode == 2
    assert "items.0.value" in done.stderr and "Traceback" not in done.stderr


def test_reference_range_beyond_float_after_conversion(kb: KnowledgeBase) -> None:
    """Ranges are read with the number grammar of values (exponents included): "1e307-1.5e308" mg/dL is finite as
    printed, infinite in µmol/L (× 88.4), and the report's JSON (allow_nan=False) could not be written. Such a range
    is unreadable and the KB default is used."""
    record = Record.model_validate(
        {**_record("1"), "items": [{"name": "肌酐", "value": "1", "unit": "mg/dL", "reference_range": "1e307-1.5e308"}]}
    )
    report = build_report(kb, record)
    creatinine = report.items[0]
    assert creatinine.ref_source == "kb" and creatinine.value == pytest.approx(88.4)
    assert [p.code for p in report.problems] == ["reference_unparseable"]
    json.dumps(report.to_dict(), allow_nan=False)


# --- A prior visit dated after the exam, without an age (ValidationError in compare.py) ---------------------------


def test_prior_visit_after_the_exam_without_age(kb: KnowledgeBase) -> None:
    record = Record.model_validate(
        {
            **_record("4.0"),
            "age": 128,
            "exam_date": "2024-01-01",
            "prior_visits": [{"visit_id": "p", "exam_date": "2030-01-01", "items": [{"name": "钾", "value": "4.1"}]}],
        }
    )
    report = build_report(kb, record)
    assert report.extras["comparison"]["previous_visit_id"] == "p"
    assert report.items[0].value == 4.0


# --- xlsx cells openpyxl cannot convert or that hold no finite number ---------------------------------------------


def _xlsx(tmp_path: Path, raw: str, cell_type: str = "n") -> Path:
    path = tmp_path / "book.xlsx"
    path.write_bytes(xlsx_bytes((["体检号", "性别", "年龄", "钾"], [["V1", "男", 50, "4.1"]], raw, cell_type)))
    return path


def test_xlsx_nan_cell_refuses_the_file_naming_the_row(tmp_path: Path, kb: KnowledgeBase) -> None:
    with pytest.raises(IngestError, match=r"row 3 .*nan"):
        ingest_file(_xlsx(tmp_path, "nan"), "wide-csv", kb=kb).consume()
    done = _zhujian("ingest", str(_xlsx(tmp_path, "nan")), "--out", str(tmp_path / "out.jsonl"))
    assert done.returncode == 2 and "row 3" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("raw", ["1e999", "1" * 400])
def test_xlsx_number_beyond_float_is_an_unreadable_value(tmp_path: Path, kb: KnowledgeBase, raw: str) -> None:
    # The case's raw cell is the second of the row ["V9", raw]: the 钾 column.
    path = tmp_path / "book.xlsx"
    path.write_bytes(xlsx_bytes((["体检号", "钾"], [], raw, "n")))
    result = ingest_file(path, "wide-csv", kb=kb)
    entries = list(result.entries())
    assert len(entries) == 1
    assert entries[0].record.visit_id == "V9"
    assert any(p.code == "unparseable" and p.item == "钾" and "超出可表示范围" in p.message for p in entries[0].problems)


# --- A JSON escape of half a UTF-16 pair ("\ud800"): valid JSON, no text; the report could not be written out ------


@pytest.mark.parametrize(
    ("path", "where"),
    [(("visit_id",), "visit_id"), (("items", 0, "value"), "items.0.value"), (("texts", 0, "text"), "texts.0.text")],
)
def test_lone_surrogate_is_refused_naming_the_field(path: tuple[str | int, ...], where: str) -> None:
    data: dict[str, Any] = {**_record("4.0"), "texts": [{"item": "肝脏", "text": "脂肪肝"}]}
    holder: Any = data
    for key in path[:-1]:
        holder = holder[key]
    holder[path[-1]] = str(holder[path[-1]]) + "\ud800"
    with pytest.raises(ValidationError, match=rf"field {re.escape(where)}: .*surrogate"):
        Record.model_validate(data)


def test_report_command_with_a_lone_surrogate(tmp_path: Path) -> None:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(_record("4\ud800")), encoding="utf-8")  # json.dumps escapes it as \\ud800
    done = _zhujian("report", str(path))
    assert done.returncode == 2 and "items.0.value" in done.stderr and "Traceback" not in done.stderr
