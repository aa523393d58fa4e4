"""Split a delimited text file into numbered rows, with bounded memory and recovery from a broken quote.

The csv module, left to itself, reads an opening quote that is never closed as one field that runs to the next
quote or to the end of the file: every following row silently becomes part of one cell. Here the csv module runs
in strict mode and is fed one physical line at a time, remembering the lines of the row being read. When a row
cannot be split (a quote never closed, text after a closing quote, a NUL byte) or grows past `MAX_ROW_CHARS`, that
row is rejected with its number and the lines it had swallowed are read again as rows of their own, so a stray
quote costs one row, not the rest of the file.

Rows are numbered as a spreadsheet shows them: the header is row 1, a blank line is a row.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, TextIO

from zhujian.adapters.base import Cell, IngestError

# One row (all its physical lines) may hold at most this many characters. Checkup rows are a few hundred
# characters; long physician texts a few thousand. A longer row is rejected without being held in memory, so that a
# file with no line breaks (or one unterminated quote in a huge file) cannot take minutes and gigabytes.
MAX_ROW_CHARS = 1 << 20
# Excel's own column limit: a header with more columns is not a checkup export.
MAX_COLUMNS = 16_384


@dataclass
class RowError:
    """A row that could not be split into cells (e.g. an unterminated quote); it is rejected, not skipped."""

    message: str
    too_long: bool = False


class _RowTooLongError(Exception):
    """The row being read passed MAX_ROW_CHARS."""

    def __init__(self, single_line: bool) -> None:
        super().__init__("row too long")
        self.single_line = single_line


@dataclass
class _Line:
    number: int  # physical line number in the file, from 1
    text: str | None  # None: a line longer than MAX_ROW_CHARS, already skipped


class _LineFeed:
    """Physical lines for csv.reader; remembers the lines of the row being read so they can be read again."""

    def __init__(self, handle: TextIO, limit: int) -> None:
        self._handle = handle
        self._limit = limit
        self._next_number = 1
        self._pending: deque[_Line] = deque()
        self.current: list[_Line] = []
        self._current_chars = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self._pending.popleft() if self._pending else self._read()
        if line is None:
            raise StopIteration
        if line.text is None:
            # Reported as a row of its own; a row already being read (inside a quote) is broken by it.
            if self.current:
                self._pending.appendleft(line)
                raise _RowTooLongError(single_line=False)
            self.current.append(line)
            raise _RowTooLongError(single_line=True)
        self.current.append(line)
        self._current_chars += len(line.text)
        if self._current_chars > self._limit:
            raise _RowTooLongError(single_line=False)
        return line.text

    def _read(self) -> _Line | None:
        text = self._handle.readline(self._limit + 1)
        if not text:
            return None
        line = _Line(self._next_number, text)
        self._next_number += 1
        if len(text) > self._limit and not text.endswith(("\n", "\r")):
            # Skip the rest of the physical line in bounded pieces.
            while True:
                rest = self._handle.readline(self._limit)
                if not rest or rest.endswith(("\n", "\r")):
                    break
            line.text = None
        return line

    def start_row(self) -> None:
        self.current = []
        self._current_chars = 0

    def reread_after_first(self) -> None:
        """Put back every line of the current row but its first one, to be read again as rows of their own."""
        self._pending.extendleft(reversed(self.current[1:]))
        self.start_row()

    def first_line(self) -> int:
        return self.current[0].number if self.current else self._next_number


class DelimitedReader:
    """The header and the numbered rows of a delimited file opened as text (`newline=""`)."""

    def __init__(self, handle: TextIO, delimiter: str, quoting: Literal[0, 3], *, file_name: str) -> None:
        self._feed = _LineFeed(handle, MAX_ROW_CHARS)
        self._delimiter = delimiter
        self._quoting = quoting
        self._file_name = file_name
        self._reader = self._new_reader()

    def _new_reader(self) -> Iterator[list[str]]:
        return csv.reader(self._feed, delimiter=self._delimiter, quoting=self._quoting, strict=True)

    def header(self) -> list[str]:
        """The first row's cells. Raises IngestError for an empty file or a header that cannot be read."""
        row = self._next_row(1)
        if row is None:
            raise IngestError(f"{self._file_name}: the file is empty")
        if isinstance(row, RowError) and row.too_long:
            raise IngestError(
                f"{self._file_name}: the header row is longer than the limit of {MAX_ROW_CHARS} characters per row"
            )
        if isinstance(row, RowError):
            raise IngestError(f"{self._file_name}: the header row cannot be read: {row.message}")
        if len(row) > MAX_COLUMNS:
            raise IngestError(
                f"{self._file_name}: the header has {len(row)} columns, more than the limit of {MAX_COLUMNS}"
            )
        return row

    def rows(self) -> Iterator[tuple[int, list[Cell] | RowError]]:
        """Rows after the header, numbered from 2; an unreadable row comes as a RowError and reading goes on."""
        number = 1
        while True:
            number += 1
            row = self._next_row(number)
            if row is None:
                return
            if isinstance(row, RowError):
                yield number, row
            else:
                cells: list[Cell] = list(row)
                yield number, cells

    def _next_row(self, number: int) -> list[str] | RowError | None:
        self._feed.start_row()
        try:
            return next(self._reader)
        except StopIteration:
            return None
        except _RowTooLongError as exc:
            first = self._feed.first_line()
            swallowed = len(self._feed.current) - 1
            if exc.single_line or swallowed == 0:
                self._feed.start_row()
                self._reader = self._new_reader()
                return RowError(f"文件第 {first} 行超过每行 {MAX_ROW_CHARS} 个字符的上限", too_long=True)
            else:
                self._feed.reread_after_first()
                message = (
                    f"从文件第 {first} 行开始的带引号单元格超过 {MAX_ROW_CHARS} 个字符的上限"
                    f"（引号可能没有闭合），其后的 {swallowed} 行已作为单独的行重新读取"
                )
        except csv.Error as exc:
            first = self._feed.first_line()
            swallowed = len(self._feed.current) - 1
            self._feed.reread_after_first()
            if str(exc) == "unexpected end of data":
                message = f"文件第 {first} 行的引号没有闭合，一直延续到文件末尾"
            elif swallowed:
                message = f"从文件第 {first} 行开始的带引号单元格没有正确闭合（{exc}）"
            else:
                message = f"文件第 {first} 行：{exc}"
            if swallowed:
                message += f"，被其吞入的 {swallowed} 行已作为单独的行重新读取"
        # csv.reader keeps no state worth saving after an error: start afresh on the lines put back.
        self._reader = self._new_reader()
        return RowError(message)
