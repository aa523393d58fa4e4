"""The QC vocabulary: physician wording of conclusions and the cue words QC reads, loaded from `kb/data/qc/*.yaml`.

The files have a strict schema of their own (unknown keys are errors naming the file and path) and are cross-checked
against the knowledge base: every conclusion, item and site they name must exist there.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from zhujian.kb.loader import KBError, KBProblem, KnowledgeBase

Direction = Literal["high", "low", "abnormal"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SynonymDef(_Strict):
    phrases: list[str]
    conclusions: list[str]
    items: dict[str, Direction] = {}
    source: str


class SynonymsFile(_Strict):
    source: str
    synonyms: list[SynonymDef]


class Directions(_Strict):
    high: list[str]
    low: list[str]
    abnormal: list[str]


class ValuePair(_Strict):
    phrases: list[str]
    items: list[str]


class ControlOpposite(_Strict):
    engine: str
    physician: list[str]


class SexTerms(_Strict):
    sex: Literal["male", "female"]
    terms: list[str]
    source: str


class DomainDef(_Strict):
    name: str
    phrases: list[str]
    items: list[str] = []
    sites: list[str] = []


class VocabularyFile(_Strict):
    source: str
    direction_prefixes: dict[str, Direction] = {}
    directions: Directions
    normal_cues: list[str]
    advice_starts: list[str]
    advice_cues: list[str]
    negation_cues: list[str]
    history_cues: list[str]
    alias_exclude: list[str] = []
    value_only_aliases: list[str] = []
    composite: list[str] = []
    value_pairs: list[ValuePair] = []
    control_opposites: list[ControlOpposite] = []
    sex_terms: list[SexTerms]
    domains: list[DomainDef]


def fold(text: str) -> str:
    """Matching key: NFKC (full-width letters, digits and brackets become ASCII), upper-case Latin letters."""
    return unicodedata.normalize("NFKC", text).upper()


@dataclass(frozen=True, slots=True)
class Phrase:
    """One way of writing a conclusion: the KB conclusions it names (`primary` first) and what it says of items."""

    text: str
    conclusions: tuple[str, ...]
    items: tuple[tuple[str, str], ...] = ()

    @property
    def primary(self) -> str:
        return self.conclusions[0]


@dataclass
class QcVocabulary:
    phrases: dict[str, Phrase]  # folded phrase → meaning
    phrase_pattern: re.Pattern[str]
    directions: dict[str, str]  # folded word → high | low | abnormal
    direction_prefixes: dict[str, str]
    normal_cues: tuple[str, ...]
    advice_starts: tuple[str, ...]
    advice_cues: tuple[str, ...]
    negation_cues: tuple[str, ...]
    history_cues: tuple[str, ...]
    composite: frozenset[str]
    value_pairs: list[ValuePair]
    control_opposites: list[ControlOpposite]
    sex_terms: dict[str, tuple[str, ...]]  # sex → folded terms
    domains: list[DomainDef]
    item_aliases: dict[str, str]  # folded alias → item id
    item_pattern: re.Pattern[str]
    heading_pattern: re.Pattern[str]  # an organ heading with its colon (肝: 右肾:), from the KB's lexicon context
    conclusion_names: dict[str, set[str]] = field(default_factory=dict)  # folded name → conclusion ids


def _default_root() -> Path:
    return Path(str(resources.files("zhujian").joinpath("kb/data/qc")))


def _parse(model: type[BaseModel], path: Path, problems: list[KBProblem]) -> BaseModel | None:
    rel = f"qc/{path.name}"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(KBProblem(rel, "", f"cannot read: {exc}"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(KBProblem(rel, where, err["msg"]))
        return None


def _alternation(words: list[str]) -> re.Pattern[str]:
    # Longest first, so that 高甘油三酯血症 wins over 甘油三酯 and 尿肌酐 over 肌酐 at the same position.
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return re.compile("|".join(re.escape(w) for w in ordered) if ordered else r"(?!x)x")


def _alias_pattern(aliases: list[str], value_only: set[str]) -> re.Pattern[str]:
    """Item aliases in free text. A Latin abbreviation must not sit inside a longer word (TG in TGAB), but a number
    may follow it directly (HBA1C6.5%). A value-only alias (钾) must be followed by a number."""
    parts = []
    for alias in sorted(set(aliases), key=lambda w: (-len(w), w)):
        part = re.escape(alias)
        if alias[0].isascii() and alias[0].isalnum():
            part = r"(?<![A-Z0-9])" + part
        if alias[-1].isascii() and alias[-1].isalpha():
            part += r"(?![A-Z])"
        if alias in value_only:
            part += r"(?=\s*[:：]?\s*\d)"
        parts.append(part)
    return re.compile("|".join(parts) if parts else r"(?!x)x")


def _name_variants(name: str) -> list[str]:
    """肺结节（6-8mm） → 肺结节（6-8mm）, 肺结节; 肾结晶/肾内钙化灶 → both parts. A part shorter than three
    characters is a modifier, not a name (心房肥大/异常, 胸膜增厚/粘连)."""
    out = [name]
    bare = re.sub(r"[（(][^（）()]*[)）]", "", name).strip()
    if bare and bare != name:
        out.append(bare)
    parts = re.split(r"[/／]", bare)
    if len(parts) > 1:
        out.extend(p for p in parts if len(p) >= 3 and p not in out)
    return out


def load_qc_vocabulary(kb: KnowledgeBase, root: Path | None = None) -> QcVocabulary:
    """Load and cross-check the QC vocabulary. Raises KBError listing every problem."""
    root = root or _default_root()
    problems: list[KBProblem] = []
    syn = _parse(SynonymsFile, root / "synonyms.yaml", problems)
    voc = _parse(VocabularyFile, root / "vocabulary.yaml", problems)
    if not isinstance(syn, SynonymsFile) or not isinstance(voc, VocabularyFile):
        raise KBError(problems)

    for i, entry in enumerate(syn.synonyms):
        for cid in entry.conclusions:
            if cid not in kb.conclusions:
                problems.append(
                    KBProblem("qc/synonyms.yaml", f"synonyms[{i}].conclusions", f"unknown conclusion {cid!r}")
                )
        for item in entry.items:
            if item not in kb.items:
                problems.append(KBProblem("qc/synonyms.yaml", f"synonyms[{i}].items", f"unknown item {item!r}"))
        if not entry.conclusions:
            problems.append(KBProblem("qc/synonyms.yaml", f"synonyms[{i}].conclusions", "empty"))
    for cid in voc.composite:
        if cid not in kb.conclusions:
            problems.append(KBProblem("qc/vocabulary.yaml", "composite", f"unknown conclusion {cid!r}"))
    for i, pair in enumerate(voc.value_pairs):
        for item in pair.items:
            if item not in kb.items:
                problems.append(KBProblem("qc/vocabulary.yaml", f"value_pairs[{i}].items", f"unknown item {item!r}"))
    for i, domain in enumerate(voc.domains):
        for item in domain.items:
            if item not in kb.items:
                problems.append(KBProblem("qc/vocabulary.yaml", f"domains[{i}].items", f"unknown item {item!r}"))
        for site in domain.sites:
            if site not in kb.sites:
                problems.append(KBProblem("qc/vocabulary.yaml", f"domains[{i}].sites", f"unknown site {site!r}"))
    if problems:
        raise KBError(problems)

    phrases: dict[str, Phrase] = {}
    names: dict[str, set[str]] = {}
    # KB names first; a synonym entry then widens what the same words cover.
    for cid, con in kb.conclusions.items():
        for variant in _name_variants(con.name):
            key = fold(variant)
            names.setdefault(key, set()).add(cid)
    for key, ids in names.items():
        exact = [cid for cid in ids if fold(kb.conclusions[cid].name) == key]
        ordered = exact + sorted(ids - set(exact))
        phrases[key] = Phrase(key, tuple(ordered))
    for entry in syn.synonyms:
        for text in entry.phrases:
            key = fold(text)
            known = phrases.get(key)
            conclusions = list(entry.conclusions)
            if known is not None:
                # An exact KB name keeps its own conclusion first.
                conclusions = list(known.conclusions) + [c for c in conclusions if c not in known.conclusions]
            items = tuple(sorted({**dict(known.items if known else ()), **entry.items}.items()))
            phrases[key] = Phrase(key, tuple(conclusions), items)

    directions: dict[str, str] = {}
    for direction in ("high", "low", "abnormal"):
        for word in getattr(voc.directions, direction):
            directions[fold(word)] = direction

    excluded = {fold(a) for a in voc.alias_exclude}
    value_only = {fold(a) for a in voc.value_only_aliases}
    aliases: dict[str, str] = {}
    for item_id, item_def in kb.items.items():
        for label in [item_def.name, *item_def.aliases]:
            key = fold(label).lstrip("*")
            if key in value_only:
                aliases.setdefault(key, item_id)
            if len(key) < 2 or key in excluded or " " in key:
                continue
            aliases.setdefault(key, item_id)
    for alias in value_only:
        if alias not in aliases:
            raise KBError([KBProblem("qc/vocabulary.yaml", "value_only_aliases", f"not an item alias: {alias!r}")])
    return QcVocabulary(
        phrases=phrases,
        phrase_pattern=_alternation(list(phrases)),
        directions=directions,
        direction_prefixes={fold(k): v for k, v in voc.direction_prefixes.items()},
        normal_cues=tuple(fold(c) for c in voc.normal_cues),
        advice_starts=tuple(fold(c) for c in voc.advice_starts),
        advice_cues=tuple(fold(c) for c in voc.advice_cues),
        negation_cues=tuple(fold(c) for c in voc.negation_cues),
        history_cues=tuple(fold(c) for c in voc.history_cues),
        composite=frozenset(voc.composite),
        value_pairs=list(voc.value_pairs),
        control_opposites=list(voc.control_opposites),
        sex_terms={t.sex: tuple(fold(w) for w in t.terms) for t in voc.sex_terms},
        domains=list(voc.domains),
        item_aliases=aliases,
        item_pattern=_alias_pattern(list(aliases), value_only),
        heading_pattern=re.compile(
            "(?:" + "|".join(re.escape(fold(h)) for h in sorted(kb.context.context.headings, key=len, reverse=True))
            + ")[:：]"
        ),
        conclusion_names=names,
    )


_CACHE: dict[int, tuple[KnowledgeBase, QcVocabulary]] = {}


def vocabulary_for(kb: KnowledgeBase) -> QcVocabulary:
    """The bundled QC vocabulary checked against `kb`, built once per KB object."""
    hit = _CACHE.get(id(kb))
    # The KB object is kept with its vocabulary so that its id cannot be reused by another KB while cached.
    if hit is not None and hit[0] is kb:
        return hit[1]
    vocabulary = load_qc_vocabulary(kb)
    if len(_CACHE) > 8:
        _CACHE.clear()
    _CACHE[id(kb)] = (kb, vocabulary)
    return vocabulary
