"""Long files (one row per result), including the Meinian raw `vid$table_id$field_results` format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from zhujian.adapters import IngestedRecord, IngestError, QualityReport, ingest_file
from zhujian.evaluation import ITEM_OF_TABLE
from zhujian.kb.loader import KnowledgeBase, default_kb


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


def _read(path: Path, kb: KnowledgeBase, **options: str) -> tuple[list[IngestedRecord], QualityReport]:
    result = ingest_file(path, "long", kb=kb, **options)
    entries = list(result.entries())
    return entries, result.report


# A synthetic Meinian raw file: free-text tables (0101, 0102, 0113, 1001 …), numeric tables whose meaning the
# file does not give (2403, 0424), a not-done word, a text with a '$' in it, and visits whose rows are scattered.
MEINIAN_RAW = (
    "vid$table_id$field_results\n"
    "v001$0101$双侧甲状腺大小形态正常，包膜光整，实质回声均匀。\n"
    "v001$0102$肝:脂肪肝（中度）\n"
    "v001$2403$68.5\n"
    "v002$0113$肝脏形态大小正常，肝内回声呈点状密集弥漫性增强\n"
    "v001$1001$窦性心律 $ 正常心电图\n"
    "v002$0424$未查\n"
    "v002$1308$\n"
    "$0114$胆囊大小形态正常\n"
    "v003$2302$亚健康\n"
)


def test_meinian_raw_texts_and_numbers(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "meinian_raw.txt"
    path.write_bytes(MEINIAN_RAW.encode("gb18030"))
    entries, report = _read(path, kb)
    assert report.encoding == "gb18030" and report.delimiter == "$"
    assert report.profile == "meinian"
    by_visit = {e.record.visit_id: e for e in entries}
    assert sorted(by_visit) == ["v001", "v002", "v003"]
    v001 = by_visit["v001"].record
    assert [(t.item, t.text) for t in v001.texts] == [
        ("超声所见", "双侧甲状腺大小形态正常，包膜光整，实质回声均匀。"),
        ("超声提示", "肝:脂肪肝（中度）"),
        ("心电图", "窦性心律 $ 正常心电图"),  # the '$' inside the text is rejoined, not a new column
    ]
    assert [(i.name, i.value) for i in v001.items] == [("2403", "68.5")]
    assert v001.texts[1].origin == "meinian_raw.txt:row 3:column field_results"
    v002 = by_visit["v002"].record
    assert [t.item for t in v002.texts] == ["肝脏"]
    assert [(i.name, i.value) for i in v002.items] == [("0424", "未查")]
    assert by_visit["v003"].record.texts[0].item == "健康状况"
    # The row without a vid is rejected with its reason; the empty 1308 result is counted as missing.
    assert report.rows_rejected == 1 and report.rejected_reasons == {"visit_id_missing": 1}
    assert report.rejected_examples[0]["row"] == 9
    assert report.columns["眼科"].missing == 1
    assert report.rows_read == 9 == report.rows_in_records + report.rows_rejected
    assert report.columns["超声提示"].texts == 1
    assert report.columns["2403"].rejected == {"item_unknown": 1}


def test_meinian_profile_matches_table_map() -> None:
    from zhujian.adapters import load_profiles

    profile = load_profiles()["meinian"]
    assert profile.item_labels == ITEM_OF_TABLE
    assert set(profile.text_items) == set(ITEM_OF_TABLE)


LONG = (
    "体检号,性别,年龄,体检日期,项目名称,结果,单位,参考范围,科室\n"
    "A1,男,56,2024-05-01,空腹血糖,7.2,mmol/L,3.9-6.1,生化\n"
    "A1,男,56,2024-05-01,总胆固醇,232,mg/dL,,生化\n"
    "A1,男,56,2024-05-01,尿蛋白,阳性(+),,,尿常规\n"
    "A1,男,56,2024-05-01,肝脏,肝脏形态大小正常，肝内回声增强,,,彩超\n"
    "A1,男,56,2024-05-01,甘油三酯,,mmol/L,,生化\n"
    "B2,女,61,2024-05-02,空腹血糖,5.1,mmol/L,,生化\n"
    "B2,男,61,2024-05-02,血红蛋白,128,g/L,,血常规\n"
)


def _check_long(entries: list[IngestedRecord], report: QualityReport) -> None:
    by_visit = {e.record.visit_id: e for e in entries}
    a1 = by_visit["A1"]
    assert a1.record.sex == "male" and a1.record.age == 56 and a1.record.exam_date == dt.date(2024, 5, 1)
    assert [(i.name, i.value, i.unit, i.reference_range, i.section) for i in a1.record.items] == [
        ("空腹血糖", "7.2", "mmol/L", "3.9-6.1", "生化"),
        ("总胆固醇", "232", "mg/dL", None, "生化"),
        ("尿蛋白", "阳性(+)", None, None, "尿常规"),
    ]
    assert [(t.item, t.section) for t in a1.record.texts] == [("肝脏", "彩超")]
    assert a1.evaluation is not None
    # 232 mg/dL × 0.02586 = 5.99952 mmol/L
    assert a1.evaluation.by_id["tc"].value == pytest.approx(5.99952)
    assert a1.evaluation.by_id["glu"].ref_source == "input"
    b2 = by_visit["B2"]
    assert [p.code for p in b2.problems] == ["demographic_conflict"]
    assert b2.record.sex == "female"
    assert report.records_written == 2 and report.rows_in_records == 7
    assert report.columns["甘油三酯"].missing == 1
    assert report.columns["尿蛋白"].present == 1


def test_long_sorted_streams_in_file_order(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "long.csv"
    path.write_text(LONG, encoding="utf-8")
    entries, report = _read(path, kb)
    assert [e.record.visit_id for e in entries] == ["A1", "B2"]
    assert any("contiguous" in note for note in report.notes)
    _check_long(entries, report)


def test_long_unsorted_is_grouped_with_the_same_result(tmp_path: Path, kb: KnowledgeBase) -> None:
    lines = LONG.splitlines()
    shuffled = [lines[0], lines[1], lines[6], lines[2], lines[3], lines[7], lines[4], lines[5]]
    path = tmp_path / "long_unsorted.tsv"
    path.write_text("\n".join(line.replace(",", "\t") for line in shuffled) + "\n", encoding="utf-8-sig")
    entries, report = _read(path, kb)
    assert report.delimiter == "\t" and report.encoding == "utf-8-sig"
    assert any("scattered" in note for note in report.notes)
    # Rows keep their own numbers: the A1 glucose row is row 2, the total cholesterol row is row 4.
    a1 = next(e for e in entries if e.record.visit_id == "A1")
    assert a1.record.items[1].origin == "long_unsorted.tsv:row 4:column 结果"
    _check_long(entries, report)


def test_long_without_required_columns_is_unreadable(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "codes.csv"
    path.write_text("code,name\nA00,霍乱\n", encoding="utf-8")
    with pytest.raises(IngestError, match="needs a column naming the item"):
        ingest_file(path, "long", kb=kb).consume()


def test_value_without_item_name_is_reported(tmp_path: Path, kb: KnowledgeBase) -> None:
    path = tmp_path / "l.csv"
    path.write_text("visit_id,item,value,remark\nA,,5.5,x\nA,血糖,6.0,\n", encoding="utf-8")
    entries, report = _read(path, kb)
    assert [p.code for p in entries[0].problems] == ["item_name_missing"]
    assert report.cells == {"demographic": 2, "no_item": 1, "item": 2, "unused": 1}
    assert report.unused_columns == ["remark"]
