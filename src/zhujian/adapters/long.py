"""Long files: one row per result — `visit_id, item, value[, unit, reference_range, section, sex, age, exam_date]`.

Header names are flexible (`columns.yaml`). Rows are grouped by visit id into one record each:

- when each visit's rows are contiguous (checked in a first pass that keeps only the ids of finished visits),
  records stream out in file order;
- otherwise the rows are spilled into hashed bucket files in a temporary folder and each bucket is grouped on its
  own, so memory holds one bucket (about 1/64 of the file) at a time; records then come out bucket by bucket.

A file without a visit id column (Meinian `texts_dev.csv`) gives one record per row (`row-N`).

A result whose value is free text becomes a record text (`texts`), with the profile's label for the source's
item code (Meinian table 0102 → 超声提示); numbers, not-done words and words the KB knows for the item (阴性, 1+)
become items that the engine evaluates. The Meinian raw format `vid$table_id$field_results` is this format with
`$` as delimiter and the `meinian` profile (detected from the `table_id` header).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from zhujian.adapters.base import (
    Cell,
    IngestError,
    ReadRecord,
    ReadRequest,
    SourceInfo,
    cell_text,
    encoding_problem,
    is_empty,
    origin_of,
)
from zhujian.adapters.delimited import RowError
from zhujian.adapters.demographics import DEMOGRAPHIC_ROLES, ColumnVocabulary, column_vocabulary
from zhujian.adapters.profiles import Profile
from zhujian.adapters.tables import open_table
from zhujian.adapters.wide import (
    DemographicReader,
    Demographics,
    date_order_for,
    note_undecodable_header,
    resolve_profile,
)
from zhujian.domain.record import ItemInput, Record, TextInput
from zhujian.domain.report import Problem
from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.values import parse_value

SPILL_BUCKETS = 64

Row = tuple[int, list[Cell]]


@dataclass
class LongPlan:
    roles: list[str]  # per column: a role from columns.yaml, or "unused"
    column: dict[str, int]  # role → first column with it

    def get(self, role: str) -> int | None:
        return self.column.get(role)


def plan_long_columns(header: list[str], vocabulary: ColumnVocabulary, info: SourceInfo) -> LongPlan:
    roles: list[str] = []
    column: dict[str, int] = {}
    for index, name in enumerate(header):
        role = vocabulary.role_of(name, long_format=True)
        if role is None or (role != "withheld" and role in column):
            roles.append("unused")
            info.column_roles[name] = "unused (reported, not in records)"
            info.unused_columns.append(name)
            continue
        roles.append(role)
        column.setdefault(role, index)
        info.column_roles[name] = role
        if role == "withheld":
            info.withheld_columns.append(name)
    if "value" not in column or not ("item" in column or "item_code" in column):
        raise IngestError(
            f"{info.file}: a long file needs a column naming the item (item, 项目, table_id…) and one holding the "
            f"value (value, 结果, field_results…); the header is: {', '.join(header)}"
        )
    return LongPlan(roles, column)


def read_long(request: ReadRequest) -> Iterator[ReadRecord]:
    info = request.info
    vocabulary = column_vocabulary()
    with open_table(request.path, info, encoding=request.encoding, delimiter=request.delimiter) as table:
        note_undecodable_header(info)
        profile = resolve_profile(request, table.header, "long")
        plan = plan_long_columns(table.header, vocabulary, info)
        date_column = plan.get("exam_date") if plan.get("exam_date") is not None else plan.get("birth_date")
        reader = DemographicReader(vocabulary, profile, date_order_for(request, profile, date_column))
        builder = _RecordBuilder(request, table.header, plan, profile, reader)
        rows = _fit_rows(table.rows, table.header, plan, info.delimiter)
        visit = plan.get("visit_id")
        if visit is None:
            info.notes.append("no visit id column: each row is one record, visit_id = row-N")
            for number, cells in rows:
                if _blank_row(cells):
                    yield _blank(number)
                    continue
                rejected = builder.rejection(number, cells)
                if rejected is not None or isinstance(cells, RowError):
                    yield rejected or _blank(number)
                    continue
                yield builder.build([(number, cells)], f"row-{number}")
            return
        if _visits_contiguous(request, visit):
            info.notes.append("rows of each visit are contiguous: records stream in file order")
            groups = _contiguous_groups(rows, visit, builder)
        else:
            info.notes.append(
                "rows of a visit are scattered: grouped through temporary bucket files; records come out by bucket"
            )
            groups = _spilled_groups(rows, visit, builder)
        yield from groups


def _fit_rows(
    rows: Iterator[tuple[int, list[Cell] | RowError]], header: list[str], plan: LongPlan, delimiter: str | None
) -> Iterator[tuple[int, list[Cell] | RowError]]:
    """Rejoin a free-text value that contained the delimiter (Meinian raw text with a '$' in it)."""
    value = plan.get("value")
    last = len(header) - 1
    for number, cells in rows:
        if (
            not isinstance(cells, RowError)
            and delimiter is not None
            and value == last
            and len(cells) > len(header)
            and all(isinstance(c, str) for c in cells[last:])
        ):
            cells = [*cells[:last], delimiter.join(cell_text(c) for c in cells[last:])]
        yield number, cells


def _blank_row(cells: list[Cell] | RowError) -> bool:
    return not isinstance(cells, RowError) and all(is_empty(c) for c in cells)


def _blank(number: int) -> ReadRecord:
    return ReadRecord(first_row=number, row_count=1, record=None)


def _visit_of(cells: list[Cell], visit: int) -> str:
    return cell_text(cells[visit]).strip() if visit < len(cells) else ""


def _visits_contiguous(request: ReadRequest, visit: int) -> bool:
    """First pass: does every visit's rows come together? Keeps only the ids of the visits already finished."""
    scratch = SourceInfo(file=request.info.file, format=request.format)
    finished: set[str] = set()
    current: str | None = None
    with open_table(request.path, scratch, encoding=request.info.encoding, delimiter=request.info.delimiter) as table:
        for _, cells in table.rows:
            if isinstance(cells, RowError):
                continue
            visit_id = _visit_of(cells, visit)
            if not visit_id or visit_id == current:
                continue
            if visit_id in finished:
                return False
            if current is not None:
                finished.add(current)
            current = visit_id
    return True


