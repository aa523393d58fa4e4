"""The condition vocabulary of the rules, one small node class per kind, compiled once per KB into a tree.

A node says whether it holds and, only once it does, the evidence that made it hold (items, findings, history
entries), so every conclusion can show why it is there.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from zhujian.domain.report import EvaluatedItem, Evidence, Finding
from zhujian.kb.schema import (
    AgeCondition,
    AllCondition,
    AnyCondition,
    AtLeastCondition,
    ConclusionCondition,
    Condition,
    FindingCondition,
    FlagCondition,
    HistoryCondition,
    ItemCondition,
    NotCondition,
    SexCondition,
)
from zhujian.pipeline.evaluate import OP_CODES, passes
from zhujian.pipeline.extract import category_rank

FLAG_ARROWS = {"high": "↑", "low": "↓", "abnormal": "（异常）", "normal": "", "unknown": ""}


@dataclass
class Facts:
    sex: str
    age: float | None
    items: dict[str, EvaluatedItem]
    findings: dict[str, list[Finding]]
    history: dict[str, list[str]]
    smoking: bool | None
    drinking: bool | None
    grade_ranks: dict[str, int]
    fired: set[str] = field(default_factory=set)
    # Forward negation cues of the lexicon: "否认高血压" or "无糖尿病" in a history entry is not a history of it.
    negation_cues: tuple[str, ...] = ()
    separators: frozenset[str] = frozenset()
    # The trigger keys present in this record (see present_keys and history_keys), once the rules computed them:
    # a history condition none of whose keyword keys is present cannot hold.
    present: set[str] | None = None
    # (entry, lower-cased keyword) → whether the entry affirms the keyword: many rules ask about the same keywords.
    affirmed: dict[tuple[str, str], bool] = field(default_factory=dict)
    # Per finding (by identity: findings live as long as the facts), its evidence entry, built once per report
    # however many rules and conclusions cite it.
    cited_findings: dict[int, Evidence] = field(default_factory=dict)
    # Per history condition (by identity: the compiled conditions outlive the facts), the (field, entry) affirming
    # it or None: rules re-run in the second pass ask the same conditions again.
    history_answers: dict[int, tuple[str, str] | None] = field(default_factory=dict)


def describe_item(e: EvaluatedItem) -> str:
    if isinstance(e.value, float):
        value = f"{e.value:g}"
        if e.qualifier in (">", "<"):
            value = e.qualifier + value
    elif e.value is None:
        # An item whose value could not be read (e.g. several readings, one of them critical) cites the original.
        value = f"“{e.raw_value}”（无法确定数值）" if e.raw_value is not None else "（无结果）"
    else:
        value = str(e.value)
    unit = f" {e.unit}" if e.unit and isinstance(e.value, float) else ""
    ref = ""
    if e.ref_low is not None or e.ref_high is not None:
        low = "" if e.ref_low is None else f"{e.ref_low:g}"
        high = "" if e.ref_high is None else f"{e.ref_high:g}"
        ref = f"（参考 {low}-{high}）" if low and high else (f"（参考 ≤{high}）" if high else f"（参考 ≥{low}）")
    return f"{e.name} {value}{unit}{FLAG_ARROWS.get(e.flag, '')}{ref}"


def item_evidence(e: EvaluatedItem) -> Evidence:
    if e.evidence_cache is None:
        # Positional (Evidence's field order: kind, description, item_id, finding_id, source_item, span, rule_id,
        # value, unit, flag): keyword arguments make the call about twice as dear.
        e.evidence_cache = Evidence(
            "item", describe_item(e), e.item_id, None, e.source_name, None, None, e.value, e.unit, e.flag
        )
    return e.evidence_cache


def describe_finding(f: Finding) -> str:
    parts = []
    a = f.attrs
    if a.get("side"):
        parts.append(str(a["side"]))
    detail = []
    if a.get("grade"):
        detail.append(str(a["grade"]))
    if a.get("count") not in (None, 1):
        detail.append(str(a["count"]))
    if a.get("size_mm") is not None:
        detail.append(f"最大约{a['size_mm']:g}mm")
    if a.get("category"):
        detail.append(str(a["category"]))
    if a.get("rate_bpm") is not None:
        detail.append(f"{a['rate_bpm']}次/分")
    text = "".join(parts) + f.name + (f"（{'，'.join(detail)}）" if detail else "")
    if f.uncertain:
        text += "（可能）"
    return f"{text}［{f.source_item}：“{f.evidence_text}”］"


def finding_evidence(f: Finding) -> Evidence:
    return Evidence("finding", describe_finding(f), None, f.finding_id, f.source_item, f.span)


def cited_finding(facts: Facts, f: Finding) -> Evidence:
    """`finding_evidence(f)`, built once per report."""
    key = id(f)
    evidence = facts.cited_findings.get(key)
    if evidence is None:
        evidence = facts.cited_findings[key] = finding_evidence(f)
    return evidence


class Node:
    """A compiled condition. `holds` only answers whether it holds; `collect` appends the evidence that made it
    hold and is called only once it does, so rules that do not hold build no evidence, lists or strings."""

    def holds(self, facts: Facts) -> bool:
        raise NotImplementedError

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        """Append the evidence of a condition that holds (conditions on sex, age, conclusions and `not` have none)."""
        return None


class _ItemValue(Node):
    def __init__(self, item_id: str, op: str, threshold: float) -> None:
        self.item_id = item_id
        # The comparison of evaluate.compare, looked up once per rule instead of once per evaluation.
        self.code = OP_CODES[op]
        self.threshold = threshold

    def holds(self, facts: Facts) -> bool:
        e = facts.items.get(self.item_id)
        if e is None:
            return False
        value = e.value
        return isinstance(value, float) and passes(self.code, value, self.threshold)

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        out.append(item_evidence(facts.items[self.item_id]))


class _ItemRank(Node):
    def __init__(self, item_id: str, op: str, rank: int) -> None:
        self.item_id = item_id
        self.code = OP_CODES[op]
        self.rank = float(rank)

    def holds(self, facts: Facts) -> bool:
        e = facts.items.get(self.item_id)
        if e is None:
            return False
        rank = e.rank
        return rank is not None and passes(self.code, float(rank), self.rank)

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        out.append(item_evidence(facts.items[self.item_id]))


class _ItemFlag(Node):
    def __init__(self, item_id: str, wanted: str | None) -> None:
        self.item_id = item_id
        self.wanted = wanted
        self.any_abnormal = wanted == "any_abnormal"

    def holds(self, facts: Facts) -> bool:
        e = facts.items.get(self.item_id)
        if e is None:
            return False
        flag: str = e.flag
        if flag == "unknown":
            return False
        if self.any_abnormal:
            return flag == "high" or flag == "low" or flag == "abnormal"
        return flag == self.wanted

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        out.append(item_evidence(facts.items[self.item_id]))


def _attr_value(f: Finding, attr: str, grade_ranks: dict[str, int]) -> float | None:
    a = f.attrs
    if attr == "size_mm":
        v = a.get("size_mm")
        return float(v) if isinstance(v, int | float) else None
    if attr == "count":
        c = a.get("count")
        if c == "多发":
            return 2.0
        return float(c) if isinstance(c, int | float) else None
    if attr == "category_rank":
        return category_rank(a.get("category"))
    if attr == "grade_rank":
        g = a.get("grade")
        return float(grade_ranks[g]) if isinstance(g, str) and g in grade_ranks else None
    if attr == "rate_bpm":
        r = a.get("rate_bpm")
        return float(r) if isinstance(r, int | float) else None
    return None


class _AttrTest:
    def __init__(self, attr: str, op: str, threshold: float) -> None:
        self.attr = attr
        self.code = OP_CODES[op]
        self.threshold = threshold


class _Finding(Node):
    def __init__(self, finding_id: str, tests: list[_AttrTest]) -> None:
        self.finding_id = finding_id
        self.tests = tests

    def _passes(self, f: Finding, grade_ranks: dict[str, int]) -> bool:
        for test in self.tests:
            v = _attr_value(f, test.attr, grade_ranks)
            if v is None or not passes(test.code, v, test.threshold):
                return False
        return True

    def holds(self, facts: Facts) -> bool:
        found = facts.findings.get(self.finding_id)
        if not found:
            return False
        if not self.tests:
            return True
        grade_ranks = facts.grade_ranks
        for f in found:  # noqa: SIM110 - a loop, not a generator: compiled (mypyc) it is a plain loop
            if self._passes(f, grade_ranks):
                return True
        return False

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        grade_ranks = facts.grade_ranks
        for f in facts.findings[self.finding_id]:
            if self._passes(f, grade_ranks):
                out.append(cited_finding(facts, f))


def first_affirmed_entry(
    entries: Iterable[str], lowered: list[str], cues: tuple[str, ...], stops: Collection[str]
) -> str | None:
    """The first questionnaire entry that mentions a keyword (`lowered`: lower-cased) without a negation cue before
    it in its clause ("否认高血压、糖尿病史" affirms neither; `stops`: the clause separators), or None."""
    for entry in entries:
        low = entry.lower()
        for keyword in lowered:
            if _affirms(low, keyword, cues, stops):
                return entry
    return None


def _affirms(low: str, keyword: str, cues: tuple[str, ...], stops: Collection[str]) -> bool:
    """Whether the lower-cased entry `low` mentions `keyword` with no negation cue before it in its clause."""
    pos = low.find(keyword)
    if pos < 0:
        return False
    start = pos
    while start > 0 and low[start - 1] not in stops:
        start -= 1
    return not any(cue in low[start:pos] for cue in cues)


def _first_affirmed_memo(facts: Facts, entries: Iterable[str], keywords: list[str]) -> str | None:
    """`first_affirmed_entry` with the record's cues and separators, each (entry, keyword) answer kept in `facts`."""
    memo = facts.affirmed
    for entry in entries:
        low: str | None = None
        for keyword in keywords:
            answer = memo.get((entry, keyword))
            if answer is None:
                if low is None:
                    low = entry.lower()
                answer = memo[(entry, keyword)] = _affirms(low, keyword, facts.negation_cues, facts.separators)
            if answer:
                return entry
    return None


