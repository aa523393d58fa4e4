"""Required literals of a regular expression, for a cheap pre-filter before running it.

A lexicon has hundreds of patterns and a text matches only a few of them. If every way a pattern can match must
contain one of a few plain substrings, the pattern cannot match a text that contains none of them, and
`substring in text` is much cheaper than a regex scan. The analysis is deliberately conservative: character
classes, escapes, lookarounds and anything followed by a quantifier are ignored; a group counts only when every
one of its alternatives has a requirement of its own; a branch without any requirement disables the pre-filter for
the whole pattern (it is then always run).
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_QUANTIFIERS = "?*+{"
_SPECIAL = "\\[](){}.*+?^$|"


def _split_top_level(pattern: str) -> list[str] | None:
    """Top-level alternatives of a pattern, or None if it is malformed for this simple scanner."""
    branches: list[str] = []
    depth = 0
    in_class = False
    current: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            current.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return None
        elif ch == "|" and depth == 0:
            branches.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if depth != 0 or in_class:
        return None
    branches.append("".join(current))
    return branches


def _group_end(branch: str, start: int) -> int:
    """Index of the `)` closing the group opened at `start`, or -1."""
    depth = 0
    in_class = False
    i = start
    while i < len(branch):
        ch = branch[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _after_quantifier(branch: str, j: int) -> int:
    """Index after the quantifier starting at j (`?`, `*`, `+` or `{m,n}`, with a lazy/possessive suffix)."""
    n = len(branch)
    if j < n and branch[j] == "{":
        end = branch.find("}", j)
        j = n if end < 0 else end + 1
    elif j < n and branch[j] in "?*+":
        j += 1
    if j < n and branch[j] in "?+":
        j += 1
    return j


def _score(requirement: frozenset[str]) -> tuple[int, int]:
    """Prefer requirements whose shortest literal is longest (more selective), then fewer alternatives."""
    return (min(len(x) for x in requirement), -len(requirement))


def _branch_requirement(branch: str) -> frozenset[str] | None:
    """A set of literals one of which every match of this branch contains, or None."""
    candidates = _branch_requirements(branch)
    if not candidates:
        return None
    return max(candidates, key=_score)


def _branch_requirements(branch: str) -> list[frozenset[str]] | None:
    """Every requirement of this branch: sets of literals such that every match contains one literal of each set
    (a run of plain characters, or a group all of whose alternatives have requirements of their own)."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []
    i = 0
    n = len(branch)

    def close() -> None:
        if run:
            candidates.append(frozenset({"".join(run)}))
            run.clear()

    while i < n:
        ch = branch[i]
        nxt = branch[i + 1] if i + 1 < n else ""
        if ch == "\\":
            close()
            i = _after_quantifier(branch, i + 2)
            continue
        if ch == "[":
            close()
            end = branch.find("]", i + 2 if nxt == "]" else i + 1)
            i = n if end < 0 else _after_quantifier(branch, end + 1)
            continue
        if ch == "(":
            close()
            end = _group_end(branch, i)
            if end < 0:
                return None
            inner = branch[i + 1 : end]
            after = end + 1
            quantified = after < n and branch[after] in _QUANTIFIERS
            i = _after_quantifier(branch, after) if quantified else after
            if quantified or inner.startswith(("?=", "?!", "?<=", "?<!")):
                continue
            if inner.startswith("?:"):
                inner = inner[2:]
            elif inner.startswith("?P<"):
                inner = inner[inner.find(">") + 1 :]
            elif inner.startswith("?"):
                continue
            requirement = required_literal_set(inner)
            if requirement is not None:
                candidates.append(requirement)
            continue
        if ch in _QUANTIFIERS:
            close()
            i = _after_quantifier(branch, i)
            continue
        if ch in _SPECIAL:
            close()
            i += 1
            continue
        if nxt and nxt in _QUANTIFIERS:
            # The character before a quantifier is optional or repeated: it ends the run and is not required.
            close()
            i = _after_quantifier(branch, i + 1)
            continue
        run.append(ch)
        i += 1
    close()
    return [c for c in candidates if all(c)]


def required_literal_set(pattern: str) -> frozenset[str] | None:
    branches = _split_top_level(pattern)
    if branches is None:
        return None
    union: set[str] = set()
    for branch in branches:
        requirement = _branch_requirement(branch)
        if requirement is None:
            return None
        union |= requirement
    return frozenset(union)


def required_literals(patterns: list[str]) -> tuple[str, ...] | None:
    """Lower-cased literals such that any match of any pattern contains at least one; None if unknown."""
    found: list[str] = []
    for pattern in patterns:
        requirement = required_literal_set(pattern)
        if requirement is None:
            return None
        found.extend(sorted(x.lower() for x in requirement))
    return tuple(dict.fromkeys(found))


