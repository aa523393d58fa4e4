"""Wide files (CSV or .xlsx): one row per checkup, one column per item.

Headers name items through the KB's aliases (`kb.resolve_item`); demographic headers through `columns.yaml`;
a profile adds what a source leaves unsaid (units, value codes, age classes). A column the KB does not know is
kept: its cells become items under the header's name, which the engine reports as `item_unknown`.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

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
from zhujian.adapters.demographics import (
    ColumnVocabulary,
    DateOrder,
    column_vocabulary,
    infer_date_order,
    read_age,
    read_date,
    read_sex,
)
from zhujian.adapters.profiles import Profile, check_profile, select_profile
from zhujian.adapters.tables import is_xlsx, open_table
from zhujian.domain.record import ItemInput, Record, RecordSex
from zhujian.domain.report import Problem

# How many rows are read ahead (in a second pass over the file) to learn a date column's day/month order.
DATE_PRESCAN_ROWS = 20_000


@dataclass(frozen=True)
class ItemColumn:
    """How the cells of one item column become `ItemInput`s."""

    name: str
    code: str | None = None
    unit: str | None = None
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Demographics:
    """The demographic fields of one record while its cells are read."""

    person_id: str | None = None
    sex: RecordSex = "unknown"
    age: float | None = None
    exam_date: dt.date | None = None
    birth_date: dt.date | None = None
    seen: set[str] = field(default_factory=set)


@dataclass
class DemographicReader:
    """Reads sex, age (or an age class code), dates and person ids, with the problems they raise."""

    vocabulary: ColumnVocabulary
    profile: Profile | None
    date_order: DateOrder | None

    def read(self, role: str, cell: Cell, where: str, column: str, into: Demographics) -> Problem | None:
        """Store the cell's value in `into`; returns the problem it raised, if any. `cell` is not empty."""
        text = cell_text(cell).strip()
        if role == "person_id":
            return self._store(into, role, text, where, column)
        if role == "sex":
            sex = read_sex(text, self.vocabulary)
            problem = self._store(into, role, sex.value, where, column)
            if sex.code is not None and sex.reason is not None:
                return Problem(sex.code, sex.reason, item=column, value=text, field=where)
            return problem
        if role == "age":
            age = read_age(text)
            if age.value is None:
                return Problem(age.code or "age_unreadable", age.reason or "", item=column, value=text, field=where)
            return self._store(into, role, age.value, where, column)
        if role == "age_code":
            band = self.profile.age_band(text) if self.profile is not None else None
            if band is None:
                return Problem(
                    "age_unreadable", f"年龄段代码“{text}”未知，年龄未使用", item=column, value=text, field=where
                )
            conflict = self._store(into, "age", band.midpoint, where, column)
            return conflict or Problem(
                "age_band",
                f"年龄只给出年龄段代码 {text}（{band.label()}），按组中值 {band.midpoint:g} 岁计算",
                item=column,
                value=text,
                field=where,
            )
        if role in ("exam_date", "birth_date"):
            if isinstance(cell, dt.datetime):
                return self._store(into, role, cell.date(), where, column)
            if isinstance(cell, dt.date):
                return self._store(into, role, cell, where, column)
            date = read_date(text, self.date_order)
            if date.value is not None:
                conflict = self._store(into, role, date.value, where, column)
                if conflict is not None:
                    return conflict
            if date.code is not None:
                return Problem(date.code, date.reason or "", item=column, value=text, field=where)
            return None
        raise ValueError(f"not a demographic role: {role}")

    @staticmethod
    def _store(into: Demographics, role: str, value: Any, where: str, column: str) -> Problem | None:
        # Long files repeat the demographics on every row: the first value wins, a different one is reported.
        if role in into.seen:
            current = getattr(into, role)
            if current != value:
                return Problem(
                    "demographic_conflict",
                    f"{column} 在同一体检中出现不同的值（{current} 与 {value}），使用第一个",
                    item=column,
                    value=str(value),
                    field=where,
                )
            return None
        into.seen.add(role)
        setattr(into, role, value)
        return None


@dataclass
class WidePlan:
    """The role of every column of a wide file."""

    roles: list[str]  # per column: a demographic role, "withheld", "age_code" or "item"
    items: dict[int, ItemColumn]
    visit_column: int | None


