"""Text findings: ultrasound, ECG, imaging and physical-exam text → abnormal findings with attributes.

The algorithm is generic; every word it knows (organs, findings, negation and uncertainty cues, organ headings,
grade, count and bilateral words, exam items that name a side) comes from the KB lexicon. Only the written formats of
sizes (4×2mm, 0.63x0.47cm), RADS categories and heart rates are parsed here. Steps for one text:

1. normalize characters one by one (NFKC where it keeps length) so spans point into the original text;
2. find organ mentions; the nearest mention before a match (or the exam item itself) is the active site;
3. match every finding pattern whose sites are active; drop matches vetoed by `exclude` in their sentence, or
   negated by a cue in their clause (forward cue before, backward cue after, no terminator between);
4. read attributes (size, count, grade, side, category, heart rate) from the sentence of each match;
5. merge repeated matches of one finding (per side for paired organs) and apply `suppresses`.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

import ahocorasick

from zhujian.domain.report import Finding
from zhujian.kb.loader import KnowledgeBase, normalize_label
from zhujian.kb.schema import FindingDef, SiteDef
from zhujian.pipeline.literals import first_char_class, required_literal_clauses, required_literals


def _led_by_first_chars(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """`pattern` led by a lookahead for the characters a match can start with (see `first_char_class`): the same
    matches, but `re` no longer tries every alternative, with its lookbehinds, at every position of the text."""
    first = first_char_class(pattern, flags)
    if first is not None:
        try:
            return re.compile(f"(?={first})(?:{pattern})", flags)
        except re.error:
            pass
    return re.compile(pattern, flags)


_SIZE_PAIR = re.compile(
    r"(\d+(?:\.\d+)?)\s*(mm|cm|毫米|厘米)?\s*[x×*X✕]\s*(\d+(?:\.\d+)?)\s*(mm|cm|毫米|厘米)?"
    r"(?:\s*[x×*X✕]\s*(\d+(?:\.\d+)?)\s*(mm|cm|毫米|厘米)?)?",
    re.IGNORECASE,
)
_SIZE_SINGLE = re.compile(
    r"(?:长径|直径|大小|范围|厚度?|宽|约|径)\s*(?:约|为)?\s*[(（]?\s*(\d+(?:\.\d+)?)\s*[)）]?\s*(mm|cm|毫米|厘米)",
    re.IGNORECASE,
)
# A side named before a listed category: 右乳 / 左侧乳腺 / 右叶 / 双侧.
_LISTED_SIDE = r"[左右双]侧?(?:乳腺?|叶|甲状腺)?\s*[:：]?\s*"
_CATEGORY = _led_by_first_chars(
    r"(C\s*-?\s*TI\s*-?\s*RADS|ACR\s*TI\s*-?\s*RADS|TI\s*-?\s*RADS|BI\s*-?\s*:?\s*RADS|Lung\s*-?\s*RADS|(?<![A-Za-z])TR)"
    r"(?:\s*(?:分类|分级))?\s*[:：]?\s*(" + _LISTED_SIDE + r")?[(（]?\s*"
    r"(\d[abcABC]?|Ⅰ|Ⅱ|Ⅲ|Ⅳ|Ⅴ|Ⅵ|IV|V?I{1,3}|VI?)([abcABC]?)(?![\d.])\s*[类級级]?",
    re.IGNORECASE,
)
# Heading-style lists give one category per side (乳腺BI-RADS分类：右乳3类，左乳4a类): the finding takes the highest
# listed, so a suspicious lesion on either side is never read at the lower category (or at none).
_LISTED_SIDE_CATEGORY = re.compile(
    r"\s*[，,；;、]\s*(?:" + _LISTED_SIDE + r")[(（]?\s*(\d)([abcABC]?)(?![\d.])\s*[类級级]"
)
_ROMAN = {
    "Ⅰ": "1",
    "Ⅱ": "2",
    "Ⅲ": "3",
    "Ⅳ": "4",
    "Ⅴ": "5",
    "Ⅵ": "6",
    "I": "1",
    "II": "2",
    "III": "3",
    "IV": "4",
    "V": "5",
    "VI": "6",
}
_CATEGORY_NAMES = {
    "ctirads": "C-TIRADS",
    "acrtirads": "TI-RADS",
    "tirads": "TI-RADS",
    "birads": "BI-RADS",
    "lungrads": "Lung-RADS",
    "tr": "TI-RADS",  # ACR TI-RADS levels are written TR1-TR5
}
_RATE = re.compile(r"(\d{2,3})\s*(?:次/分|次/min|bpm|次每分|次)", re.IGNORECASE)
_SENTENCE_END = "。；;\n"
_CONJUNCTIONS = "及和与或、"


class _NfkcTable(dict[int, str]):
    """Code point → its NFKC form where that is one character (spans stay valid), else the character itself.
    Filled on first sight of each character (`str.translate` asks `__missing__`), so no text is scanned for new
    characters beforehand."""

    def __missing__(self, code: int) -> str:
        if code in _ENCLOSED_NUMBERS:
            self[code] = _ENCLOSED_NUMBERS[code]
            return _ENCLOSED_NUMBERS[code]
        ch = chr(code)
        if code >= 128:
            n = unicodedata.normalize("NFKC", ch)
            if len(n) == 1:
                ch = n
        self[code] = ch
        return ch


_NFKC_TABLE = _NfkcTable()
# A closing bracket whose group holds Chinese text (a qualifier such as （轻度） or （57次/分）) and that is followed
# by Chinese text ends one diagnosis of a conclusion list; (IMT) or (CDFI) does not.
_DIAGNOSIS_CLOSE = re.compile(r"\(([^()]{0,24})\)(?=[\u4e00-\u9fff])")
_HAS_CJK = re.compile(r"[\u4e00-\u9fff]")
# Numbered conclusion lists (`1.右乳结节（BI-RADS 4a类）2.左乳囊肿（BI-RADS 2类）`, `1、…2、…`, `①…②…`) often sit on one
# line: each number starts a new diagnosis, so it becomes a line break (the number is blanked, spans stay valid) and
# each diagnosis keeps its own category, side and negation. A number after a RADS name is a category, and one after a
# comparison or a colon is a value (`E/A<14.左心功能` is E/A<1 then item 4), not an item.
_LIST_NUMBER = _led_by_first_chars(
    r"(?<![\d.A-Za-z<>=≤≥/:~+-])(?<!RADS )(?<!RADS)\d{1,2}[.、](?=\s*[\u4e00-\u9fff])"
)
# Enclosed list numbers: ①-⑳, ⑴-⒇ and ⒈-⒛ (NFKC would turn them into plain digits).
_ENCLOSED_NUMBERS = {code: "\n" for code in range(0x2460, 0x249C)}


def _close_diagnosis(m: re.Match[str]) -> str:
    inner = m.group(1)
    return f"({inner}\n" if _HAS_CJK.search(inner) else m.group(0)


def _normalize_chars(text: str, headings: re.Pattern[str] | None = None) -> str:
    """NFKC per character where the result stays one character long (spans stay valid).

    Conclusion lists such as `肝:脂肪肝（重度）肝囊肿（多发）右肾:右肾囊肿` carry no punctuation between
    diagnoses, so an organ heading's colon (`headings`, from the KB), a closing bracket of a Chinese qualifier
    followed by Chinese text and a list number (`2.`, `2、`, `②`) become line breaks: each diagnosis then gets its
    own sentence for negation and attributes.
    """
    out = text.translate(_NFKC_TABLE)
    if "." in out or "、" in out:
        out = _LIST_NUMBER.sub(lambda m: "\n" + " " * (len(m.group(0)) - 1), out)
    if "(" in out:
        out = _DIAGNOSIS_CLOSE.sub(_close_diagnosis, out)
    if headings is not None and ":" in out:
        out = headings.sub(lambda m: m.group(0)[:-1] + "\n", out)
    return out


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


def _to_mm(value: float, unit: str | None, default_unit: str | None) -> float | None:
    u = (unit or default_unit or "").lower()
    if u in ("cm", "厘米"):
        return round(value * 10, 2)
    if u in ("mm", "毫米"):
        return value
    return None


@dataclass(slots=True)
class _CompiledFinding:
    index: int
    definition: FindingDef
    pattern: re.Pattern[str]
    exclude: re.Pattern[str] | None
    sites: frozenset[str]
    # Lower-cased substrings one of which every match contains (None: always run the pattern).
    literals: tuple[str, ...] | None
    # Stricter: per alternative, the literals it needs all of and the literal sets it needs one literal of each
    # (None: not known).
    clauses: tuple[tuple[frozenset[str], tuple[frozenset[str], ...]], ...] | None = None


@dataclass(slots=True)
class _CompiledSitePattern:
    site: str
    pattern: re.Pattern[str]
    literals: tuple[str, ...] | None


@dataclass(slots=True)
class _ContextRoles:
    """What one context word is in the KB's lists, with its place in each list: forward and backward negation cues
    (with their reach), grade words, uncertainty cues (how many times listed) and count words (rank, count)."""

    forward: list[tuple[int, int]] = field(default_factory=list)
    backward: list[tuple[int, int]] = field(default_factory=list)
    grades: list[tuple[int, str]] = field(default_factory=list)
    uncertainty: int = 0
    counts: list[tuple[int, int | str]] = field(default_factory=list)


@dataclass(slots=True)
class _Match:
    finding: _CompiledFinding
    start: int
    end: int
    site: str | None
    side: str | None
    attrs: dict[str, Any]
    uncertain: bool


@dataclass
class ExtractionResult:
    findings: list[Finding]
    incomplete: bool
    site: str | None = None


@dataclass
class CompiledLexicon:
    kb_version: str
    sites: dict[str, SiteDef]
    site_pattern: re.Pattern[str]
    site_group_ids: list[str]
    site_patterns: list[_CompiledSitePattern]
    item_sites: dict[str, str]
    findings: list[_CompiledFinding]
    siteless: list[_CompiledFinding]
    by_site: dict[str, list[_CompiledFinding]]
    # Per site ("" = siteless): findings to always try, and literal → findings that need that literal.
    group_always: dict[str, list[_CompiledFinding]]
    group_literals: dict[str, list[tuple[str, list[_CompiledFinding]]]]
    site_literals: list[tuple[str, list[_CompiledSitePattern]]]
    site_always: list[_CompiledSitePattern]
    forward_cues: list[tuple[str, int]]
    backward_cues: list[tuple[str, int]]
    terminators: list[str]
    pseudo: list[str]
    uncertainty: list[str]
    incomplete: re.Pattern[str]
    separators: frozenset[str]
    grades: list[tuple[str, str, int]]
    grade_ranks: dict[str, int] = field(default_factory=dict)
    by_id: dict[str, FindingDef] = field(default_factory=dict)
    headings: re.Pattern[str] | None = None
    counts: list[tuple[str, int | str]] = field(default_factory=list)
    bilateral: re.Pattern[str] = field(default_factory=lambda: re.compile(r"(?!)"))
    item_sides: dict[str, str] = field(default_factory=dict)
    scope_closer: re.Pattern[str] | None = None
    # One Aho–Corasick pass over a lower-cased text finds every required literal (of findings and of organ
    # patterns) present; a second one over the normalized text finds every context word (cues, grades, counts).
    literal_automaton: Any = None
    # One-character literals are looked up in the text's character set instead (they are the automaton's most
    # frequent hits: 见, 大, 内, 侧).
    literal_chars: frozenset[str] = frozenset()
    # Literals one of which every match of `incomplete` contains (None: unknown, always search).
    incomplete_literals: frozenset[str] | None = None
    group_literal_map: dict[str, dict[str, list[_CompiledFinding]]] = field(default_factory=dict)
    site_literal_order: dict[str, int] = field(default_factory=dict)
    context_automaton: Any = None
    # Context words → their roles (see _ContextRoles); pseudo-negation phrases have none.
    context_roles: dict[str, _ContextRoles] = field(default_factory=dict)
    # site group → trigger literal → the alternatives of that group's findings it triggers, as (finding, literals
    # the alternative needs all of, literal sets it needs one literal of each); see `_triggers`.
    group_triggers: dict[str, dict[str, list[tuple[_CompiledFinding, frozenset[str], tuple[frozenset[str], ...]]]]] = (
        field(default_factory=dict)
    )
    # literal → (site group, findings of that group that need the literal)
    literal_owners: dict[str, list[tuple[str, list[_CompiledFinding]]]] = field(default_factory=dict)
    # For questionnaire history entries: the forward negation cues, and the clause separators except the
    # enumeration comma ("否认高血压、糖尿病史" keeps both under the negation).
    history_negation_cues: tuple[str, ...] = ()
    history_separators: frozenset[str] = frozenset()
    # exam item label → (its own site, the side it names)
    item_context: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)


_ASCII_LETTER = re.compile(r"[A-Za-z]")


def _compile(pattern: str) -> re.Pattern[str]:
    """Case-insensitive only where the pattern has Latin letters (CDFI, BI-RADS): case folding slows the matching of
    the many all-Chinese patterns for nothing. Escapes (\\d, \\s) and group syntax (?P<name>) are not text.
    Led by a lookahead for its first characters (`_led_by_first_chars`)."""
    text = re.sub(r"\\.|\(\?P?<[A-Za-z_]+>", "", pattern)
    return _led_by_first_chars(pattern, re.IGNORECASE if _ASCII_LETTER.search(text) else 0)


def compile_lexicon(kb: KnowledgeBase) -> CompiledLexicon:
    site_alternatives: list[str] = []
    site_group_ids: list[str] = []
    # One alternation with a named group per site; longer literal patterns first so that 左肾 beats 肾.
    entries: list[tuple[str, str]] = []
    for site in kb.sites.values():
        for pattern in site.patterns:
            entries.append((site.id, pattern))
    entries.sort(key=lambda e: -len(e[1]))
    for i, (site_id, pattern) in enumerate(entries):
        site_alternatives.append(f"(?P<s{i}>{pattern})")
        site_group_ids.append(site_id)
    site_pattern = re.compile("|".join(site_alternatives), re.IGNORECASE) if site_alternatives else re.compile(r"(?!)")

    item_sites: dict[str, str] = {}
    for site in kb.sites.values():
        for label in site.items:
            item_sites[normalize_label(label)] = site.id

    compiled: list[_CompiledFinding] = []
    siteless: list[_CompiledFinding] = []
    by_site: dict[str, list[_CompiledFinding]] = {}
    for fd in kb.findings.values():
        cf = _CompiledFinding(
            index=len(compiled),
            definition=fd,
            pattern=_compile("|".join(f"(?:{p})" for p in fd.patterns)),
            exclude=_compile("|".join(f"(?:{p})" for p in fd.exclude)) if fd.exclude else None,
            sites=frozenset(fd.sites),
            literals=required_literals(list(fd.patterns)),
            clauses=_split_clauses(required_literal_clauses(list(fd.patterns))),
        )
        compiled.append(cf)
        if not fd.sites:
            siteless.append(cf)
        for s in fd.sites:
            by_site.setdefault(s, []).append(cf)

    group_always: dict[str, list[_CompiledFinding]] = {}
    literal_maps: dict[str, dict[str, list[_CompiledFinding]]] = {}
    for cf in compiled:
        for group in cf.definition.sites or [""]:
            if cf.literals is None:
                group_always.setdefault(group, []).append(cf)
            else:
                for lit in cf.literals:
                    literal_maps.setdefault(group, {}).setdefault(lit, []).append(cf)
    group_literals = {group: list(m.items()) for group, m in literal_maps.items()}
    site_patterns = [
        _CompiledSitePattern(site_id, _compile(pattern), required_literals([pattern])) for site_id, pattern in entries
    ]
    site_literal_map: dict[str, list[_CompiledSitePattern]] = {}
    for sp in site_patterns:
        for lit in sp.literals or ():
            site_literal_map.setdefault(lit, []).append(sp)

    ctx = kb.context.context
    forward = sorted(((c.cue, c.max_chars) for c in ctx.negation if c.direction == "forward"), key=lambda c: -len(c[0]))
    backward = sorted(
        ((c.cue, c.max_chars) for c in ctx.negation if c.direction == "backward"), key=lambda c: -len(c[0])
    )
    grades = sorted(((g.word, g.grade, g.rank) for g in kb.context.attributes.grades), key=lambda g: -len(g[0]))
    lexicon = CompiledLexicon(
        kb_version=kb.version,
        sites=kb.sites,
        site_pattern=site_pattern,
        site_group_ids=site_group_ids,
        site_patterns=site_patterns,
        item_sites=item_sites,
        findings=compiled,
        siteless=siteless,
        by_site=by_site,
        group_always=group_always,
        group_literals=group_literals,
        site_literals=list(site_literal_map.items()),
        site_always=[sp for sp in site_patterns if sp.literals is None],
        forward_cues=forward,
        backward_cues=backward,
        terminators=list(ctx.terminators),
        pseudo=list(ctx.pseudo_negation),
        uncertainty=list(ctx.uncertainty),
        incomplete=_led_by_first_chars("|".join(f"(?:{p})" for p in ctx.incomplete)),
        separators=frozenset(ctx.separators),
        grades=grades,
        grade_ranks={g.grade: g.rank for g in kb.context.attributes.grades},
        by_id={cf.definition.id: cf.definition for cf in compiled},
        counts=[(c.word, c.count) for c in kb.context.attributes.counts],
        bilateral=re.compile("|".join(kb.context.attributes.bilateral)),
        item_sides={
            normalize_label(label): side for site in kb.sites.values() for label, side in site.item_sides.items()
        },
        scope_closer=re.compile("|".join(f"(?:{p})" for p in ctx.scope_closers)) if ctx.scope_closers else None,
        headings=(
            re.compile("(?:" + "|".join(sorted(map(re.escape, ctx.headings), key=len, reverse=True)) + r"):(?!\d)")
            if ctx.headings
            else None
        ),
        group_literal_map=literal_maps,
        site_literal_order={lit: i for i, (lit, _owners) in enumerate(site_literal_map.items())},
    )
    lexicon.history_negation_cues = tuple(cue for cue, _ in forward)
    lexicon.history_separators = lexicon.separators - {"、"}
    for group, literal_map in literal_maps.items():
        for lit, owners in literal_map.items():
            lexicon.literal_owners.setdefault(lit, []).append((group, owners))
    lexicon.group_triggers = _triggers(compiled)
    incomplete_literals = required_literals(list(ctx.incomplete)) if ctx.incomplete else None
    lexicon.incomplete_literals = frozenset(incomplete_literals) if incomplete_literals is not None else None
    literals = (
        [lit for m in literal_maps.values() for lit in m]
        + list(site_literal_map)
        + sorted(
            {lit for cf in compiled for must, sets in cf.clauses or () for lits in (must, *sets) for lit in lits}
        )
        + sorted(lexicon.incomplete_literals or ())
    )
    lexicon.literal_chars = frozenset(lit for lit in literals if len(lit) == 1)
    lexicon.literal_automaton = _automaton([lit for lit in literals if len(lit) > 1])
    roles: dict[str, _ContextRoles] = {}
    for order, (cue, max_chars) in enumerate(forward):
        roles.setdefault(cue, _ContextRoles()).forward.append((order, max_chars))
    for order, (cue, max_chars) in enumerate(backward):
        roles.setdefault(cue, _ContextRoles()).backward.append((order, max_chars))
    for order, (word, grade, _rank) in enumerate(grades):
        roles.setdefault(word, _ContextRoles()).grades.append((order, grade))
    for cue in lexicon.uncertainty:
        roles.setdefault(cue, _ContextRoles()).uncertainty += 1
    for rank, (word, count) in enumerate(lexicon.counts):
        roles.setdefault(word, _ContextRoles()).counts.append((rank, count))
    lexicon.context_roles = roles
    lexicon.context_automaton = _automaton(
        [cue for cue, _ in forward + backward]
        + lexicon.pseudo
        + lexicon.uncertainty
        + [word for word, _grade, _rank in grades]
        + [word for word, _count in lexicon.counts]
    )
    return lexicon


def _selectivity(literals: frozenset[str]) -> tuple[int, int]:
    """Longer shortest literal first (rarer), then fewer literals."""
    return (min(len(x) for x in literals), -len(literals))


def _triggers(
    compiled: list[_CompiledFinding],
) -> dict[str, dict[str, list[tuple[_CompiledFinding, frozenset[str], tuple[frozenset[str], ...]]]]]:
    """Per site group, trigger literal → alternatives. An alternative is triggered by the longest literal it needs
    on its own, else by each literal of its most selective set: it cannot match unless one of its triggers occurs, so
    a text is checked only against the alternatives its literals trigger. (Findings without clauses are always
    tried: `group_always`.) A finding whose clauses are met has one of its `literals` present too, since those are
    one requirement of each alternative."""
    out: dict[str, dict[str, list[tuple[_CompiledFinding, frozenset[str], tuple[frozenset[str], ...]]]]] = {}
    for cf in compiled:
        if cf.clauses is None:
            continue
        for group in cf.definition.sites or [""]:
            by_literal = out.setdefault(group, {})
            for must, sets in cf.clauses:
                best: frozenset[str] = frozenset({max(sorted(must), key=len)}) if must else max(sets, key=_selectivity)
                for key in sorted(best):
                    by_literal.setdefault(key, []).append((cf, must, sets))
    return out


def _automaton(words: list[str]) -> Any:
    """An Aho–Corasick automaton whose matches carry the word itself (every occurrence, overlapping ones too)."""
    automaton = ahocorasick.Automaton()
    for word in dict.fromkeys(words):
        if word:
            automaton.add_word(word, word)
    if len(automaton) == 0:
        automaton.add_word("\x00\x00never", "\x00\x00never")
    automaton.make_automaton()
    return automaton


_LEXICON_CACHE: dict[int, CompiledLexicon] = {}


def lexicon_for(kb: KnowledgeBase) -> CompiledLexicon:
    cached = _LEXICON_CACHE.get(id(kb))
    if cached is None or cached.kb_version != kb.version:
        cached = compile_lexicon(kb)
        _LEXICON_CACHE[id(kb)] = cached
    return cached


_SENTENCE_BREAK = re.compile("[" + re.escape(_SENTENCE_END) + "]")


@lru_cache(maxsize=8)
def _break_pattern(separators: frozenset[str]) -> re.Pattern[str]:
    """One character class of the one-character separators (a longer one can never equal a character)."""
    chars = sorted(s for s in separators if len(s) == 1)
    return re.compile("[" + "".join(re.escape(c) for c in chars) + "]") if chars else re.compile(r"(?!)")


@dataclass(slots=True)
class _TextBreaks:
    """Clause and sentence boundaries of one text, computed once and searched by bisection."""

    length: int
    clause: list[int]
    sentence: list[int]
    # Negation scope: clauses, except that an enumeration comma keeps a list under its cue (无压痛、反跳痛).
    negation: list[int]

    @classmethod
    def of(cls, text: str, separators: frozenset[str]) -> _TextBreaks:
        clause = [m.start() for m in _break_pattern(separators).finditer(text)]
        sentence = [m.start() for m in _SENTENCE_BREAK.finditer(text)]
        negation = [i for i in clause if text[i] != "、"]
        return cls(len(text), clause, sentence, negation)

    def _bounds(self, positions: list[int], pos: int) -> tuple[int, int]:
        k = bisect_left(positions, pos)
        start = positions[k - 1] + 1 if k > 0 else 0
        # A stop character at `pos` itself ends the span there (the span is empty on that side).
        end = positions[k] if k < len(positions) else self.length
        return start, end

    def clause_of(self, pos: int) -> tuple[int, int]:
        return self._bounds(self.clause, pos)

    def negation_scope_of(self, pos: int) -> tuple[int, int]:
        return self._bounds(self.negation, pos)

    def sentence_of(self, pos: int) -> tuple[int, int]:
        return self._bounds(self.sentence, pos)


class _Runs:
    """The matches of one attribute pattern in one sentence, scanned once, and what a scan starting at any later
    position would find without scanning the rest of the sentence again.

    `finditer(text, p, end)` tries every position from p on; the sentence scan from its start tried every position
    except those strictly inside one of its own matches. So a scan from p finds the sentence scan's matches, except
    while p (or the end of a match found from p) lies inside one of them: only those few positions are tried anew.
    The patterns have no anchors or lookbehinds, so where a scan starts does not change what matches at a position.
    """

    __slots__ = ("end", "matches", "pattern", "starts", "text")

    def __init__(self, pattern: re.Pattern[str], text: str, start: int, end: int, possible: bool = True) -> None:
        self.pattern = pattern
        self.text = text
        self.end = end
        # `possible` False: the text lacks a character every match needs, so nothing can match anywhere in it.
        self.matches = list(pattern.finditer(text, start, end)) if possible else []
        self.starts = [m.start() for m in self.matches]

    def scan_from(self, p: int) -> tuple[list[re.Match[str]], int]:
        """The matches a scan from `p` finds before it joins the sentence scan, and the index where it joins."""
        extra: list[re.Match[str]] = []
        while True:
            k = bisect_right(self.starts, p) - 1  # the last sentence match starting at or before p
            if k >= 0 and self.starts[k] == p:
                return extra, k
            if k < 0 or p >= self.matches[k].end():
                return extra, k + 1
            # p lies inside match k: the positions from p to its end were never tried by the sentence scan.
            inner_end = self.matches[k].end()
            found = None
            for x in range(p, inner_end):
                found = self.pattern.match(self.text, x, self.end)
                if found is not None:
                    break
            if found is None:
                p = inner_end
            else:
                extra.append(found)
                p = found.end() if found.end() > found.start() else found.end() + 1


def _sizes_of(m: re.Match[str], pair: bool) -> float | None:
    """Largest size in mm of one size match (None when it has no usable unit)."""
    if not pair:
        return _to_mm(float(m.group(1)), m.group(2), None)
    default_unit = m.group(6) or m.group(4) or m.group(2)
    best: float | None = None
    for value, unit in ((m.group(1), m.group(2)), (m.group(3), m.group(4)), (m.group(5), m.group(6))):
        if value is None:
            continue
        mm = _to_mm(float(value), unit, default_unit)
        if mm is not None and (best is None or mm > best):
            best = mm
    return best


class _SizeRuns:
    """Sizes of one sentence: the largest size from any position to the sentence end, in time independent of the
    sentence length (a long unbroken text would otherwise be rescanned for every finding in it)."""

    __slots__ = ("pairs", "runs", "suffix")

    def __init__(self, text: str, start: int, end: int, pair_possible: bool, single_possible: bool) -> None:
        self.runs = (
            _Runs(_SIZE_PAIR, text, start, end, pair_possible),
            _Runs(_SIZE_SINGLE, text, start, end, single_possible),
        )
        self.suffix: list[list[float | None]] = []
        for pair, runs in zip((True, False), self.runs, strict=True):
            suffix: list[float | None] = [None] * (len(runs.matches) + 1)
            for i in range(len(runs.matches) - 1, -1, -1):
                value, after = _sizes_of(runs.matches[i], pair), suffix[i + 1]
                suffix[i] = value if after is None or (value is not None and value > after) else after
            self.suffix.append(suffix)

    def largest_from(self, p: int) -> float | None:
        best: float | None = None
        for pair, runs, suffix in ((True, self.runs[0], self.suffix[0]), (False, self.runs[1], self.suffix[1])):
            if not runs.starts:
                continue  # no size of this kind in the sentence, and so none from p either
            extra, joined = runs.scan_from(p)
            value = suffix[joined]
            if value is not None and (best is None or value > best):
                best = value
            for m in extra:
                value = _sizes_of(m, pair)
                if value is not None and (best is None or value > best):
                    best = value
        return best


_NO_SIZES = _SizeRuns("", 0, 0, False, False)
_NO_RATES = _Runs(_RATE, "", 0, 0, False)
# Characters every match needs (case-insensitive patterns): a size pair one of the multiplication signs, a single
# size a unit with m (mm, cm) or 米, a heart rate 次 or bpm.
_PAIR_GATE = re.compile("[x×*X✕]")
_SINGLE_GATE = re.compile("[mM米]")
_RATE_GATE = re.compile("次|bpm", re.IGNORECASE)
_WORD = itemgetter(1)  # the word of an automaton hit (end index, word)
_FIRST = itemgetter(0)
_SIDE_EVENT = re.compile(r"[左右双]|两(?=侧)")
_MISSING = object()


class _TextScan:
    """Everything about one normalized text that the per-match steps ask for, computed once per text: clause and
    sentence boundaries, organ mentions, every occurrence of every context word, side words, and per-sentence
    attribute scans. Each per-match question is then a bisection instead of a scan of the clause or sentence."""

    __slots__ = (
        "backward",
        "categories",
        "counted",
        "exclude_last",
        "forward",
        "gates",
        "grades",
        "lex",
        "mention_starts",
        "mentions",
        "occ",
        "rates",
        "sides",
        "sizes",
        "tb",
        "text",
        "uncertain",
    )

    def __init__(self, lex: CompiledLexicon, text: str, lowered: str, mentions: list[tuple[int, int, str]]) -> None:
        self.lex = lex
        self.text = text
        self.tb = _TextBreaks.of(text, lex.separators)
        self.mentions = mentions
        self.mention_starts = [a for a, _b, _s in mentions]
        occ: dict[str, list[int]] = {}
        for last, word in lex.context_automaton.iter(text):
            occ.setdefault(word, []).append(last - len(word) + 1)
        self.occ = occ
        # Only the cues and grade words that occur in this text, each with its sorted start positions, in the KB's
        # order (a grade tie goes to the word listed first); built from the few words found, not from every word
        # of the KB.
        forward: list[tuple[int, str, int, list[int]]] = []
        backward: list[tuple[int, str, int, list[int]]] = []
        grades: list[tuple[int, str, str, list[int]]] = []
        # Uncertainty cues and count words as (start, end[, rank in the KB's list, count]) sorted by start.
        uncertain: list[tuple[int, int]] = []
        counted: list[tuple[int, int, int, int | str]] = []
        roles_of = lex.context_roles
        for word, starts in occ.items():
            roles = roles_of.get(word)
            if roles is None:
                continue  # a pseudo-negation phrase only
            for order, max_chars in roles.forward:
                forward.append((order, word, max_chars, starts))
            for order, max_chars in roles.backward:
                backward.append((order, word, max_chars, starts))
            for order, grade in roles.grades:
                grades.append((order, word, grade, starts))
            n = len(word)
            for _ in range(roles.uncertainty):
                for p in starts:
                    uncertain.append((p, p + n))
            for rank, value in roles.counts:
                for p in starts:
                    counted.append((p, p + n, rank, value))
        if len(forward) > 1:
            forward.sort(key=_FIRST)
        if len(backward) > 1:
            backward.sort(key=_FIRST)
        if len(grades) > 1:
            grades.sort(key=_FIRST)
        uncertain.sort()
        counted.sort()
        self.forward = [(cue, m, starts) for _order, cue, m, starts in forward]
        self.backward = [(cue, m, starts) for _order, cue, m, starts in backward]
        self.grades = [(word, grade, starts) for _order, word, grade, starts in grades]
        self.uncertain = uncertain
        self.counted = counted
        # Characters without which an attribute pattern cannot match anywhere in the text: size pairs need a
        # multiplication sign, single sizes a unit (mm, cm, 米), heart rates 次 or bpm, categories RADS or TR.
        self.gates = (
            _PAIR_GATE.search(text) is not None,
            "m" in lowered or "米" in text,
            "次" in text or "bpm" in lowered,
            "rad" in lowered or "tr" in lowered,
        )
        self.sides = [m.start() for m in _SIDE_EVENT.finditer(text)]
        self.sizes: dict[int, _SizeRuns] = {}
        self.rates: dict[int, _Runs] = {}
        self.categories: dict[int, re.Match[str] | None] = {}
        self.exclude_last: dict[tuple[int, int], int] = {}

    def occurs_within(self, word: str, lo: int, hi: int) -> bool:
        """Whether `word` occurs wholly inside text[lo:hi]."""
        starts = self.occ.get(word)
        if not starts:
            return False
        k = bisect_left(starts, lo)
        return k < len(starts) and starts[k] + len(word) <= hi

    def active_site(self, start: int, default: str | None) -> str | None:
        """The organ of the nearest mention starting at or before `start`, else the exam item's own."""
        k = bisect_right(self.mention_starts, start) - 1
        return self.mentions[k][2] if k >= 0 else default

    def sites_inside(self, start: int, end: int) -> set[str]:
        inside: set[str] = set()
        k = bisect_left(self.mention_starts, start)
        while k < len(self.mentions) and self.mentions[k][0] < end:
            if self.mentions[k][1] <= end:
                inside.add(self.mentions[k][2])
            k += 1
        return inside

    def last_mention_between(self, lo: int, hi: int) -> int | None:
        """Start of the last organ mention starting in [lo, hi)."""
        k = bisect_left(self.mention_starts, hi) - 1
        return self.mention_starts[k] if k >= 0 and self.mention_starts[k] >= lo else None

    def mention_between(self, lo: int, hi: int) -> bool:
        k = bisect_left(self.mention_starts, lo)
        return k < len(self.mention_starts) and self.mention_starts[k] < hi

    def side_lower(self, start: int, sentence_start: int) -> int:
        """Where to stop looking back for a side word: the sentence start, or earlier if the organ was named
        earlier."""
        if self.mention_starts and self.mention_starts[0] <= start:
            return min(sentence_start, self.mention_starts[0])
        return sentence_start

    def excluded(self, cf: _CompiledFinding, seg_start: int, s_start: int, s_end: int) -> bool:
        """Whether `cf.exclude` matches in text[seg_start:s_end] (a search from seg_start within the sentence)."""
        assert cf.exclude is not None
        if s_end - seg_start <= 256:
            return cf.exclude.search(self.text, seg_start, s_end) is not None
        # A long sentence: find once the last position in it where the exclude matches; a search from seg_start
        # succeeds exactly when that position is at or after seg_start.
        key = (cf.index, s_start)
        last = self.exclude_last.get(key)
        if last is None:
            last = -1
            p = s_start
            while p <= s_end:
                m = cf.exclude.search(self.text, p, s_end)
                if m is None:
                    break
                last = m.start()
                p = last + 1
            self.exclude_last[key] = last
        return last >= seg_start

    def category(self, s_start: int, s_end: int) -> re.Match[str] | None:
        found = self.categories.get(s_start, _MISSING)
        if found is _MISSING:
            found = _CATEGORY.search(self.text, s_start, s_end) if self.gates[3] else None
            self.categories[s_start] = found
        assert found is None or isinstance(found, re.Match)
        return found


