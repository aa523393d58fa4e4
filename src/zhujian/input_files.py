"""Read the JSON files the commands are given, and recognise what each one is.

A command given the wrong kind of file must not produce confident output: a record rendered as if it were a report
prints "0 conclusions, no critical values" for a patient with a critical potassium. Every command says which kind
it needs (`Kind`); `require` refuses any other kind with one line naming what the file is and what is needed.

Files are decoded before parsing: byte-order marks (UTF-32 before UTF-16, whose mark begins the UTF-32 LE one), then
UTF-8, then GB18030 (what Chinese hospital systems write). A file that is none of these is named as binary or
undecodable in one line, never a traceback. JSON syntax errors carry line, column and a plain-language reason.

Only the standard library is imported here: commands call this before loading the knowledge base or pydantic.
"""

from __future__ import annotations

import codecs
import json
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any


class InputFileError(Exception):
    """The input cannot be used at all; the message is one line naming the file."""


class Kind(Enum):
    RECORD = "record"
    REPORT = "report"
    FHIR_BUNDLE = "fhir_bundle"
    FHIR_RESOURCE = "fhir_resource"
    TEXT_LINE = "text_line"
    ARRAY = "array"
    OBJECT = "object"
    SCALAR = "scalar"


# What a command needs, as said to its user.
NEEDS: dict[Kind, str] = {
    Kind.RECORD: "one checkup record as a JSON object (see `zhujian schema`)",
    Kind.REPORT: "a report JSON written by `zhujian report`",
    Kind.FHIR_BUNDLE: 'a FHIR R4 Bundle (a JSON object with "resourceType": "Bundle")',
    Kind.TEXT_LINE: 'a text line {"id", "item", "text"}',
    Kind.OBJECT: "a JSON object of the model's inputs (see its --help)",
}

# Keys only a checkup record has (age and sex are also risk-model inputs, so they do not mark a record).
_RECORD_MARKS = frozenset({"visit_id", "items", "texts", "questionnaire", "prior_visits"})

STDIN = "standard input"  # how "-" is named in messages

# A JSON-lines file is recognised from its first lines: how many non-blank lines and bytes are looked at.
SNIFF_LINES = 50
SNIFF_BYTES = 1 << 20
# A file that does not read as JSON lines is tried as one (indented) JSON document up to this size.
WHOLE_DOCUMENT_BYTES = 64 << 20


def kind_of(data: Any) -> Kind:
    """What a parsed JSON value is, from its shape alone."""
    if isinstance(data, list):
        return Kind.ARRAY
    if not isinstance(data, dict):
        return Kind.SCALAR
    keys = set(data)
    if "resourceType" in keys:
        return Kind.FHIR_BUNDLE if data.get("resourceType") == "Bundle" else Kind.FHIR_RESOURCE
    if "conclusions" in keys:  # a record never has it (unknown keys are errors there)
        return Kind.REPORT
    if keys & _RECORD_MARKS:
        return Kind.RECORD
    if isinstance(data.get("text"), str):
        return Kind.TEXT_LINE
    return Kind.OBJECT


def describe(data: Any) -> str:
    """A short phrase naming what a parsed JSON value is ("a checkup record (visit_id V1, 3 items)")."""
    kind = kind_of(data)
    if kind is Kind.RECORD:
        items = data.get("items")
        count = f", {len(items)} items" if isinstance(items, list) else ""
        return f"a checkup record (visit_id {data.get('visit_id')!r}{count})"
    if kind is Kind.REPORT:
        conclusions = data.get("conclusions")
        count = f", {len(conclusions)} conclusions" if isinstance(conclusions, list) else ""
        return f"a report (visit_id {data.get('visit_id')!r}{count})"
    if kind is Kind.FHIR_BUNDLE:
        return "a FHIR Bundle"
    if kind is Kind.FHIR_RESOURCE:
        return f"a FHIR {data.get('resourceType')!s} resource, not a Bundle"
    if kind is Kind.TEXT_LINE:
        return 'a text line {"id", "item", "text"}'
    if kind is Kind.ARRAY:
        first = f" (the first is {describe(data[0])})" if data else ""
        return f"a JSON array of {len(data)} value(s){first}"
    if kind is Kind.SCALAR:
        return f"a JSON {_json_type(data)}"
    keys = ", ".join(sorted(str(k) for k in data)[:6]) or "no keys"
    return f"a JSON object that is neither a record nor a report (keys: {keys})"


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "string" if isinstance(value, str) else type(value).__name__