def plan_wide_columns(
    header: list[str], profile: Profile | None, vocabulary: ColumnVocabulary, request: ReadRequest
) -> WidePlan:
    info, kb = request.info, request.kb
    roles: list[str] = []
    items: dict[int, ItemColumn] = {}
    taken: set[str] = set()
    for index, name in enumerate(header):
        rule = profile.column_rule(name) if profile is not None else None
        role: str | None
        if rule is not None and rule.rename is not None:
            role = None
        elif profile is not None and profile.is_age_code_column(name):
            role = "age_code"
        else:
            role = vocabulary.role_of(name, long_format=False)
        if role is not None and role != "withheld" and role in taken:
            info.notes.append(f"column {name!r}: a second {role} column, kept as an item")
            role = None
        if role is not None:
            taken.add(role)
            roles.append(role)
            info.column_roles[name] = role
            if role == "withheld":
                info.withheld_columns.append(name)
            continue
        roles.append("item")
        column = ItemColumn(
            name=rule.rename if rule is not None and rule.rename is not None else name,
            code=rule.item if rule is not None else None,
            unit=rule.unit if rule is not None else None,
            values=dict(rule.values) if rule is not None else {},
        )
        items[index] = column
        item_id = column.code or kb.resolve_item(column.name)
        info.column_roles[name] = f"item {item_id}" if item_id else "item (unknown to the KB)"
        if item_id is None:
            info.unknown_columns.append(name)
    visit_column = roles.index("visit_id") if "visit_id" in roles else None
    return WidePlan(roles, items, visit_column)


def prescan_date_order(request: ReadRequest, column: int) -> tuple[DateOrder | None, str]:
    """Learn a date column's day/month order from up to DATE_PRESCAN_ROWS rows, in a second read of the file."""
    scratch = SourceInfo(file=request.info.file, format=request.format)
    with open_table(request.path, scratch, encoding=request.info.encoding, delimiter=request.info.delimiter) as table:
        values = (
            cells[column]
            for _, cells in itertools.islice(table.rows, DATE_PRESCAN_ROWS)
            if not isinstance(cells, RowError) and column < len(cells) and isinstance(cells[column], str)
        )
        return infer_date_order(str(v) for v in values)


def resolve_profile(request: ReadRequest, header: list[str], kind: str) -> Profile | None:
    profile, why = select_profile(header, request.profile, "wide" if kind == "wide" else "long")
    info = request.info
    info.profile, info.profile_reason = (profile.name if profile else None), why
    if profile is not None:
        problems = check_profile(profile, request.kb)
        if problems:
            raise IngestError("profile does not fit the knowledge base:\n  " + "\n  ".join(problems))
        info.notes.extend(profile.notes)
    return profile


def date_order_for(request: ReadRequest, profile: Profile | None, column: int | None) -> DateOrder | None:
    if column is None:
        return None
    if profile is not None and profile.date_order is not None:
        request.info.notes.append(f"dates: {profile.date_order} (profile {profile.name})")
        return profile.date_order
    order, why = prescan_date_order(request, column)
    request.info.notes.append(f"dates: {order or 'order unknown, read day first'} ({why})")
    return order


def note_undecodable_header(info: SourceInfo) -> None:
    """Name the header cells holding bytes the encoding could not decode (data cells are reported one by one)."""
    bad = [name for name in info.header if "\ufffd" in name]
    if bad:
        info.notes.append(
            f"header: {len(bad)} column name(s) hold bytes that {info.encoding} cannot decode: {', '.join(bad[:5])}"
        )


def read_wide(request: ReadRequest) -> Iterator[ReadRecord]:
    """Records from a wide CSV or .xlsx file, one per non-blank row (or a rejection naming the row)."""
    info = request.info
    vocabulary = column_vocabulary()
    with open_table(request.path, info, encoding=request.encoding, delimiter=request.delimiter) as table:
        note_undecodable_header(info)
        profile = resolve_profile(request, table.header, "wide")
        plan = plan_wide_columns(table.header, profile, vocabulary, request)
        date_column = next((i for i, r in enumerate(plan.roles) if r in ("exam_date", "birth_date")), None)
        reader = DemographicReader(vocabulary, profile, date_order_for(request, profile, date_column))
        if plan.visit_column is None:
            info.notes.append("no visit id column: each record's visit_id is its row number (row-N)")
        if "sex" not in plan.roles:
            info.notes.append("no sex column: sex is unknown in every record")
        seen_ids: set[str] = set()
        for number, cells in table.rows:
            yield _wide_row(request, table.header, plan, reader, number, cells, seen_ids)


