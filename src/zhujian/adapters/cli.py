"""`zhujian ingest`: a checkup export → canonical records (JSON lines) and a data-quality report."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from zhujian.input_files import (
    SNIFF_BYTES,
    WHOLE_DOCUMENT_BYTES,
    InputFileError,
    Kind,
    describe,
    kind_of,
    load_json_of_kind,
)

if TYPE_CHECKING:
    from zhujian.adapters import IngestedRecord


def ingest_command(
    file: Annotated[
        Path, typer.Argument(help="the export to read: CSV/TSV/…, .xlsx, or Meinian vid$table_id$field_results")
    ],
    format: Annotated[
        str, typer.Option("--format", help="wide-csv (one row per checkup) | long (one row per result) | xlsx")
    ] = "wide-csv",
    out: Annotated[str, typer.Option("--out", help="records as JSON lines; - for stdout")] = "records.jsonl",
    encoding: Annotated[
        str | None, typer.Option("--encoding", help="e.g. utf-8, gb18030, cp949 (default: detected)")
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            help="source profile: korea-nhis, korea-nhis-labels, tianchi, meinian, none (default: detected)",
        ),
    ] = None,
    report_json: Annotated[Path | None, typer.Option("--report-json", help="write the quality report as JSON")] = None,
    problems: Annotated[
        Path | None, typer.Option("--problems", help="write every problem as JSON lines (with visit id and row)")
    ] = None,
    delimiter: Annotated[str | None, typer.Option("--delimiter", help="field delimiter (default: detected)")] = None,
    kb: Annotated[Path | None, typer.Option("--kb", help="knowledge-base folder (default: the bundled KB)")] = None,
) -> None:
    """Read a checkup export into canonical records and report every value that could not be used.

    Exit code 0 even when values have problems (they are in the report); 2 when the input cannot be read.
    """
    # Imported here, not at the top: the readers bring the engine, and `zhujian --help` must start quickly.
    from rich.console import Console

    from zhujian.adapters import IngestError, get_format, ingest_file
    from zhujian.kb.loader import KBError, default_kb, load_kb

    console = Console(stderr=True)
    try:
        # Cheap checks first: loading the knowledge base takes a few seconds.
        get_format(format)
        if not file.is_file():
            raise IngestError(f"cannot read {file}: no such file")
        _check_not_json(file, format)
    except (IngestError, InputFileError) as exc:
        typer.echo(f"zhujian ingest: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        knowledge = load_kb(kb) if kb is not None else default_kb()
    except KBError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    try:
        result = ingest_file(file, format, kb=knowledge, encoding=encoding, delimiter=delimiter, profile=profile)
        entries = result.entries()
        # The file is opened and checked when the first record is read: peek before creating any output, so that
        # an unreadable input leaves no empty records file behind.
        first = next(entries, None)
        _write_records(itertools.chain([first] if first is not None else [], entries), out, problems)
    except IngestError as exc:
        typer.echo(f"zhujian ingest: {exc}", err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"zhujian ingest: {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    report = result.report
    report.render(console)
    # Rejected rows are in the report's counts; name them too, so that a row lost to a broken quote or an
    # over-long line is seen without opening the JSON report.
    for example in report.rejected_examples:
        typer.echo(f"rejected row {example['row']}: {example['message']}", err=True)
    if report.rows_rejected > len(report.rejected_examples):
        more = report.rows_rejected - len(report.rejected_examples)
        typer.echo(f"… and {more} more rejected row(s); see the rejection counts above", err=True)
    if report_json is not None:
        try:
            report_json.write_text(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            typer.echo(f"zhujian ingest: cannot write {report_json}: {exc.strerror}", err=True)
            raise typer.Exit(2) from exc


def _check_not_json(file: Path, format: str) -> None:
    """Refuse a JSON file given as a table (it would become one garbage column), and a table or another JSON given
    as a FHIR bundle. Raises InputFileError naming what the file is."""
    if format == "fhir":
        loaded = load_json_of_kind(str(file), Kind.FHIR_BUNDLE, "ingest --format fhir")
        if loaded.note:
            raise InputFileError(
                f"{file}: {loaded.encoding.upper()} text, not UTF-8; `zhujian ingest --format fhir` reads UTF-8 "
                "(convert it, or use `zhujian import-fhir`, which reads it)"
            )
        return
    if file.suffix.lower() in (".xlsx", ".xlsm"):
        return
    with file.open("rb") as handle:
        magic = handle.read(8)
    for signature, what in _BINARY_SIGNATURES:
        if magic.startswith(signature):
            raise InputFileError(f"{file}: this is {what}, not a CSV or TSV text file")
    data = _json_content(file)
    if data is None:
        return
    hints = {
        Kind.FHIR_BUNDLE: "use `zhujian ingest --format fhir`",
        Kind.RECORD: "it is already a record: `zhujian report` (or `zhujian batch` for JSON lines)",
        Kind.REPORT: "render a report with `zhujian pdf`",
    }
    hint = hints.get(kind_of(data), "it is JSON, not a table")
    raise InputFileError(
        f"{file}: this is {describe(data)}; `zhujian ingest --format {format}` reads CSV, TSV and .xlsx exports; {hint}"
    )


# Files that old systems export under a .csv or .txt name; read as text they would fail on the encoding.
_BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook under another name? rename it to .xlsx)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old binary Excel (.xls) file: save it as .xlsx or CSV"),
    (b"%PDF-", "a PDF document"),
)


def _json_content(file: Path) -> Any:
    """The first JSON value of a file that is JSON or JSON lines, or None for anything else (a CSV header may begin
    with "[" or "{" too, e.g. `[体检号],[姓名]`: only text that parses as JSON counts)."""
    with file.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff \t\r\n")
    if not text.startswith(("{", "[")):
        return None
    first_line = text.split("\n", 1)[0]
    for candidate in (first_line, text):
        try:
            return json.loads(candidate)
        except (json.JSONDecodeError, RecursionError):
            continue
    try:
        if file.stat().st_size > WHOLE_DOCUMENT_BYTES:
            return None
        return json.loads(file.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None


def _write_records(entries: Iterable[IngestedRecord], out: str, problems: Path | None) -> None:
    sink: TextIO = sys.stdout if out == "-" else open(out, "w", encoding="utf-8")  # noqa: SIM115
    problem_sink: TextIO | None = open(problems, "w", encoding="utf-8") if problems else None  # noqa: SIM115
    try:
        for entry in entries:
            sink.write(entry.record.model_dump_json(exclude_none=True) + "\n")
            if problem_sink is not None:
                for problem in entry.problems:
                    line = {"visit_id": entry.record.visit_id, "row": entry.first_row, **problem.to_dict()}
                    problem_sink.write(json.dumps(line, ensure_ascii=False) + "\n")
    finally:
        if sink is not sys.stdout:
            sink.close()
        if problem_sink is not None:
            problem_sink.close()
