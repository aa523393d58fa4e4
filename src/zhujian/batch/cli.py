"""`zhujian batch`: report a JSON-lines file of records on the local cores. Thin: it calls `run_batch`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from zhujian.input_files import InputFileError, Kind, check_json_lines

EXIT_UNUSABLE_ARGUMENTS = 2
EXIT_INTERRUPTED = 130


def batch_command(
    input_path: Annotated[
        Path, typer.Argument(help="canonical records, one JSON object per line (see `zhujian schema`)")
    ],
    out: Annotated[Path, typer.Option("--out", help="reports, one JSON line per record (each carries visit_id)")],
    workers: Annotated[
        int | None, typer.Option("--workers", help="worker processes (default: all local cores)")
    ] = None,
    rejects: Annotated[
        Path | None,
        typer.Option("--rejects", help="lines that produced no report, with the reason (default: <out>.rejects.jsonl)"),
    ] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume/--no-resume",
            help="skip the records already in the output and rejects (after a crash or kill); --no-resume empties them",
        ),
    ] = True,
    chunk_size: Annotated[
        int | None,
        typer.Option(
            "--chunk-size", help="records sent to a worker at a time (default 200); output is fsync'ed per chunk"
        ),
    ] = None,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="progress bar with rate and ETA (default: when on a terminal)"),
    ] = None,
    narrator: Annotated[
        str | None,
        typer.Option(
            "--narrator",
            help="template | llm: add the `narrative` object to every report; llm asks the model configured by "
            "ZHUJIAN_LLM_* with ZHUJIAN_LLM_CONCURRENCY requests in flight, falling back to the template",
        ),
    ] = None,
    narration_cache: Annotated[
        Path | None,
        typer.Option(
            "--narration-cache",
            help="model results by digest hash, reused by re-runs (default: <out>.narration-cache.jsonl)",
        ),
    ] = None,
    kb: Annotated[Path | None, typer.Option("--kb", help="knowledge-base folder (default: the bundled KB)")] = None,
    center: Annotated[
        Path | None, typer.Option("--center", help="center configuration YAML (critical-value overrides, switches)")
    ] = None,
    engine: Annotated[
        str, typer.Option("--engine", help="local (process pool) or dask (LocalCluster, or --scheduler)")
    ] = "local",
    scheduler: Annotated[
        str | None, typer.Option("--scheduler", help="Dask scheduler address, tcp://HOST:PORT (with --engine dask)")
    ] = None,
    partition_bytes: Annotated[
        int, typer.Option("--partition-bytes", min=1, help="bytes of input per Dask task (with --engine dask)")
    ] = 8 * 1024 * 1024,
) -> None:
    """Report every record of a JSON-lines file; bad records go to the rejects file and the batch goes on.

    Killed or interrupted? Run the same command again: it resumes where it stopped.
    Every record ends up reported or rejected exactly once, keyed by visit_id.
    An --out ending in .parquet writes Parquet (one row per report, conclusions nested, the full report JSON kept).
    Exit code 0 when the batch completed (even with rejects), 2 for unusable arguments.
    """
    # The runner (pydantic, the engine) is imported here, not at the top: `zhujian --help` must start quickly.
    from zhujian.batch.runner import DEFAULT_CHUNK_SIZE, BatchError, default_rejects_path, run_batch
    from zhujian.kb.loader import KBError

    try:
        # A report, a FHIR bundle or one indented record would make every line a reject: refuse the file instead.
        check_json_lines(input_path, Kind.RECORD, "batch")
    except InputFileError as exc:
        typer.echo(f"batch: {exc}", err=True)
        raise typer.Exit(EXIT_UNUSABLE_ARGUMENTS) from exc
    show_progress = sys.stderr.isatty() if progress is None else progress
    if engine not in ("local", "dask"):
        typer.echo(f"batch: --engine must be local or dask, not {engine!r}", err=True)
        raise typer.Exit(EXIT_UNUSABLE_ARGUMENTS)
    if narrator is not None and engine == "dask":
        typer.echo("batch: --narrator runs with the local engine; narrate the Dask output in a second pass", err=True)
        raise typer.Exit(EXIT_UNUSABLE_ARGUMENTS)
    if scheduler is not None and engine != "dask":
        typer.echo("batch: --scheduler needs --engine dask", err=True)
        raise typer.Exit(EXIT_UNUSABLE_ARGUMENTS)
    parquet = out.suffix.lower() == ".parquet"
    # Parquet is written from the completed JSON-lines journal, which keeps resume and exactly-once as they are.
    target = out.with_name(out.name + ".jsonl") if parquet else out
    if parquet and rejects is None:
        rejects = default_rejects_path(out)
    try:
        if engine == "dask":
            from zhujian.batch.distributed import run_batch_dask

            summary = run_batch_dask(
                input_path,
                target,
                scheduler=scheduler,
                workers=workers,
                rejects_path=rejects,
                kb_path=kb,
                center=center,
                resume=resume,
                progress=show_progress,
                partition_bytes=partition_bytes,
            )
        else:
            summary = run_batch(
                input_path,
                target,
                workers=workers,
                rejects_path=rejects,
                chunk_size=DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size,
                kb_path=kb,
                center=center,
                resume=resume,
                progress=show_progress,
                narrator=narrator,
                narration_cache=narration_cache,
            )
        if parquet:
            from zhujian.batch.parquet import write_reports_parquet

            rows = write_reports_parquet(target, out)
            target.unlink()
            typer.echo(f"parquet: {rows} reports → {out}")
    except (BatchError, KBError, ValueError) as exc:
        typer.echo(f"batch: {exc}", err=True)
        raise typer.Exit(EXIT_UNUSABLE_ARGUMENTS) from exc
    except KeyboardInterrupt:
        typer.echo("batch: interrupted; run the same command again to resume where it stopped", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except OSError as exc:
        typer.echo(f"batch: {exc}; run the same command again to resume once this is fixed", err=True)
        raise typer.Exit(1) from exc
    for line in summary.describe():
        typer.echo(line)


def main() -> None:  # pragma: no cover - `python -m zhujian.batch.cli`, until the main CLI registers the command
    typer.run(batch_command)


if __name__ == "__main__":  # pragma: no cover
    main()