def _pseudo_at(lex: CompiledLexicon, text: str, cue: str, pos: int, lo: int, hi: int) -> bool:
    """Whether the cue at `pos` is part of a pseudo-negation phrase lying wholly inside text[lo:hi]."""
    for phrase in lex.pseudo:
        k = phrase.find(cue)
        if k >= 0 and pos - k >= lo and pos - k + len(phrase) <= hi and text.startswith(phrase, pos - k):
            return True
    return False


def _is_negated(scan: _TextScan, start: int, end: int) -> bool:
    """A forward cue before the match or a backward cue after it, in the match's negation scope (clause), within
    the cue's reach, with no terminator between and not part of a pseudo-negation phrase."""
    lex, text = scan.lex, scan.text
    c_start, c_end = scan.tb.negation_scope_of(start)
    for cue, max_chars, starts in scan.forward:
        n = len(cue)
        # The cue lies wholly before the match, at most `max_chars` characters before it.
        k = bisect_left(starts, max(c_start, start - n - max_chars))
        while k < len(starts) and starts[k] + n <= start:
            pos = starts[k]
            k += 1
            if _pseudo_at(lex, text, cue, pos, c_start, start):
                continue
            gap = text[pos + n : start]
            if any(t in gap for t in lex.terminators):
                continue
            if lex.scope_closer is not None:
                closed = lex.scope_closer.match(gap)
                if closed is not None and closed.end() < len(gap) and gap[closed.end()] not in _CONJUNCTIONS:
                    # 未见异常 is complete in itself; what follows (右肾囊肿) is outside its scope — unless a
                    # conjunction carries it on (未见异常血流信号及明显充盈缺损).
                    continue
            return True
    for cue, max_chars, starts in scan.backward:
        n = len(cue)
        k = bisect_left(starts, end)
        while k < len(starts) and starts[k] - end <= max_chars and starts[k] + n <= c_end:
            cue_at = starts[k]
            k += 1
            if _pseudo_at(lex, text, cue, cue_at, end, c_end):
                continue
            if any(t in text[end:cue_at] for t in lex.terminators):
                continue
            # A backward cue after another organ is named belongs to that organ (…结节左侧甲状腺未见异常).
            if scan.mention_between(end, cue_at):
                continue
            return True
    return False


