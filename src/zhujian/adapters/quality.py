"""The data-quality report of one ingest: what was read, what was written, and why anything was not used.

Counts add up by construction, so a reader can check that nothing was dropped: every non-blank row is in a
record or rejected with a reason, and every non-empty cell is counted once under `cells` (an item, a text, a
demographic field, a withheld personal field, a reported unused column, a value without an item name, or a cell
of a rejected row).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.table import Table

from zhujian.adapters.base import ReadRecord, SourceInfo
from zhujian.adapters.detect import delimiter_name
from zhujian.domain.report import Problem
from zhujian.pipeline.evaluate import ItemEvaluation

EXAMPLES_PER_CODE = 5
REJECTION_EXAMPLES = 20
SUMMARY_COLUMNS = 40


@dataclass
class ColumnQuality:
    """One source column (wide) or item label (long)."""

    role: str
    present: int = 0  # values the engine could use (a number in the canonical unit, or a category)
    missing: int = 0  # empty cells
    texts: int = 0  # free-text results kept as record texts
    rejected: Counter[str] = field(default_factory=Counter)  # kept in the record, not usable: by problem code
    noted: Counter[str] = field(default_factory=Counter)  # used, with a remark: by problem code

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "present": self.present,
            "missing": self.missing,
            "texts": self.texts,
            "rejected": dict(sorted(self.rejected.items())),
            "noted": dict(sorted(self.noted.items())),
        }


@dataclass
class QualityReport:
    file: str
    format: str
    encoding: str | None = None
    encoding_reason: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    profile: str | None = None
    profile_reason: str | None = None
    rows_read: int = 0
    blank_rows: int = 0
    records_written: int = 0
    rows_in_records: int = 0
    rows_rejected: int = 0
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    rejected_examples: list[dict[str, Any]] = field(default_factory=list)
    problems_by_code: Counter[str] = field(default_factory=Counter)
    problem_examples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    columns: dict[str, ColumnQuality] = field(default_factory=dict)
    unknown_columns: list[str] = field(default_factory=list)
    withheld_columns: list[str] = field(default_factory=list)
    unused_columns: list[str] = field(default_factory=list)
    cells: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    complete: bool = False  # True once the whole file has been read

    def start(self, info: SourceInfo) -> None:
        """Take over what the reader learnt about the file (called before the first record is counted)."""
        self.encoding, self.encoding_reason = info.encoding, info.encoding_reason
        self.delimiter, self.sheet = info.delimiter, info.sheet
        self.profile, self.profile_reason = info.profile, info.profile_reason
        self.unknown_columns = list(info.unknown_columns)
        self.withheld_columns = list(info.withheld_columns)
        self.unused_columns = list(info.unused_columns)
        self.notes = list(info.notes)
        for header, role in info.column_roles.items():
            if role.startswith("item"):
                self.columns.setdefault(header, ColumnQuality(role))

    def add(self, read: ReadRecord, evaluation: ItemEvaluation | None) -> list[Problem]:
        """Count one reader outcome; returns every problem of the record (the reader's and the engine's)."""
        if read.record is None and read.rejection is None:
            self.blank_rows += 1
            return []
        self.rows_read += read.row_count
        self.cells.update(read.cells)
        if read.rejection is not None or read.record is None:
            rejection = read.rejection
            self.rows_rejected += read.row_count
            if rejection is not None:
                self.rejected_reasons[rejection.code] += 1
                if len(self.rejected_examples) < REJECTION_EXAMPLES:
                    self.rejected_examples.append({"row": read.first_row, **rejection.to_dict()})
            return []
        record = read.record
        self.records_written += 1
        self.rows_in_records += read.row_count
        problems = list(read.problems)
        if evaluation is not None:
            problems.extend(evaluation.problems)
        codes_by_field: dict[str, list[str]] = {}
        for problem in problems:
            self.problems_by_code[problem.code] += 1
            examples = self.problem_examples.setdefault(problem.code, [])
            if len(examples) < EXAMPLES_PER_CODE:
                examples.append(problem.to_dict())
            if problem.field is not None:
                codes_by_field.setdefault(problem.field, []).append(problem.code)
        for index, key in enumerate(read.item_keys):
            column = self._column(key)
            codes = codes_by_field.get(record.items[index].origin or "", [])
            evaluated = evaluation.items[index] if evaluation is not None else None
            # An item unknown to the KB keeps its raw value but is not interpreted: not "present".
            used = evaluated is not None and evaluated.item_id is not None and evaluated.value is not None
            if used:
                column.present += 1
                column.noted.update(codes)
            else:
                column.rejected.update(codes or ["not_evaluated"])
        for key in read.text_keys:
            self._column(key, "text").texts += 1
        for key in read.missing_keys:
            self._column(key).missing += 1
        return problems

    def _column(self, key: str, role: str = "item") -> ColumnQuality:
        column = self.columns.get(key)
        if column is None:
            column = self.columns[key] = ColumnQuality(role)
        return column

    @property
    def non_empty_cells(self) -> int:
        return sum(self.cells.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "complete": self.complete,
            "encoding": self.encoding,
            "encoding_reason": self.encoding_reason,
            "delimiter": self.delimiter,
            "sheet": self.sheet,
            "profile": self.profile,
            "profile_reason": self.profile_reason,
            "rows_read": self.rows_read,
            "blank_rows": self.blank_rows,
            "records_written": self.records_written,
            "rows_in_records": self.rows_in_records,
            "rows_rejected": self.rows_rejected,
            "rejected_reasons": dict(sorted(self.rejected_reasons.items())),
            "rejected_examples": self.rejected_examples,
            "problems_by_code": dict(sorted(self.problems_by_code.items())),
            "problem_examples": self.problem_examples,
            "columns": {key: column.to_dict() for key, column in self.columns.items()},
            "unknown_columns": self.unknown_columns,
            "withheld_columns": self.withheld_columns,
            "unused_columns": self.unused_columns,
            "cells": dict(sorted(self.cells.items())),
            "non_empty_cells": self.non_empty_cells,
            "notes": self.notes,
        }

    def summary(self) -> Group:
        """A one-screen summary: the file and its counts, then one line per column (the first 40)."""
        overview = Table(title=f"ingest {self.file}", show_header=False, title_justify="left")
        overview.add_column("what", style="bold")
        overview.add_column("value")
        used = self.encoding or "-"
        overview.add_row("format", self.format + (f" (sheet {self.sheet})" if self.sheet else ""))
        overview.add_row("encoding", f"{used} — {self.encoding_reason}" if self.encoding_reason else used)
        if self.delimiter is not None:
            overview.add_row("delimiter", delimiter_name(self.delimiter))
        overview.add_row("profile", f"{self.profile or 'none'} — {self.profile_reason or ''}")
        overview.add_row("rows read", f"{self.rows_read} (+{self.blank_rows} blank)")
        overview.add_row("records written", str(self.records_written))
        overview.add_row("rows rejected", f"{self.rows_rejected} {_counts(self.rejected_reasons)}".rstrip())
        overview.add_row("problems", _counts(self.problems_by_code) or "none")
        if self.unknown_columns:
            overview.add_row("unknown columns", ", ".join(self.unknown_columns))
        if self.withheld_columns:
            overview.add_row("withheld (personal data)", ", ".join(self.withheld_columns))
        if self.unused_columns:
            overview.add_row("unused columns", ", ".join(self.unused_columns))
        columns = Table(title="columns", title_justify="left")
        for name in ("column", "role", "present", "missing", "texts", "not used (why)", "noted"):
            columns.add_column(name, justify="right" if name in ("present", "missing", "texts") else "left")
        for key, column in list(self.columns.items())[:SUMMARY_COLUMNS]:
            columns.add_row(
                key,
                column.role,
                str(column.present),
                str(column.missing),
                str(column.texts),
                _counts(column.rejected),
                _counts(column.noted),
            )
        if len(self.columns) > SUMMARY_COLUMNS:
            columns.caption = f"{len(self.columns) - SUMMARY_COLUMNS} more columns in the JSON report"
        return Group(overview, columns)

    def render(self, console: Console) -> None:
        console.print(self.summary())


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{code} {n}" for code, n in counter.most_common())
