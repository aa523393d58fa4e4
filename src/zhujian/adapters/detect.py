"""Encoding and delimiter detection with the standard library.

Checkup exports come as UTF-8 (with or without a byte-order mark), GB18030/GBK (Chinese systems) and CP949
(Korean open data). UTF-8 is recognised by decoding; GB18030 and CP949 both decode most double-byte text, so the
choice between them looks at what the bytes become: Chinese text read as CP949 turns about a third of its
distinct characters into Hanja, Korean text has almost none; a short non-ASCII header (the Korean `γ-GTP`) decodes to a
Greek letter in CP949 and to katakana in GB18030, and katakana does not occur in Chinese checkup data.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from zhujian.adapters.base import IngestError

SAMPLE_BYTES = 1 << 20
DELIMITERS: tuple[str, ...] = (",", "\t", ";", "|", "$")
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon", "|": "pipe", "$": "dollar"}


@dataclass(frozen=True, slots=True)
class EncodingGuess:
    encoding: str  # a Python codec name, e.g. "utf-8-sig", "gb18030", "cp949"
    reason: str


def read_sample(path: Path, size: int = SAMPLE_BYTES) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise IngestError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _decodes(sample: bytes, encoding: str) -> bool:
    # The sample may end inside a multi-byte character: an incremental decoder that is not told "final"
    # keeps those bytes pending instead of failing on them.
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


def _first_error_offset(sample: bytes, encoding: str) -> int | None:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    try:
        decoder.decode(sample, final=False)
    except UnicodeDecodeError as exc:
        return exc.start
    return None


def _is_hangul(ch: str) -> bool:
    code = ord(ch)
    return 0xAC00 <= code <= 0xD7A3 or 0x3130 <= code <= 0x318F


def _is_han(ch: str) -> bool:
    code = ord(ch)
    return 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0xF900 <= code <= 0xFAFF


def _is_odd(ch: str) -> bool:
    """Characters that a Chinese or Korean checkup export does not contain: kana, box drawing, private use."""
    code = ord(ch)
    return 0x3040 <= code <= 0x30FF or 0x2500 <= code <= 0x257F or 0xE000 <= code <= 0xF8FF or 0xFF61 <= code <= 0xFF9F


def _text(sample: bytes, encoding: str) -> str:
    return codecs.getincrementaldecoder(encoding)(errors="replace").decode(sample, final=False)


# An encoding that decodes all but this share of a sample's bytes is taken, and the cells holding the few bytes it
# cannot decode are reported one by one (`encoding_error`, with row and column): one stray byte must not stop a file.
# Far more errors than this mean the encoding is wrong, and every Chinese or Korean cell would be garbage.
MAX_UNDECODABLE_SHARE = 0.001


def _error_count(sample: bytes, encoding: str) -> int:
    """Undecodable sequences in the sample (a genuine U+FFFD in the text counts too; it is reported either way)."""
    return _text(sample, encoding).count("\ufffd")


def _tolerable(sample: bytes, errors: int) -> bool:
    return errors <= max(1, int(len(sample) * MAX_UNDECODABLE_SHARE))


def _bom(sample: bytes) -> EncodingGuess | None:
    # UTF-32 first: the UTF-32 LE mark (FF FE 00 00) begins with the UTF-16 LE one (FF FE).
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return EncodingGuess("utf-32", "UTF-32 byte-order mark")
    if sample.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig", "UTF-8 byte-order mark")
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return EncodingGuess("utf-16", "UTF-16 byte-order mark")
    return None


def detect_encoding(sample: bytes) -> EncodingGuess:
    """Guess the encoding of the first bytes of a file. Raises IngestError when no candidate decodes them."""
    marked = _bom(sample)
    if marked is not None:
        return marked
    if _decodes(sample, "utf-8"):
        if sample.isascii():
            return EncodingGuess("utf-8", "only ASCII in the first bytes; read as UTF-8")
        return EncodingGuess("utf-8", "valid UTF-8")
    gb_ok, kr_ok = _decodes(sample, "gb18030"), _decodes(sample, "cp949")
    if kr_ok and not gb_ok:
        return EncodingGuess("cp949", "not valid UTF-8 or GB18030; valid CP949")
    if gb_ok and kr_ok:
        return _chinese_or_korean(sample)
    if gb_ok:
        return EncodingGuess("gb18030", "not valid UTF-8; valid GB18030")
    # No candidate reads every byte: take the one that reads all but a few (a stray byte in an old export).
    counts = {name: _error_count(sample, name) for name in ("utf-8", "gb18030", "cp949")}
    best = min(counts, key=lambda name: counts[name])
    if best != "utf-8" and _tolerable(sample, counts["gb18030"]) and _tolerable(sample, counts["cp949"]):
        best = _chinese_or_korean(sample).encoding
    if _tolerable(sample, counts[best]):
        offset = _first_error_offset(sample, best)
        return EncodingGuess(
            best,
            f"{best.upper()} except {counts[best]} undecodable byte(s) in the first bytes (first at byte {offset}); "
            "the cells holding them are reported",
        )
    tried = ", ".join(f"{name.upper()} {n}" for name, n in counts.items())
    raise IngestError(
        "cannot tell the encoding: the first bytes are not valid UTF-8, GB18030 or CP949 "
        f"(undecodable sequences: {tried}); pass --encoding"
    )


def _chinese_or_korean(sample: bytes) -> EncodingGuess:
    """GB18030 or CP949 for a sample both read: decide by what the bytes become."""
    korean = _text(sample, "cp949")
    # Distinct characters, not occurrences: a column of 男/女 repeated thousands of times decodes to two
    # Hangul syllables and must not outweigh the header.
    distinct = set(korean)
    hangul = sum(1 for ch in distinct if _is_hangul(ch))
    hanja = sum(1 for ch in distinct if _is_han(ch))
    if hangul + hanja >= 10:
        if hanja <= 0.1 * (hangul + hanja):
            return EncodingGuess("cp949", f"decodes as CP949 to Korean text ({hangul} Hangul, {hanja} Hanja)")
        return EncodingGuess(
            "gb18030", f"as CP949 {hanja} of {hangul + hanja} distinct characters would be Hanja: Chinese text"
        )
    chinese = _text(sample, "gb18030")
    odd_gb = sum(1 for ch in chinese if _is_odd(ch))
    odd_kr = sum(1 for ch in korean if _is_odd(ch))
    if odd_gb > odd_kr:
        return EncodingGuess("cp949", "as GB18030 it would contain kana or symbols; CP949 reads cleanly")
    return EncodingGuess("gb18030", "not valid UTF-8; GB18030 reads cleanly")


def check_encoding(sample: bytes, encoding: str) -> str:
    """Validate an explicit encoding name against the file's first bytes; returns the codec name to open with.

    The encoding is honoured when it reads all but a few bytes (those cells are reported as `encoding_error`); a
    file it cannot read at all (most non-ASCII bytes undecodable) is refused, naming the first bad byte.
    """
    try:
        name = codecs.lookup(encoding).name
    except LookupError as exc:
        raise IngestError(f"unknown encoding {encoding!r}") from exc
    if name in ("utf-8", "utf_8") and sample.startswith(codecs.BOM_UTF8):
        name = "utf-8-sig"
    offset = _first_error_offset(sample, name)
    if offset is None:
        return name
    errors = _error_count(sample, name)
    if _tolerable(sample, errors):
        return name
    detected: str | None
    try:
        detected = detect_encoding(sample).encoding
    except IngestError:
        detected = None
    hint = f"it looks like {detected}" if detected is not None and detected != name else "check the export"
    raise IngestError(
        f"the file is not valid {encoding}: {errors} undecodable sequence(s) in the first {len(sample)} bytes "
        f"(first at byte {offset}: {sample[offset : offset + 4]!r}); {hint}"
    )


def delimiter_name(delimiter: str) -> str:
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def detect_delimiter(lines: Sequence[str]) -> tuple[str, str]:
    """Choose the delimiter that splits the header into the most fields and the rows into as many.

    Returns the delimiter and a sentence saying why. A file with one column (`血糖` and its values) is comma.
    """
    best: tuple[float, int, str] | None = None
    for delimiter in DELIMITERS:
        quoting: Literal[0, 3] = csv.QUOTE_NONE if delimiter == "$" else csv.QUOTE_MINIMAL
        try:
            rows = list(csv.reader(io.StringIO("\n".join(lines)), delimiter=delimiter, quoting=quoting))
        except csv.Error:
            continue
        rows = [row for row in rows if row]
        if not rows or len(rows[0]) < 2:
            continue
        width = len(rows[0])
        body = rows[1:]
        consistency = sum(1 for row in body if len(row) == width) / len(body) if body else 1.0
        key = (consistency, width, delimiter)
        if best is None or key[:2] > best[:2]:
            best = key
    if best is None:
        return ",", "no candidate delimiter splits the header: one column"
    consistency, width, delimiter = best
    return (
        delimiter,
        f"{delimiter_name(delimiter)} splits the header into {width} fields ({consistency:.0%} of rows alike)",
    )


def sample_lines(text: str, limit: int = 50) -> list[str]:
    """The first complete lines of a decoded sample (the last one may be cut)."""
    lines = text.splitlines()
    if len(lines) > 1 and not text.endswith(("\n", "\r")):
        lines = lines[:-1]
    return lines[:limit]
