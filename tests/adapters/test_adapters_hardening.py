"""Ingest of damaged files: a broken quote, over-long lines, stray undecodable bytes, UTF-32.

Each file is the smallest reproduction of a file an old export really produces. What must hold: no row is silently
swallowed into another, every row that cannot be read is rejected with its row number, one bad byte does not stop
a file, and a pathological line is refused quickly with the limit named.
"""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from zhujian.adapters import IngestedRecord, IngestError, QualityReport, delimited, ingest_file
from zhujian.adapters.detect import detect_encoding
from zhujian.kb.loader import KnowledgeBase, default_kb

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


def _read(path: Path, kb: KnowledgeBase, **kwargs: str) -> tuple[list[IngestedRecord], QualityReport]:
    result = ingest_file(path, kb=kb, **kwargs)
    entries = list(result.entries())
    return entries, result.report


def _potassium(entries: list[IngestedRecord]) -> dict[str, object]:
    return {e.record.visit_id: next(i.value for i in e.record.items if i.name == "钾") for e in entries}


# v1's potassium cell opens a quote that is never closed; v2 and v3 hold critical potassium values.
UNTERMINATED = 'visit_id,性别,年龄,钾\nv1,男,50,"4.1\nv2,女,60,2.6\nv3,男,40,6.8\nv4,女,30,4.0\n'


