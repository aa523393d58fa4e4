"""The verifier: checks a model's answer against the report before anyone sees it. Pure, fast, knowledge as data.

Problem kinds (`VerificationProblem.kind`):

- `schema` — not one JSON object of the fixed shape (see `answer.py`).
- `missing_conclusion` — a conclusion the coverage rule requires is not explained under its exact name. The rule
  (`digest.must_cover`): every critical, class A, class B and disease conclusion. Findings and risk factors may be
  left out; the rendered narrative still lists them with the KB's own explanation.
- `unknown_term` — a `conclusions[].name` that is not a conclusion of the report, or a disease / finding / diagnosis
  word of the vocabulary (KB conclusion names, KB finding names, `narration/serious_terms.yaml`) that the digest does
  not contain. The digest holds the report's conclusions, evidence and the KB's advice for them, so 冠心病 in
  "增加冠心病风险" passes when the KB's explanation of the conclusion says so, and fails when nothing in the report
  mentions it.
- `number_mismatch` — a number followed by a unit (`narration/units.yaml`) that is not a figure of the digest with
  that unit (evidence value, range bound, risk result, follow-up interval, KB advice, lifestyle advice). A figure the
  digest states without a unit (as in "TC≥6.2、LDL-C≥4.1 mmol/L") matches any unit; an interval may be written in
  another calendar unit (12个月 as 1年, 14天 as 2周).
- `negation` — a conclusion of the report called absent, excluded or normal (未见X, 排除X, X正常; cues in
  `narration/negation.yaml`).
- `prescription` — a drug name the digest does not contain, or any dose or regimen (`narration/drugs.yaml`).
- `pii` — an ID number, phone number, e-mail address or record number (the `zhujian.deid` patterns), or one of the
  report's own identifiers (person id, visit id).
- `length` — an empty summary or answer, text that is not mainly Chinese, or more characters than the report can
  need (`max_chars`).

Limits: numbers written in Chinese numerals (三个月) and negations phrased around a cue word (并不存在X的问题) are not
recognised; a vocabulary word the digest mentions only as a risk can be misused as a diagnosis.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import ahocorasick

from zhujian.deid import _EMAIL, _ID15, _ID18, _LANDLINE, _LONG_NUMBER, _MOBILE, _PHONE_CUE, _RECORD_CUE, find_pii
from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.narration.answer import Answer, parse_answer
from zhujian.narration.digest import Digest, identifier_pattern
from zhujian.narration.knowledge import NarrationKnowledge, default_narration_knowledge
from zhujian.narration.model import Verification, VerificationProblem

_RANGE_JOIN = re.compile(r"\s*(?:-|–|—|~|～|至|到|/)\s*")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_LATIN = re.compile(r"[A-Za-z]")
_PARENS = re.compile(r"[（(]([^（）()]+)[）)]")
# Words that are conclusion names in the KB but ordinary words in advice text; never checked as diagnoses.
_NOT_DIAGNOSES = frozenset({"危急值"})
_PII_KINDS = frozenset({"id_number", "phone", "email", "record_number"})
# Every ID, phone and record number has seven digits with at most single separators between them; texts without
# such a run (nearly all) skip the identifier patterns.
_DIGIT_RUN = re.compile(r"\d(?:[\s-]?\d){6}")
_PII_PATTERNS = (_ID18, _ID15, _MOBILE, _PHONE_CUE, _LANDLINE, _LONG_NUMBER, _RECORD_CUE)
_SAME_INTERVAL = (("月", "年", 12.0), ("年", "月", 1 / 12), ("天", "周", 7.0), ("周", "天", 1 / 7))
BASE_MAX_CHARS = 1200
MAX_CHARS_PER_CONCLUSION = 450
MIN_CHINESE_SHARE = 0.6
MIN_LATIN_TO_JUDGE = 20  # fewer Latin letters (mmol/L, LDL-C, OGTT) say nothing about the language of a text
_SNIPPET = 12


def _key(number: str) -> float:
    return round(float(number), 6)


def _snippet(text: str, start: int, end: int) -> str:
    return text[max(0, start - _SNIPPET) : end + _SNIPPET].replace("\n", " ")


def name_terms(name: str) -> list[str]:
    """A conclusion name and the shorter names it contains: 血脂异常（混合型高脂血症） → itself, 血脂异常,
    混合型高脂血症; 肺气肿/肺大疱 → itself, 肺气肿, 肺大疱."""
    terms = [name]
    base = _PARENS.sub("", name).strip()
    if base and base != name:
        terms.append(base)
    terms += [m.group(1).strip() for m in _PARENS.finditer(name)]
    for part in re.split(r"[/、]", base):
        if part != base:
            terms.append(part.strip())
    return [t for t in dict.fromkeys(terms) if len(t) >= 2 and _CJK.search(t)]


@dataclass(frozen=True)
class VerifyContext:
    """What one digest allows, computed once per digest (a retry reuses it)."""

    report_names: frozenset[str]
    required: tuple[str, ...]
    negatable: Any  # an Aho-Corasick automaton: term → conclusion name
    allowed_terms: frozenset[str]
    allowed_numbers: frozenset[tuple[str, float]]
    bare_numbers: frozenset[float]
    allowed_drugs: frozenset[str]
    identifiers: re.Pattern[str] | None  # the report's own ids as whole tokens
    max_chars: int


class Verifier:
    """Checks answers against a digest. Build once per knowledge base (`default_verifier()`); thread-safe."""

    def __init__(self, kb: KnowledgeBase, knowledge: NarrationKnowledge) -> None:
        self.knowledge = knowledge
        vocabulary: set[str] = set()
        for conclusion in kb.conclusions.values():
            if conclusion.category != "risk_factor" and conclusion.name not in _NOT_DIAGNOSES:
                vocabulary.update(name_terms(conclusion.name))
        for finding in kb.findings.values():
            vocabulary.update(name_terms(finding.name))
        vocabulary.update(knowledge.serious_terms.terms)
        self._terms = ahocorasick.Automaton()
        for term in vocabulary:
            self._terms.add_word(term, term)
        self._terms.make_automaton()
        self._drugs = ahocorasick.Automaton()
        for drug in [*knowledge.drugs.agents, *knowledge.drugs.classes]:
            self._drugs.add_word(drug, drug)
        self._drugs.make_automaton()
        # One pattern each: an alternation of all of them would be tried at every character of the text.
        self._doses = tuple(re.compile(p, re.IGNORECASE) for p in knowledge.drugs.dose_patterns)
        self._unit_of: dict[str, str] = {}
        for canonical, variants in knowledge.units.units.items():
            self._unit_of[canonical] = canonical
            for variant in variants:
                self._unit_of[variant] = canonical
        alternatives = sorted(self._unit_of, key=len, reverse=True)
        units = "|".join(
            re.escape(u) + (r"(?![A-Za-z])" if u[-1].isascii() and u[-1].isalpha() else "") for u in alternatives
        )
        # A number and the unit written right after it, in one pass; a match ends after its unit, so digits inside
        # a unit (10^9/L, 1.73m²) are never read as numbers.
        # The look-behind sits after the first digit so that the scan can jump from digit to digit.
        self._number_unit = re.compile(r"(\d(?<![A-Za-z\d.]\d)\d*(?:\.\d+)?)(?:\s?(" + units + "))?")
        neg = knowledge.negation

        def alternation(words: list[str]) -> str:
            return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))

        gap = f"(?:{alternation(neg.gap_words)})*" if neg.gap_words else ""
        # A cue, then only filler words (明显, 确切…), then the term: 未见明显X. And the term, fillers, a cue: X正常.
        self._negated_before = re.compile(f"(?:{alternation(neg.before)}){gap}\\Z")
        self._negated_after = re.compile(f"{gap}(?:{alternation(neg.after)})")
        self._gap = neg.gap
        self._longest_before = max(map(len, neg.before), default=0)
        self._longest_after = max(map(len, neg.after), default=0)

    # -- numbers ------------------------------------------------------------------------------------------------

    def canonical_unit(self, unit: str) -> str:
        return self._unit_of.get(unit.strip(), unit.strip())

    def numbers(self, text: str) -> list[tuple[str, str | None, int, int]]:
        """(number, canonical unit or None, start, end) of every number in a text. A number takes the unit written
        right after it, or the unit of the number it is joined to by a range or ratio sign (3-6个月, 140/90 mmHg).
        Digits inside a unit (10^9/L, 1.73m²) and glued to Latin letters (HbA1c, G2) are not numbers."""
        found: list[tuple[str, str | None, int, int]] = []
        unit_of = self._unit_of
        for match in self._number_unit.finditer(text):
            unit = match.group(2)
            found.append((match.group(1), unit_of[unit] if unit else None, match.start(), match.end()))
        # Range and ratio partners inherit the unit from the right: 3-6个月, 5%-10%, 140/90 mmHg.
        for i in range(len(found) - 2, -1, -1):
            number, unit, start, end = found[i]
            if unit is None:
                _, next_unit, next_start, _ = found[i + 1]
                if next_unit is not None and _RANGE_JOIN.fullmatch(text, end, next_start):
                    found[i] = (number, next_unit, start, end)
        return found

    # -- context ------------------------------------------------------------------------------------------------

    def context(self, digest: Digest) -> VerifyContext:
        allowed_terms: set[str] = set()
        for _end, term in self._terms.iter_long(digest.text):
            allowed_terms.add(term)
            allowed_terms.update(t for _e, t in self._terms.iter(term))
        names = {c["name"] for c in digest.conclusions}
        negatable: list[tuple[str, str]] = []
        for c in digest.conclusions:
            for term in [*name_terms(c["name"]), *c.get("merged", [])]:
                negatable.append((term, c["name"]))
                allowed_terms.add(term)
        negatable_terms = ahocorasick.Automaton()
        for term, name in negatable:
            negatable_terms.add_word(term, (term, name))
        if negatable:
            negatable_terms.make_automaton()

        pairs: set[tuple[str, float]] = set()
        bare: set[float] = set()

        def collect(text: str) -> None:
            for number, unit, _s, _e in self.numbers(text):
                if unit is None:
                    bare.add(_key(number))
                else:
                    pairs.add((unit, _key(number)))

        def walk(value: Any) -> None:
            if isinstance(value, dict):
                unit = value.get("单位")
                with_unit: tuple[str, ...] = ()
                if isinstance(unit, str) and unit:
                    # An evidence value and its range count with their unit only: 137 mmol/L is not 137个月.
                    canonical = self.canonical_unit(unit)
                    with_unit = ("结果", "参考范围")
                    for key in with_unit:
                        if isinstance(value.get(key), str):
                            for number, _u, _s, _e in self.numbers(value[key]):
                                pairs.add((canonical, _key(number)))
                for key, inner in value.items():
                    if key not in with_unit:
                        walk(inner)
            elif isinstance(value, list):
                for inner in value:
                    walk(inner)
            elif isinstance(value, str):
                collect(value)

        walk(digest.data)
        # The same interval in another calendar unit is the same figure: 12个月 = 1年, 2周 = 14天.
        for unit, value in list(pairs):
            for source, target, factor in _SAME_INTERVAL:
                if unit == source and (value / factor).is_integer():
                    pairs.add((target, _key(str(value / factor))))
        allowed_drugs = {drug for _end, drug in self._drugs.iter(digest.text)}
        max_chars = BASE_MAX_CHARS + MAX_CHARS_PER_CONCLUSION * len(digest.conclusions)
        return VerifyContext(
            report_names=frozenset(names),
            required=digest.required,
            negatable=negatable_terms if negatable else None,
            allowed_terms=frozenset(allowed_terms),
            allowed_numbers=frozenset(pairs),
            bare_numbers=frozenset(bare),
            allowed_drugs=frozenset(allowed_drugs),
            identifiers=identifier_pattern(digest.identifiers),
            max_chars=max_chars,
        )

    # -- checks -------------------------------------------------------------------------------------------------

    def verify_text(self, text: str | None, ctx: VerifyContext) -> tuple[Answer | None, Verification]:
        """Parse and check a raw answer text."""
        answer, problems = parse_answer(text)
        if answer is None:
            return None, Verification(False, tuple(problems))
        return answer, self.verify(answer, ctx)

    def verify(self, answer: Answer, ctx: VerifyContext) -> Verification:
        problems: list[VerificationProblem] = []
        texts = answer.texts()
        joined = "\n".join(t for _where, t in texts)

        # coverage and names
        covered = {c.name for c in answer.conclusions}
        for name in ctx.required:
            if name not in covered:
                problems.append(VerificationProblem("missing_conclusion", f"conclusion {name!r} is not explained"))
        for i, c in enumerate(answer.conclusions):
            if c.name not in ctx.report_names:
                problems.append(
                    VerificationProblem(
                        "unknown_term", f"conclusions[{i}].name {c.name!r} is not a conclusion of this report"
                    )
                )

        # length and language
        if not answer.summary.strip():
            problems.append(VerificationProblem("length", "the summary is empty"))
        for i, c in enumerate(answer.conclusions):
            if not c.explanation.strip() and not c.advice.strip():
                problems.append(VerificationProblem("length", f"conclusions[{i}] ({c.name}) has no text"))
        for where, text in texts:
            latin = len(_LATIN.findall(text))
            if latin < MIN_LATIN_TO_JUDGE:
                continue
            chinese = len(_CJK.findall(text))
            if chinese / (chinese + latin) < MIN_CHINESE_SHARE:
                problems.append(
                    VerificationProblem(
                        "length", f"{where} is not mainly Chinese ({chinese} Chinese characters, {latin} Latin letters)"
                    )
                )
        if len(joined) > ctx.max_chars:
            problems.append(
                VerificationProblem("length", f"{len(joined)} characters, more than the {ctx.max_chars} allowed")
            )

        problems += self._unknown_terms(joined, ctx)
        problems += self._numbers(joined, ctx)
        problems += self._negations(joined, ctx)
        problems += self._prescriptions(joined, ctx)
        problems += self._pii(joined, ctx)
        return Verification(not problems, tuple(problems))

    def _unknown_terms(self, text: str, ctx: VerifyContext) -> Iterable[VerificationProblem]:
        reported: set[str] = set()
        for end, term in self._terms.iter_long(text):
            if term not in ctx.allowed_terms and term not in reported:
                reported.add(term)
                start = end - len(term) + 1
                yield VerificationProblem(
                    "unknown_term",
                    f"{term!r} is not among this report's conclusions: “{_snippet(text, start, end + 1)}”",
                )

    def _numbers(self, text: str, ctx: VerifyContext) -> Iterable[VerificationProblem]:
        for number, unit, start, end in self.numbers(text):
            if unit is None:
                continue
            key = _key(number)
            if (unit, key) in ctx.allowed_numbers or key in ctx.bare_numbers:
                continue
            yield VerificationProblem(
                "number_mismatch",
                f"{text[start:end]!r} is not a figure of this report: “{_snippet(text, start, end)}”",
            )

    def _negations(self, text: str, ctx: VerifyContext) -> Iterable[VerificationProblem]:
        if ctx.negatable is None:
            return
        reported: set[str] = set()
        for last, (term, name) in ctx.negatable.iter_long(text):
            if name in reported:
                continue
            end = last + 1
            start = end - len(term)
            window_start = max(0, start - self._gap - self._longest_before)
            hit: str | None = None
            before = self._negated_before.search(text, window_start, start)
            if before is not None and start - before.start() <= self._gap + self._longest_before:
                hit = text[before.start() : end]
            else:
                after = self._negated_after.match(text, end, end + self._gap + self._longest_after)
                hit = text[start : after.end()] if after is not None else None
            if hit is not None:
                reported.add(name)
                yield VerificationProblem(
                    "negation", f"{name!r} is a conclusion of this report, but the text says “{hit}”"
                )

    def _prescriptions(self, text: str, ctx: VerifyContext) -> Iterable[VerificationProblem]:
        reported: set[str] = set()
        for _end, drug in self._drugs.iter_long(text):
            if drug not in ctx.allowed_drugs and drug not in reported:
                reported.add(drug)
                yield VerificationProblem("prescription", f"names the drug {drug!r}")
        for pattern in self._doses:
            for match in pattern.finditer(text):
                yield VerificationProblem(
                    "prescription",
                    f"dose or regimen {match.group(0)!r}: “{_snippet(text, match.start(), match.end())}”",
                )

    def _pii(self, text: str, ctx: VerifyContext) -> Iterable[VerificationProblem]:
        if ctx.identifiers is not None and ctx.identifiers.search(text):
            yield VerificationProblem("pii", "contains one of the report's identifiers (person or visit id)")
        suspect = ("@" in text and _EMAIL.search(text) is not None) or (
            _DIGIT_RUN.search(text) is not None and any(p.search(text) for p in _PII_PATTERNS)
        )
        if suspect:
            # The deid detectors decide (check digits, real birth dates in ID numbers).
            for span in find_pii(text):
                if span.kind in _PII_KINDS:
                    yield VerificationProblem("pii", f"contains a {span.kind.replace('_', ' ')}")


_VERIFIERS: dict[tuple[str, int], Verifier] = {}


def default_verifier(kb: KnowledgeBase | None = None, knowledge: NarrationKnowledge | None = None) -> Verifier:
    """One verifier per knowledge base and word lists, built on first use (about 50 ms) and kept."""
    kb = kb or default_kb()
    knowledge = knowledge or default_narration_knowledge()
    key = (kb.content_hash, id(knowledge))
    verifier = _VERIFIERS.get(key)
    if verifier is None:
        verifier = _VERIFIERS[key] = Verifier(kb, knowledge)
    return verifier
