"""Fuzz targets shared by the CI tests (tests/fuzz/test_fuzz_*.py) and the long run (benchmarks/fuzz.py).

Each target is a Hypothesis strategy and a check that must hold for every generated input: the code under test
returns, or raises one of the domain errors it documents (IngestError for a file that cannot be read, pydantic's
ValidationError for a record that is not a record, FhirInputError for JSON that is not a Bundle). Any other
exception is a crash. The generators lean towards the inputs that broke the engine before: numbers with separators,
full-width and ideographic characters, huge integers, NaN and Infinity, dates in any order, stray quotes and bytes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import math
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from pydantic import ValidationError

from zhujian.adapters import IngestError, ingest_file
from zhujian.adapters.fhir import FhirInputError, read_fhir_bundle
from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.narrate.base import get_narrator
from zhujian.pipeline.run import build_report
from zhujian.pipeline.values import parse_range, parse_value

# ---------------------------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------------------------

DIGITS = "0123456789０１２３４５６７８９"
SEPARATORS = ",.，。．·、 '/:-~～—"
SYMBOLS = "+-<>≤≥＜＞↑↓*()（）%eE^×"
NUMBER_ALPHABET = DIGITS + SEPARATORS + SYMBOLS
CJK = "阴性阳性未查弃查轻度乳糜溶血肝脏回声增强结节囊肿左右双侧约高低正常男女"
TEXT_PHRASES = (
    "肝脏形态大小正常，肝内回声增强，后方回声衰减",
    "脂肪肝（中度）",
    "甲状腺右叶见一低回声结节，大小约 12x8mm，TI-RADS 4a类",
    "窦性心律 正常心电图",
    "左肾囊肿，约 15mm",
    "双肺纹理增多",
    "未见明显异常",
    "胆囊息肉样病变 约5mm，多发",
    "否认高血压、糖尿病史",
    "前列腺增生",
    "主动脉夹层？",
    "",
)
EXAM_ITEMS = ("肝脏", "胆囊", "甲状腺", "肾脏", "超声提示", "心电图", "胸片", "内科", "前列腺", "乳腺", "眼底")
UNITS = ("mmol/L", "mg/dL", "g/L", "10^9/L", "10*9/L", "umol/L", "U/L", "%", "mmHg", "kg", "cm", "", "μmol/L", "?")
SEXES = ("male", "female", "unknown")


@lru_cache(maxsize=1)
def kb() -> KnowledgeBase:
    return default_kb()


@lru_cache(maxsize=1)
def item_names() -> tuple[str, ...]:
    names: list[str] = []
    for item in kb().items.values():
        names.append(item.name)
        names.extend(item.aliases[:2])
    return tuple(sorted(set(names)))


def number_texts() -> st.SearchStrategy[str]:
    """Texts that look like numbers: digits, separators of every kind, signs, flags and units."""
    plain = st.floats(allow_nan=False, allow_infinity=False, width=64).map(lambda f: f"{f:g}")
    separated = st.text(alphabet=NUMBER_ALPHABET, min_size=1, max_size=14)
    grouped = st.tuples(
        st.integers(0, 999_999_999), st.sampled_from([",", ".", " ", "'", "，", "。", ""]), st.integers(0, 99_999)
    ).map(lambda t: f"{t[0]:,}".replace(",", t[1] if t[1] in (",", "'", " ") else ",") + t[1] + str(t[2]))
    decorated = st.tuples(
        st.sampled_from(["", ">", "<", "≥", "＜", "-", "+"]),
        st.one_of(plain, separated, grouped),
        st.sampled_from(["", "↑", "↓", "H", "L", "+", "*", "轻度乳糜", "mmol/L", " 复查", ",溶血", "2", "-5", "/80"]),
    ).map("".join)
    return st.one_of(plain, separated, grouped, decorated, st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e999"]))


def item_values() -> st.SearchStrategy[Any]:
    return st.one_of(
        number_texts(),
        st.text(max_size=20),
        st.text(alphabet=CJK + DIGITS + "()+-", max_size=8),
        st.integers(),
        st.integers(min_value=10**300, max_value=10**400),
        st.integers(min_value=-(10**400), max_value=-(10**300)),
        st.floats(allow_nan=False, allow_infinity=False),
        st.none(),
    )


def range_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(number_texts(), st.sampled_from(["-", "~", "～", "—", "至", "－", " - "]), number_texts()).map(
            "".join
        ),
        st.tuples(st.sampled_from(["<", ">", "≤", "≥", "小于", "大于", "(", "["]), number_texts()).map("".join),
        st.text(max_size=16),
        # Finite as printed, beyond float once converted to the canonical unit (mg/dL → µmol/L: × 88.4).
        st.sampled_from(["1e307-1.7e308", "<1.7e308", ">-1.7e308", "0-1e308"]),
    )


def dates() -> st.SearchStrategy[dt.date]:
    return st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))


def item_dicts() -> st.SearchStrategy[dict[str, Any]]:
    names = st.one_of(st.sampled_from(item_names()), st.text(min_size=1, max_size=10))
    return st.fixed_dictionaries(
        {"name": names, "value": item_values()},
        optional={
            "unit": st.one_of(st.sampled_from(UNITS), st.text(max_size=8)),
            "reference_range": range_texts(),
            "section": st.text(max_size=6),
            "code": st.one_of(st.sampled_from(sorted(kb().items)), st.text(max_size=8)),
        },
    )


def text_dicts() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "item": st.one_of(st.sampled_from(EXAM_ITEMS), st.text(max_size=6)),
            "text": st.one_of(
                st.sampled_from(TEXT_PHRASES),
                st.lists(st.sampled_from(TEXT_PHRASES + tuple(SEPARATORS)), max_size=5).map("".join),
                st.text(max_size=60),
            ),
        }
    )


def questionnaires() -> st.SearchStrategy[dict[str, Any]]:
    words = st.one_of(st.sampled_from(["高血压", "糖尿病", "父亲 高血压", "否认高血压", "吸烟", "冠心病"]), st.text(max_size=10))
    return st.fixed_dictionaries(
        {},
        optional={
            "history": st.lists(words, max_size=3),
            "medications": st.lists(words, max_size=2),
            "family_history": st.lists(words, max_size=2),
            "symptoms": st.lists(words, max_size=2),
            "smoking": st.one_of(st.none(), st.booleans()),
            "drinking": st.one_of(st.none(), st.booleans()),
            "north": st.one_of(st.none(), st.booleans()),
            "urban": st.one_of(st.none(), st.booleans()),
        },
    )


def ages() -> st.SearchStrategy[float | None]:
    return st.one_of(st.none(), st.floats(min_value=0, max_value=130), st.integers(0, 130).map(float))


def visit_dicts() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {"visit_id": st.text(min_size=1, max_size=6)},
        optional={
            "exam_date": dates().map(dt.date.isoformat),
            "age": ages(),
            "items": st.lists(item_dicts(), max_size=6),
            "texts": st.lists(text_dicts(), max_size=3),
            "questionnaire": questionnaires(),
        },
    )


def record_dicts() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "visit_id": st.text(min_size=1, max_size=8),
            "sex": st.sampled_from(SEXES),
            "items": st.lists(item_dicts(), max_size=12),
        },
        optional={
            "person_id": st.text(max_size=8),
            "age": ages(),
            "birth_date": dates().map(dt.date.isoformat),
            "exam_date": dates().map(dt.date.isoformat),
            "texts": st.lists(text_dicts(), max_size=4),
            "questionnaire": questionnaires(),
            "prior_visits": st.lists(visit_dicts(), max_size=2),
        },
    )


# ---------------------------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------------------------


def check_value(raw: Any) -> None:
    parsed = parse_value(raw)
    assert parsed.kind in ("number", "ambiguous", "text", "not_done", "empty", "unparseable"), parsed
    if parsed.kind == "number":
        assert parsed.number is not None and math.isfinite(parsed.number), parsed
    else:
        assert parsed.number is None, parsed
    numbers = [r.number for r in parsed.readings]
    assert all(math.isfinite(n) for n in numbers) and numbers == sorted(numbers), parsed
    if parsed.kind == "ambiguous":
        assert len(set(numbers)) >= 2, parsed
    if isinstance(raw, str):
        ref = parse_range(raw)
        if ref is not None:
            assert ref.low is None or math.isfinite(ref.low)
            assert ref.high is None or math.isfinite(ref.high)
            if ref.low is not None and ref.high is not None:
                assert ref.low <= ref.high


def check_engine(data: dict[str, Any]) -> None:
    try:
        record = Record.model_validate(data)
    except ValidationError:
        return  # a clear error naming the field: what the CLI and the API answer
    report = build_report(kb(), record)
    # What the API stores and hashes: JSON without NaN or Infinity.
    json.dumps(report.to_dict(), ensure_ascii=False, allow_nan=False)
    get_narrator("template").narrate(report)
    # The same record as it travels: through JSON and back.
    Record.model_validate_json(record.model_dump_json())


def _ingest(path: Path, fmt: str) -> None:
    try:
        result = ingest_file(path, fmt, kb=kb())
        for entry in result.entries():
            entry.record.model_dump_json()
            json.dumps([p.to_dict() for p in entry.problems], ensure_ascii=False)
        json.dumps(result.report.to_dict(), ensure_ascii=False)
    except IngestError:
        return


@dataclass
class Workspace:
    """One temporary folder per target run: each case overwrites the same file."""

    folder: Path

    def write(self, name: str, content: bytes) -> Path:
        path = self.folder / name
        path.write_bytes(content)
        return path


def workspace() -> Workspace:
    folder = Path(tempfile.mkdtemp(prefix="zhujian-fuzz-"))
    return Workspace(folder)


def _cell() -> st.SearchStrategy[str]:
    return st.one_of(
        number_texts(),
        st.sampled_from(["男", "女", "M", "F", "1", "2", "56", "56岁", "2024-05-01", "2024/5/1", "20240501", "未查", ""]),
        st.sampled_from(TEXT_PHRASES),
        st.text(max_size=12),
        st.text(alphabet='",\n\r\t$;|\\\'', max_size=4),
    )


WIDE_HEADERS = ("体检号", "性别", "年龄", "体检日期", "出生日期", "姓名", "身份证号", "vid", "sex", "age")
ENCODINGS = ("utf-8", "utf-8-sig", "gb18030", "utf-16", "big5", "latin-1")


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def csv_files(headers: st.SearchStrategy[list[str]], rows: int = 6) -> st.SearchStrategy[bytes]:
    delimiters = st.sampled_from([",", "\t", ";", "|", "$"])
    tables = st.tuples(headers, st.lists(st.lists(_cell(), max_size=8), max_size=rows), delimiters)
    text = tables.map(lambda t: "\n".join(t[2].join(row) for row in [t[0], *t[1]]) + "\n")
    encoded = st.tuples(text, st.sampled_from(ENCODINGS)).map(lambda t: _encode(*t))
    mangled = st.tuples(encoded, st.binary(max_size=6), st.integers(0, 400)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    )
    return st.one_of(encoded, encoded, mangled, st.binary(max_size=200))


def wide_headers() -> st.SearchStrategy[list[str]]:
    names = st.one_of(st.sampled_from(WIDE_HEADERS), st.sampled_from(item_names()), st.text(max_size=6))
    return st.lists(names, min_size=1, max_size=8)


def long_headers() -> st.SearchStrategy[list[str]]:
    base = ["体检号", "性别", "年龄", "体检日期", "项目名称", "结果", "单位", "参考范围", "科室"]
    return st.one_of(st.just(base), st.permutations(base), st.lists(st.sampled_from([*base, "备注", ""]), max_size=9))


def long_files() -> st.SearchStrategy[bytes]:
    """Long rows whose item column holds KB names, so values reach the evaluator."""
    row = st.tuples(
        st.sampled_from(["A1", "A2", "B1", ""]),
        st.sampled_from(["男", "女", "", "X"]),
        st.one_of(st.sampled_from(["56", "", "200", "-1", "56.5"]), st.text(max_size=3)),
        st.one_of(st.sampled_from(["2024-05-01", "2025-13-01", ""]), st.text(max_size=10)),
        st.one_of(st.sampled_from(item_names()), st.sampled_from(EXAM_ITEMS)),
        st.one_of(number_texts(), _cell()),
        st.sampled_from(UNITS),
        range_texts(),
        st.text(max_size=4),
    ).map(lambda cells: ",".join('"' + c.replace('"', '""') + '"' for c in cells))
    header = "体检号,性别,年龄,体检日期,项目名称,结果,单位,参考范围,科室"
    structured = st.lists(row, max_size=8).map(lambda rows: ("\n".join([header, *rows]) + "\n").encode("utf-8"))
    return st.one_of(structured, structured, csv_files(long_headers()))


MEINIAN_TABLES = ("0101", "0102", "0113", "1001", "2403", "2404", "2405", "0424", "1814", "190", "191", "10004", "x")


def meinian_files() -> st.SearchStrategy[bytes]:
    line = st.tuples(
        st.one_of(st.sampled_from(["v001", "v002", "0001a"]), st.text(max_size=5)),
        st.sampled_from(MEINIAN_TABLES),
        st.one_of(number_texts(), st.sampled_from(TEXT_PHRASES), st.text(max_size=20)),
    ).map("$".join)
    text = st.lists(line, max_size=10).map(lambda lines: "vid$table_id$field_results\n" + "\n".join(lines) + "\n")
    encoded = st.tuples(text, st.sampled_from(("utf-8", "gb18030", "utf-8-sig"))).map(lambda t: _encode(*t))
    return st.one_of(encoded, encoded, encoded, st.binary(max_size=120).map(lambda b: b"vid$table_id$field_results\n" + b))


def check_wide(data: bytes, space: Workspace) -> None:
    _ingest(space.write("wide.csv", data), "wide-csv")


def check_long(data: bytes, space: Workspace) -> None:
    _ingest(space.write("long.csv", data), "long")


def check_meinian(data: bytes, space: Workspace) -> None:
    _ingest(space.write("meinian.txt", data), "long")


# xlsx: openpyxl writes the workbook; a raw cell value can then be put into the sheet XML as any text, the way
# another program may have written it ("nan", "1e999", a 400-digit integer, a shared-string index that is missing).
_MARK = 987654321987


def xlsx_cells() -> st.SearchStrategy[Any]:
    return st.one_of(
        _cell(),
        st.integers(min_value=-(10**15), max_value=10**15),
        st.floats(allow_nan=False, allow_infinity=False),
        dates(),
        st.none(),
        st.booleans(),
    )


def xlsx_books() -> st.SearchStrategy[tuple[list[str], list[list[Any]], str | None, str]]:
    raw = st.one_of(
        st.sampled_from(["nan", "NaN", "inf", "1e999", "-1e999", "1" * 400, "1" * 5000, "12a", "", " ", "0x10"]),
        st.text(alphabet="0123456789.eE+-naif", max_size=10),
    )
    return st.tuples(
        wide_headers(),
        st.lists(st.lists(xlsx_cells(), max_size=6), max_size=5),
        st.one_of(st.none(), raw),
        st.sampled_from(["n", "s", "b", "d", "e", "str"]),
    )


def xlsx_bytes(book: tuple[list[str], list[list[Any]], str | None, str]) -> bytes:
    import openpyxl

    headers, rows, raw, cell_type = book
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append([_xlsx_safe(h) for h in headers])
    for row in rows:
        sheet.append([_xlsx_safe(c) for c in row])
    if raw is not None:
        sheet.append(["V9", _MARK])
    buffer = io.BytesIO()
    workbook.save(buffer)
    if raw is None:
        return buffer.getvalue()
    # Rewrite the marked cell: its value text and its type attribute become whatever the case says.
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            content = source.read(entry.filename)
            if entry.filename.startswith("xl/worksheets/"):
                text = content.decode("utf-8")
                marked = f"<v>{_MARK}</v>"
                at = text.find(marked)
                if at >= 0:
                    start = text.rfind("<c ", 0, at)
                    opening = text[start : text.find(">", start) + 1]
                    replaced = opening.replace(' t="n"', "").replace(">", f' t="{cell_type}">', 1)
                    escaped = raw.replace("&", "&amp;").replace("<", "&lt;")
                    text = text[:start] + replaced + text[start + len(opening) : at] + f"<v>{escaped}</v>" + text[
                        at + len(marked) :
                    ]
                content = text.encode("utf-8")
            target.writestr(entry, content)
    return out.getvalue()


def _xlsx_safe(value: Any) -> Any:
    if isinstance(value, str):
        # openpyxl refuses control characters in strings; a workbook cannot hold them either.
        return "".join(ch for ch in value if ch >= " " or ch in "\t\n\r").replace("\x7f", "")
    return value


def check_xlsx(book: tuple[list[str], list[list[Any]], str | None, str], space: Workspace) -> None:
    _ingest(space.write("book.xlsx", xlsx_bytes(book)), "wide-csv")


# FHIR: Bundles with Patient, Encounter, Observation and DiagnosticReport resources whose fields hold any JSON.

_json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**320),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    number_texts(),
)


def _json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3))


any_json = st.recursive(_json_leaf, _json_containers, max_leaves=8)


def _coding() -> st.SearchStrategy[Any]:
    codes = st.one_of(st.sampled_from(["2823-3", "2345-7", "777-3", "718-7", "8480-6", "29463-7"]), st.text(max_size=6))
    coding = st.fixed_dictionaries(
        {}, optional={"system": st.sampled_from(["http://loinc.org", "urn:x"]), "code": codes, "display": st.text(max_size=6)}
    )
    return st.one_of(
        st.fixed_dictionaries({"coding": st.lists(coding, max_size=2)}, optional={"text": st.sampled_from(item_names())}),
        any_json,
    )


def _reference(kind: str) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from([{"reference": f"{kind}/1"}, {"reference": f"{kind}/2"}, {"reference": "urn:uuid:x"}]), any_json)


def fhir_resources() -> st.SearchStrategy[dict[str, Any]]:
    patient = st.fixed_dictionaries(
        {"resourceType": st.just("Patient")},
        optional={
            "id": st.sampled_from(["1", "2"]),
            "gender": st.one_of(st.sampled_from(["male", "female", "other", "unknown"]), any_json),
            "birthDate": st.one_of(st.sampled_from(["1970-01-01", "1970", "2030-02-30"]), any_json),
        },
    )
    quantity = st.fixed_dictionaries(
        {},
        optional={
            "value": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(), any_json),
            "unit": st.one_of(st.sampled_from(UNITS), any_json),
            "comparator": st.sampled_from(["<", ">", "<=", "≥", "x"]),
        },
    )
    observation = st.fixed_dictionaries(
        {"resourceType": st.just("Observation")},
        optional={
            "id": st.sampled_from(["1", "2", "3"]),
            "status": st.sampled_from(["final", "cancelled", "entered-in-error", "x"]),
            "code": _coding(),
            "subject": _reference("Patient"),
            "encounter": _reference("Encounter"),
            "effectiveDateTime": st.one_of(st.sampled_from(["2024-05-01", "2024-05-01T08:00:00+08:00", "2024"]), any_json),
            "valueQuantity": st.one_of(quantity, any_json),
            "valueString": st.one_of(number_texts(), st.sampled_from(TEXT_PHRASES), any_json),
            "valueCodeableConcept": _coding(),
            "referenceRange": st.one_of(
                st.lists(st.fixed_dictionaries({}, optional={"low": quantity, "high": quantity, "text": range_texts()}), max_size=2),
                any_json,
            ),
            "category": any_json,
            "dataAbsentReason": any_json,
        },
    )
    encounter = st.fixed_dictionaries(
        {"resourceType": st.just("Encounter")},
        optional={"id": st.sampled_from(["1", "2"]), "subject": _reference("Patient"), "period": any_json},
    )
    report = st.fixed_dictionaries(
        {"resourceType": st.just("DiagnosticReport")},
        optional={
            "id": st.sampled_from(["1", "2"]),
            "subject": _reference("Patient"),
            "encounter": _reference("Encounter"),
            "result": st.one_of(st.lists(_reference("Observation"), max_size=3), any_json),
            "conclusion": st.one_of(st.sampled_from(TEXT_PHRASES), any_json),
            "code": _coding(),
            "effectiveDateTime": any_json,
        },
    )
    return st.one_of(patient, observation, observation, encounter, report, st.dictionaries(st.text(max_size=5), any_json, max_size=3))


def fhir_documents() -> st.SearchStrategy[Any]:
    entry = st.one_of(st.fixed_dictionaries({"resource": fhir_resources()}, optional={"fullUrl": st.text(max_size=8)}), any_json)
    bundle = st.fixed_dictionaries(
        {"resourceType": st.just("Bundle")},
        optional={"type": st.sampled_from(["collection", "transaction", "x"]), "entry": st.one_of(st.lists(entry, max_size=6), any_json)},
    )
    return st.one_of(bundle, bundle, bundle, any_json)


def check_fhir(document: Any, space: Workspace) -> None:
    with contextlib.suppress(FhirInputError):
        read_fhir_bundle(document, kb())
    text = json.dumps(document, ensure_ascii=False, allow_nan=True)
    _ingest(space.write("bundle.json", text.encode("utf-8")), "fhir")


def check_fhir_bytes(data: bytes, space: Workspace) -> None:
    _ingest(space.write("bundle.json", data), "fhir")


# ---------------------------------------------------------------------------------------------------------------
# The registry the tests and the benchmark iterate over
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    strategy: Callable[[], st.SearchStrategy[Any]]
    check: Callable[..., None]
    needs_workspace: bool = False


TARGETS: dict[str, Target] = {
    target.name: target
    for target in (
        Target("values", lambda: st.one_of(item_values(), range_texts(), st.booleans()), check_value),
        Target("engine", record_dicts, check_engine),
        Target("wide-csv", lambda: csv_files(wide_headers()), check_wide, needs_workspace=True),
        Target("xlsx", xlsx_books, check_xlsx, needs_workspace=True),
        Target("long", long_files, check_long, needs_workspace=True),
        Target("meinian", meinian_files, check_meinian, needs_workspace=True),
        Target("fhir", fhir_documents, check_fhir, needs_workspace=True),
        Target("fhir-bytes", lambda: csv_files(st.lists(st.text(max_size=4), max_size=3)), check_fhir_bytes, needs_workspace=True),
    )
}