_HISTORY_LABELS = {"history": "既往史", "medications": "用药史", "family_history": "家族史", "symptoms": "症状"}


class _History(Node):
    def __init__(self, cond: HistoryCondition) -> None:
        self.keywords = [k.lower() for k in cond.history]
        self.fields = list(cond.fields)
        self.keys = trigger_keys(cond)
        # Per field, each keyword with the trigger key that says it occurs in an entry of that field.
        self.keyed: dict[str, list[tuple[str, str]]] | None = (
            {f: [(k, f"history:{f}:{k}") for k in self.keywords] for f in self.fields} if all(self.keywords) else None
        )

    def _affirmed(self, facts: Facts) -> tuple[str, str] | None:
        """(field, entry) of the first entry affirming a keyword, or None; worked out once per report."""
        answers = facts.history_answers
        key = id(self)
        if key in answers:
            return answers[key]
        answer = answers[key] = self._find(facts)
        return answer

    def _find(self, facts: Facts) -> tuple[str, str] | None:
        present = facts.present
        keys = self.keys
        if present is not None and keys is not None and keys.isdisjoint(present):
            # No entry of these fields contains any of the keywords.
            return None
        keyed = self.keyed
        for f in self.fields:
            wanted: list[str] = self.keywords
            if present is not None and keyed is not None:
                # A keyword that occurs in no entry of the field cannot be affirmed there.
                wanted = [k for k, key in keyed[f] if key in present]
                if not wanted:
                    continue
            entry = _first_affirmed_memo(facts, facts.history.get(f, ()), wanted)
            if entry is not None:
                return f, entry
        return None

    def holds(self, facts: Facts) -> bool:
        return self._affirmed(facts) is not None

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        found = self._affirmed(facts)
        assert found is not None
        out.append(Evidence("history", f"{_HISTORY_LABELS[found[0]]}：{found[1]}"))


