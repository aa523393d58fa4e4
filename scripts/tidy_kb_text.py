"""Set the Chinese prose of the knowledge-base YAML files per GB/T 15834: full-width ，；：？！（） in Chinese text and
no half-width space after full-width punctuation or between two Chinese characters (zhujian.render.typography).

Only the prose fields are touched (PROSE_KEYS: names, advice, explanations, follow-up, departments, alert reasons,
texts shown to people); `source:` citations, aliases, patterns and notes for KB authors keep their ASCII
punctuation. The files are edited line by line, never re-dumped, so comments, key order and quoting stay as the
author wrote them. A folded block scalar (`>-`) whose line break falls between two Chinese characters or next to
full-width punctuation is joined at that break: YAML folds a line break into a space, which is the stray space.

Every rewritten file is checked by loading it before and after: the data must be equal except for the prose fields,
and each prose field must equal tidy_zh of its old value.

    python scripts/tidy_kb_text.py            # rewrite src/zhujian/kb/data/**.yaml and src/zhujian/group/data/**.yaml
    python scripts/tidy_kb_text.py --check    # list what would change; exit 1 if anything would
    python scripts/tidy_kb_text.py FILE ...   # only these files
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from zhujian.render.typography import CJK, FULL_WIDTH_PUNCTUATION, tidy_zh

ROOT = Path(__file__).resolve().parents[1]
DATA_DIRS = (ROOT / "src" / "zhujian" / "kb" / "data", ROOT / "src" / "zhujian" / "group" / "data")
PROSE_KEYS = frozenset(
    {"name", "advice", "explanation", "follow_up", "department", "reason", "message", "text", "title", "label"}
)

_KEY_LINE = re.compile(r"^(?P<indent>\s*(?:-\s+)?)(?P<key>[A-Za-z_]+):(?P<gap>\s*)(?P<value>.*)$")
_CHINESE = re.compile(f"[{CJK}]")
_FULL_WIDTH = re.compile(f"[{FULL_WIDTH_PUNCTUATION}]")


def _space_is_stray(left: str, right: str) -> bool:
    """Whether a space between these two characters is a fault: next to full-width punctuation or between two
    Chinese characters."""
    return bool(
        _FULL_WIDTH.match(left) or _FULL_WIDTH.match(right) or (_CHINESE.match(left) and _CHINESE.match(right))
    )


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _tidy_inline(value: str) -> str:
    """A scalar written on the key's line: plain, "double" or 'single' quoted; flow collections are not prose."""
    if not value or value[0] in "[{&*!|>#":
        return value
    if value[0] in "\"'":
        quote = value[0]
        end = value.rfind(quote)
        if end <= 0:
            return value
        return quote + tidy_zh(value[1:end]) + value[end:]
    if " #" in value:  # a trailing comment: leave the line to the author
        return value
    return tidy_zh(value)


def _tidy_folded(lines: list[str]) -> list[str]:
    """The content lines of a folded block: joined where the fold would put a space next to Chinese text."""
    out: list[str] = []
    for line in lines:
        text = line.strip()
        if out and text and out[-1].strip():
            previous = out[-1].rstrip()
            if _space_is_stray(previous[-1], text[0]):
                out[-1] = previous + text
                continue
        out.append(line)
    indent = " " * min((_indent_of(line) for line in out if line.strip()), default=0)
    return [indent + tidy_zh(line.strip()) if line.strip() else line for line in out]


def tidy_yaml_text(text: str) -> str:
    """The YAML text with its prose fields set; everything else byte for byte as it was."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        match = _KEY_LINE.match(line)
        if match is None or match.group("key") not in PROSE_KEYS or line.lstrip().startswith("#"):
            out.append(line)
            i += 1
            continue
        value = match.group("value")
        if value[:1] in (">", "|"):
            key_indent = _indent_of(line)
            block_end = i + 1
            while block_end < len(lines) and (
                not lines[block_end].strip() or _indent_of(lines[block_end]) > key_indent
            ):
                block_end += 1
            while block_end > i + 1 and not lines[block_end - 1].strip():
                block_end -= 1  # trailing blank lines belong to what follows
            body = lines[i + 1 : block_end]
            out.append(line)
            if value.startswith(">"):
                out.extend(_tidy_folded(body))
            else:  # literal: line breaks are content, each line is set on its own
                out.extend(
                    " " * _indent_of(b) + tidy_zh(b[_indent_of(b) :]) if b.strip() else b for b in body
                )
            i = block_end
            continue
        out.append(f"{match.group('indent')}{match.group('key')}:{match.group('gap')}{_tidy_inline(value)}")
        i += 1
    return "\n".join(out)


def _expected(data: Any, key: str | None = None) -> Any:
    if isinstance(data, dict):
        return {k: _expected(v, str(k)) for k, v in data.items()}
    if isinstance(data, list):
        return [_expected(v, key) for v in data]
    if isinstance(data, str) and key in PROSE_KEYS:
        return tidy_zh(data)
    return data


def _verify(path: Path, old: str, new: str) -> None:
    """The rewrite changed nothing but the prose fields, each to tidy_zh of its old value."""
    before, after = yaml.safe_load(old), yaml.safe_load(new)
    if after != _expected(before):
        raise SystemExit(f"{path}: the line edits would change more than the prose fields; edit this file by hand")


def yaml_files(paths: Iterable[str]) -> list[Path]:
    chosen = [Path(p) for p in paths]
    if chosen:
        return chosen
    return sorted(p for folder in DATA_DIRS for p in folder.rglob("*.yaml"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("files", nargs="*", help="YAML files (default: every KB and group data file)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    args = parser.parse_args(argv)
    changed: list[Path] = []
    for path in yaml_files(args.files):
        old = path.read_text(encoding="utf-8")
        new = tidy_yaml_text(old)
        if new == old:
            continue
        _verify(path, old, new)
        changed.append(path)
        if args.check:
            old_lines, new_lines = old.split("\n"), set(new.split("\n"))
            for number, line in enumerate(old_lines, start=1):
                if line not in new_lines:
                    sys.stdout.write(f"{path}:{number}: {line.strip()}\n")
        else:
            path.write_text(new, encoding="utf-8")
    verb = "would change" if args.check else "changed"
    sys.stdout.write(f"{len(changed)} file(s) {verb}\n")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    raise SystemExit(main())