class _RecordBuilder:
    def __init__(
        self,
        request: ReadRequest,
        header: list[str],
        plan: LongPlan,
        profile: Profile | None,
        reader: DemographicReader,
    ) -> None:
        self.request = request
        self.kb: KnowledgeBase = request.kb
        self.header = header
        self.plan = plan
        self.profile = profile
        self.reader = reader
        self.text_items = set(profile.text_items) if profile is not None else set()

    def rejection(self, number: int, cells: list[Cell] | RowError) -> ReadRecord | None:
        """A row that cannot join any visit: unreadable, or without a visit id."""
        file_name = self.request.info.file
        out = ReadRecord(first_row=number, row_count=1, record=None)
        if isinstance(cells, RowError):
            out.rejection = Problem(
                "row_unreadable",
                f"第 {number} 行无法按 CSV 拆分：{cells.message}，整行未导入",
                field=f"{file_name}:row {number}",
            )
            return out
        visit = self.plan.get("visit_id")
        if visit is not None and not _visit_of(cells, visit):
            column = self.header[visit]
            non_empty = sum(1 for c in cells if not is_empty(c))
            out.rejection = Problem(
                "visit_id_missing",
                f"第 {number} 行没有体检号（列 {column}），整行 {non_empty} 个非空单元格未导入",
                item=column,
                field=origin_of(file_name, number, column),
            )
            out.cells["rejected_row"] += non_empty
            return out
        return None

    def build(self, rows: list[Row], visit_id: str) -> ReadRecord:
        file_name = self.request.info.file
        out = ReadRecord(first_row=rows[0][0], row_count=len(rows), record=None)
        demographics = Demographics()
        items: list[ItemInput] = []
        texts: list[TextInput] = []
        problems: list[Problem] = []
        value_column = self.plan.column["value"]
        result_roles = ("item", "item_code", "value", "unit", "reference_range", "section")
        for number, cells in rows:
            for index, cell in enumerate(cells):
                if is_empty(cell):
                    continue
                role = self.plan.roles[index] if index < len(self.header) else "unused"
                column = self.header[index] if index < len(self.header) else f"column {index + 1}"
                where = origin_of(file_name, number, column)
                bad_bytes = encoding_problem(cell, column, where, self.request.info.encoding)
                if bad_bytes is not None:
                    problems.append(bad_bytes)
                if role == "visit_id":
                    out.cells["demographic"] += 1
                elif role in DEMOGRAPHIC_ROLES:
                    out.cells["demographic"] += 1
                    problem = self.reader.read(role, cell, where, column, demographics)
                    if problem is not None:
                        problems.append(problem)
                elif role == "withheld":
                    out.cells["withheld"] += 1
                elif role == "unused":
                    out.cells["unused"] += 1
            result_cells = sum(
                1 for role in result_roles if (i := self.plan.get(role)) is not None and not is_empty(_at(cells, i))
            )
            item_text = cell_text(_at(cells, self.plan.get("item"))).strip()
            code_text = cell_text(_at(cells, self.plan.get("item_code"))).strip()
            value = _at(cells, value_column)
            source_item = item_text or code_text
            label = self.profile.item_labels.get(source_item, source_item) if self.profile else source_item
            where = origin_of(file_name, number, self.header[value_column])
            if is_empty(value):
                if result_cells:
                    out.missing_keys.append(label or f"row {number}")
                    out.cells["no_value"] += result_cells
                continue
            if not label:
                problems.append(
                    Problem(
                        "item_name_missing",
                        f"第 {number} 行有结果但没有项目名称，结果未导入",
                        value=cell_text(value),
                        field=where,
                    )
                )
                out.cells["no_item"] += result_cells
                continue
            out.cells["text" if self._is_text(source_item, label, value) else "item"] += result_cells
            section = cell_text(_at(cells, self.plan.get("section"))).strip() or None
            if self._is_text(source_item, label, value):
                texts.append(TextInput(item=label, section=section, text=cell_text(value), origin=where))
                out.text_keys.append(label)
                continue
            rule = self.profile.column_rule(source_item) if self.profile is not None else None
            unit = cell_text(_at(cells, self.plan.get("unit"))).strip() or (rule.unit if rule else None)
            item_value: str | float | int = value if isinstance(value, int | float) else cell_text(value)
            if rule is not None and rule.values:
                item_value = rule.values.get(cell_text(value).strip(), item_value)
            items.append(
                ItemInput(
                    name=label if item_text else None,
                    code=(rule.item if rule is not None and rule.item else None) or (code_text or None),
                    value=item_value,
                    unit=unit,
                    reference_range=cell_text(_at(cells, self.plan.get("reference_range"))).strip() or None,
                    section=section,
                    origin=where,
                )
            )
            out.item_keys.append(label)
        try:
            out.record = Record(
                visit_id=visit_id,
                person_id=demographics.person_id,
                sex=demographics.sex,
                age=demographics.age,
                exam_date=demographics.exam_date,
                birth_date=demographics.birth_date,
                items=items,
                texts=texts,
            )
        except ValidationError as exc:
            first = exc.errors()[0]
            where_field = ".".join(str(p) for p in first["loc"])
            out.rejection = Problem(
                "record_invalid",
                f"体检 {visit_id}（第 {out.first_row} 行起）不能组成有效记录：字段 {where_field}：{first['msg']}",
                value=str(first.get("input"))[:80],
                field=f"{file_name}:row {out.first_row}",
            )
            out.cells = Counter({"rejected_row": sum(out.cells.values())})
            out.item_keys, out.text_keys, out.missing_keys = [], [], []
            return out
        out.problems = problems
        return out

    def _is_text(self, source_item: str, label: str, value: Cell) -> bool:
        if source_item in self.text_items:
            return True
        if isinstance(value, int | float | dt.date):
            return False
        kind = parse_value(value).kind
        if kind in ("number", "ambiguous", "not_done", "empty"):
            return False
        # Words the KB knows for the item (阴性, 1+, A型…) are results, not free text.
        return self.kb.resolve_item(label) is None