def _is_uncertain(scan: _TextScan, start: int) -> bool:
    """An uncertainty cue wholly inside the match's clause."""
    if not scan.uncertain:
        return False
    c_start, c_end = scan.tb.clause_of(start)
    k = bisect_left(scan.uncertain, (c_start, -1))
    while k < len(scan.uncertain) and scan.uncertain[k][0] < c_end:
        if scan.uncertain[k][1] <= c_end:
            return True
        k += 1
    return False


def _nearest_grade(scan: _TextScan, start: int, c_start: int, c_end: int, blank: tuple[int, int]) -> str | None:
    """The grade word nearest to `start` in the clause, outside the blanked category span; ties go to the word
    listed first (longest first), as a scan of the clause word by word would decide."""
    best: tuple[int, str] | None = None
    b_start, b_end = blank
    for word, grade, starts in scan.grades:
        n = len(word)
        # A usable occurrence at pos lies wholly in the clause (c_start <= pos, pos + n <= c_end) and outside the
        # blanked span (pos + n <= b_start or pos >= b_end).
        k = bisect_left(starts, start)
        distance: int | None = None
        i = k - 1
        while i >= 0 and starts[i] >= c_start:
            pos = starts[i]
            if pos + n <= c_end and (pos + n <= b_start or pos >= b_end):
                distance = start - pos
                break
            i -= 1
        i = k
        while i < len(starts) and starts[i] + n <= c_end:
            pos = starts[i]
            if c_start <= pos and (pos + n <= b_start or pos >= b_end):
                if distance is None or pos - start < distance:
                    distance = pos - start
                break
            i += 1
        if distance is not None and (best is None or distance < best[0]):
            best = (distance, grade)
    return None if best is None else best[1]


