"""Reports as Parquet: one row per report with the scalar fields, the conclusions as a nested list, and the full
report JSON (zstd-compressed like every column), so nothing of the JSON-lines output is lost and group reports and
QC read the columns they need without parsing every report."""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROW_GROUP = 10_000


def _arrow() -> tuple[Any, Any]:
    # Imported by name: pyarrow has no type information, and only Parquet output needs it.
    return importlib.import_module("pyarrow"), importlib.import_module("pyarrow.parquet")


def report_schema() -> Any:
    pa, _ = _arrow()
    conclusion = pa.struct(
        [
            ("name", pa.string()),
            ("icd10", pa.string()),
            ("level", pa.string()),
            ("category", pa.string()),
            ("critical", pa.bool_()),
        ]
    )
    return pa.schema(
        [
            ("visit_id", pa.string()),
            ("person_id", pa.string()),
            ("sex", pa.string()),
            ("age", pa.float64()),
            ("exam_date", pa.string()),
            ("employer", pa.string()),
            ("kb_version", pa.string()),
            ("engine_version", pa.string()),
            ("highest_level", pa.string()),
            ("critical_count", pa.int32()),
            ("conclusion_count", pa.int32()),
            ("conclusions", pa.list_(conclusion)),
            ("report_json", pa.string()),
        ]
    )


def _row(line: str) -> dict[str, Any]:
    report = json.loads(line)
    conclusions = report.get("conclusions") or []
    levels = {c.get("level") for c in conclusions}
    age = report.get("age")
    return {
        "visit_id": report.get("visit_id"),
        "person_id": report.get("person_id"),
        "sex": report.get("sex"),
        "age": float(age) if isinstance(age, int | float) and not isinstance(age, bool) else None,
        "exam_date": report.get("exam_date"),
        "employer": report.get("employer"),
        "kb_version": report.get("kb_version"),
        "engine_version": report.get("engine_version"),
        "highest_level": "A" if "A" in levels else ("B" if "B" in levels else None),
        "critical_count": len(report.get("critical") or []),
        "conclusion_count": len(conclusions),
        "conclusions": [
            {
                "name": c.get("name"),
                "icd10": c.get("icd10"),
                "level": c.get("level"),
                "category": c.get("category"),
                "critical": bool(c.get("critical")),
            }
            for c in conclusions
        ],
        "report_json": line,
    }


def _batches(jsonl: Path) -> Iterator[list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    with jsonl.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                rows.append(_row(line.rstrip("\n")))
                if len(rows) >= ROW_GROUP:
                    yield rows
                    rows = []
    if rows:
        yield rows


def write_reports_parquet(jsonl: Path, parquet: Path) -> int:
    """Convert a JSON-lines report file to Parquet (written beside, then renamed into place). Returns the rows."""
    pa, pq = _arrow()
    schema = report_schema()
    temporary = parquet.with_name(f".{parquet.name}.tmp")
    count = 0
    with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
        for rows in _batches(jsonl):
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            count += len(rows)
        if count == 0:
            writer.write_table(pa.Table.from_pylist([], schema=schema))
    temporary.replace(parquet)
    return count
