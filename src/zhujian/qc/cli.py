"""`zhujian qc`: QC of physicians' 主检 conclusions, one record or a batch.

    zhujian qc RECORD.json --conclusions FILE.txt                      → JSON list of issues on stdout
    zhujian qc RECORDS.jsonl --conclusions CONCLUSIONS.jsonl --out QC.jsonl
        conclusions lines: {"visit_id": str, "text": str}; output lines: {"visit_id": str, "issues": [...]}

Bad input stops with a message naming the file, line and field; nothing is skipped silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from zhujian.domain.record import Record
from zhujian.kb.loader import KBError, KnowledgeBase, load_center_config, load_kb
from zhujian.qc.engine import qc_text


class QcInputError(Exception):
    """Input that cannot be checked; the message names the file, line and field."""


def _load_kb(kb_path: Path | None, center: Path | None) -> KnowledgeBase:
    try:
        return load_kb(kb_path, load_center_config(center) if center else None)
    except KBError as exc:
        raise QcInputError(str(exc)) from exc


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise QcInputError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise QcInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def _record(data: Any, where: str) -> Record:
    try:
        return Record.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(record)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise QcInputError(f"{where}: field {field}: {err['msg']}{more}") from exc


def _json_lines(path: Path) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((number, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise QcInputError(f"{path}:{number}: not valid JSON ({exc.msg}, column {exc.colno})") from exc
    return out


def read_conclusion_lines(path: Path) -> dict[str, str]:
    """visit_id → conclusions text from a JSON-lines file of {"visit_id", "text"}."""
    texts: dict[str, str] = {}
    for number, obj in _json_lines(path):
        if not isinstance(obj, dict):
            raise QcInputError(f"{path}:{number}: expected an object with fields visit_id and text")
        visit_id, text = obj.get("visit_id"), obj.get("text")
        if not isinstance(visit_id, str) or not visit_id:
            raise QcInputError(f"{path}:{number}: field visit_id: expected a non-empty string, got {visit_id!r}")
        if not isinstance(text, str):
            raise QcInputError(f"{path}:{number}: field text: expected a string, got {type(text).__name__}")
        if visit_id in texts:
            raise QcInputError(f"{path}:{number}: field visit_id: {visit_id!r} appears twice")
        texts[visit_id] = text
    return texts


def read_single(record_path: Path, conclusions_path: Path) -> tuple[Record, str]:
    text = _read_text(record_path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise QcInputError(f"{record_path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    return _record(data, str(record_path)), _read_text(conclusions_path)


def read_batch(records_path: Path, conclusions_path: Path) -> list[tuple[Record, str]]:
    """Records paired with their conclusions, in the records' order. Records without conclusions and conclusions
    without a record are errors: QC never silently drops a report."""
    texts = read_conclusion_lines(conclusions_path)
    records: list[Record] = []
    seen: set[str] = set()
    for number, obj in _json_lines(records_path):
        record = _record(obj, f"{records_path}:{number}")
        if record.visit_id in seen:
            raise QcInputError(f"{records_path}:{number}: field visit_id: {record.visit_id!r} appears twice")
        if record.visit_id not in texts:
            raise QcInputError(
                f"{records_path}:{number}: field visit_id: no conclusions for {record.visit_id!r} in {conclusions_path}"
            )
        seen.add(record.visit_id)
        records.append(record)
    orphans = [v for v in texts if v not in seen]
    if orphans:
        raise QcInputError(f"{conclusions_path}: field visit_id: no record for {orphans[0]!r} in {records_path}")
    return [(record, texts[record.visit_id]) for record in records]


def run_batch(kb: KnowledgeBase, pairs: list[tuple[Record, str]], out_path: Path) -> tuple[int, int]:
    """Write one {visit_id, issues} line per record; returns (records checked, issues)."""
    total = 0
    with out_path.open("w", encoding="utf-8") as sink:
        for record, text in pairs:
            issues = [i.to_dict() for i in qc_text(kb, record, text)]
            total += len(issues)
            sink.write(json.dumps({"visit_id": record.visit_id, "issues": issues}, ensure_ascii=False) + "\n")
    return len(pairs), total


def qc_command(
    records: Annotated[Path, typer.Argument(help="one record (JSON) or records (JSON lines, with --out)")],
    conclusions: Annotated[
        Path, typer.Option("--conclusions", help="the physician's conclusions: text file, or JSON lines with --out")
    ],
    out: Annotated[Path | None, typer.Option("--out", help="batch mode: write {visit_id, issues} lines here")] = None,
    kb: Annotated[Path | None, typer.Option("--kb", help="knowledge-base folder (default: the bundled KB)")] = None,
    center: Annotated[
        Path | None, typer.Option("--center", help="center configuration YAML (its `qc:` section sets QC options)")
    ] = None,
) -> None:
    """Check a physician's 主检 conclusions against the record, with the engine's report as the reference.

    Issue kinds: missed, contradiction, value_mismatch, sex_mismatch, side_mismatch, unsupported, duplicate,
    missing_advice.
    """
    try:
        # The input is read and checked before the knowledge base loads: a bad file fails at once.
        if out is None:
            record, text = read_single(records, conclusions)
            issues_found = qc_text(_load_kb(kb, center), record, text)
            typer.echo(json.dumps([i.to_dict() for i in issues_found], ensure_ascii=False, indent=2))
            return
        pairs = read_batch(records, conclusions)
        checked, issues = run_batch(_load_kb(kb, center), pairs, out)
    except QcInputError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{checked} report(s) checked, {issues} issue(s) → {out}", err=True)