def _read_attrs(scan: _TextScan, start: int) -> dict[str, Any]:
    text, tb = scan.text, scan.tb
    s_start, s_end = tb.sentence_of(start)
    c_start, c_end = tb.clause_of(start)
    attrs: dict[str, Any] = {}
    # Sizes: from the match onwards to the end of its sentence (the lesion is described, then measured).
    sizes = scan.sizes.get(s_start)
    if sizes is None:
        # The text-wide gates, narrowed to the sentence: a sentence without a multiplication sign (or a unit) has
        # no size pair (or single size), whatever the rest of the text holds.
        pair = scan.gates[0] and _PAIR_GATE.search(text, s_start, s_end) is not None
        single = scan.gates[1] and _SINGLE_GATE.search(text, s_start, s_end) is not None
        sizes = scan.sizes[s_start] = _SizeRuns(text, s_start, s_end, pair, single) if pair or single else _NO_SIZES
    size = sizes.largest_from(start)
    if size is not None:
        attrs["size_mm"] = size
    # Count: the count word listed first in the KB among those wholly inside the window.
    if scan.counted:
        lo = max(s_start, start - 12)
        k = bisect_left(scan.counted, (lo, -1))
        chosen: tuple[int, int | str] | None = None
        while k < len(scan.counted) and scan.counted[k][0] < s_end:
            _p, q, rank, value = scan.counted[k]
            if q <= s_end and (chosen is None or rank < chosen[0]):
                chosen = (rank, value)
            k += 1
        if chosen is not None:
            attrs["count"] = chosen[1]
    # Grade: the nearest grade word in the clause (轻度脂肪肝 / 脂肪肝（中度）); "TI-RADS Ⅲ级" is a category, not
    # a grade, so the category's span is left out of the grade search.
    cat = scan.category(s_start, s_end)
    blank = (cat.start(), cat.end()) if cat is not None and c_start <= cat.start() < c_end else (0, 0)
    grade = _nearest_grade(scan, start, c_start, c_end, blank)
    if grade is not None:
        attrs["grade"] = grade
    if cat is not None:
        system = _CATEGORY_NAMES.get(re.sub(r"[^a-z]", "", cat.group(1).lower()), cat.group(1).upper())
        level = _ROMAN.get(cat.group(3).upper(), cat.group(3).upper()) + cat.group(4).upper()
        if cat.group(2):
            level = _highest_listed_level(text, cat.end(), s_end, level)
        attrs["category"] = f"{system} {level}"
    rates = scan.rates.get(s_start)
    if rates is None:
        possible = scan.gates[2] and _RATE_GATE.search(text, s_start, s_end) is not None
        rates = scan.rates[s_start] = _Runs(_RATE, text, s_start, s_end) if possible else _NO_RATES
    extra, joined = rates.scan_from(start)
    rate = extra[0] if extra else (rates.matches[joined] if joined < len(rates.matches) else None)
    if rate is not None:
        attrs["rate_bpm"] = int(rate.group(1))
    return attrs


