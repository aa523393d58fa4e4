"""Ingest formats: name → reader. The built-in formats register through `register_format`, the same door a
plugin would use, so a new source format needs no change here."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from zhujian.adapters.base import IngestError, ReadRecord, ReadRequest

Reader = Callable[[ReadRequest], Iterator[ReadRecord]]


@dataclass(frozen=True)
class FormatSpec:
    name: str
    reader: Reader
    description: str


_FORMATS: dict[str, FormatSpec] = {}
_BUILTINS_LOADED = False


def register_format(name: str, reader: Reader, description: str, *, replace: bool = False) -> None:
    """Make `reader` available as `zhujian ingest --format NAME`. Raises ValueError on a duplicate name."""
    _load_builtins()
    if name in _FORMATS and not replace:
        raise ValueError(f"ingest format {name!r} is already registered")
    _FORMATS[name] = FormatSpec(name, reader, description)


def get_format(name: str) -> FormatSpec:
    _load_builtins()
    spec = _FORMATS.get(name)
    if spec is None:
        raise IngestError(f"unknown format {name!r}; known formats: {', '.join(format_names())}")
    return spec


def format_names() -> list[str]:
    _load_builtins()
    return sorted(_FORMATS)


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    # Imported here: the readers import the engine's evaluator and parsers, which a caller listing the formats
    # does not need until it reads a file.
    from zhujian.adapters.fhir import read_fhir_for_ingest
    from zhujian.adapters.long import read_long
    from zhujian.adapters.wide import read_wide

    register_format("wide-csv", read_wide, "one row per checkup, one column per item (CSV, TSV…, or .xlsx)")
    register_format("xlsx", read_wide, "the same wide layout in an .xlsx workbook (first sheet)")
    register_format(
        "long",
        read_long,
        "one row per result: visit id, item, value[, unit, range…]; also Meinian vid$table_id$field_results",
    )
    register_format("fhir", read_fhir_for_ingest, "a FHIR R4 Bundle (Patient, Observation, DiagnosticReport) as JSON")
