"""Read one physician conclusion: which KB conclusions it names, what it says of items (direction, quoted values),
sides, normal statements, whether it is a history statement and whether it carries advice."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.extract import extract_text
from zhujian.qc.parse import ConclusionLine
from zhujian.qc.vocabulary import Phrase, QcVocabulary, fold

_CLAUSE_BREAK = re.compile(r"[,;。，；\n]")
# A number quoted after an item: "甘油三酯 2.85 mmol/L", "ALT:68U/L", "血糖为7.2".
_VALUE = re.compile(
    r"^(?:\([A-Z0-9-]+\))?[\s:(]*(?:为|是|约|达|高达|仅|值)?[\s:]*(?P<num>\d+(?:\.\d+)?)(?!\s*[/×X*]\s*\d)"
    r"\s*(?P<unit>[A-ZΜµμ%][A-Z0-9ΜµμΜ/%.^*×]*(?:/[A-Z0-9.]+)?)?"
)
_PAIR = re.compile(r"^[\s:]*(?:为|是)?[\s:]*(?P<a>\d{2,3})\s*/\s*(?P<b>\d{2,3})")
_DEPARTMENT = re.compile(r"[\u4e00-\u9fff]{1,6}科")
_ITEM_NAME = "主检结论"


@dataclass(frozen=True, slots=True)
class ItemClaim:
    item_id: str
    direction: str | None  # high | low | abnormal | None (only quoted)
    declared: bool = False  # said by the wording itself (高甘油三酯血症 → TG high), not read next to an item name


@dataclass(frozen=True, slots=True)
class QuotedValue:
    item_id: str
    text: str
    value: float
    unit: str | None


@dataclass(frozen=True, slots=True)
class SideClaim:
    finding_id: str
    finding_name: str
    side: str


@dataclass
class PhysicianConclusion:
    number: int
    text: str
    name: str
    advice: bool
    phrases: list[Phrase] = field(default_factory=list)
    negated: list[Phrase] = field(default_factory=list)
    conclusion_ids: set[str] = field(default_factory=set)
    primary: str | None = None
    finding_ids: set[str] = field(default_factory=set)
    sides: list[SideClaim] = field(default_factory=list)
    item_claims: list[ItemClaim] = field(default_factory=list)
    values: list[QuotedValue] = field(default_factory=list)
    normal_items: set[str] = field(default_factory=set)
    normal_sites: set[str] = field(default_factory=set)
    normal_subjects: list[str] = field(default_factory=list)
    history: bool = False
    folded: str = ""

    @property
    def recognized(self) -> bool:
        return bool(self.conclusion_ids or self.finding_ids or any(c.direction for c in self.item_claims))


def _advice_spans(folded: str, vocabulary: QcVocabulary, stops: list[int]) -> list[tuple[int, int]]:
    """The advice parts of a conclusion: from an advice word (after at least one character of diagnosis) to the end
    of its clause, the next organ heading or the next diagnosis (`stops`: where conclusion words or text findings
    begin). Real conclusions go on after advice without a break: "肝:脂肪肝,建议进一步检查右肾:右肾囊肿",
    "肝囊肿可能,建议定期检查脂肪肝（中度）"."""
    spans: list[tuple[int, int]] = []
    at = 1
    while True:
        starts = [p for p in (folded.find(cue, at) for cue in vocabulary.advice_starts) if p > 0]
        if not starts:
            return spans
        start = min(starts)
        end = len(folded)
        brk = _CLAUSE_BREAK.search(folded, start)
        if brk is not None:
            end = brk.start()
        heading = vocabulary.heading_pattern.search(folded, start + 1)
        if heading is not None and heading.start() < end:
            end = heading.start()
        end = min([end, *(s for s in stops if start < s < end)])
        spans.append((start, end))
        at = max(end, start + 1)


def _display_name(text: str, vocabulary: QcVocabulary) -> str:
    """The conclusion as the physician named it: the text before the first colon, comma or bracket, unless that is
    only an exam heading (B超：脂肪肝), then the part after it."""
    parts = [p.strip() for p in re.split(r"[:：,，;；(（]", text) if p.strip()]
    if not parts:
        return text.strip()
    first = parts[0]
    heading_only = (
        vocabulary.phrase_pattern.search(fold(first)) is None
        and vocabulary.item_pattern.search(fold(first)) is None
        and re.search(r"[:：]", text[: len(first) + 2]) is not None
    )
    if len(parts) > 1 and heading_only:
        return parts[1]
    return first


def clause_start(folded: str, at: int) -> int:
    start = 0
    for match in _CLAUSE_BREAK.finditer(folded, 0, at):
        start = match.end()
    return start


_NEGATION_BREAK = re.compile(r"[,;。，；\n:：)）]")
_NEGATION_REACH = 15


def _negated(folded: str, start: int, vocabulary: QcVocabulary) -> bool:
    """A negation cue shortly before, in the same clause; an organ heading's colon and a closing bracket end the
    clause too ("胆:胆囊未探及右肾:右肾囊肿", "子宫未探及（自述已切除）左侧附件切除术后" deny nothing after them)."""
    begin = 0
    for match in _NEGATION_BREAK.finditer(folded, 0, start):
        begin = match.end()
    before = folded[max(begin, start - _NEGATION_REACH) : start]
    return any(cue in before for cue in vocabulary.negation_cues)


def _direction_after(folded: str, at: int, vocabulary: QcVocabulary) -> str | None:
    """A direction word right after an item (and its quoted value): "ALT 68 U/L 升高", "TG↑", "尿蛋白(+)"."""
    end = _CLAUSE_BREAK.search(folded, at)
    window = folded[at : end.start() if end else len(folded)][:20]
    nxt = vocabulary.item_pattern.search(window)
    if nxt is not None:
        # "甘油三酯高密度脂蛋白…": the next item's name is not a direction of this one.
        window = window[: nxt.start()]
    window = re.sub(r"^[\s:]*(?:为|是|约)?[\s:]*[<>≤≥]?\d*(?:\.\d+)?\s*[A-ZΜµμ%][A-Z0-9µμΜ/%.^*×]*", "", window)
    best: tuple[int, int, str] | None = None
    for word, direction in vocabulary.directions.items():
        pos = window.find(word)
        if pos < 0 or pos > 6:
            continue
        key = (pos, -len(word), direction)
        if best is None or key < best:
            best = key
    return best[2] if best else None


def read_conclusion(
    kb: KnowledgeBase,
    vocabulary: QcVocabulary,
    line: ConclusionLine,
    *,
    structured: dict[str, Any] | None = None,
) -> PhysicianConclusion:
    text = line.text
    folded_all = fold(text)
    aligned = len(folded_all) == len(text)
    # Text findings through the engine's own lexicon (sides, organ findings the synonym table does not list).
    extraction = extract_text(kb, _ITEM_NAME, text)
    stops = {m.start() for m in vocabulary.phrase_pattern.finditer(folded_all)}
    if aligned:
        stops.update(f.span[0] for f in extraction.findings)
    spans = _advice_spans(folded_all, vocabulary, sorted(stops))
    # The diagnosis text: the conclusion with its advice parts blanked (same length, so positions still match).
    chars = list(folded_all)
    for start, end in spans:
        for i in range(start, end):
            chars[i] = " "
    folded = "".join(chars).rstrip()
    advice_part = "".join(folded_all[start:end] for start, end in spans)
    has_advice = bool(advice_part.strip(" ,;。:")) or any(c in folded_all for c in vocabulary.advice_cues)
    has_advice = has_advice or _DEPARTMENT.search(text) is not None
    if structured is not None:
        has_advice = has_advice or bool(
            str(structured.get("advice") or "").strip() or str(structured.get("follow_up") or "").strip()
        )
    out = PhysicianConclusion(
        number=line.number, text=text, name=_display_name(text, vocabulary), advice=has_advice, folded=folded
    )

    # Conclusion wording (KB names and synonyms), negated or not.
    masked = list(folded)
    for match in vocabulary.phrase_pattern.finditer(folded):
        phrase = vocabulary.phrases[match.group(0)]
        if _negated(folded, match.start(), vocabulary):
            out.negated.append(phrase)
        else:
            out.phrases.append(phrase)
            out.conclusion_ids.update(phrase.conclusions)
            out.item_claims.extend(ItemClaim(item, direction, declared=True) for item, direction in phrase.items)
            if out.primary is None:
                out.primary = phrase.primary
        for i in range(match.start(), match.end()):
            masked[i] = "□"
    masked_text = "".join(masked)

    for finding in extraction.findings:
        if aligned and any(start <= finding.span[0] < end for start, end in spans):
            continue  # named in the advice ("建议复查甲状腺结节"), not diagnosed here
        out.finding_ids.add(finding.finding_id)
        if finding.conclusion is not None:
            out.conclusion_ids.add(finding.conclusion)
            if out.primary is None:
                out.primary = finding.conclusion
        side = finding.attrs.get("side")
        if isinstance(side, str):
            out.sides.append(SideClaim(finding.finding_id, finding.name, side))

    # Items: direction words and quoted values.
    for match in vocabulary.item_pattern.finditer(folded):
        item_id = vocabulary.item_aliases[match.group(0)]
        after = folded[match.end() :]
        value = _VALUE.match(after)
        if value is not None:
            unit = value.group("unit")
            if unit is not None and len(folded_all) == len(text):
                # Show the unit as written (the folded text is upper-cased for matching).
                unit = text[match.end() + value.start("unit") : match.end() + value.end("unit")]
            out.values.append(QuotedValue(item_id, value.group("num"), float(value.group("num")), unit))
        direction = _direction_after(folded, match.end(), vocabulary)
        if direction is None and match.start() > 0:
            direction = vocabulary.direction_prefixes.get(folded[match.start() - 1])
        if _negated(folded, match.start(), vocabulary):
            continue
        if direction is not None or value is not None:
            out.item_claims.append(ItemClaim(item_id, direction))
    for pair in vocabulary.value_pairs:
        for word in pair.phrases:
            for found in re.finditer(re.escape(fold(word)), folded):
                numbers = _PAIR.match(folded[found.end() :])
                if numbers is None:
                    continue
                for item_id, group in zip(pair.items, ("a", "b"), strict=False):
                    out.values.append(QuotedValue(item_id, numbers.group(group), float(numbers.group(group)), None))

    # A domain with a direction: "血脂高", "肝功异常", "高血脂" (the wording names no single item).
    for domain in vocabulary.domains:
        if not domain.items:
            continue
        for wording in domain.phrases:
            for found in re.finditer(re.escape(fold(wording)), masked_text):
                before = masked_text[found.start() - 1] if found.start() > 0 else ""
                if _direction_after(masked_text, found.end(), vocabulary) is None and (
                    before not in vocabulary.direction_prefixes
                ):
                    continue
                if _negated(masked_text, found.start(), vocabulary):
                    continue
                # Which of the domain's items is meant is not said: any abnormal one supports the wording.
                out.item_claims.extend(ItemClaim(item, "abnormal") for item in domain.items)

    # Normal statements: "血脂正常", "肝胆脾胰未见明显异常", "乙肝表面抗原阴性".
    for clause in _clause_spans(masked_text):
        clause_text = masked_text[clause[0] : clause[1]]
        cue_at = min((clause_text.find(c) for c in vocabulary.normal_cues if c in clause_text), default=-1)
        if cue_at < 0:
            continue
        subject = clause_text[:cue_at]
        found_subject = False
        for domain in sorted(vocabulary.domains, key=lambda d: -max(len(p) for p in d.phrases)):
            if any(fold(p) in subject for p in domain.phrases):
                out.normal_items.update(domain.items)
                out.normal_sites.update(domain.sites)
                out.normal_subjects.append(domain.name)
                found_subject = True
                break
        if not found_subject:
            for alias in vocabulary.item_pattern.finditer(subject):
                out.normal_items.add(vocabulary.item_aliases[alias.group(0)])
                out.normal_subjects.append(alias.group(0))
        if out.normal_items or out.normal_sites:
            # A normal clause's items are not claims of an abnormal direction.
            out.item_claims = [c for c in out.item_claims if c.item_id not in out.normal_items or c.direction]

    out.history = any(cue in folded for cue in vocabulary.history_cues)

    if structured is not None:
        cid = structured.get("id")
        if isinstance(cid, str) and cid in kb.conclusions:
            out.conclusion_ids.add(cid)
            out.primary = cid
        for merged in structured.get("merged_from") or []:
            if isinstance(merged, str) and merged in kb.conclusions:
                out.conclusion_ids.add(merged)
    return out


def _clause_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _CLAUSE_BREAK.finditer(text):
        spans.append((start, match.start()))
        start = match.end()
    spans.append((start, len(text)))
    return [s for s in spans if s[1] > s[0]]