class _Questionnaire(Node):
    def __init__(self, key: str, expected: bool) -> None:
        self.smoking = key == "smoking"
        self.expected = expected
        label = {"smoking": "吸烟", "drinking": "饮酒"}[key]
        self.description = f"问卷：{label}{'是' if expected else '否'}"

    def holds(self, facts: Facts) -> bool:
        value = facts.smoking if self.smoking else facts.drinking
        return value is not None and value == self.expected

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        out.append(Evidence("history", self.description))


class _Sex(Node):
    def __init__(self, sex: str) -> None:
        self.sex = sex

    def holds(self, facts: Facts) -> bool:
        return facts.sex == self.sex


class _Age(Node):
    def __init__(self, low: float | None, high: float | None) -> None:
        self.low = low
        self.high = high

    def holds(self, facts: Facts) -> bool:
        age = facts.age
        if age is None:
            return False
        low, high = self.low, self.high
        return (low is None or age >= low) and (high is None or age < high)


class _Fired(Node):
    def __init__(self, conclusion_id: str) -> None:
        self.conclusion_id = conclusion_id

    def holds(self, facts: Facts) -> bool:
        return self.conclusion_id in facts.fired


class _All(Node):
    def __init__(self, parts: list[Node]) -> None:
        self.parts = parts

    def holds(self, facts: Facts) -> bool:
        for p in self.parts:  # noqa: SIM110 - a loop, not a generator: compiled (mypyc) it is a plain loop
            if not p.holds(facts):
                return False
        return True

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        for p in self.parts:
            p.collect(facts, out)


