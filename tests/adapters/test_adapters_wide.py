"""Wide files (one row per checkup): headers, demographics, empty cells, unknown columns, origins, .xlsx."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from zhujian.adapters import IngestedRecord, IngestError, QualityReport, ingest_file
from zhujian.kb.loader import KnowledgeBase, default_kb


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


def _write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def _read(path: Path, kb: KnowledgeBase, **options: str) -> tuple[list[IngestedRecord], QualityReport]:
    result = ingest_file(path, options.pop("fmt", "wide-csv"), kb=kb, **options)
    entries = list(result.entries())
    assert result.report.complete
    return entries, result.report


def _items(entry: IngestedRecord) -> dict[str, object]:
    return {item.name or "": item.value for item in entry.record.items}


def _value_of(entry: IngestedRecord, item_id: str) -> object:
    assert entry.evaluation is not None
    return entry.evaluation.by_id[item_id].value


def test_headers_values_and_origins(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(
        tmp_path / "labs.csv",
        "id,性别,年龄,体检日期,*丙氨酸氨基转换酶,ＡＳＴ ,甘油三酯,血糖\n"
        "A1,男,41,12/10/2017,23.1,24.96,> 6.22,\n"
        "A2,女,35,19/10/2017,,30,1.2,5.6\n",
    )
    entries, report = _read(path, kb)
    assert [e.record.visit_id for e in entries] == ["A1", "A2"]
    first = entries[0]
    assert first.record.sex == "male" and first.record.age == 41
    # 19/10/2017 in the same column shows the order is day/month: 12/10/2017 is 12 October.
    assert first.record.exam_date == dt.date(2017, 10, 12)
    # Values are kept exactly as given; the empty glucose cell is missing, not an item.
    assert _items(first) == {"*丙氨酸氨基转换酶": "23.1", "ＡＳＴ": "24.96", "甘油三酯": "> 6.22"}
    assert first.record.items[0].origin == "labs.csv:row 2:column *丙氨酸氨基转换酶"
    assert entries[1].record.items[-1].origin == "labs.csv:row 3:column 血糖"
    # Full-width "ＡＳＴ " and the leading '*' resolve through the KB aliases.
    assert _value_of(first, "ast") == 24.96
    assert _value_of(first, "alt") == 23.1
    assert first.evaluation is not None and first.evaluation.by_id["tg"].qualifier == ">"
    assert report.columns["血糖"].missing == 1 and report.columns["血糖"].present == 1
    assert report.columns["*丙氨酸氨基转换酶"].missing == 1
    assert report.rows_read == 2 and report.records_written == 2 and report.rows_rejected == 0
    assert report.unknown_columns == []


def test_unknown_columns_are_kept_and_reported(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "u.csv", "体检号,性别,神秘指标,血糖\nV9,女,abc,5.1\nV10,女,,5.2\n")
    entries, report = _read(path, kb)
    assert _items(entries[0]) == {"神秘指标": "abc", "血糖": "5.1"}
    assert "神秘指标" in report.unknown_columns
    assert report.columns["神秘指标"].rejected == {"item_unknown": 1}
    assert report.columns["神秘指标"].missing == 1
    assert report.problems_by_code["item_unknown"] == 1
    unknown = [p for p in entries[0].problems if p.code == "item_unknown"]
    assert unknown[0].field == "u.csv:row 2:column 神秘指标" and unknown[0].value == "abc"


def test_sex_codes_and_unreadable_sex(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "s.csv", "id,sex,glu\n1,M,5\n2,F,5\n3,1,5\n4,2,5\n5,male,5\n6,Female,5\n7,??,5\n8,,5\n")
    entries, report = _read(path, kb)
    assert [e.record.sex for e in entries] == [
        "male",
        "female",
        "male",
        "female",
        "male",
        "female",
        "unknown",
        "unknown",
    ]
    problem = next(p for p in entries[6].problems if p.code == "sex_unreadable")
    assert problem.value == "??" and problem.field == "s.csv:row 8:column sex"
    assert report.problems_by_code["sex_unreadable"] == 1


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2017-10-12", dt.date(2017, 10, 12)),
        ("2017/10/2", dt.date(2017, 10, 2)),
        ("2017/1/5", dt.date(2017, 1, 5)),
        ("20171012", dt.date(2017, 10, 12)),
        ("2017年10月12日", dt.date(2017, 10, 12)),
        ("2017-10-12 08:30:00", dt.date(2017, 10, 12)),
        ("25/12/2017", dt.date(2017, 12, 25)),
    ],
)
def test_date_formats(tmp_path: Path, kb: KnowledgeBase, written: str, expected: dt.date) -> None:
    path = _write(tmp_path / "d.csv", f"id,exam_date\nX,{written}\n")
    entries, _ = _read(path, kb)
    assert entries[0].record.exam_date == expected
    assert not [p for p in entries[0].problems if p.code.startswith("date")]


def test_ambiguous_and_bad_dates_are_problems(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "d.csv", "id,体检日期\nA,03/04/2017\nB,2017-02-30\nC,next week\n")
    entries, report = _read(path, kb)
    a, b, c = entries
    # No date in the column tells day/month from month/day: read day first, and say so.
    assert a.record.exam_date == dt.date(2017, 4, 3)
    assert [p.code for p in a.problems] == ["date_ambiguous"]
    assert b.record.exam_date is None and [p.code for p in b.problems] == ["date_unreadable"]
    assert c.record.exam_date is None and c.problems[0].value == "next week"
    assert report.problems_by_code["date_unreadable"] == 2


def test_month_first_column(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "d.csv", "id,date\nA,10/25/2017\nB,03/04/2017\n")
    entries, _ = _read(path, kb)
    assert entries[0].record.exam_date == dt.date(2017, 10, 25)
    assert entries[1].record.exam_date == dt.date(2017, 3, 4)
    assert entries[1].problems == []


def test_rows_without_visit_id_are_rejected_with_reason(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "r.csv", "id,性别,血糖\nA,男,5.0\n,女,6.1\n\nA,男,5.5\n")
    entries, report = _read(path, kb)
    assert [e.record.visit_id for e in entries] == ["A", "A"]
    assert report.rows_read == 3 and report.blank_rows == 1
    assert report.records_written == 2 and report.rows_rejected == 1
    assert report.rejected_reasons == {"visit_id_missing": 1}
    assert report.rejected_examples[0]["row"] == 3
    assert report.cells["rejected_row"] == 2  # 女 and 6.1
    # The repeated id is written again, with a problem.
    assert [p.code for p in entries[1].problems] == ["duplicate_visit_id"]
    assert entries[1].first_row == 5


def test_file_without_id_column_numbers_rows(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "a.csv", "血糖\n5.5\n\n6.1\n")
    entries, report = _read(path, kb)
    assert [e.record.visit_id for e in entries] == ["row-2", "row-4"]
    assert any("row number" in note for note in report.notes)


def test_personal_data_is_withheld_not_dropped(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "p.csv", "体检号,姓名,身份证号,档案号,血糖\nV1,张三,110101199001011234,P77,5.5\n")
    entries, report = _read(path, kb)
    dumped = entries[0].record.model_dump_json()
    assert "张三" not in dumped and "110101199001011234" not in dumped
    assert entries[0].record.person_id == "P77"
    assert report.withheld_columns == ["姓名", "身份证号"]
    assert report.cells["withheld"] == 2


def test_extra_cells_beyond_header_are_kept(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "x.csv", "id,血糖\nA,5.5,surprise\nB\n")
    entries, report = _read(path, kb)
    assert _items(entries[0]) == {"血糖": "5.5", "column 3": "surprise"}
    assert "row_length" in [p.code for p in entries[0].problems]
    assert "row_length" in [p.code for p in entries[1].problems]
    assert report.columns["血糖"].missing == 1


def test_every_cell_is_accounted_for(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "c.csv", "id,性别,姓名,血糖,奇怪\nA,男,王,5.5,1\n,女,李,6,\nC,??,,未查,\n")
    _, report = _read(path, kb)
    # Non-empty cells counted by hand: row 2 has 5, row 3 has 3 (rejected), row 4 has 3.
    assert report.non_empty_cells == 11
    assert report.cells == {"demographic": 4, "withheld": 1, "item": 3, "rejected_row": 3}
    assert report.columns["血糖"].rejected == {"not_done": 1}


def test_explicit_profile_none_and_unknown_profile(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(
        tmp_path / "k.csv",
        "ID,sex,Age code (5 year old unit),Height (5 cm unit),Weight (5 kg unit),FBG\nK1,1,9,170,70,100\n",
    )
    entries, report = _read(path, kb)
    assert report.profile == "korea-nhis"
    assert _value_of(entries[0], "glu") == pytest.approx(5.55)
    entries, report = _read(path, kb, profile="none")
    assert report.profile is None
    assert entries[0].record.age is None  # the age code column is then an unknown item
    with pytest.raises(IngestError, match="unknown profile"):
        ingest_file(path, kb=kb, profile="nope")


def test_korean_profile_conversions_by_hand(tmp_path: Path, kb: KnowledgeBase) -> None:
    header = "ID,sex,Age code (5 year old unit),Height (5 cm unit),Weight (5 kg unit),SBP,DBP,FBG,TC,TG,HDLC,LDLC,Hb,UP,SC,AST,ALT,γ-GTP"
    path = _write(
        tmp_path / "kr.csv", header + "\nK1,2,18,155,50,120,80,126,200,150,40,130,12.5,4,1.2,30,40,50\n", "cp949"
    )
    entries, report = _read(path, kb)
    assert report.encoding == "cp949"
    entry = entries[0]
    assert entry.record.sex == "female"
    assert entry.record.age == 87.5  # code 18 = 85+; the middle of a 5-year band from 85
    # Hand computation with the conversion factors of the KB's sources: mg/dL × 0.0555 (glucose),
    # × 0.02586 (cholesterol), × 0.01129 (TG), g/dL × 10, creatinine mg/dL × 88.4.
    assert _value_of(entry, "glu") == pytest.approx(126 * 0.0555)  # 6.993 mmol/L
    assert _value_of(entry, "tc") == pytest.approx(5.172)
    assert _value_of(entry, "tg") == pytest.approx(1.6935)
    assert _value_of(entry, "hdl") == pytest.approx(1.0344)
    assert _value_of(entry, "hgb") == pytest.approx(125.0)
    assert _value_of(entry, "crea") == pytest.approx(106.08)
    assert _value_of(entry, "u_pro") == "2+"  # code 4 = ++
    assert _value_of(entry, "height") == 155 and _value_of(entry, "weight") == 50
    assert [p.code for p in entry.problems].count("age_band") == 1


def test_xlsx_workbook(tmp_path: Path, kb: KnowledgeBase) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "体检"
    sheet.append(["体检编号", "性别", "年龄", "体检日期", "血糖", "未知列"])
    sheet.append([1001, "女", 52, dt.datetime(2024, 3, 5), 6.2, None])
    sheet.append([1002, "男", 60, "2024/3/6", "未查", "x"])
    sheet.append([None, None, None, None, None, None])
    workbook.create_sheet("other")
    path = tmp_path / "book.xlsx"
    workbook.save(path)
    entries, report = _read(path, kb)
    assert report.format == "xlsx" and report.sheet == "体检"
    assert [e.record.visit_id for e in entries] == ["1001", "1002"]
    assert entries[0].record.exam_date == dt.date(2024, 3, 5)
    assert entries[1].record.exam_date == dt.date(2024, 3, 6)
    assert _value_of(entries[0], "glu") == 6.2
    assert entries[0].record.items[0].origin == "book.xlsx:row 2:column 血糖"
    assert report.columns["血糖"].rejected == {"not_done": 1}
    assert report.blank_rows == 1
    assert any("other" in note for note in report.notes)


def test_unreadable_input_raises(tmp_path: Path, kb: KnowledgeBase) -> None:
    with pytest.raises(IngestError, match="no such file"):
        ingest_file(tmp_path / "missing.csv", kb=kb)
    empty = _write(tmp_path / "empty.csv", "")
    with pytest.raises(IngestError, match="empty"):
        ingest_file(empty, kb=kb).consume()
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(IngestError, match=r"not a readable \.xlsx"):
        ingest_file(broken, kb=kb).consume()
    with pytest.raises(IngestError, match="unknown format"):
        ingest_file(empty, "parquet", kb=kb)


def test_row_numbers_count_records_not_physical_lines(tmp_path: Path, kb: KnowledgeBase) -> None:
    # A quoted cell spanning two lines is one spreadsheet row: B is row 3, as a spreadsheet shows it.
    path = _write(tmp_path / "q.csv", 'id,备注,血糖\nA,"第一行\n第二行",5.5\nB,x,6.0\n')
    entries, _ = _read(path, kb)
    assert _items(entries[0])["备注"] == "第一行\n第二行"
    assert entries[1].record.items[-1].origin == "q.csv:row 3:column 血糖"


def test_profile_date_order_settles_ambiguous_dates(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = _write(tmp_path / "t.csv", "id,性别,年龄,体检日期,血糖\n1,男,41,03/04/2017,5.5\n")
    entries, report = _read(path, kb, profile="tianchi")
    assert report.profile == "tianchi"
    assert entries[0].record.exam_date == dt.date(2017, 4, 3)
    assert entries[0].problems == []