_HINTS: dict[tuple[Kind, Kind], str] = {
    (Kind.REPORT, Kind.RECORD): "build the report first: zhujian report RECORD.json > REPORT.json",
    (Kind.RECORD, Kind.REPORT): "it is already a report: render it with `zhujian pdf` or `zhujian export-fhir`",
    (Kind.RECORD, Kind.FHIR_BUNDLE): "convert it first with `zhujian import-fhir`",
    (Kind.REPORT, Kind.FHIR_BUNDLE): "convert it with `zhujian import-fhir`, then run `zhujian report`",
    (Kind.FHIR_BUNDLE, Kind.REPORT): "to write a report as FHIR use `zhujian export-fhir`",
    (Kind.RECORD, Kind.TEXT_LINE): "texts go to `zhujian extract`",
    (Kind.TEXT_LINE, Kind.RECORD): "a whole record goes to `zhujian report` (or `zhujian batch` for JSON lines)",
}


def mismatch(source: str, data: Any, needed: Kind, command: str, needs: str | None = None) -> str:
    """The one line refusing `data` (read from `source`) for a command that needs `needed` (said as `needs`)."""
    got = kind_of(data)
    needs = needs or NEEDS[needed]
    message = f"{source}: this is {describe(data)}; `zhujian {command}` needs {needs}"
    if got in (Kind.ARRAY, Kind.SCALAR):
        message = f"{source}: the input must be a JSON object, not {describe(data)}; `zhujian {command}` needs {needs}"
    hint = _HINTS.get((needed, got))
    if got is Kind.ARRAY and data and kind_of(data[0]) is needed:
        hint = "write one object per line (JSON lines)" + (" and use `zhujian batch`" if command == "report" else "")
    return f"{message}; {hint}" if hint else message


def require(data: Any, needed: Kind, source: str, command: str) -> None:
    """Raise InputFileError unless `data` is of kind `needed`.

    A record that does not validate is still a record: its field errors are the record validator's to report.
    """
    if kind_of(data) is not needed:
        raise InputFileError(mismatch(source, data, needed, command))


# ---- decoding ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DecodedText:
    text: str
    encoding: str  # "utf-8", "gb18030", "utf-16", "utf-32"

    @property
    def note(self) -> str | None:
        """A line worth showing when the file was not UTF-8 (JSON files should be)."""
        if self.encoding in ("utf-8", "utf-8-sig"):
            return None
        return f"not UTF-8: read as {self.encoding.upper()}"


def _bom_encoding(data: bytes) -> str | None:
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _unmarked_wide_encoding(data: bytes) -> str | None:
    """UTF-16/32 without a mark, told by where the zero bytes of the first (ASCII) characters fall (RFC 4627 §3)."""
    head = data[:4]
    if len(head) < 4:
        return None
    pattern = (head[0] == 0, head[1] == 0, head[2] == 0, head[3] == 0)
    return {
        (True, True, True, False): "utf-32-be",
        (False, True, True, True): "utf-32-le",
        (True, False, True, False): "utf-16-be",
        (False, True, False, True): "utf-16-le",
    }.get(pattern)


