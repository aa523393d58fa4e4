"""The condition vocabulary of the rules, one small evaluator per kind, compiled once per KB into closures.

An evaluator returns whether it holds and the evidence that made it hold (items, findings, history entries), so
every conclusion can show why it is there.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Collection, Iterable
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
from zhujian.pipeline.evaluate import compare
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


Result = tuple[bool, list[Evidence]]
Evaluator = Callable[[Facts], Result]

_NO: Result = (False, [])


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
        e.evidence_cache = Evidence(
            kind="item",
            description=describe_item(e),
            item_id=e.item_id,
            value=e.value,
            unit=e.unit,
            flag=e.flag,
            source_item=e.source_name,
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
    return Evidence(
        kind="finding", description=describe_finding(f), finding_id=f.finding_id, source_item=f.source_item, span=f.span
    )


_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}


def _item(cond: ItemCondition) -> Evaluator:
    item_id = cond.item

    if cond.op is not None and cond.value is not None:
        threshold = cond.value
        # The comparison of evaluate.compare, looked up once per rule instead of once per evaluation.
        holds = _OPERATORS[cond.op]

        def by_value(facts: Facts) -> Result:
            e = facts.items.get(item_id)
            if e is None or not isinstance(e.value, float):
                return _NO
            return (True, [item_evidence(e)]) if holds(e.value, threshold) else _NO

        return by_value
    if cond.rank_op is not None and cond.rank is not None:
        rank_op, rank = cond.rank_op, cond.rank

        def by_rank(facts: Facts) -> Result:
            e = facts.items.get(item_id)
            if e is None or e.rank is None:
                return _NO
            return (True, [item_evidence(e)]) if compare(float(e.rank), rank_op, float(rank)) else _NO

        return by_rank
    wanted = cond.flag

    def by_flag(facts: Facts) -> Result:
        e = facts.items.get(item_id)
        if e is None or e.flag == "unknown":
            return _NO
        ok = e.flag in ("high", "low", "abnormal") if wanted == "any_abnormal" else e.flag == wanted
        return (True, [item_evidence(e)]) if ok else _NO

    return by_flag


def _finding(cond: FindingCondition) -> Evaluator:
    finding_id = cond.finding
    tests = [(t.attr, t.op, t.value) for t in cond.where]

    def attr_value(f: Finding, attr: str, grade_ranks: dict[str, int]) -> float | None:
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

    def evaluate(facts: Facts) -> Result:
        found = facts.findings.get(finding_id)
        if not found:
            return _NO
        hits = []
        for f in found:
            ok = True
            for attr, op, threshold in tests:
                v = attr_value(f, attr, facts.grade_ranks)
                if v is None or not compare(v, op, threshold):
                    ok = False
                    break
            if ok:
                hits.append(finding_evidence(f))
        return (True, hits) if hits else _NO

    return evaluate


def first_affirmed_entry(
    entries: Iterable[str], keywords: Iterable[str], negation_cues: Iterable[str], separators: Iterable[str]
) -> str | None:
    """The first questionnaire entry that mentions a keyword without a negation cue before it in its clause
    ("否认高血压、糖尿病史" affirms neither), or None."""
    stops = set(separators)
    cues = tuple(negation_cues)
    lowered = [k.lower() for k in keywords]
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


def _history(cond: HistoryCondition) -> Evaluator:
    keywords = [k.lower() for k in cond.history]
    fields = list(cond.fields)
    labels = {"history": "既往史", "medications": "用药史", "family_history": "家族史", "symptoms": "症状"}
    keys = trigger_keys(cond)
    # Per field, each keyword with the trigger key that says it occurs in an entry of that field.
    keyed = {f: [(k, f"history:{f}:{k}") for k in keywords] for f in fields} if all(keywords) else None

    def evaluate(facts: Facts) -> Result:
        present = facts.present
        if present is not None and keys is not None and keys.isdisjoint(present):
            # No entry of these fields contains any of the keywords.
            return _NO
        for f in fields:
            wanted: list[str] = keywords
            if present is not None and keyed is not None:
                # A keyword that occurs in no entry of the field cannot be affirmed there.
                wanted = [k for k, key in keyed[f] if key in present]
                if not wanted:
                    continue
            entry = _first_affirmed_memo(facts, facts.history.get(f, ()), wanted)
            if entry is not None:
                return True, [Evidence(kind="history", description=f"{labels[f]}：{entry}")]
        return _NO

    return evaluate


def _flag(cond: FlagCondition) -> Evaluator:
    key, expected = cond.questionnaire, cond.is_
    label = {"smoking": "吸烟", "drinking": "饮酒"}[key]

    def evaluate(facts: Facts) -> Result:
        value = facts.smoking if key == "smoking" else facts.drinking
        if value is None or value != expected:
            return _NO
        return True, [Evidence(kind="history", description=f"问卷：{label}{'是' if value else '否'}")]

    return evaluate


def compile_condition(cond: Condition) -> Evaluator:
    if isinstance(cond, ItemCondition):
        return _item(cond)
    if isinstance(cond, FindingCondition):
        return _finding(cond)
    if isinstance(cond, HistoryCondition):
        return _history(cond)
    if isinstance(cond, FlagCondition):
        return _flag(cond)
    if isinstance(cond, SexCondition):
        sex = cond.sex
        return lambda facts: (facts.sex == sex, [])
    if isinstance(cond, AgeCondition):
        lo, hi = cond.age.min, cond.age.max

        def age_ok(facts: Facts) -> Result:
            if facts.age is None:
                return _NO
            ok = (lo is None or facts.age >= lo) and (hi is None or facts.age < hi)
            return ok, []

        return age_ok
    if isinstance(cond, ConclusionCondition):
        cid = cond.conclusion
        return lambda facts: (cid in facts.fired, [])
    if isinstance(cond, AllCondition):
        parts = [compile_condition(c) for c in cond.all]

        def all_ok(facts: Facts) -> Result:
            evidence: list[Evidence] = []
            for p in parts:
                ok, ev = p(facts)
                if not ok:
                    return _NO
                evidence.extend(ev)
            return True, evidence

        return all_ok
    if isinstance(cond, AnyCondition):
        parts = [compile_condition(c) for c in cond.any]

        def any_ok(facts: Facts) -> Result:
            # Every true branch contributes evidence: a 血脂异常 shows all abnormal lipids, not only the first.
            evidence: list[Evidence] = []
            hit = False
            for p in parts:
                ok, ev = p(facts)
                if ok:
                    hit = True
                    evidence.extend(ev)
            return hit, evidence

        return any_ok
    if isinstance(cond, NotCondition):
        inner = compile_condition(cond.not_)
        return lambda facts: (not inner(facts)[0], [])
    if isinstance(cond, AtLeastCondition):
        parts = [compile_condition(c) for c in cond.at_least.of]
        n = cond.at_least.n

        def at_least(facts: Facts) -> Result:
            evidence: list[Evidence] = []
            count = 0
            for p in parts:
                ok, ev = p(facts)
                if ok:
                    count += 1
                    evidence.extend(ev)
            return (count >= n, evidence) if count >= n else _NO

        return at_least
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


ValueTests = dict[str, list[tuple[Callable[[float, float], bool], float, str]]]


def value_tests(conditions: Iterable[Condition]) -> ValueTests:
    """Per item, every numeric comparison the rules make of it, with the trigger key it sets when it holds."""
    from zhujian.kb.loader import iter_conditions

    tests: dict[str, dict[str, tuple[Callable[[float, float], bool], float, str]]] = {}
    for cond in conditions:
        for c in iter_conditions(cond):
            if isinstance(c, ItemCondition) and c.op is not None and c.value is not None:
                key = value_key(c.item, c.op, c.value)
                tests.setdefault(c.item, {})[key] = (_OPERATORS[c.op], c.value, key)
    return {item: list(by_key.values()) for item, by_key in tests.items()}


def passed_value_keys(facts: Facts, tests: ValueTests) -> set[str]:
    """The `value:` keys of the comparisons the record's numeric values pass."""
    keys: set[str] = set()
    for item_id, item_tests in tests.items():
        e = facts.items.get(item_id)
        if e is None or not isinstance(e.value, float):
            continue
        value = e.value
        for holds, threshold, key in item_tests:
            if holds(value, threshold):
                keys.add(key)
    return keys


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


# Trigger-key strings of KB item and finding ids, built once rather than for every record.
_ITEM_KEYS: dict[str, str] = {}
_FLAG_KEYS: dict[tuple[str, str], str] = {}
_FINDING_KEYS: dict[str, str] = {}


def present_keys(facts: Facts) -> set[str]:
    keys: set[str] = set()
    item_keys, flag_keys = _ITEM_KEYS, _FLAG_KEYS
    for k, e in facts.items.items():
        if e.value is None:
            continue
        key = item_keys.get(k)
        if key is None:
            key = item_keys[k] = f"item:{k}"
        keys.add(key)
        flag_key = flag_keys.get((k, e.flag))
        if flag_key is None:
            flag_key = flag_keys[(k, e.flag)] = f"flag:{k}:{e.flag}"
        keys.add(flag_key)
    for k in facts.findings:
        key = _FINDING_KEYS.get(k)
        if key is None:
            key = _FINDING_KEYS[k] = f"finding:{k}"
        keys.add(key)
    keys.update(f"history:{k}" for k, v in facts.history.items() if v)
    if facts.smoking is not None:
        keys.add("questionnaire:smoking")
    if facts.drinking is not None:
        keys.add("questionnaire:drinking")
    return keys