def _highest_listed_level(text: str, pos: int, end: int, level: str) -> str:
    """The highest of `level` and the per-side categories listed right after it (see _LISTED_SIDE_CATEGORY)."""
    best, best_rank = level, category_rank(level) or 0.0
    while (m := _LISTED_SIDE_CATEGORY.match(text, pos, end)) is not None:
        listed = m.group(1) + m.group(2).upper()
        rank = category_rank(listed) or 0.0
        if rank > best_rank:
            best, best_rank = listed, rank
        pos = m.end()
    return best


def _side_near(scan: _TextScan, start: int, end: int, lower: int) -> str | None:
    """Side word nearest before the match within its sentence, or inside the match."""
    lex, text = scan.lex, scan.text
    inside = text[start:end]
    # "双" alone is not always bilateral (双肾盂 is a duplex kidney): only the KB's bilateral words count.
    if lex.bilateral.search(inside):
        return "双侧"
    if "左右" in inside or ("左" in inside and "右" in inside):
        return "双侧"
    for word, side in (("左", "左"), ("右", "右")):
        if word in inside:
            return side
    k = bisect_left(scan.sides, start) - 1
    if k < 0 or scan.sides[k] < lower:
        return None
    i = scan.sides[k]
    ch = text[i]
    if ch == "左":
        return "左"
    if ch == "右":
        return "双侧" if i > 0 and text[i - 1] == "左" else "右"
    return "双侧"