def _at(cells: list[Cell], index: int | None) -> Cell:
    if index is None or index >= len(cells):
        return None
    return cells[index]


def _usable_rows(
    rows: Iterator[tuple[int, list[Cell] | RowError]], builder: _RecordBuilder
) -> Iterator[tuple[int, list[Cell] | ReadRecord]]:
    """Rows with results; a blank, unreadable or rejected row comes back as the ReadRecord that accounts for it."""
    for number, cells in rows:
        if _blank_row(cells):
            yield number, _blank(number)
            continue
        rejected = builder.rejection(number, cells)
        if rejected is not None or isinstance(cells, RowError):
            yield number, rejected or _blank(number)
            continue
        yield number, cells


def _contiguous_groups(
    rows: Iterator[tuple[int, list[Cell] | RowError]], visit: int, builder: _RecordBuilder
) -> Iterator[ReadRecord]:
    group: list[Row] = []
    current = ""
    for number, cells in _usable_rows(rows, builder):
        if isinstance(cells, ReadRecord):
            yield cells
            continue
        visit_id = _visit_of(cells, visit)
        if group and visit_id != current:
            yield builder.build(group, current)
            group = []
        current = visit_id
        group.append((number, cells))
    if group:
        yield builder.build(group, current)


def _json_cell(cell: Cell) -> str | int | float | None:
    if isinstance(cell, dt.date | dt.datetime):
        return cell_text(cell)
    return cell


def _spilled_groups(
    rows: Iterator[tuple[int, list[Cell] | RowError]], visit: int, builder: _RecordBuilder
) -> Iterator[ReadRecord]:
    with tempfile.TemporaryDirectory(prefix="zhujian-ingest-") as folder:
        paths = [Path(folder) / f"bucket-{i:02d}.jsonl" for i in range(SPILL_BUCKETS)]
        handles = [p.open("w", encoding="utf-8") for p in paths]
        try:
            for number, cells in _usable_rows(rows, builder):
                if isinstance(cells, ReadRecord):
                    yield cells
                    continue
                visit_id = _visit_of(cells, visit)
                bucket = zlib.crc32(visit_id.encode("utf-8")) % SPILL_BUCKETS
                handles[bucket].write(json.dumps([number, [_json_cell(c) for c in cells]], ensure_ascii=False) + "\n")
        finally:
            for handle in handles:
                handle.close()
        for path in paths:
            groups: dict[str, list[Row]] = {}
            with path.open(encoding="utf-8") as handle:
                for line in handle:
                    number, cells = json.loads(line)
                    groups.setdefault(_visit_of(cells, visit), []).append((number, cells))
            for visit_id, group in groups.items():
                yield builder.build(group, visit_id)
