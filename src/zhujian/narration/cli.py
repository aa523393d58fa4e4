"""`zhujian dataset sft` and `zhujian eval-narrator`. Thin: each calls the library; heavy imports stay inside."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

dataset_app = typer.Typer(help="Datasets for model development (fine-tuning pairs from signed reports).")


@dataset_app.command("sft")
def dataset_sft_command(
    out: Annotated[Path, typer.Option("--out", help="fine-tuning pairs, OpenAI chat format, one JSON line each")],
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="workbench database (default: ZHUJIAN_DATABASE_URL, else sqlite:///zhujian.db)"),
    ] = None,
) -> None:
    """Export signed reports as fine-tuning pairs: the narrator's de-identified digest as the user turn, the
    physician-signed narrative as the assistant turn; writes <out>.manifest.json beside it."""
    from pydantic import ValidationError

    from zhujian.narration.dataset import export_sft, signed_reports
    from zhujian.settings import load_settings

    try:
        settings = load_settings(database_url=database_url) if database_url else load_settings()
    except ValidationError as exc:
        typer.echo(f"settings are not valid: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from exc
    if not out.parent.is_dir():
        typer.echo(f"the folder of {out} does not exist", err=True)
        raise typer.Exit(2)
    manifest = export_sft(signed_reports(settings.database_url), out)
    skipped = ", ".join(f"{k} {v}" for k, v in manifest["skipped"].items()) or "none"
    typer.echo(f"examples: {manifest['output']['examples']} → {out}; skipped: {skipped}")
    typer.echo(f"manifest: {out.with_name(out.name + '.manifest.json')}")


def eval_narrator_command(
    records: Annotated[Path, typer.Argument(help="canonical records, one JSON object per line")],
    out: Annotated[
        Path | None, typer.Option("--out", help="one line per record: source, attempts, problems, latency")
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="only the first N records")] = None,
) -> None:
    """Run the configured model (ZHUJIAN_LLM_*) over records and print, as JSON: share passing verification first
    time and after the retry, fallbacks, problems by kind, conclusions covered, latency p50/p95, tokens per report."""
    from pydantic import ValidationError

    from zhujian.kb.loader import default_kb
    from zhujian.narration.evaluate import evaluate, outcome_line
    from zhujian.narration.llm import LLMConfigError, LLMNarrator

    if not records.is_file():
        typer.echo(f"{records}: no such file", err=True)
        raise typer.Exit(2)
    try:
        narrator = LLMNarrator()
    except (LLMConfigError, ValidationError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    lines: list[tuple[int, str]] = []
    with records.open(encoding="utf-8-sig") as source:
        for line_no, line in enumerate(source, start=1):
            if line.strip():
                lines.append((line_no, line))
            if limit is not None and len(lines) >= limit:
                break
    try:
        summary, outcomes = evaluate(narrator, default_kb(), lines)
    finally:
        narrator.close()
    if out is not None:
        out.write_text("".join(outcome_line(o) + "\n" for o in outcomes), encoding="utf-8")
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=2))