# Checkup texts are templates: the same wording recurs across thousands of people (Meinian: 63k distinct texts in
# 579k), so results are memoized per (lexicon, item, text). Findings are copied on the way out because callers
# annotate them.
_RESULT_CACHE: OrderedDict[tuple[int, str, str, str], ExtractionResult] = OrderedDict()
_RESULT_CACHE_SIZE = 20000


def clear_extraction_cache() -> None:
    _RESULT_CACHE.clear()


def _copy_result(result: ExtractionResult) -> ExtractionResult:
    return ExtractionResult(
        findings=[_copy_finding(f) for f in result.findings],
        incomplete=result.incomplete,
        site=result.site,
    )


def _copy_finding(f: Finding) -> Finding:
    return Finding(
        finding_id=f.finding_id,
        name=f.name,
        icd10=f.icd10,
        site=f.site,
        attrs=dict(f.attrs),
        source_item=f.source_item,
        span=f.span,
        evidence_text=f.evidence_text,
        uncertain=f.uncertain,
        conclusion=f.conclusion,
        critical=f.critical,
        text_index=f.text_index,
    )


def extract_text(kb: KnowledgeBase, item: str, text: str) -> ExtractionResult:
    """Findings of one text. `item` is the exam item label (e.g. 肝脏, 超声提示, 心电图, or a Meinian table id)."""
    lex = lexicon_for(kb)
    key = (id(lex), lex.kb_version, item, text)
    cached = _RESULT_CACHE.get(key)
    if cached is not None:
        _RESULT_CACHE.move_to_end(key)
        return _copy_result(cached)
    result = _extract_uncached(lex, item, text)
    _RESULT_CACHE[key] = _copy_result(result)
    if len(_RESULT_CACHE) > _RESULT_CACHE_SIZE:
        _RESULT_CACHE.popitem(last=False)
    return result