class _Any(Node):
    def __init__(self, parts: list[Node]) -> None:
        self.parts = parts

    def holds(self, facts: Facts) -> bool:
        for p in self.parts:  # noqa: SIM110 - a loop, not a generator: compiled (mypyc) it is a plain loop
            if p.holds(facts):
                return True
        return False

    def collect(self, facts: Facts, out: list[Evidence]) -> None:
        # Every true branch contributes evidence: a 血脂异常 shows all abnormal lipids, not only the first.
        for p in self.parts:
            if p.holds(facts):
                p.collect(facts, out)


class _Not(Node):
    def __init__(self, inner: Node) -> None:
        self.inner = inner

    def holds(self, facts: Facts) -> bool:
        return not self.inner.holds(facts)


class _AtLeast(_Any):
    """At least n of the parts hold; like `any`, every part that holds contributes its evidence."""

    def __init__(self, parts: list[Node], n: int) -> None:
        super().__init__(parts)
        self.n = n

    def holds(self, facts: Facts) -> bool:
        n = self.n
        if n <= 0:
            return True
        count = 0
        for p in self.parts:
            if p.holds(facts):
                count += 1
                if count >= n:
                    return True
        return False


def compile_condition(cond: Condition) -> Node:
    if isinstance(cond, ItemCondition):
        if cond.op is not None and cond.value is not None:
            return _ItemValue(cond.item, cond.op, cond.value)
        if cond.rank_op is not None and cond.rank is not None:
            return _ItemRank(cond.item, cond.rank_op, cond.rank)
        return _ItemFlag(cond.item, cond.flag)
    if isinstance(cond, FindingCondition):
        return _Finding(cond.finding, [_AttrTest(t.attr, t.op, t.value) for t in cond.where])
    if isinstance(cond, HistoryCondition):
        return _History(cond)
    if isinstance(cond, FlagCondition):
        return _Questionnaire(cond.questionnaire, cond.is_)
    if isinstance(cond, SexCondition):
        return _Sex(cond.sex)
    if isinstance(cond, AgeCondition):
        return _Age(cond.age.min, cond.age.max)
    if isinstance(cond, ConclusionCondition):
        return _Fired(cond.conclusion)
    if isinstance(cond, AllCondition):
        return _All([compile_condition(c) for c in cond.all])
    if isinstance(cond, AnyCondition):
        return _Any([compile_condition(c) for c in cond.any])
    if isinstance(cond, NotCondition):
        return _Not(compile_condition(cond.not_))
    if isinstance(cond, AtLeastCondition):
        return _AtLeast([compile_condition(c) for c in cond.at_least.of], cond.at_least.n)
    raise TypeError(f"unknown condition kind: {type(cond).__name__}")


