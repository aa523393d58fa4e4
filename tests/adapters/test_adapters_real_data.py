"""Every tabular file of ../shared/data ingests without a crash and without a silent drop.

For each file: rows read = rows in records + rows rejected, and the non-empty cells counted here with the csv
module (independently of the readers) equal the cells the report accounts for. Known dirty values of the
Meinian labels, the Korean conversions and the Tianchi oddities are checked against the files themselves.

Decisions recorded here:
- the ICD-10 list (`code,name`) is a code list, not checkups: read as wide it gives one record per row with an
  unknown item `code` (and `name` withheld as a personal-name column); read as long it is refused with exit 2,
  because it has no value column. Neither crashes.
- `texts_dev.csv` has no visit id: read as long, each row is one record with one text (the `count` column is
  reported as unused).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from zhujian.adapters import IngestedRecord, IngestError, QualityReport, ingest_file
from zhujian.kb.loader import KnowledgeBase, default_kb

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
TIANCHI = DATA / "tianchi-diabetes"
MEINIAN = DATA / "meinian"
KOREA = DATA / "korea-nhis-sample"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data file {path} is absent (../shared/data is not checked out next to the repo)")
    return path


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return default_kb()


@dataclass
class Run:
    report: QualityReport
    kept: list[IngestedRecord] = field(default_factory=list)
    items: int = 0
    texts: int = 0


def _ingest(path: Path, fmt: str, kb: KnowledgeBase, keep: Callable[[IngestedRecord], bool] = lambda e: False) -> Run:
    result = ingest_file(path, fmt, kb=kb)
    run = Run(result.report)
    for entry in result.entries():
        run.items += len(entry.record.items)
        run.texts += len(entry.record.texts)
        if keep(entry):
            run.kept.append(entry)
    assert result.report.complete
    return run


def _non_empty_cells(path: Path, encoding: str) -> tuple[int, int]:
    """(data rows that are not blank, non-empty cells including the header's row-mates) counted with csv."""
    rows = cells = 0
    with path.open(encoding=encoding, newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            filled = sum(1 for cell in row if cell.strip())
            if filled:
                rows += 1
                cells += filled
    return rows, cells


def _assert_nothing_lost(run: Run, path: Path, encoding: str, *, wide: bool = True) -> None:
    report = run.report
    rows, cells = _non_empty_cells(path, encoding)
    assert report.rows_read == rows
    assert report.rows_read == report.rows_in_records + report.rows_rejected
    assert report.non_empty_cells == cells, report.cells
    if wide:  # one cell per item (in a long file an item is made of several cells: name, value, unit…)
        assert run.items == report.cells["item"]
        assert run.texts == report.cells["text"]


WIDE_FILES = [
    (TIANCHI / "d_train_20180102.csv", "gb18030"),
    (TIANCHI / "d_test_A_20180102.csv", "gb18030"),
    (TIANCHI / "d_answer_a_20180128.csv", "gb18030"),
    (MEINIAN / "meinian_round1_train_20180408.csv", "gb18030"),
    (KOREA / "sample_data_1000.csv", "cp949"),
    (KOREA / "sample_data_1000_answer_label.csv", "cp949"),
    (DATA / "icd10" / "icd10_beijing_v601.csv", "utf-8"),
]


@pytest.mark.parametrize(("path", "encoding"), WIDE_FILES, ids=[p.name for p, _ in WIDE_FILES])
def test_wide_files_ingest_without_loss(path: Path, encoding: str, kb: KnowledgeBase) -> None:
    run = _ingest(_need(path), "wide-csv", kb)
    assert run.report.encoding == encoding  # detected, as ../shared/data/README.md states
    _assert_nothing_lost(run, path, encoding)
    assert run.report.rows_rejected == 0
    # Every item column accounts for every row: usable, empty, or not usable with a reason.
    for name, column in run.report.columns.items():
        total = column.present + column.missing + sum(column.rejected.values())
        assert total == run.report.records_written, name


def test_texts_dev_as_long(kb: KnowledgeBase) -> None:
    path = _need(MEINIAN / "texts_dev.csv")
    run = _ingest(path, "long", kb, keep=lambda e: e.first_row in (2, 3))
    _assert_nothing_lost(run, path, "utf-8", wide=False)
    assert run.report.profile == "meinian"
    assert run.report.unused_columns == ["count"]
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with_text = sum(1 for row in rows if row["text"].strip())
    assert run.texts == with_text and run.report.records_written == len(rows)
    assert run.report.cells["no_value"] == len(rows) - with_text  # a table id without text: counted missing
    first = run.kept[0].record
    assert first.texts[0].item == "超声所见"  # table 0101
    assert first.texts[0].text == rows[0]["text"]


def test_icd10_list_as_long_is_refused_cleanly(kb: KnowledgeBase) -> None:
    path = _need(DATA / "icd10" / "icd10_beijing_v601.csv")
    with pytest.raises(IngestError, match="needs a column naming the item"):
        ingest_file(path, "long", kb=kb).consume()


# ---- Meinian labels: every dirty value has a clear outcome -------------------------------------------------------

MEINIAN_LABELS = MEINIAN / "meinian_round1_train_20180408.csv"
COLUMNS = ["收缩压", "舒张压", "血清甘油三酯", "血清高密度脂蛋白", "血清低密度脂蛋白"]


def _find_rows(predicate: Callable[[str, str], bool]) -> list[tuple[int, str, str]]:
    """(spreadsheet row, column, value) of the cells of the labels file for which predicate(column, value)."""
    found = []
    with MEINIAN_LABELS.open(encoding="gb18030", newline="") as handle:
        reader = csv.DictReader(handle)
        for number, row in enumerate(reader, start=2):
            for column in COLUMNS:
                if predicate(column, row[column]):
                    found.append((number, column, row[column]))
    return found


@pytest.fixture(scope="module")
def meinian(kb: KnowledgeBase) -> tuple[Run, dict[int, IngestedRecord]]:
    _need(MEINIAN_LABELS)
    wanted = {
        number
        for number, _, value in _find_rows(
            lambda c, v: not _is_plain_number(v) or (c == "舒张压" and float(v) > 1000) or v.startswith("-")
        )
    }
    run = _ingest(MEINIAN_LABELS, "wide-csv", kb, keep=lambda e: e.first_row in wanted)
    return run, {e.first_row: e for e in run.kept}


def _is_plain_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _outcome(entry: IngestedRecord, column: str) -> tuple[object, str | None, list[str]]:
    """(value the engine uses, qualifier, problem codes) for one column of one record."""
    index = next(i for i, item in enumerate(entry.record.items) if item.name == column)
    assert entry.evaluation is not None
    evaluated = entry.evaluation.items[index]
    origin = entry.record.items[index].origin
    codes = [p.code for p in entry.problems if p.field == origin]
    return evaluated.value, evaluated.qualifier, codes


def test_meinian_labels_every_row_has_values_or_reasons(meinian: tuple[Run, dict[int, IngestedRecord]]) -> None:
    run, _ = meinian
    report = run.report
    assert report.rows_read == 38199 == report.records_written
    for column in COLUMNS:
        stats = report.columns[column]
        assert stats.present + stats.missing + sum(stats.rejected.values()) == 38199


@pytest.mark.parametrize("word", ["未查", "弃查"])
def test_meinian_not_done_words(meinian: tuple[Run, dict[int, IngestedRecord]], word: str) -> None:
    _, kept = meinian
    cells = _find_rows(lambda c, v: v == word)
    assert cells, f"no {word} in the file"
    for number, column, _ in cells:
        value, _, codes = _outcome(kept[number], column)
        assert value is None and codes == ["not_done"], (number, column)


def test_meinian_bound_and_flag_values(meinian: tuple[Run, dict[int, IngestedRecord]]) -> None:
    _, kept = meinian
    bound = _find_rows(lambda c, v: v == "> 6.22")
    assert len(bound) == 3
    for number, column, _ in bound:
        assert _outcome(kept[number], column) == (6.22, ">", [])
    ((number, column, _),) = _find_rows(lambda c, v: v == "4.15+")
    assert _outcome(kept[number], column) == (4.15, "+", [])
    ((number, column, _),) = _find_rows(lambda c, v: v == "7.75轻度乳糜")
    value, qualifier, codes = _outcome(kept[number], column)
    assert (value, qualifier, codes) == (7.75, "轻度乳糜", ["remark"])


def test_meinian_implausible_values_are_not_used(meinian: tuple[Run, dict[int, IngestedRecord]]) -> None:
    _, kept = meinian
    ((number, column, raw),) = _find_rows(lambda c, v: c == "舒张压" and _is_plain_number(v) and float(v) > 1000)
    assert raw == "100164"
    assert _outcome(kept[number], column) == (None, None, ["implausible"])
    negative = _find_rows(lambda c, v: c == "血清低密度脂蛋白" and v.startswith("-"))
    assert negative, "no negative LDL in the file"
    for number, column, _ in negative:
        assert _outcome(kept[number], column) == (None, None, ["implausible"])


def test_meinian_every_odd_value_has_an_outcome(meinian: tuple[Run, dict[int, IngestedRecord]]) -> None:
    _, kept = meinian
    for number, column, raw in _find_rows(lambda c, v: not _is_plain_number(v)):
        value, qualifier, codes = _outcome(kept[number], column)
        # Either a number that is used (with its qualifier or remark), or no value and a reason.
        assert (isinstance(value, float) and qualifier is not None) or (value is None and codes), (raw, value, codes)


# ---- Korean NHIS: conventional units converted ------------------------------------------------------------------


@pytest.fixture(scope="module")
def korea(kb: KnowledgeBase) -> dict[str, IngestedRecord]:
    run = _ingest(_need(KOREA / "sample_data_1000.csv"), "wide-csv", kb, keep=lambda e: e.first_row <= 4)
    assert run.report.profile == "korea-nhis"
    return {e.record.visit_id: e for e in run.kept}


# By hand (mg/dL → mmol/L: glucose ÷ 18.0, cholesterol ÷ 38.67, TG ÷ 88.57; Hb g/dL × 10; creatinine
# mg/dL × 88.4 µmol/L), from the file's rows SP00001–SP00003.
KOREA_EXPECTED = {
    "SP00001": {"glu": 5.55, "tc": 4.81, "tg": 1.15, "hdl": 1.68, "ldl": 2.59, "hgb": 170, "crea": 88.4, "u_pro": "-"},
    "SP00002": {"glu": 10.16, "tc": 2.72, "tg": 3.41, "hdl": 0.543, "hgb": 150, "crea": 79.56, "u_pro": "-"},
    "SP00003": {"glu": 4.0, "tc": 3.62, "ldl": 1.81, "hgb": 120, "crea": 61.88, "u_pro": "±"},
}


@pytest.mark.parametrize("visit", sorted(KOREA_EXPECTED))
def test_korean_conversions_by_hand(korea: dict[str, IngestedRecord], visit: str) -> None:
    entry = korea[visit]
    assert entry.evaluation is not None
    for item_id, expected in KOREA_EXPECTED[visit].items():
        value = entry.evaluation.by_id[item_id].value
        if isinstance(expected, str):
            assert value == expected, item_id
        else:
            assert value == pytest.approx(expected, rel=0.005), item_id
        assert entry.evaluation.by_id[item_id].unit in (None, {"hgb": "g/L", "crea": "umol/L"}.get(item_id, "mmol/L"))


def test_korean_sex_and_age_band(korea: dict[str, IngestedRecord]) -> None:
    first = korea["SP00001"]
    assert first.record.sex == "male"
    assert first.record.age == 42.5  # code 9 = 40–44 years
    assert [p.code for p in first.problems if p.code == "age_band"] == ["age_band"]
    assert korea["SP00003"].record.sex == "female"


def test_korean_labels_are_not_read_as_measurements(kb: KnowledgeBase) -> None:
    run = _ingest(_need(KOREA / "sample_data_1000_answer_label.csv"), "wide-csv", kb, keep=lambda e: e.first_row == 2)
    assert run.report.profile == "korea-nhis-labels"
    entry = run.kept[0]
    assert entry.evaluation is not None
    assert "glu" not in entry.evaluation.by_id and "tc" not in entry.evaluation.by_id
    assert entry.evaluation.by_id["bmi"].value == 29.2
    assert run.report.columns["FBG"].rejected == Counter({"item_unknown": 1000})


# ---- Tianchi -----------------------------------------------------------------------------------------------------


def test_tianchi_sex_and_dates(kb: KnowledgeBase) -> None:
    path = _need(TIANCHI / "d_train_20180102.csv")
    odd = []
    with path.open(encoding="gb18030", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            if row["性别"] not in ("男", "女"):
                odd.append((number, row["id"], row["性别"]))
    assert [value for _, _, value in odd] == ["??"]
    odd_row = odd[0][0]
    run = _ingest(path, "wide-csv", kb, keep=lambda e: e.first_row in (2, odd_row))
    first, unknown = run.kept
    assert first.record.visit_id == "1" and first.record.exam_date == dt.date(2017, 10, 12)  # 12/10/2017
    assert unknown.record.visit_id == odd[0][1] and unknown.record.sex == "unknown"
    assert [p.code for p in unknown.problems if p.field and p.field.endswith("column 性别")] == ["sex_unreadable"]
    assert run.report.problems_by_code["sex_unreadable"] == 1
    assert run.report.unknown_columns == []
    assert all(not code.startswith("date") for code in run.report.problems_by_code)


def test_tianchi_answers_follow_the_test_rows(kb: KnowledgeBase) -> None:
    run = _ingest(_need(TIANCHI / "d_answer_a_20180128.csv"), "wide-csv", kb, keep=lambda e: e.first_row == 2)
    entry = run.kept[0]
    assert entry.record.visit_id == "row-2"
    assert entry.evaluation is not None and entry.evaluation.by_id["glu"].value == 5.5  # first answer in the file
    assert run.report.columns["血糖"].present == 1000