def _extract_uncached(lex: CompiledLexicon, item: str, text: str, *, prefilter: bool = True) -> ExtractionResult:
    """`prefilter=False` tries every pattern of the active sites, without the required-literal pre-filter: the
    reference the pre-filter must agree with."""
    norm = _normalize_chars(text, lex.headings)
    known = lex.item_context.get(item)
    if known is None:
        if len(lex.item_context) > 10000:
            lex.item_context.clear()
        known = lex.item_context[item] = _item_context(lex, item)
    default_site, item_side = known

    lowered = norm.lower()
    dominant_site = default_site if default_site is not None and lex.sites[default_site].dominant else None
    # The required literals present in the text, in one pass (see literals.py); "" stands for "always present".
    present: set[str] | None = None
    if prefilter:
        present = set(map(_WORD, lex.literal_automaton.iter(lowered)))
        present.update(lex.literal_chars.intersection(lowered))
        present.add("")
    mentions = _site_mentions(lex, norm, present)
    mentioned = {s for _, _, s in mentions}

    # Only findings of the active sites whose required words occur in the text are tried.
    chosen: dict[int, _CompiledFinding] = {}
    groups = {"", *mentioned}
    if default_site is not None:
        groups.add(default_site)
    for group in groups:
        for cf in lex.group_always.get(group, ()):
            chosen[cf.index] = cf
    if present is None:
        for group in groups:
            for owners in lex.group_literal_map.get(group, {}).values():
                for cf in owners:
                    chosen[cf.index] = cf
    else:
        # A finding is a candidate when one of its alternatives has every literal it needs (`clauses`); each
        # alternative is looked at only when its trigger literal (one it cannot match without) is present.
        for group in groups:
            triggers = lex.group_triggers.get(group)
            if triggers is None:
                continue
            for word in triggers.keys() & present:
                for cf, must, sets in triggers[word]:
                    if cf.index in chosen or not must <= present:
                        continue
                    for lits in sets:
                        if present.isdisjoint(lits):
                            break
                    else:
                        chosen[cf.index] = cf
    candidates = [chosen[i] for i in sorted(chosen)]

    scan: _TextScan | None = None
    matches: list[_Match] = []
    for cf in candidates:
        for m in cf.pattern.finditer(norm):
            start, end = m.start(), m.end()
            if start == end:
                continue
            if scan is None:
                scan = _TextScan(lex, norm, lowered, mentions)
            site = scan.active_site(start, default_site)
            nearest = site
            if cf.sites and site not in cf.sites and dominant_site is not None and dominant_site in cf.sites:
                # Physical-exam and ECG items keep their own site: 心率, 双肺 or 肝 named in an internal-medicine
                # exam do not turn it into an ECG or an ultrasound text.
                site = dominant_site
            if cf.sites and site not in cf.sites:
                # A site mentioned inside the match itself (e.g. 胆囊结石 in a liver text) also counts.
                hit = cf.sites & scan.sites_inside(start, end)
                if not hit:
                    continue
                site = next(iter(hit))
            s_start, s_end = scan.tb.sentence_of(start)
            if cf.exclude is not None:
                # Excludes look at the match's sentence from the last organ mention before it: in
                # 左肾囊肿伴钙化左肾结晶 the cyst's calcification does not veto the second diagnosis.
                seg_start = scan.last_mention_between(s_start, start)
                if scan.excluded(cf, s_start if seg_start is None else seg_start, s_start, s_end):
                    continue
            if _is_negated(scan, start, end):
                continue
            side: str | None = None
            if (site is not None and lex.sites[site].paired) or (nearest is not None and lex.sites[nearest].paired):
                side = _side_near(scan, start, end, scan.side_lower(start, s_start)) or item_side
            attrs = _read_attrs(scan, start)
            matches.append(_Match(cf, start, end, site, side, attrs, _is_uncertain(scan, start)))

    findings = _merge(lex, matches, item, text)
    # A text without any literal the incomplete-view phrases need cannot match them.
    possible = present is None or lex.incomplete_literals is None or not present.isdisjoint(lex.incomplete_literals)
    incomplete = possible and lex.incomplete.search(norm) is not None
    return ExtractionResult(findings=findings, incomplete=incomplete, site=default_site)