def test_unterminated_quote_rejects_its_row_and_keeps_the_rows_after_it(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "quote.csv"
    path.write_text(UNTERMINATED, encoding="utf-8")
    entries, report = _read(path, kb)
    # Before: one record v1 whose potassium was "4.1\nv2,女,60,2.6\n…", nothing rejected.
    assert _potassium(entries) == {"v2": "2.6", "v3": "6.8", "v4": "4.0"}
    assert report.rows_rejected == 1
    rejected = report.rejected_examples[0]
    assert rejected["row"] == 2 and rejected["code"] == "row_unreadable"
    assert "引号" in rejected["message"] and "3 行" in rejected["message"]
    # Both swallowed potassium values are class-A critical values (K ≤ 2.8 and K ≥ 6.2 mmol/L, critical.yaml).
    critical = [i for e in entries for i in (e.evaluation.items if e.evaluation else []) if i.critical]
    assert [i.raw_value for i in critical] == ["2.6", "6.8"]


def test_quote_closed_rows_later_is_caught_too(tmp_path: Path, kb: KnowledgeBase) -> None:
    # The stray quote of row 2 is "closed" by the quote that opens row 4's sex cell: strict splitting notices the
    # text that follows it, rejects row 2, and reads rows 3 and 4 again.
    path = tmp_path / "quote2.csv"
    path.write_text('visit_id,性别,年龄,钾\nv1,男,50,"4.1\nv2,女,60,2.6\nv3,"男",40,6.8\nv4,女,30,4.0\n', "utf-8")
    entries, report = _read(path, kb)
    assert _potassium(entries) == {"v2": "2.6", "v3": "6.8", "v4": "4.0"}
    assert [e["row"] for e in report.rejected_examples] == [2]
    assert entries[0].record.items[0].origin == "quote2.csv:row 3:column 钾"


def test_multi_line_quoted_text_is_still_one_cell(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "ok.csv"
    path.write_text('visit_id,备注,钾\nA,"第一行\n第二行, 含逗号",4.1\nB,x,2.6\n', encoding="utf-8")
    entries, report = _read(path, kb)
    assert report.rows_rejected == 0
    assert entries[0].record.items[0].value == "第一行\n第二行, 含逗号"
    assert _potassium(entries) == {"A": "4.1", "B": "2.6"}


def test_unterminated_quote_in_a_long_file_is_cut_at_the_row_limit(
    tmp_path: Path, kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The quote would swallow everything to the end of the file; the row limit stops it early and the rows it had
    # taken are read again. (The limit is lowered so that the file can stay small.)
    monkeypatch.setattr(delimited, "MAX_ROW_CHARS", 200)
    rows = [f"v{n},男,50,4.{n % 10}" for n in range(2, 60)]
    path = tmp_path / "long.csv"
    path.write_text("visit_id,性别,年龄,钾\nv1,男,50,\"4.1\n" + "\n".join(rows) + "\n", encoding="utf-8")
    entries, report = _read(path, kb)
    assert [e["row"] for e in report.rejected_examples] == [2]
    assert "200" in report.rejected_examples[0]["message"]
    assert [e.record.visit_id for e in entries] == [f"v{n}" for n in range(2, 60)]


def test_over_long_data_line_is_rejected_and_reading_goes_on(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("visit_id,钾\nv1,4.1\nv2," + "9" * (delimited.MAX_ROW_CHARS + 10) + "\nv3,2.6\n", "utf-8")
    entries, report = _read(path, kb)
    assert _potassium(entries) == {"v1": "4.1", "v3": "2.6"}
    assert [e["row"] for e in report.rejected_examples] == [3]
    assert str(delimited.MAX_ROW_CHARS) in report.rejected_examples[0]["message"]


def test_eight_megabyte_header_is_refused_quickly_naming_the_limit(tmp_path: Path, kb: KnowledgeBase) -> None:
    # Before: more than 90 s and 1.9 GB of memory for this file.
    path = tmp_path / "header.csv"
    path.write_text(",".join(f"col{n}" for n in range(800_000)) + "\n1,2,3\n", encoding="utf-8")
    assert path.stat().st_size > 7_000_000
    started = time.perf_counter()
    with pytest.raises(IngestError, match=f"longer than the limit of {delimited.MAX_ROW_CHARS} characters"):
        ingest_file(path, kb=kb).consume()
    assert time.perf_counter() - started < 30


def test_header_with_more_columns_than_a_spreadsheet_is_refused(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "cols.csv"
    path.write_text(",".join(f"c{n}" for n in range(delimited.MAX_COLUMNS + 1)) + "\n", encoding="utf-8")
    with pytest.raises(IngestError, match=f"more than the limit of {delimited.MAX_COLUMNS}"):
        ingest_file(path, kb=kb).consume()


def _gb18030_with_stray_byte() -> bytes:
    rows = ["visit_id,性别,年龄,钾"] + [f"v{n},男,50,4.{n % 10}" for n in range(200)]
    data = ("\n".join(rows) + "\n").encode("gb18030")
    at = data.index(b"\nv5,") + 1
    return data[:at] + b"\xff" + data[at:]


@pytest.mark.parametrize("encoding", [None, "gb18030"])
def test_one_stray_byte_does_not_refuse_a_gb18030_file(tmp_path: Path, kb: KnowledgeBase, encoding: str | None) -> None:
    # Before: refused with and without --encoding ("pass --encoding" / "not valid gb18030").
    path = tmp_path / "gb.csv"
    path.write_bytes(_gb18030_with_stray_byte())
    entries, report = (_read(path, kb, encoding=encoding) if encoding else _read(path, kb))
    assert report.encoding == "gb18030"
    assert len(entries) == 200 and entries[0].record.sex == "male"
    bad = [p for e in entries for p in e.problems if p.code == "encoding_error"]
    assert len(bad) == 1 and bad[0].field == "gb.csv:row 7:column visit_id"


def test_wrong_explicit_encoding_is_refused_with_the_likely_one(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "gb.csv"
    path.write_bytes(_gb18030_with_stray_byte())
    with pytest.raises(IngestError, match=r"not valid utf-8.*it looks like gb18030") as info:
        ingest_file(path, kb=kb, encoding="utf-8").consume()
    assert "pass --encoding" not in str(info.value)


@pytest.mark.parametrize(
    ("bom", "codec"), [(codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be")]
)
def test_utf32_byte_order_marks(tmp_path: Path, kb: KnowledgeBase, bom: bytes, codec: str) -> None:
    text = "visit_id,性别,年龄,钾\n" + "".join(f"v{n},女,60,2.6\n" for n in range(200))
    data = bom + text.encode(codec)
    assert detect_encoding(data).encoding == "utf-32"
    path = tmp_path / "u32.csv"
    path.write_bytes(data)
    entries, report = _read(path, kb)
    # Before: read as UTF-16, 201 records of garbage with unknown columns.
    assert report.encoding == "utf-32" and not report.unknown_columns
    assert len(entries) == 200 and set(_potassium(entries).values()) == {"2.6"}


def test_cli_names_rejected_rows(tmp_path: Path) -> None:
    path = tmp_path / "quote.csv"
    path.write_text(UNTERMINATED, encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run(
        [sys.executable, "-m", "zhujian", "ingest", str(path), "--out", str(tmp_path / "r.jsonl")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "rejected row 2:" in done.stderr and "引号" in done.stderr
    assert len((tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def test_long_file_with_unterminated_quote_keeps_the_other_results(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        'visit_id,item,value\nv1,钾,"4.1\nv1,钠,140\nv2,钾,2.6\nv2,钠,135\n', encoding="utf-8"
    )
    entries, report = _read(path, kb, fmt="long")
    values = {(e.record.visit_id, i.name): i.value for e in entries for i in e.record.items}
    assert values == {("v1", "钠"): "140", ("v2", "钾"): "2.6", ("v2", "钠"): "135"}
    assert [e["row"] for e in report.rejected_examples] == [2]


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"PK\x03\x04" + b"\x00" * 40, "a ZIP archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 40, "an old binary Excel (.xls) file"),
        (b"%PDF-1.7\n" + b"\xff" * 40, "a PDF document"),
    ],
)
def test_cli_names_binary_files_saved_as_csv(tmp_path: Path, content: bytes, what: str) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes(content)
    done = _ingest_cli(path, tmp_path)
    assert done.returncode == 2 and what in done.stderr, done.stderr


def test_cli_fhir_ingest_says_a_gb18030_bundle_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bundle.json"
    path.write_bytes('{"resourceType": "Bundle", "type": "collection", "entry": [], "id": "体检"}'.encode("gb18030"))
    done = _ingest_cli(path, tmp_path, "--format", "fhir")
    assert done.returncode == 2 and "GB18030 text, not UTF-8" in done.stderr, done.stderr


def _ingest_cli(path: Path, tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run(
        [sys.executable, "-m", "zhujian", "ingest", str(path), *options, "--out", str(tmp_path / "r.jsonl")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_undecodable_bytes_in_the_header_are_noted(tmp_path: Path, kb: KnowledgeBase) -> None:
    body = "".join(f"v{n},男,4.1\n" for n in range(200)).encode("gb18030")
    data = "visit_id,性别,钾\n".encode("gb18030").replace(b"\xbc", b"\xff", 1) + body
    assert b"\xff" in data
    path = tmp_path / "gb.csv"
    path.write_bytes(data)
    entries, report = _read(path, kb, encoding="gb18030")
    assert len(entries) == 200
    assert any(note.startswith("header: 1 column name(s) hold bytes that gb18030 cannot decode") for note in report.notes)