def uses_conclusions(cond: Condition) -> bool:
    from zhujian.kb.loader import iter_conditions

    return any(isinstance(c, ConclusionCondition) for c in iter_conditions(cond))


def trigger_keys(cond: Condition) -> frozenset[str] | None:
    """Facts of which at least one must be present for `cond` to hold, or None when it can hold without any.

    Used to skip rules cheaply: a rule about glucose cannot fire for a record without a glucose value.
    Keys: `item:<id>` (a usable value), `value:<id>:<op>:<threshold>` (the value passes that comparison),
    `finding:<id>`, `history:<field>` (a non-empty list),
    `history:<field>:<keyword>` (a lower-cased keyword inside an entry of that field), `questionnaire:<flag>`.
    """
    if isinstance(cond, ItemCondition):
        if cond.op is not None and cond.value is not None:
            # Present only when the record's value passes this very comparison (see value_tests).
            return frozenset({value_key(cond.item, cond.op, cond.value)})
        if cond.flag in ("high", "low", "abnormal", "normal"):
            return frozenset({f"flag:{cond.item}:{cond.flag}"})
        if cond.flag == "any_abnormal":
            return frozenset(f"flag:{cond.item}:{f}" for f in ("high", "low", "abnormal"))
        return frozenset({f"item:{cond.item}"})
    if isinstance(cond, FindingCondition):
        return frozenset({f"finding:{cond.finding}"})
    if isinstance(cond, HistoryCondition):
        if any(not k for k in cond.history):
            return frozenset(f"history:{f}" for f in cond.fields)
        # Only an entry that contains one of the keywords can affirm it (see history_keys).
        return frozenset(f"history:{f}:{k.lower()}" for f in cond.fields for k in cond.history)
    if isinstance(cond, FlagCondition):
        return frozenset({f"questionnaire:{cond.questionnaire}"})
    if isinstance(cond, AllCondition):
        # Every child must hold, so the smallest known trigger set of any child is enough.
        known = [t for t in (trigger_keys(c) for c in cond.all) if t is not None]
        return min(known, key=len) if known else None
    if isinstance(cond, AnyCondition | AtLeastCondition):
        children = cond.any if isinstance(cond, AnyCondition) else cond.at_least.of
        union: set[str] = set()
        for c in children:
            t = trigger_keys(c)
            if t is None:
                return None
            union |= t
        return frozenset(union)
    return None


def value_key(item: str, op: str, value: float) -> str:
    return f"value:{item}:{op}:{value!r}"


# Per item: (operator code of evaluate.OP_CODES, threshold, trigger key).
ValueTests = dict[str, list[tuple[int, float, str]]]


def value_tests(conditions: Iterable[Condition]) -> ValueTests:
    """Per item, every numeric comparison the rules make of it, with the trigger key it sets when it holds."""
    from zhujian.kb.loader import iter_conditions

    tests: dict[str, dict[str, tuple[int, float, str]]] = {}
    for cond in conditions:
        for c in iter_conditions(cond):
            if isinstance(c, ItemCondition) and c.op is not None and c.value is not None:
                key = value_key(c.item, c.op, c.value)
                tests.setdefault(c.item, {})[key] = (OP_CODES[c.op], c.value, key)
    return {item: list(by_key.values()) for item, by_key in tests.items()}


def history_keywords(cond: Condition) -> set[str]:
    """Lower-cased history keywords of every history condition inside `cond`."""
    from zhujian.kb.loader import iter_conditions

    return {k.lower() for c in iter_conditions(cond) if isinstance(c, HistoryCondition) for k in c.history if k}


def history_keys(facts: Facts, automaton: Any) -> set[str]:
    """`history:<field>:<keyword>` for every keyword of `automaton` (built over the rules' lower-cased history
    keywords) found inside an entry of that field."""
    keys: set[str] = set()
    for name, entries in facts.history.items():
        for entry in entries:
            for _last, keyword in automaton.iter(entry.lower()):
                keys.add(f"history:{name}:{keyword}")
    return keys