def _split_clauses(
    clauses: tuple[tuple[frozenset[str], ...], ...] | None,
) -> tuple[tuple[frozenset[str], tuple[frozenset[str], ...]], ...] | None:
    """Per alternative: the single literals it needs (one subset test) apart from the sets of alternatives."""
    if clauses is None:
        return None
    return tuple(
        (frozenset(next(iter(r)) for r in branch if len(r) == 1), tuple(r for r in branch if len(r) > 1))
        for branch in clauses
    )


def _item_context(lex: CompiledLexicon, item: str) -> tuple[str | None, str | None]:
    """The site an exam item names (肝脏, 左肾超声, 甲状腺彩超) and the side it names (左肾), if any."""
    item_key = normalize_label(item) if item else ""
    default_site = lex.item_sites.get(item_key)
    if default_site is None and item_key:
        # Labels such as "左肾超声" or "甲状腺彩超" name their organ inside.
        m = lex.site_pattern.search(item_key)
        if m is not None and m.lastgroup is not None:
            default_site = lex.site_group_ids[int(m.lastgroup[1:])]
    item_side = lex.item_sides.get(item_key)
    if item_side is None and item_key[:1] in ("左", "右"):
        item_side = item_key[:1]
    return default_site, item_side


def _mention_order(mention: tuple[int, int, str]) -> tuple[int, int]:
    """Leftmost first, then longest first."""
    return (mention[0], mention[0] - mention[1])


def _site_mentions(lex: CompiledLexicon, norm: str, present: set[str] | None) -> list[tuple[int, int, str]]:
    """Organ mentions, leftmost-longest and non-overlapping (左肾 wins over 肾). `present`: the required literals
    found in the text (None: try every organ pattern)."""
    found: list[tuple[int, int, str]] = []
    active: dict[int, _CompiledSitePattern] = {id(sp): sp for sp in lex.site_always}
    if present is None:
        for _lit, owners in lex.site_literals:
            for sp in owners:
                active[id(sp)] = sp
    else:
        order = lex.site_literal_order
        # The organ literals present (a set intersection in C, not a walk over every present literal), in the
        # KB's order: patterns are run, and equal mentions kept, in that order.
        hits = order.keys() & present
        if hits:
            for k in sorted([order[w] for w in hits]):
                for sp in lex.site_literals[k][1]:
                    active[id(sp)] = sp
    for sp in active.values():
        for m in sp.pattern.finditer(norm):
            start, end = m.span()
            if end > start:
                found.append((start, end, sp.site))
    if len(found) > 1:
        found.sort(key=_mention_order)
    mentions: list[tuple[int, int, str]] = []
    last_end = -1
    for start, end, site in found:
        if start >= last_end:
            mentions.append((start, end, site))
            last_end = end
    return mentions



def _merge(lex: CompiledLexicon, matches: list[_Match], item: str, original: str) -> list[Finding]:
    if not matches:
        return []
    merged: dict[tuple[str, str | None], Finding] = {}
    occurrences: dict[tuple[str, str | None], int] = {}
    for m in sorted(matches, key=lambda x: x.start):
        fd = m.finding.definition
        key = (fd.id, m.side if fd.per_side else None)
        # The match's own dict (built for it by _read_attrs and used nowhere else) becomes the finding's.
        attrs = m.attrs
        if fd.default_grade and "grade" not in attrs:
            attrs["grade"] = fd.default_grade
        if m.side is not None:
            attrs["side"] = m.side
        existing = merged.get(key)
        if existing is None:
            site_name = lex.sites[m.site].name if m.site is not None else None
            merged[key] = Finding(
                finding_id=fd.id,
                name=fd.name,
                icd10=fd.icd10,
                site=site_name,
                attrs=attrs,
                source_item=item,
                span=(m.start, m.end),
                evidence_text=original[m.start : m.end],
                uncertain=m.uncertain,
                conclusion=fd.conclusion,
                critical=fd.critical,
            )
            occurrences[key] = 1
            continue
        occurrences[key] += 1
        ea = existing.attrs
        if "size_mm" in attrs and attrs["size_mm"] > ea.get("size_mm", -1):
            ea["size_mm"] = attrs["size_mm"]
        if "grade" in attrs and "grade" not in ea:
            ea["grade"] = attrs["grade"]
        if "category" in attrs:
            ea["category"] = _higher_category(ea.get("category"), attrs["category"])
        if "count" in attrs and "count" not in ea:
            ea["count"] = attrs["count"]
        if "side" in attrs and ea.get("side") not in (None, attrs["side"]):
            ea["side"] = "双侧"
        existing.uncertain = existing.uncertain and m.uncertain
    # A one-sided mention of a finding already reported on both sides is part of the bilateral finding.
    for (fid, side), f in list(merged.items()):
        both = merged.get((fid, "双侧"))
        if side in ("左", "右") and both is not None:
            size = f.attrs.get("size_mm")
            if isinstance(size, int | float) and size > both.attrs.get("size_mm", -1):
                both.attrs["size_mm"] = size
            # Its category too (双乳结节。BI-RADS分类：右乳4a类): the bilateral finding keeps the highest.
            category = f.attrs.get("category")
            if isinstance(category, str):
                both.attrs["category"] = _higher_category(both.attrs.get("category"), category)
            del merged[(fid, side)]
    suppressed: set[str] = set()
    for f in merged.values():
        suppressed.update(lex.by_id[f.finding_id].suppresses)
    return [f for f in merged.values() if f.finding_id not in suppressed]


def _higher_category(a: str | None, b: str) -> str:
    if a is None:
        return b
    return max(a, b, key=lambda c: c.split()[-1])


def category_rank(category: str | None) -> float | None:
    """Numeric rank of a category such as 'TI-RADS 4A' (4.1) for rule comparisons."""
    if not category:
        return None
    m = re.search(r"(\d)([abcABC]?)$", category)
    if m is None:
        return None
    base = float(m.group(1))
    sub = m.group(2).lower()
    return base + {"": 0.0, "a": 0.1, "b": 0.2, "c": 0.3}[sub]
