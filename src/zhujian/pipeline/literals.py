"""Required literals of a regular expression, for a cheap pre-filter before running it.

A lexicon has hundreds of patterns and a text matches only a few of them. If every way a pattern can match must
contain one of a few plain substrings, the pattern cannot match a text that contains none of them, and
`substring in text` is much cheaper than a regex scan. The analysis is deliberately conservative: character
classes, escapes, lookarounds and anything followed by a quantifier are ignored; a group counts only when every
one of its alternatives has a requirement of its own; a branch without any requirement disables the pre-filter for
the whole pattern (it is then always run).
"""

from __future__ import annotations

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