def decode_text(data: bytes, source: str) -> DecodedText:
    """Decode a JSON file's bytes. Raises InputFileError (one line) for a binary or undecodable file."""
    encoding = _bom_encoding(data) or _unmarked_wide_encoding(data)
    if encoding is not None:
        try:
            return DecodedText(data.decode(encoding), encoding)
        except UnicodeDecodeError as exc:
            raise InputFileError(
                f"{source}: starts like {encoding.upper()} text but byte {exc.start} cannot be decoded"
            ) from exc
    try:
        return DecodedText(data.decode("utf-8"), "utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    if b"\x00" in data:
        at = data.index(b"\x00")
        raise InputFileError(f"{source}: a binary file, not JSON text (a zero byte at offset {at})")
    try:
        return DecodedText(data.decode("gb18030"), "gb18030")
    except UnicodeDecodeError:
        pass
    at = utf8_error.start
    raise InputFileError(
        f"{source}: not UTF-8 or GB18030 text (byte 0x{data[at]:02X} at offset {at}); "
        "a binary file, or save it as UTF-8"
    )


def read_bytes(path: str, what: str = "") -> bytes:
    """The bytes of `path`, or of standard input for "-". Raises InputFileError ("cannot read {what} {path}: …")."""
    if path == "-":
        stream = getattr(sys.stdin, "buffer", None)
        return stream.read() if stream is not None else sys.stdin.read().encode("utf-8")
    try:
        return Path(path).read_bytes()
    except IsADirectoryError as exc:
        raise InputFileError(f"cannot read {what + ' ' if what else ''}{path}: it is a folder") from exc
    except OSError as exc:
        raise InputFileError(f"cannot read {what + ' ' if what else ''}{path}: {exc.strerror or exc}") from exc


# ---- JSON ---------------------------------------------------------------------------------------------------------


def json_error_message(exc: json.JSONDecodeError, text: str) -> str:
    """A JSON syntax error in full: line, column and what is wrong, in words ("Invalid control character at" → …)."""
    where = f"line {exc.lineno}, column {exc.colno}"
    msg = exc.msg
    if msg.startswith("Invalid control character"):
        char = text[exc.pos] if exc.pos < len(text) else ""
        code = f"U+{ord(char):04X}" if char else "a control character"
        return f"{where}: a raw control character ({code}) inside a string; write it escaped (\\t, \\n)"
    if msg.startswith("Unterminated string"):
        return f"{where}: a string that starts here is never closed with a double quote"
    if msg == "Extra data":
        return (
            f"{where}: more JSON after the first value; JSON lines? one JSON document is read here "
            "(`zhujian batch` reads JSON lines of records)"
        )
    if msg == "Expecting value" and exc.pos == len(text.rstrip()):
        return f"{where}: the text ends where a value is expected (the file is cut off?)"
    return f"{where}: {msg.removesuffix(' at')}"


def parse_json(text: str, source: str) -> Any:
    """Parse one JSON document. Raises InputFileError: the file is empty, or the full syntax error."""
    if not text.strip():
        raise InputFileError("standard input is empty" if source == STDIN else f"{source}: the file is empty")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{source}: not valid JSON ({json_error_message(exc, text)})") from exc
    except RecursionError as exc:
        raise InputFileError(f"{source}: not usable JSON: nested too deeply") from exc


@dataclass(frozen=True, slots=True)
class JsonInput:
    data: Any
    source: str
    encoding: str

    @property
    def note(self) -> str | None:
        return DecodedText("", self.encoding).note


_NOUNS = {Kind.RECORD: "record", Kind.REPORT: "report", Kind.FHIR_BUNDLE: "bundle", Kind.OBJECT: "input file"}


def load_json(path: str, what: str = "") -> JsonInput:
    """Read and parse one JSON document from `path` ("-" for stdin). Raises InputFileError."""
    source = STDIN if path == "-" else path
    decoded = decode_text(read_bytes(path, what), source)
    return JsonInput(parse_json(decoded.text, source), source, decoded.encoding)


def load_json_of_kind(path: str, needed: Kind, command: str) -> JsonInput:
    """`load_json`, refusing any other kind of file than `needed`."""
    loaded = load_json(path, _NOUNS.get(needed, ""))
    require(loaded.data, needed, loaded.source, command)
    return loaded


# ---- JSON lines ---------------------------------------------------------------------------------------------------


def check_json_lines(path: Path, needed: Kind, command: str) -> None:
    """Refuse a file that is clearly not JSON lines of `needed` objects, from its first lines.

    The first line that parses as a JSON object decides; lines that do not parse are left to the command, which
    reports each by number. A file none of whose first lines is a JSON object is refused: an indented JSON document,
    a JSON array, a CSV file, a binary file. An empty file passes (zero lines in, zero out).
    """
    source = str(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(SNIFF_BYTES)
    except OSError:
        return  # the command reports a missing or unreadable file in its own words
    if not head.strip():
        return
    wide = _bom_encoding(head) or _unmarked_wide_encoding(head)
    if wide is not None and wide != "utf-8-sig":
        raise InputFileError(f"{source}: {wide.upper()} text; `zhujian {command}` reads UTF-8 JSON lines")
    if not _utf8_prefix(head):
        decoded = decode_text(head[: _cut_at_line(head)], source)  # raises for binary files
        raise InputFileError(
            f"{source}: {decoded.encoding.upper()} text, not UTF-8; `zhujian {command}` reads UTF-8 JSON lines "
            f"(convert it, e.g. iconv -f {decoded.encoding.upper()} -t UTF-8)"
        )
    # The prefix is valid UTF-8: "ignore" drops only a character cut at the end of the sample.
    text = head.decode("utf-8", errors="ignore").removeprefix("\ufeff")
    lines = [line for line in text.splitlines()[:SNIFF_LINES] if line.strip()]
    first_error: str | None = None
    for number, line in enumerate(lines, start=1):
        try:
            value = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as exc:
            if first_error is None and isinstance(exc, json.JSONDecodeError):
                first_error = f"line {number}: {json_error_message(exc, line)}"
            continue
        if isinstance(value, dict):
            if kind_of(value) in (needed, Kind.OBJECT):
                return
            raise InputFileError(mismatch(f"{source} (line {number})", value, needed, command, _lines_of(needed)))
        break  # a line holding an array or a scalar: judge the file as a whole below
    whole = _whole_document(path)
    if whole is not None and kind_of(whole) is needed:
        raise InputFileError(
            f"{source}: one JSON document ({describe(whole)}) spread over several lines; "
            f"`zhujian {command}` needs {_lines_of(needed)}"
        )
    if whole is not None:
        raise InputFileError(mismatch(source, whole, needed, command, _lines_of(needed)))
    reason = f" ({first_error})" if first_error else ""
    raise InputFileError(
        f"{source}: not JSON lines{reason}; `zhujian {command}` needs {_lines_of(needed)}"
    )


def _lines_of(needed: Kind) -> str:
    if needed is Kind.RECORD:
        return "canonical records as JSON lines, one record per line (what `zhujian ingest` writes)"
    if needed is Kind.TEXT_LINE:
        return 'JSON lines of {"id", "item", "text"}, one object per line'
    return NEEDS[needed]


def _utf8_prefix(head: bytes) -> bool:
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _cut_at_line(head: bytes) -> int:
    """Where the sample's last complete line ends (a multi-byte character may be cut after it)."""
    end = head.rfind(b"\n")
    return end + 1 if end > 0 else len(head)


def _whole_document(path: Path) -> Any:
    """The file parsed as one JSON document, or None when it is not one (or too large to try)."""
    try:
        if path.stat().st_size > WHOLE_DOCUMENT_BYTES:
            return None
        return json.loads(decode_text(path.read_bytes(), str(path)).text)
    except (OSError, InputFileError, json.JSONDecodeError, RecursionError):
        return None