def required_literal_clauses(patterns: list[str]) -> tuple[tuple[frozenset[str], ...], ...] | None:
    """The top-level alternatives of all `patterns`, each as the lower-cased literal sets it requires all of: a text
    can match only if, for some alternative, each of its sets has a literal in the text. None if unknown.

    Stricter than `required_literals` (one requirement per alternative), so it is applied after it, on the few
    candidates that pass it: a breast-nodule pattern needs 乳 as well as one of 结节 / 回声 / 包块.
    """
    out: list[tuple[frozenset[str], ...]] = []
    for pattern in patterns:
        branches = _split_top_level(pattern)
        if branches is None:
            return None
        for branch in branches:
            requirements = _branch_requirements(branch)
            if not requirements:
                return None
            out.append(tuple(frozenset(x.lower() for x in r) for r in requirements))
    return tuple(out)


# The regex parser of the standard library (re._parser / re._constants since 3.11), used for `first_char_class`:
# its parse tree is exactly what `re` will run, so no second grammar has to be kept in step with it.
_sre_parser: Any = importlib.import_module("re._parser")
_sre: Any = importlib.import_module("re._constants")
_CATEGORY_CLASS: dict[Any, str] = {
    _sre.CATEGORY_DIGIT: r"\d",
    _sre.CATEGORY_NOT_DIGIT: r"\D",
    _sre.CATEGORY_SPACE: r"\s",
    _sre.CATEGORY_NOT_SPACE: r"\S",
    _sre.CATEGORY_WORD: r"\w",
    _sre.CATEGORY_NOT_WORD: r"\W",
}
_REPEATS: tuple[Any, ...] = (_sre.MAX_REPEAT, _sre.MIN_REPEAT, _sre.POSSESSIVE_REPEAT)
_ZERO_WIDTH: tuple[Any, ...] = (_sre.ASSERT, _sre.ASSERT_NOT, _sre.AT)


class _UnknownStartError(Exception):
    """A construct whose first characters this analysis does not describe (., [^…], backreferences, …)."""


def _first_of_sequence(items: Any, out: list[str]) -> bool:
    """Add to `out` the class items of every character a match of `items` can start with; True if it can be
    empty (then what follows it can supply the first character too)."""
    return all(_first_of_item(op, av, out) for op, av in items)


def _first_of_item(op: Any, av: Any, out: list[str]) -> bool:
    """As `_first_of_sequence` for one parse-tree node."""
    if op is _sre.LITERAL:
        out.append(f"\\U{av:08x}")
        return False
    if op is _sre.IN:
        for item_op, item_av in av:
            if item_op is _sre.LITERAL:
                out.append(f"\\U{item_av:08x}")
            elif item_op is _sre.RANGE:
                out.append(f"\\U{item_av[0]:08x}-\\U{item_av[1]:08x}")
            elif item_op is _sre.CATEGORY and item_av in _CATEGORY_CLASS:
                out.append(_CATEGORY_CLASS[item_av])
            else:
                raise _UnknownStartError  # a negated class, or an item kind not handled here
        return False
    if op is _sre.BRANCH:
        nullable = False
        for branch in av[1]:
            if _first_of_sequence(branch.data, out):
                nullable = True
        return nullable
    if op is _sre.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:
            raise _UnknownStartError  # scoped flags: the class would be matched under other flags than the group
        return _first_of_sequence(sub.data, out)
    if op is _sre.ATOMIC_GROUP:
        return _first_of_sequence(av.data, out)
    if op in _REPEATS:
        low, high, sub = av
        if high == 0:
            return True
        return _first_of_sequence(sub.data, out) or low == 0
    if op in _ZERO_WIDTH:
        # Lookarounds and anchors consume nothing: the first character comes from what follows.
        return True
    raise _UnknownStartError


def _has_start_shortcut(items: Any, flags: int) -> bool:
    """Whether `re` already rejects a position after one character test: a pattern led by a literal or a character
    class (without case folding `re` even skips ahead to the next candidate), or by an alternation of literals
    without case folding (re._compiler's charset prefix)."""
    while items and items[0][0] is _sre.SUBPATTERN and not items[0][1][1] and not items[0][1][2]:
        items = items[0][1][3].data
    if not items:
        return False
    op, av = items[0]
    if op is _sre.LITERAL or op is _sre.IN:
        return True
    if op is _sre.BRANCH and not flags & re.IGNORECASE:
        return all(branch.data and branch.data[0][0] is _sre.LITERAL for branch in av[1])
    return False


def first_char_class(pattern: str, flags: int = 0) -> str | None:
    """A character class (`[…]`, to be compiled with the pattern's own `flags`) that holds the first character of
    every match of `pattern`, or None when unknown or when the pattern can match the empty string.

    Python's `re` tries a pattern at every position of the text; a pattern led by lookbehinds or by an alternation of
    groups gets no start-character shortcut, so every alternative is tried everywhere. `(?=[class])(?:pattern)`
    matches at exactly the same positions with exactly the same result (a lookahead consumes nothing, captures
    nothing and cannot change the path the pattern takes), and fails after one character test elsewhere.
    """
    try:
        parsed = _sre_parser.parse(pattern, flags)
        if _has_start_shortcut(parsed.data, flags):
            return None
        out: list[str] = []
        if _first_of_sequence(parsed.data, out) or not out:
            return None
    except (_UnknownStartError, re.error):
        return None
    if parsed.state.flags & ~flags & ~_sre.SRE_FLAG_UNICODE:
        return None  # inline global flags such as (?i): let the pattern keep its own form
    return "[" + "".join(dict.fromkeys(out)) + "]"
