"""`zhujian deid`: de-identify canonical records for dataset export. Thin: calls `zhujian.deid.deidentify_file`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from zhujian.deid import DEFAULT_MAX_SHIFT_DAYS, DeidError, DeidOptions, deidentify_file
from zhujian.input_files import InputFileError, Kind, check_json_lines


def deid_command(
    input_path: Annotated[Path, typer.Argument(help="canonical records as JSON lines (what `zhujian ingest` writes)")],
    out: Annotated[Path, typer.Option("--out", help="de-identified records; the manifest goes to OUT.manifest.json")],
    key_file: Annotated[
        Path,
        typer.Option("--key-file", help="secret key (hex); created with a random key and mode 0600 if missing"),
    ],
    shift_dates: Annotated[
        bool, typer.Option("--shift-dates", help="move every date of a person by the same keyed number of days")
    ] = False,
    max_shift_days: Annotated[
        int, typer.Option("--max-shift-days", min=1, help="largest date shift in days, either way")
    ] = DEFAULT_MAX_SHIFT_DAYS,
    output_format: Annotated[str, typer.Option("--format", help="jsonl | json")] = "jsonl",
) -> None:
    """Pseudonymize ids (keyed HMAC-SHA256), mask names, ID and phone numbers, e-mails and addresses in every text,
    turn birth dates into ages, optionally shift dates; write a manifest (source hash, counts, key id, row map)."""
    try:
        # The de-identifier knows the fields of a record; a report or a FHIR bundle keeps names, ids and texts in
        # other fields. Refuse it rather than write a file that only looks de-identified.
        check_json_lines(input_path, Kind.RECORD, "deid")
    except InputFileError as exc:
        typer.echo(f"deid: {exc}", err=True)
        raise typer.Exit(2) from exc
    try:
        run = deidentify_file(
            input_path,
            out,
            key_file,
            DeidOptions(shift_dates=shift_dates, max_shift_days=max_shift_days),
            output_format,
        )
    except (DeidError, OSError) as exc:
        typer.echo(f"deid: {exc}", err=True)
        raise typer.Exit(2) from exc
    for warning in run.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if run.key_created:
        typer.echo(f"created a new key in {key_file} (mode 0600); keep it secret and keep it to re-run", err=True)
    manifest = run.manifest
    for error in manifest["errors"]:
        typer.echo(f"line {error['source_row']} left out: {error['reason']}", err=True)
    counts = ", ".join(f"{kind} {n}" for kind, n in manifest["transformations"].items()) or "none"
    typer.echo(
        f"{manifest['source']['rows']} row(s) in, {manifest['output']['rows']} out; key id {manifest['key_id']}; "
        f"changes: {counts}; manifest {run.manifest_path}"
    )
