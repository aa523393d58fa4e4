"""Types shared by the readers: what a reader is given, what it yields, and the one error for unreadable input."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from zhujian.domain.record import Record
from zhujian.domain.report import Problem
from zhujian.kb.loader import KnowledgeBase

# One spreadsheet cell: CSV cells are always text; .xlsx cells may be numbers or dates.
Cell = str | int | float | dt.datetime | dt.date | None


class IngestError(Exception):
    """The input cannot be read at all (missing file, unknown encoding, no header, unknown format…).

    Problems inside a readable file are never raised: they become row rejections or problems in the report.
    """


def cell_text(cell: Cell) -> str:
    """A cell as text, for ids, sexes and dates (numbers from a spreadsheet lose a spurious '.0')."""
    if cell is None:
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    if isinstance(cell, dt.datetime):
        return cell.isoformat(sep=" ")
    if isinstance(cell, dt.date):
        return cell.isoformat()
    return str(cell)


def is_empty(cell: Cell) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def encoding_problem(cell: Cell, column: str, where: str, encoding: str | None) -> Problem | None:
    """A cell holding U+FFFD could not be decoded with the file's encoding: say so rather than pass it on silently."""
    if isinstance(cell, str) and "\ufffd" in cell:
        return Problem(
            "encoding_error", f"单元格含有无法解码的字节（编码 {encoding}）", item=column, value=cell, field=where
        )
    return None


def origin_of(file_name: str, row: int, column: str) -> str:
    """Where a value came from, as the problems of the engine name it: spreadsheet row numbers (header = row 1)."""
    return f"{file_name}:row {row}:column {column}"


@dataclass
class SourceInfo:
    """What a reader found out about its file; filled in before the first record is yielded."""

    file: str
    format: str
    encoding: str | None = None
    encoding_reason: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    profile: str | None = None
    profile_reason: str | None = None
    header: list[str] = field(default_factory=list)
    column_roles: dict[str, str] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    withheld_columns: list[str] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class ReadRecord:
    """One record assembled from one row (wide) or one visit's rows (long), or one rejected row.

    `item_keys` and `text_keys` run parallel to `record.items` and `record.texts` and name the report column
    (wide: the header; long: the item label) each came from; `missing_keys` names the empty cells. `cells` counts
    how every non-empty source cell was used, so that the report can prove nothing was dropped.
    """

    first_row: int
    row_count: int
    record: Record | None
    problems: list[Problem] = field(default_factory=list)
    item_keys: list[str] = field(default_factory=list)
    text_keys: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    cells: Counter[str] = field(default_factory=Counter)
    rejection: Problem | None = None


@dataclass(frozen=True)
class ReadRequest:
    """Everything a reader gets. `profile` is a profile name, "none" for no profile, or None to auto-detect."""

    path: Path
    format: str
    kb: KnowledgeBase
    info: SourceInfo
    encoding: str | None = None
    delimiter: str | None = None
    profile: str | None = None
