"""`zhujian pdf REPORT.json --out report.pdf`: the examinee's report from a report JSON. Thin: it reads the files
and calls `zhujian.render`, imported inside the command so that the CLI starts without Jinja2 or WeasyPrint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from zhujian.input_files import InputFileError, Kind, load_json_of_kind


def _read_json(path: str, needed: Kind) -> Any:
    """The report (or record) in `path`; anything else is refused in one line, exit code 2."""
    try:
        loaded = load_json_of_kind(path, needed, "pdf")
    except InputFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if loaded.note:
        typer.echo(f"{loaded.source}: {loaded.note}", err=True)
    return loaded.data


def pdf_command(
    report_json: Annotated[str, typer.Argument(help="report JSON written by `zhujian report`; - for stdin")],
    out: Annotated[Path, typer.Option("--out", help="PDF file to write; a name ending in .html writes the HTML")],
    record_json: Annotated[
        Path | None,
        typer.Option("--record", help="the record the report was built from: adds the original text results"),
    ] = None,
    center_name: Annotated[str | None, typer.Option("--center-name", help="name printed on the cover")] = None,
) -> None:
    """Write the examinee's report (A4, zh-CN): a one-page summary (urgent results, what to recheck and when, what
    is fine), then each conclusion explained with what to do, risk results in words, trend charts of results measured
    at earlier visits, result tables by section, and the imaging/ECG descriptions (with --record). Unsigned reports
    are marked as drafts."""
    from zhujian.render import (
        DEFAULT_CENTER_NAME,
        PdfUnavailableError,
        ReportFormatError,
        render_patient_report_html,
        render_patient_report_pdf,
    )

    report = _read_json(report_json, Kind.REPORT)
    record = _read_json(str(record_json), Kind.RECORD) if record_json is not None else None
    if record is not None and record.get("visit_id") != report.get("visit_id"):
        # Another visit's record would print another person's text results in this report.
        typer.echo(
            f"{record_json}: visit_id {record.get('visit_id')!r} is not the report's {report.get('visit_id')!r}",
            err=True,
        )
        raise typer.Exit(2)
    if record is None and report.get("findings"):
        # The report JSON keeps the findings read from the texts, not the texts: the record has the descriptions.
        typer.echo(
            "note: without --record the imaging/ECG section lists only the findings; "
            "pass --record RECORD.json to print the original descriptions",
            err=True,
        )
    center = center_name or DEFAULT_CENTER_NAME
    try:
        if out.suffix.lower() in (".html", ".htm"):
            data = render_patient_report_html(report, record, center_name=center).encode("utf-8")
        else:
            data = render_patient_report_pdf(report, record, center_name=center)
    except ReportFormatError as exc:
        typer.echo(f"{report_json}: {exc}", err=True)
        raise typer.Exit(2) from exc
    except PdfUnavailableError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    try:
        out.write_bytes(data)
    except OSError as exc:
        typer.echo(f"cannot write {out}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"wrote {out} ({len(data)} bytes)", err=True)
