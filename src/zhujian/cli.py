"""Command line. Thin: every command calls a library function and prints its result."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from zhujian import __version__
from zhujian.domain.record import Record, record_json_schema
from zhujian.examples import example_names, load_example
from zhujian.kb.loader import KBError, KnowledgeBase, load_center_config, load_kb
from zhujian.narrate import get_narrator
from zhujian.pipeline.extract import extract_text
from zhujian.pipeline.run import build_report

app = typer.Typer(
    help="zhujian 主检：从一份体检记录生成主检报告草稿（结论、证据、建议、危急值），并提供知识库工具。",
    no_args_is_help=True,
    add_completion=False,
)
kb_app = typer.Typer(help="Knowledge-base tools: validate the YAML files, show counts.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")


def _mount_risk() -> None:
    try:
        from zhujian.risk.cli import risk_app
    except ImportError:  # pragma: no cover - the risk package ships with zhujian
        return
    app.add_typer(risk_app, name="risk", help="Risk models (China-PAR, PCE, eGFR, KDIGO, CDRS, classes).")


_mount_risk()


def _register_commands() -> None:
    """Commands implemented next to their library code (adapters, batch …), registered through one door."""
    from zhujian.adapters.cli import ingest_command
    from zhujian.batch.cli import batch_command
    from zhujian.deid_cli import deid_command
    from zhujian.fhir_cli import export_fhir_command, import_fhir_command
    from zhujian.render.cli import pdf_command
    from zhujian.web.cli import serve_command

    app.command("ingest", help="Read a checkup file (wide CSV/xlsx, long, Meinian) into canonical records.")(
        ingest_command
    )
    app.command("serve", help="Run the physician's workbench (web pages + JSON API); --demo loads example reports.")(
        serve_command
    )
    app.command("batch", help="Run the engine over canonical records (JSON lines) on all cores, with resume.")(
        batch_command
    )
    app.command("pdf", help="Render a report JSON as the examinee's PDF (or HTML preview).")(pdf_command)
    app.command(
        "export-fhir", help="Write a report JSON as a FHIR R4 Bundle (DiagnosticReport, Observations, Conditions)."
    )(export_fhir_command)
    app.command("import-fhir", help="Read a FHIR R4 Bundle into canonical records (JSON lines).")(import_fhir_command)
    app.command("deid", help="De-identify canonical records for dataset export (keyed pseudonyms, masked PII).")(
        deid_command
    )
    from zhujian.narration.cli import dataset_app, eval_narrator_command

    app.add_typer(dataset_app, name="dataset")
    app.command(
        "eval-narrator", help="Measure the configured LLM narrator on records: verification, coverage, latency, tokens."
    )(eval_narrator_command)
    from zhujian.storage.cli import audit_verify_command, db_upgrade_command

    audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)
    audit_app.command("verify")(audit_verify_command)
    db_app = typer.Typer(help="Database schema tools.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade_command)
    app.add_typer(audit_app, name="audit")
    app.add_typer(db_app, name="db")


KbPath = Annotated[Path | None, typer.Option("--kb", help="knowledge-base folder (default: the bundled KB)")]
CenterPath = Annotated[
    Path | None, typer.Option("--center", help="center configuration YAML (critical-value overrides, switches)")
]


def _load(kb_path: Path | None, center: Path | None) -> KnowledgeBase:
    try:
        center_config = load_center_config(center) if center else None
        return load_kb(kb_path, center_config)
    except KBError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


def _validation_message(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: the record is not valid ({exc.error_count()} problem(s)):"]
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = json.dumps(value, ensure_ascii=False)[:80] if not isinstance(value, dict) else "{…}"
        lines.append(f"  - field {path}: {err['msg']} (value: {shown})")
    return "\n".join(lines)


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        typer.echo(f"cannot read {path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        typer.echo(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})", err=True)
        raise typer.Exit(2) from exc


def _parse_record(data: Any, source: str) -> Record:
    try:
        return Record.model_validate(data)
    except ValidationError as exc:
        typer.echo(_validation_message(exc, source), err=True)
        raise typer.Exit(2) from exc


@app.command()
def report(
    file: Annotated[str, typer.Argument(help="one canonical record as JSON (see `zhujian schema`); - for stdin")],
    output_format: Annotated[str, typer.Option("--format", help="json | text")] = "json",
    narrator: Annotated[
        str | None,
        typer.Option(
            help="template | llm: with --format json adds the `narrative` object; with --format text prints that "
            "narrative (default for text: template). llm needs ZHUJIAN_LLM_BASE_URL and ZHUJIAN_LLM_MODEL"
        ),
    ] = None,
    kb: KbPath = None,
    center: CenterPath = None,
) -> None:
    """Build the 主检报告 of one record: JSON (fixed field names) or the Chinese text report."""
    if output_format not in ("json", "text"):
        typer.echo(f"--format must be json or text, not {output_format!r}", err=True)
        raise typer.Exit(2)
    chosen = None
    if narrator is not None:
        chosen = _narrator_or_exit(narrator)
    knowledge = _load(kb, center)
    record = _parse_record(_read_json(file), file)
    result = build_report(knowledge, record)
    if narrator is None:
        if output_format == "json":
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        else:
            typer.echo(get_narrator("template").narrate(result), nl=False)
        return
    from zhujian.narration import narrate_report

    narrative = narrate_report(result, chosen)
    if narrative.fallback_reason:
        typer.echo(f"narrator {narrator}: the template narrative is used: {narrative.fallback_reason}", err=True)
    if output_format == "json":
        out = result.to_dict()
        out["narrative"] = narrative.to_dict()
        typer.echo(json.dumps(out, ensure_ascii=False, indent=2))
    else:
        typer.echo(narrative.text, nl=False)


def _narrator_or_exit(name: str) -> Any:
    """The narrator for --narrator NAME, with its settings checked before any work; exit 2 naming the problem."""
    from zhujian.narration import narrator_for
    from zhujian.narration.llm import LLMConfigError

    try:
        return narrator_for(name)
    except ValidationError as exc:
        problems = "; ".join(f"ZHUJIAN_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        typer.echo(f"settings: {problems}", err=True)
        raise typer.Exit(2) from exc
    except (ValueError, LLMConfigError) as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc


@app.command()
def extract(
    input_path: Annotated[str, typer.Option("--in", help="JSON lines {id, item, text}; default stdin")] = "-",
    output_path: Annotated[str, typer.Option("--out", help="JSON lines out; default stdout")] = "-",
    kb: KbPath = None,
) -> None:
    """Text findings for each input line: {"id", "findings": [{"name", "icd10", "site", "attrs"}], "incomplete"}.

    One output line per input line, in the same order. A line that cannot be read gets an "error" field instead of
    stopping the run.
    """
    knowledge = _load(kb, None)
    source = sys.stdin if input_path == "-" else open(input_path, encoding="utf-8-sig")  # noqa: SIM115
    sink = sys.stdout if output_path == "-" else open(output_path, "w", encoding="utf-8")  # noqa: SIM115
    failures = 0
    try:
        for line_no, line in enumerate(source, start=1):
            if not line.strip():
                continue
            out: dict[str, Any]
            try:
                obj = json.loads(line)
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    raise ValueError("expected an object with a string field 'text'")
                result = extract_text(knowledge, str(obj.get("item") or ""), obj["text"])
                out = {
                    "id": obj.get("id"),
                    "findings": [
                        {"name": f.name, "icd10": f.icd10, "site": f.site, "attrs": f.attrs} for f in result.findings
                    ],
                    "incomplete": result.incomplete,
                }
            except (ValueError, json.JSONDecodeError) as exc:
                failures += 1
                out = {"id": None, "findings": [], "incomplete": True, "error": f"line {line_no}: {exc}"}
            sink.write(json.dumps(out, ensure_ascii=False) + "\n")
    finally:
        if source is not sys.stdin:
            source.close()
        if sink is not sys.stdout:
            sink.close()
    if failures:
        typer.echo(f"{failures} line(s) could not be read; see their 'error' fields", err=True)


@app.command()
def demo(
    name: Annotated[str | None, typer.Argument(help="example name; default: all examples")] = None,
    output_format: Annotated[str, typer.Option("--format", help="text | json")] = "text",
) -> None:
    """Run the engine on the bundled example records and print their reports."""
    knowledge = _load(None, None)
    names = [name] if name else example_names()
    for n in names:
        try:
            record = Record.model_validate(load_example(n))
        except FileNotFoundError:
            typer.echo(f"no example named {n!r}; examples: {', '.join(example_names())}", err=True)
            raise typer.Exit(2) from None
        result = build_report(knowledge, record)
        if output_format == "json":
            typer.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        else:
            typer.echo(f"==================== 示例：{n} ====================")
            typer.echo(get_narrator("template").narrate(result))


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", help="write to this file instead of stdout")] = None,
) -> None:
    """Print the JSON Schema of the canonical checkup record."""
    text = json.dumps(record_json_schema(), ensure_ascii=False, indent=2) + "\n"
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text, nl=False)


@app.command()
def version() -> None:
    """Print the engine and knowledge-base versions."""
    knowledge = _load(None, None)
    typer.echo(f"zhujian {__version__}; knowledge base {knowledge.version}")


@kb_app.command("validate")
def kb_validate(kb: KbPath = None, center: CenterPath = None) -> None:
    """Load every KB file, check every cross-reference, and list all problems at once (exit 1 if any)."""
    try:
        center_config = load_center_config(center) if center else None
        knowledge = load_kb(kb, center_config)
    except KBError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"knowledge base {knowledge.version}: OK ({len(knowledge.files)} files)")
    if kb is None or (kb / "prompts").is_dir():
        from zhujian.narration.knowledge import load_narration_knowledge

        try:
            narration = load_narration_knowledge(kb)
        except KBError as exc:
            typer.echo(str(exc), err=True)
            raise typer.Exit(1) from exc
        typer.echo(f"narration prompt {narration.prompt_version} and verifier word lists: OK")


@kb_app.command("stats")
def kb_stats(kb: KbPath = None) -> None:
    """Counts of items, findings, conclusions (by level and system), rules and critical values."""
    from zhujian.kb.stats import kb_statistics

    knowledge = _load(kb, None)
    typer.echo(json.dumps(kb_statistics(knowledge), ensure_ascii=False, indent=2))


_register_commands()


def main() -> None:  # pragma: no cover
    app()
