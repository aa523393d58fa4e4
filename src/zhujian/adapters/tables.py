"""Open a delimited text file or an .xlsx sheet as a header plus a stream of numbered rows.

Rows are numbered as a spreadsheet shows them (the header is row 1, blank lines count), so that a problem's
`row N` is the row a person finds when opening the file. Only one row is in memory at a time.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import importlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from zhujian.adapters.base import Cell, IngestError, SourceInfo, cell_text
from zhujian.adapters.delimited import DelimitedReader, RowError
from zhujian.adapters.detect import (
    check_encoding,
    delimiter_name,
    detect_delimiter,
    detect_encoding,
    read_sample,
    sample_lines,
)

# Physician free text can be long; the csv module's default limit (128 KiB) would stop a whole file.
csv.field_size_limit(64 * 1024 * 1024)

XLSX_SUFFIXES = (".xlsx", ".xlsm")


@dataclass
class Table:
    header: list[str]
    rows: Iterator[tuple[int, list[Cell] | RowError]]


def is_xlsx(path: Path) -> bool:
    return path.suffix.lower() in XLSX_SUFFIXES


@contextmanager
def open_table(
    path: Path, info: SourceInfo, *, encoding: str | None = None, delimiter: str | None = None
) -> Iterator[Table]:
    """Open `path` and record in `info` the encoding, delimiter or sheet used. Raises IngestError."""
    if not path.exists():
        raise IngestError(f"cannot read {path}: no such file")
    if path.is_dir():
        raise IngestError(f"cannot read {path}: it is a folder")
    if path.suffix.lower() == ".xls":
        raise IngestError(f"{path.name}: the old binary .xls format is not supported; save it as .xlsx or CSV")
    if is_xlsx(path):
        with _open_xlsx(path, info) as table:
            yield table
        return
    with _open_delimited(path, info, encoding, delimiter) as table:
        yield table


def header_names(raw: list[Cell]) -> list[str]:
    """Header cells as names: blank ones become `column N`, repeated ones `name (2)`, so each key is unique."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for index, cell in enumerate(raw, start=1):
        name = cell_text(cell).strip() or f"column {index}"
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name} ({count})")
    return names


@contextmanager
def _open_delimited(path: Path, info: SourceInfo, encoding: str | None, delimiter: str | None) -> Iterator[Table]:
    sample = read_sample(path)
    if not sample:
        raise IngestError(f"{path.name}: the file is empty")
    if encoding is not None:
        codec = check_encoding(sample, encoding)
        info.encoding, info.encoding_reason = codec, "given with --encoding"
    else:
        guess = detect_encoding(sample)
        codec = guess.encoding
        info.encoding, info.encoding_reason = guess.encoding, guess.reason
    text = codecs.getincrementaldecoder(codec)(errors="replace").decode(sample, final=False)
    if delimiter is not None:
        if len(delimiter) != 1:
            raise IngestError(f"the delimiter must be one character, not {delimiter!r}")
        chosen, why = delimiter, "given with --delimiter"
    else:
        chosen, why = detect_delimiter(sample_lines(text))
    info.delimiter = chosen
    info.notes.append(f"delimiter: {delimiter_name(chosen)} ({why})")
    # '$' files (Meinian raw) carry free text with stray quotes: quoting would swallow rows, so it is off.
    quoting: Literal[0, 3] = csv.QUOTE_NONE if chosen == "$" else csv.QUOTE_MINIMAL
    # errors="replace": a stray undecodable byte deep in the file must not stop the run; the cells that hold the
    # replacement character are reported (`encoding_error`).
    with path.open(encoding=codec, errors="replace", newline="") as handle:
        reader = DelimitedReader(handle, chosen, quoting, file_name=path.name)
        header = header_names(list(reader.header()))
        info.header = header
        yield Table(header, reader.rows())


@contextmanager
def _open_xlsx(path: Path, info: SourceInfo) -> Iterator[Table]:
    try:
        # Imported by name: openpyxl is an optional dependency without type information.
        openpyxl: Any = importlib.import_module("openpyxl")
    except ImportError as exc:
        raise IngestError("reading .xlsx needs openpyxl: pip install 'openpyxl>=3.1'") from exc
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds (zipfile, KeyError, InvalidFileException)
        raise IngestError(f"{path.name}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from exc
    try:
        sheets = list(workbook.worksheets)
        if not sheets:
            raise IngestError(f"{path.name}: the workbook has no sheet")
        sheet = sheets[0]
        info.sheet = str(sheet.title)
        info.encoding, info.encoding_reason = None, "xlsx (Unicode)"
        if len(sheets) > 1:
            others = ", ".join(str(s.title) for s in sheets[1:])
            info.notes.append(f"only the first sheet ({sheet.title}) was read; other sheets: {others}")
        rows = sheet.iter_rows(values_only=True)
        first = _first_row(path, rows)
        if first is None:
            raise IngestError(f"{path.name}: the first sheet is empty")
        header = header_names([_xlsx_cell(c) for c in first])
        info.header = header
        yield Table(header, _xlsx_rows(rows, path.name))
    finally:
        workbook.close()


def _first_row(path: Path, rows: Iterator[tuple[Any, ...]]) -> tuple[Any, ...] | None:
    try:
        return next(rows, None)
    except Exception as exc:  # see _xlsx_rows
        raise IngestError(f"{path.name}: row 1 of the first sheet cannot be read: {_cell_error(exc)}") from exc


def _xlsx_rows(rows: Iterator[tuple[Any, ...]], file_name: str) -> Iterator[tuple[int, list[Cell] | RowError]]:
    number = 1
    while True:
        number += 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:
            # openpyxl converts each cell while reading the sheet and stops with ValueError, IndexError, … on a cell
            # it cannot convert (a numeric cell holding "nan", a shared-string index that does not exist). The sheet
            # cannot be read past it: the file is refused naming the row, never cut short silently.
            raise IngestError(
                f"{file_name}: row {number} of the first sheet cannot be read: {_cell_error(exc)}; "
                "correct that cell, or save the sheet as CSV"
            ) from exc
        yield number, [_xlsx_cell(c) for c in row]


def _cell_error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


def _xlsx_cell(value: Any) -> Cell:
    if value is None or isinstance(value, str | dt.datetime | dt.date):
        return value
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # a numeric cell "1e999" reads as inf: kept as the text "inf", reported as unreadable
    if isinstance(value, int | float):
        return value
    return str(value)  # time, timedelta, Decimal, error strings: kept as text
