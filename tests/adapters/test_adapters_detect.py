"""Encoding and delimiter detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from zhujian.adapters import IngestError, ingest_file
from zhujian.adapters.detect import detect_delimiter, detect_encoding
from zhujian.kb.loader import KnowledgeBase, default_kb

CHINESE = "体检号,性别,年龄,总胆固醇,甘油三酯,高密度脂蛋白胆固醇,空腹血糖\nA1,男,45,5.2,1.3,1.1,5.6\nA2,女,50,4.8,1.0,1.4,5.0\n"
KOREAN = "수검자번호,성별,나이,총콜레스테롤,중성지방,공복혈당,혈색소,요단백\nK1,남,45,186,102,100,17,음성\n"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (CHINESE.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + CHINESE.encode("utf-8"), "utf-8-sig"),
        (CHINESE.encode("gb18030"), "gb18030"),
        (CHINESE.encode("gbk"), "gb18030"),
        (KOREAN.encode("cp949"), "cp949"),
        # Only one non-ASCII character, as in the Korean NHIS header: γ is Greek in CP949, katakana in GB18030.
        ("ID,AST,ALT,γ-GTP\nSP1,23,25,18\n".encode("cp949"), "cp949"),
        # A Chinese file whose only non-ASCII text is 男/女 (Hangul if read as CP949) stays Chinese.
        ("id,sex\n1,男\n2,女\n".encode("gb18030"), "gb18030"),
        (b"id,glu\n1,5.5\n", "utf-8"),
    ],
)
def test_detect_encoding(data: bytes, expected: str) -> None:
    assert detect_encoding(data).encoding == expected


def test_cut_multibyte_character_at_sample_end_is_not_an_error() -> None:
    data = CHINESE.encode("utf-8")
    cut = data[: data.index("总".encode()) + 1]  # ends inside a 3-byte character
    assert detect_encoding(cut).encoding == "utf-8"


def test_explicit_encoding_wins_and_wrong_one_is_clear(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "gb.csv"
    path.write_bytes(CHINESE.encode("gb18030"))
    result = ingest_file(path, kb=kb, encoding="gbk")
    report = result.consume()
    assert report.encoding == "gbk" and report.encoding_reason == "given with --encoding"
    assert report.columns["总胆固醇"].present == 2
    with pytest.raises(IngestError, match="not valid utf-8"):
        ingest_file(path, kb=kb, encoding="utf-8").consume()
    with pytest.raises(IngestError, match="unknown encoding"):
        ingest_file(path, kb=kb, encoding="klingon").consume()


@pytest.mark.parametrize("delimiter", [",", "\t", ";", "|", "$"])
def test_detect_delimiter(delimiter: str) -> None:
    lines = [
        delimiter.join(["id", "血糖", "备注"]),
        delimiter.join(["1", "5.5", "a,b;c"]),
        delimiter.join(["2", "6", ""]),
    ]
    if delimiter in ",;":
        lines[1] = delimiter.join(["1", "5.5", "abc"])
    assert detect_delimiter(lines)[0] == delimiter


def test_single_column_file_is_comma() -> None:
    assert detect_delimiter(["血糖", "5.5", "6.1"])[0] == ","


@pytest.mark.parametrize("delimiter", [";", "|", "\t"])
def test_delimited_files_ingest(tmp_path: Path, kb: KnowledgeBase, delimiter: str) -> None:
    path = tmp_path / "d.txt"
    path.write_text(
        delimiter.join(["id", "性别", "血糖"]) + "\n" + delimiter.join(["A", "女", "5.5"]) + "\n", encoding="utf-8"
    )
    result = ingest_file(path, kb=kb)
    records = list(result)
    assert result.report.delimiter == delimiter
    assert records[0].sex == "female" and records[0].items[0].value == "5.5"


def test_undecodable_bytes_later_in_file_are_reported(
    tmp_path: Path, kb: KnowledgeBase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Valid UTF-8 in the sample used for detection, then a stray GBK byte pair in a value further on. The
    # sample is shortened so that the test file can stay small.
    from zhujian.adapters import tables
    from zhujian.adapters.detect import read_sample

    monkeypatch.setattr(tables, "read_sample", lambda path: read_sample(path, 64))
    data = "id,备注\n".encode() + b"A,ok\n" * 20 + b"B,\xb0\xa1x\n"
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    result = ingest_file(path, kb=kb)
    entries = list(result.entries())
    assert len(entries) == 21 and result.report.encoding == "utf-8"
    assert [p.code for p in entries[-1].problems if p.code == "encoding_error"] == ["encoding_error"]
