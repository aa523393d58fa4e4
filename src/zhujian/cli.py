"""Command line. Thin: every command calls a library function and prints its result."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer
import typer.main
from typer import _click as click
from typer.core import TyperGroup

from zhujian import __version__
from zhujian.input_files import InputFileError, Kind, check_json_lines, load_json_of_kind

# Everything heavier than typer is imported inside the command that needs it: `zhujian --help` and `zhujian version`
# must not pay for pydantic models, the engine or the knowledge base (docs/measurements.md, "CLI start-up").
if TYPE_CHECKING:
    from pydantic import ValidationError

    from zhujian.domain.record import Record
    from zhujian.kb.loader import KnowledgeBase


class _LazyGroup(TyperGroup):
    """A command group whose commands implemented in other packages are imported only when they run.

    Each such command is registered with its help text and a stand-in (so `zhujian --help` lists it and the README
    check sees it); the real command replaces the stand-in when the command line names it. Importing them all at
    start-up (the engine, pydantic models, Jinja2, SQLAlchemy settings) made `zhujian version` take seconds.
    """

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        if args and args[0] in _LAZY_LOADERS:
            self.commands[args[0]] = _LAZY_LOADERS[args[0]]()
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_LazyGroup,
    help="zhujian 主检：从一份体检记录生成主检报告草稿（结论、证据、建议、危急值），并提供知识库工具。",
    no_args_is_help=True,
    add_completion=False,
)
kb_app = typer.Typer(help="Knowledge-base tools: validate the YAML files, show counts.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

_LAZY_LOADERS: dict[str, Callable[[], click.Command]] = {}


def _lazy_command(name: str, module: str, function: str, help_text: str) -> None:
    """Register `module.function` as command `name`, imported when it runs."""

    def load() -> click.Command:
        single = typer.Typer(add_completion=False)
        single.command(name, help=help_text)(getattr(importlib.import_module(module), function))
        return typer.main.get_command(single)

    def stand_in() -> None:  # pragma: no cover - replaced by the real command before it could run
        raise RuntimeError(f"command {name} was not loaded")

    _LAZY_LOADERS[name] = load
    app.command(name, help=help_text)(stand_in)


def _lazy_group(name: str, build: Callable[[], typer.Typer], help_text: str) -> None:
    """Register the sub-application `build()` returns as command group `name`, built when it runs."""

    def load() -> click.Command:
        group = typer.main.get_group(build())
        group.name, group.help = name, help_text
        return group

    _LAZY_LOADERS[name] = load
    app.add_typer(typer.Typer(), name=name, help=help_text)


def _risk_app() -> typer.Typer:
    from zhujian.risk.cli import risk_app

    return risk_app


def _dataset_app() -> typer.Typer:
    from zhujian.narration.cli import dataset_app

    return dataset_app


def _audit_app() -> typer.Typer:
    from zhujian.storage.cli import audit_anchor_command, audit_verify_command

    audit_app = typer.Typer(help="Audit log tools.", no_args_is_help=True)
    audit_app.command("verify")(audit_verify_command)
    audit_app.command("anchor")(audit_anchor_command)
    return audit_app


def _db_app() -> typer.Typer:
    from zhujian.storage.cli import db_upgrade_command

    db_app = typer.Typer(help="Database schema tools.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade_command)
    return db_app


def _register_commands() -> None:
    """Commands implemented next to their library code (adapters, batch …), registered through one door."""
    _lazy_group("risk", _risk_app, "Risk models (China-PAR, PCE, eGFR, KDIGO, CDRS, classes).")
    _lazy_command(
        "ingest",
        "zhujian.adapters.cli",
        "ingest_command",
        "Read a checkup file (wide CSV/xlsx, long, Meinian) into canonical records.",
    )
    _lazy_command(
        "serve",
        "zhujian.web.cli",
        "serve_command",
        "Run the physician's workbench (web pages + JSON API); --demo loads example reports.",
    )
    _lazy_command(
        "batch",
        "zhujian.batch.cli",
        "batch_command",
        "Run the engine over canonical records (JSON lines) on all cores, with resume.",
    )
    _lazy_command(
        "pdf", "zhujian.render.cli", "pdf_command", "Render a report JSON as the examinee's PDF (or HTML preview)."
    )
    _lazy_command(
        "export-fhir",
        "zhujian.fhir_cli",
        "export_fhir_command",
        "Write a report JSON as a FHIR R4 Bundle (DiagnosticReport, Observations, Conditions).",
    )
    _lazy_command(
        "import-fhir",
        "zhujian.fhir_cli",
        "import_fhir_command",
        "Read a FHIR R4 Bundle into canonical records (JSON lines).",
    )
    _lazy_command(
        "deid",
        "zhujian.deid_cli",
        "deid_command",
        "De-identify canonical records for dataset export (keyed pseudonyms, masked PII).",
    )
    _lazy_command(
        "group",
        "zhujian.group.cli",
        "group_command",
        "The employer's group report (团检报告) of a cohort: HTML, PDF, JSON, CSV, xlsx.",
    )
    _lazy_command(
        "qc",
        "zhujian.qc.cli",
        "qc_command",
        "Check a physician's 主检 conclusions against the record (engine as reference).",
    )
    _lazy_command(
        "eval-narrator",
        "zhujian.narration.cli",
        "eval_narrator_command",
        "Measure the configured LLM narrator on records: verification, coverage, latency, tokens.",
    )
    _lazy_group("dataset", _dataset_app, "Datasets from the workbench (fine-tuning pairs).")
    _lazy_group("audit", _audit_app, "Audit log tools.")
    _lazy_group("db", _db_app, "Database schema tools.")


KbPath = Annotated[Path | None, typer.Option("--kb", help="knowledge-base folder (default: the bundled KB)")]
CenterPath = Annotated[
    Path | None, typer.Option("--center", help="center configuration YAML (critical-value overrides, switches)")
]


def _load(kb_path: Path | None, center: Path | None) -> KnowledgeBase:
    from zhujian.kb.loader import KBError, load_center_config, load_kb

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


def _read_json(path: str, needed: Kind, command: str) -> Any:
    """The JSON document in `path`, refused in one line (exit 2) unless it is of the kind the command needs."""
    try:
        loaded = load_json_of_kind(path, needed, command)
    except InputFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if loaded.note:
        typer.echo(f"{loaded.source}: {loaded.note}", err=True)
    return loaded.data


def _parse_record(data: Any, source: str) -> Record:
    from pydantic import ValidationError

    from zhujian.domain.record import Record

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
    from zhujian.narrate import get_narrator
    from zhujian.pipeline.run import build_report

    if output_format not in ("json", "text"):
        typer.echo(f"--format must be json or text, not {output_format!r}", err=True)
        raise typer.Exit(2)
    chosen = _narrator_or_exit(narrator) if narrator is not None else None
    # The input is read and checked before the knowledge base is loaded: a wrong file is refused at once.
    data = _read_json(file, Kind.RECORD, "report")
    knowledge = _load(kb, center)
    record = _parse_record(data, file)
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
    from pydantic import ValidationError

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
    from zhujian.pipeline.extract import extract_text

    source: BinaryIO
    try:
        if input_path != "-":
            check_json_lines(Path(input_path), Kind.TEXT_LINE, "extract")
        source = sys.stdin.buffer if input_path == "-" else open(input_path, "rb")  # noqa: SIM115
    except InputFileError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    except OSError as exc:
        typer.echo(f"cannot read {input_path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    knowledge = _load(kb, None)
    try:
        sink = sys.stdout if output_path == "-" else open(output_path, "w", encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        if input_path != "-":
            source.close()
        typer.echo(f"cannot write {output_path}: {exc.strerror}", err=True)
        raise typer.Exit(2) from exc
    failures = 0
    try:
        for line_no, raw in enumerate(source, start=1):
            if not raw.strip():
                continue
            out: dict[str, Any]
            try:
                # Decoded line by line: one undecodable line is that line's error, not the end of the run.
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
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
            except UnicodeDecodeError as exc:
                failures += 1
                out = {"id": None, "findings": [], "incomplete": True, "error": f"line {line_no}: not UTF-8 ({exc})"}
            except (ValueError, json.JSONDecodeError) as exc:
                failures += 1
                out = {"id": None, "findings": [], "incomplete": True, "error": f"line {line_no}: {exc}"}
            sink.write(json.dumps(out, ensure_ascii=False) + "\n")
    finally:
        if input_path != "-":
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
    from zhujian.domain.record import Record
    from zhujian.examples import example_names, load_example
    from zhujian.narrate import get_narrator
    from zhujian.pipeline.run import build_report

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
    from zhujian.domain.record import record_json_schema

    text = json.dumps(record_json_schema(), ensure_ascii=False, indent=2) + "\n"
    if out:
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            typer.echo(f"cannot write {out}: {exc.strerror}", err=True)
            raise typer.Exit(2) from exc
    else:
        typer.echo(text, nl=False)


@app.command()
def version() -> None:
    """Print the engine and knowledge-base versions."""
    from zhujian.kb.loader import KBError, kb_version

    try:
        version_of_kb = kb_version()
    except KBError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"zhujian {__version__}; knowledge base {version_of_kb}")


@kb_app.command("validate")
def kb_validate(kb: KbPath = None, center: CenterPath = None) -> None:
    """Load every KB file, check every cross-reference, and list all problems at once (exit 1 if any)."""
    from zhujian.kb.loader import KBError, load_center_config, load_kb

    try:
        center_config = load_center_config(center) if center else None
        knowledge = load_kb(kb, center_config)
        from zhujian.qc.vocabulary import load_qc_vocabulary

        # The QC wording files (kb/data/qc, or the given folder's qc/), checked against this KB.
        if kb is None or (kb / "qc").is_dir():
            load_qc_vocabulary(knowledge, kb / "qc" if kb is not None else None)
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
