"""File readers: checkup exports (wide or long CSV, .xlsx, Meinian raw) → canonical `Record`s plus a quality report.

    result = ingest_file(path, "wide-csv", kb=default_kb())
    for record in result:          # streams: one row (or one visit's rows) in memory at a time
        ...
    result.report.to_dict()        # complete once the records have been consumed

Every record's items are evaluated with the engine's own evaluator, so each value is either usable (a number in
the canonical unit, or a category) or a problem naming file, row, column, raw value and reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from zhujian.adapters.base import IngestError, ReadRequest, SourceInfo
from zhujian.adapters.profiles import Profile, load_profiles, profile_names
from zhujian.adapters.quality import ColumnQuality, QualityReport
from zhujian.adapters.registry import FormatSpec, format_names, get_format, register_format
from zhujian.adapters.tables import is_xlsx
from zhujian.domain.record import Record
from zhujian.domain.report import Problem
from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.evaluate import ItemEvaluation, evaluate_items

__all__ = [
    "ColumnQuality",
    "FormatSpec",
    "IngestError",
    "IngestResult",
    "IngestedRecord",
    "Profile",
    "QualityReport",
    "format_names",
    "get_format",
    "ingest_file",
    "load_profiles",
    "profile_names",
    "register_format",
]


@dataclass
class IngestedRecord:
    """One record with where it came from and every problem found in it (the reader's and the engine's)."""

    record: Record
    first_row: int
    row_count: int
    problems: list[Problem] = field(default_factory=list)
    evaluation: ItemEvaluation | None = None  # the engine's reading of `record.items`, in the same order


class IngestResult:
    """The records of one file, read lazily, and the quality report that fills as they are read.

    Iterate once (over `Record`s, or over `entries()` for the problems too); `report` is complete
    (`report.complete`) after the iteration ends.
    """

    def __init__(self, entries: Iterator[IngestedRecord], report: QualityReport) -> None:
        self._entries = entries
        self.report = report

    def __iter__(self) -> Iterator[Record]:
        for entry in self._entries:
            yield entry.record

    def entries(self) -> Iterator[IngestedRecord]:
        return self._entries

    def consume(self) -> QualityReport:
        """Read the whole file without keeping the records; returns the finished report."""
        for _ in self._entries:
            pass
        return self.report


def ingest_file(
    path: Path | str,
    fmt: str = "wide-csv",
    *,
    kb: KnowledgeBase,
    encoding: str | None = None,
    delimiter: str | None = None,
    profile: str | None = None,
) -> IngestResult:
    """Read `path` in format `fmt` (see `format_names()`); `.xlsx` files are read as workbooks whatever `fmt`.

    `profile` names a source profile (`profile_names()`), "none" for none, or None to detect it from the header.
    Raises IngestError at once for an unknown format or profile and, when the records are first read, for a file
    that cannot be read at all; problems inside a readable file never raise.
    """
    source = Path(path)
    spec = get_format(fmt)
    if profile is not None and profile != "none" and profile not in load_profiles():
        raise IngestError(f"unknown profile {profile!r}; known profiles: {', '.join(profile_names())}, none")
    shown_format = "xlsx" if is_xlsx(source) and fmt == "wide-csv" else fmt
    if not source.exists():
        raise IngestError(f"cannot read {source}: no such file")
    info = SourceInfo(file=source.name, format=shown_format)
    request = ReadRequest(
        path=source, format=shown_format, kb=kb, info=info, encoding=encoding, delimiter=delimiter, profile=profile
    )
    report = QualityReport(file=source.name, format=shown_format)
    return IngestResult(_run(spec, request, report), report)


def _run(spec: FormatSpec, request: ReadRequest, report: QualityReport) -> Iterator[IngestedRecord]:
    started = False
    for read in spec.reader(request):
        if not started:
            report.start(request.info)
            started = True
        usable = read.record is not None and read.rejection is None
        evaluation = evaluate_items(request.kb, read.record) if read.record is not None and usable else None
        problems = report.add(read, evaluation)
        if read.record is not None and usable:
            yield IngestedRecord(read.record, read.first_row, read.row_count, problems, evaluation)
    if not started:
        report.start(request.info)
    report.complete = True
