"""FHIR commands: `zhujian export-fhir` (report JSON → FHIR R4 Bundle) and `zhujian import-fhir` (FHIR R4 Bundle →
canonical records). Thin: each calls `zhujian.adapters.fhir`, imported inside the command so that the CLI starts
without loading the FHIR models."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from zhujian.input_files import InputFileError, Kind, load_json_of_kind


def _read_json(path: str, needed: Kind, command: str) -> Any:
    """The JSON document in `path` if it is of the kind needed; anything else is refused in one line, exit code 2."""
    try:
        loaded = load_json_of_kind(path, needed, command)
    except InputFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if loaded.note:
        typer.echo(f"{loaded.source}: {loaded.note}", err=True)
    return loaded.data


def _write(text: str, out: Path | None) -> None:
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        typer.echo(f"cannot write {out}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc


def export_fhir_command(
    report_file: Annotated[str, typer.Argument(help="report JSON written by `zhujian report`; - for stdin")],
    out: Annotated[Path | None, typer.Option("--out", help="bundle JSON file (default: stdout)")] = None,
    record_file: Annotated[
        Path | None,
        typer.Option("--record", help="the record the report was built from: adds birth date and free-text results"),
    ] = None,
) -> None:
    """Write a report as a FHIR R4 collection Bundle: DiagnosticReport (preliminary), one Observation per item,
    one Condition (ICD-10, provisional) per conclusion, and a Provenance with the engine and KB versions."""
    from pydantic import ValidationError

    from zhujian.adapters.fhir import (
        FhirCodesError,
        ReportFormatError,
        report_from_dict,
        report_to_fhir_bundle,
        validate_fhir_bundle,
    )
    from zhujian.domain.record import Record
    from zhujian.kb.loader import KBError, default_kb

    try:
        report = report_from_dict(_read_json(report_file, Kind.REPORT, "export-fhir"))
    except ReportFormatError as exc:
        typer.echo(f"{report_file}: {exc}", err=True)
        raise typer.Exit(2) from exc
    record = None
    if record_file is not None:
        try:
            record = Record.model_validate(_read_json(str(record_file), Kind.RECORD, "export-fhir"))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            typer.echo(f"{record_file}: not a valid record: field {where}: {first['msg']}", err=True)
            raise typer.Exit(2) from exc
        if record.visit_id != report.visit_id:
            typer.echo(f"{record_file}: visit_id {record.visit_id!r} is not the report's {report.visit_id!r}", err=True)
            raise typer.Exit(2)
    try:
        kb = default_kb()
    except KBError:
        kb = None  # LOINC codes and categories come from the KB; the bundle is still complete without them
        typer.echo("knowledge base failed to load: observations carry no LOINC codes", err=True)
    try:
        bundle = report_to_fhir_bundle(report, record, kb=kb)
    except FhirCodesError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    problems = validate_fhir_bundle(bundle)
    if problems:  # a bug on our side: say so instead of writing an invalid file
        typer.echo("the bundle does not validate as FHIR R4B:\n  " + "\n  ".join(problems), err=True)
        raise typer.Exit(1)
    _write(json.dumps(bundle, ensure_ascii=False, indent=2) + "\n", out)


def import_fhir_command(
    bundle_file: Annotated[str, typer.Argument(help="FHIR R4 Bundle JSON; - for stdin")],
    out: Annotated[Path | None, typer.Option("--out", help="records as JSON lines (default: stdout)")] = None,
) -> None:
    """Read a FHIR R4 Bundle into canonical records (one JSON line per visit). Every resource that cannot be used is
    listed on stderr with its type, id and the reason."""
    from zhujian.adapters.fhir import FhirCodesError, FhirInputError, read_fhir_bundle
    from zhujian.kb.loader import KBError, default_kb

    data = _read_json(bundle_file, Kind.FHIR_BUNDLE, "import-fhir")
    try:
        result = read_fhir_bundle(data, default_kb(), source=Path(bundle_file).name if bundle_file != "-" else "stdin")
    except (FhirInputError, FhirCodesError, KBError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    lines = "".join(
        json.dumps(r.model_dump(mode="json", exclude_none=True), ensure_ascii=False) + "\n" for r in result.records
    )
    _write(lines, out)
    for problem in result.problems:
        typer.echo(f"problem: {problem}", err=True)
    typer.echo(f"{len(result.records)} record(s), {len(result.problems)} problem(s)", err=True)