def _wide_row(
    request: ReadRequest,
    header: list[str],
    plan: WidePlan,
    reader: DemographicReader,
    number: int,
    cells: list[Cell] | RowError,
    seen_ids: set[str],
) -> ReadRecord:
    file_name = request.info.file
    out = ReadRecord(first_row=number, row_count=1, record=None)
    if isinstance(cells, RowError):
        out.rejection = Problem(
            "row_unreadable",
            f"第 {number} 行无法按 CSV 拆分：{cells.message}，整行未导入",
            field=f"{file_name}:row {number}",
        )
        return out
    if all(is_empty(c) for c in cells):
        return out  # a blank row: neither a record nor a rejection
    problems: list[Problem] = []
    non_empty = sum(1 for c in cells if not is_empty(c))
    if plan.visit_column is not None:
        visit_cell = cells[plan.visit_column] if plan.visit_column < len(cells) else None
        visit_id = cell_text(visit_cell).strip()
        if not visit_id:
            column = header[plan.visit_column]
            out.rejection = Problem(
                "visit_id_missing",
                f"第 {number} 行没有体检号（列 {column}），整行 {non_empty} 个非空单元格未导入",
                item=column,
                field=origin_of(file_name, number, column),
            )
            out.cells["rejected_row"] += non_empty
            return out
    else:
        visit_id = f"row-{number}"
    if visit_id in seen_ids:
        problems.append(
            Problem(
                "duplicate_visit_id",
                f"体检号 {visit_id} 在文件中重复出现（第 {number} 行），仍作为单独的记录导出",
                value=visit_id,
                field=f"{file_name}:row {number}",
            )
        )
    seen_ids.add(visit_id)
    if len(cells) < len(header) and not is_xlsx(request.path):
        problems.append(
            Problem(
                "row_length",
                f"第 {number} 行只有 {len(cells)} 个单元格，表头有 {len(header)} 列；缺少的按空值处理",
                field=f"{file_name}:row {number}",
            )
        )
    demographics = Demographics()
    items: list[ItemInput] = []
    for index, cell in enumerate(cells):
        if index >= len(header):
            if is_empty(cell):
                continue
            column = f"column {index + 1}"
            problems.append(
                Problem(
                    "row_length",
                    f"第 {number} 行在表头之外还有单元格（第 {index + 1} 列），按未知项目“{column}”保留",
                    item=column,
                    value=cell_text(cell),
                    field=origin_of(file_name, number, column),
                )
            )
            items.append(ItemInput(name=column, value=_item_value(cell), origin=origin_of(file_name, number, column)))
            out.item_keys.append(column)
            out.cells["item"] += 1
            continue
        column = header[index]
        role = plan.roles[index]
        if is_empty(cell):
            if role == "item":
                out.missing_keys.append(column)
            continue
        where = origin_of(file_name, number, column)
        bad_bytes = encoding_problem(cell, column, where, request.info.encoding)
        if bad_bytes is not None:
            problems.append(bad_bytes)
        if role == "visit_id":
            out.cells["demographic"] += 1
            continue
        if role == "withheld":
            out.cells["withheld"] += 1
            continue
        if role != "item":
            out.cells["demographic"] += 1
            problem = reader.read(role, cell, where, column, demographics)
            if problem is not None:
                problems.append(problem)
            continue
        spec = plan.items[index]
        value = _item_value(cell)
        if spec.values:
            value = spec.values.get(cell_text(cell).strip(), value)
        items.append(ItemInput(name=spec.name, code=spec.code, value=value, unit=spec.unit, origin=where))
        out.item_keys.append(column)
        out.cells["item"] += 1
    for index in range(len(cells), len(header)):
        if plan.roles[index] == "item":
            out.missing_keys.append(header[index])
    try:
        out.record = Record(
            visit_id=visit_id,
            person_id=demographics.person_id,
            sex=demographics.sex,
            age=demographics.age,
            exam_date=demographics.exam_date,
            birth_date=demographics.birth_date,
            items=items,
        )
    except ValidationError as exc:
        return _invalid(out, exc, number, file_name)
    out.problems = problems
    return out


def _invalid(out: ReadRecord, exc: ValidationError, number: int, file_name: str) -> ReadRecord:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    out.rejection = Problem(
        "record_invalid",
        f"第 {number} 行不能组成有效记录：字段 {where}：{first['msg']}",
        value=str(first.get("input"))[:80],
        field=f"{file_name}:row {number}",
    )
    moved = sum(out.cells.values())
    out.cells = Counter({"rejected_row": moved})
    out.item_keys, out.text_keys, out.missing_keys = [], [], []
    return out


def _item_value(cell: Cell) -> str | float | int:
    """A cell as an item value: text exactly as given, numbers from a spreadsheet as numbers."""
    if isinstance(cell, int | float):
        return cell
    return cell_text(cell)
