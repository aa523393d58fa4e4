"""`zhujian batch`: report a JSON-lines file of records on the local cores. Thin: it calls `run_batch`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from zhujian.batch.runner import DEFAULT_CHUNK_SIZE, BatchError, run_batch
from zhujian.kb.loader import KBError

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
        int, typer.Option("--chunk-size", help="records sent to a worker at a time; output is fsync'ed per chunk")
    ] = DEFAULT_CHUNK_SIZE,
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
) -> None:
    """Report every record of a JSON-lines file; bad records go to the rejects file and the batch goes on.

    Killed or interrupted? Run the same command again: it resumes where it stopped.
    Every record ends up reported or rejected exactly once, keyed by visit_id.
    Exit code 0 when the batch completed (even with rejects), 2 for unusable arguments.
    """
    show_progress = sys.stderr.isatty() if progress is None else progress
    try:
        summary = run_batch(
            input_path,
            out,
            workers=workers,
            rejects_path=rejects,
            chunk_size=chunk_size,
            kb_path=kb,
            center=center,
            resume=resume,
            progress=show_progress,
            narrator=narrator,
            narration_cache=narration_cache,
        )
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
