"""Rules → conclusions: fire the KB rules over items, findings and history; map text findings to their
conclusions; merge (一元化) by `suppresses`; enforce sex consistency; make sure every critical value has a
conclusion at the top."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ahocorasick

from zhujian.domain.report import Conclusion, CriticalAlert, EvaluatedItem, Evidence, Finding, Problem
from zhujian.kb.loader import KnowledgeBase
from zhujian.kb.schema import ConclusionDef, RuleDef
from zhujian.pipeline.conditions import (
    Facts,
    Node,
    ValueTests,
    cited_finding,
    compile_condition,
    history_keys,
    history_keywords,
    trigger_keys,
    uses_conclusions,
    value_tests,
)
from zhujian.pipeline.evaluate import passes

# Conclusion used when a critical value has no conclusion of its own (it must never be hidden).
UNMAPPED_CRITICAL = "critical_value_unmapped"


class CompiledRule:
    """A rule with its condition compiled and the fields firing it needs, read once per KB."""

    def __init__(self, rule: RuleDef, evaluate: Node, second_pass: bool, triggers: frozenset[str] | None) -> None:
        self.rule = rule
        self.evaluate = evaluate
        self.second_pass = second_pass
        self.triggers = triggers
        self.rule_id: str = rule.id
        self.conclusion: str = rule.conclusion
        self.qualifier: str | None = rule.qualifier
        self.suppresses: list[str] = list(rule.suppresses)


@dataclass
class CompiledRules:
    # KB version plus the center's switches: what the compiled rule list depends on.
    cache_key: str
    rules: list[CompiledRule]
    # trigger key → positions of the rules it can wake; rules without triggers always run.
    by_trigger: dict[str, list[int]] = field(default_factory=dict)
    always: list[int] = field(default_factory=list)
    # Every history keyword of the rules, lower-cased, in one Aho–Corasick automaton (None: no history rules).
    history_automaton: Any = None
    # Per item, the numeric comparisons of the rules: a rule waits for the one its value condition needs.
    value_tests: ValueTests = field(default_factory=dict)

    # Filled as conclusions are first drawn: the fields of each conclusion definition, read once per KB.
    templates: dict[str, _ConclusionTemplate] = field(default_factory=dict)
    # Filled as records come: per item and per finding, the rules its facts wake (see `_ItemWake`).
    item_wake: dict[str, _ItemWake] = field(default_factory=dict)
    finding_wake: dict[str, list[int]] = field(default_factory=dict)

    def runnable(self, present: set[str]) -> list[CompiledRule]:
        """Rules whose trigger facts are present, in KB order."""
        chosen: set[int] = set(self.always)
        by_trigger = self.by_trigger
        # Only the present keys that wake some rule (a record has many facts no rule waits for).
        for key in present & by_trigger.keys():
            chosen.update(by_trigger[key])
        return [self.rules[i] for i in sorted(chosen)]

    def runnable_for(self, facts: Facts) -> list[CompiledRule]:
        """`runnable(present)` for the trigger keys present in `facts` (see conditions.trigger_keys), found through
        per-item and per-finding indexes instead of building every key string of the record. Sets `facts.present`
        to the history keys present, which history conditions consult, when the rules have history keywords."""
        chosen: set[int] = set(self.always)
        item_wake = self.item_wake
        for item_id, e in facts.items.items():
            value = e.value
            if value is None:
                continue
            wake = item_wake.get(item_id)
            if wake is None:
                wake = item_wake[item_id] = _ItemWake(self, item_id)
            if wake.on_value:
                chosen.update(wake.on_value)
            on_flag = wake.on_flag.get(e.flag)
            if on_flag is not None:
                chosen.update(on_flag)
            if isinstance(value, float):
                for test in wake.tests:
                    if passes(test.code, value, test.threshold):
                        chosen.update(test.positions)
        by_trigger = self.by_trigger
        finding_wake = self.finding_wake
        for finding_id in facts.findings:
            positions = finding_wake.get(finding_id)
            if positions is None:
                positions = finding_wake[finding_id] = by_trigger.get(f"finding:{finding_id}", [])
            if positions:
                chosen.update(positions)
        history: set[str] = {f"history:{k}" for k, v in facts.history.items() if v}
        if self.history_automaton is not None:
            history |= history_keys(facts, self.history_automaton)
            facts.present = history
        if facts.smoking is not None:
            history.add("questionnaire:smoking")
        if facts.drinking is not None:
            history.add("questionnaire:drinking")
        for key in history:
            positions = by_trigger.get(key)
            if positions is not None:
                chosen.update(positions)
        rules = self.rules
        return [rules[i] for i in sorted(chosen)]


class _ValueWake:
    """One numeric comparison the rules make of an item, and the rules that wait for it to hold."""

    def __init__(self, code: int, threshold: float, positions: list[int]) -> None:
        self.code = code
        self.threshold = threshold
        self.positions = positions


class _ItemWake:
    """The rules an item wakes: when it has a value (`item:`), by its flag (`flag:`), and by the numeric
    comparisons its value passes (`value:`). Only comparisons some rule waits for are kept."""

    def __init__(self, rules: CompiledRules, item_id: str) -> None:
        by_trigger = rules.by_trigger
        self.on_value: list[int] = by_trigger.get(f"item:{item_id}", [])
        self.on_flag: dict[str, list[int]] = {}
        for flag in ("high", "low", "abnormal", "normal"):
            positions = by_trigger.get(f"flag:{item_id}:{flag}")
            if positions:
                self.on_flag[flag] = positions
        self.tests: list[_ValueWake] = []
        for code, threshold, key in rules.value_tests.get(item_id, []):
            positions = by_trigger.get(key)
            if positions:
                self.tests.append(_ValueWake(code, threshold, positions))


_RULE_CACHE: dict[int, CompiledRules] = {}


def rules_for(kb: KnowledgeBase) -> CompiledRules:
    cached = _RULE_CACHE.get(id(kb))
    key = kb.version + repr(sorted(kb.center.switches.items()))
    if cached is None or cached.cache_key != key:
        # Center switches are fixed for a loaded KB, so rules switched off are dropped here once.
        enabled = [
            r
            for r in kb.rules
            if all(kb.switch_on(s) for s in r.requires_switch) and not any(kb.switch_on(s) for s in r.unless_switch)
        ]
        compiled = [
            CompiledRule(r, compile_condition(r.when), uses_conclusions(r.when), trigger_keys(r.when)) for r in enabled
        ]
        cached = CompiledRules(key, compiled)
        for position, cr in enumerate(compiled):
            if cr.triggers is None:
                cached.always.append(position)
            else:
                for key in cr.triggers:
                    cached.by_trigger.setdefault(key, []).append(position)
        cached.value_tests = value_tests(r.when for r in enabled)
        keywords = sorted(set().union(*(history_keywords(r.when) for r in enabled)))
        if keywords:
            cached.history_automaton = ahocorasick.Automaton()
            for word in keywords:
                cached.history_automaton.add_word(word, word)
            cached.history_automaton.make_automaton()
        _RULE_CACHE[id(kb)] = cached
    return cached


def explanation_for(definition: ConclusionDef, sex: str, age: float | None) -> str:
    for v in definition.explanation_variants:
        if v.sex != "any" and v.sex != sex:
            continue
        if v.age_min is not None and (age is None or age < v.age_min):
            continue
        if v.age_max is not None and (age is None or age >= v.age_max):
            continue
        return v.text
    return definition.explanation


class _ConclusionTemplate:
    """A conclusion definition's fields as a new Conclusion takes them, read once per KB (pydantic attributes are
    dear to read from compiled code)."""

    def __init__(self, definition: ConclusionDef) -> None:
        self.definition = definition
        self.conclusion_id: str = definition.id
        self.name: str = definition.name
        self.icd10: str = definition.icd10
        self.level: str | None = definition.level
        self.category: str = definition.category
        self.system: str = definition.system
        self.order: int = definition.order
        self.department: str = definition.department
        self.follow_up: str = definition.follow_up
        self.advice: str = definition.advice
        self.explanation: str = definition.explanation
        self.varies = bool(definition.explanation_variants)

    def new(self, sex: str, age: float | None) -> Conclusion:
        return Conclusion(
            self.conclusion_id,
            self.name,
            self.icd10,
            self.level,
            self.category,
            self.system,
            self.order,
            self.department,
            self.follow_up,
            self.advice,
            explanation_for(self.definition, sex, age) if self.varies else self.explanation,
        )


def _add_evidence(target: Conclusion, evidence: list[Evidence]) -> None:
    seen = {(e.kind, e.description) for e in target.evidence}
    for e in evidence:
        key = (e.kind, e.description)
        if key not in seen:
            seen.add(key)
            target.evidence.append(e)


class _Derivation:
    """The conclusions of one report while its rules fire, each with the (kind, description) keys of its evidence
    so far: evidence is deduplicated against them instead of rebuilding that set for every rule that fires."""

    def __init__(self, kb: KnowledgeBase, compiled: CompiledRules, facts: Facts) -> None:
        self.definitions = kb.conclusions
        self.templates = compiled.templates
        self.facts = facts
        self.sex = facts.sex
        self.age = facts.age
        self.out: dict[str, Conclusion] = {}
        self.seen: dict[str, set[tuple[str, str]]] = {}
        self.qualifiers: dict[str, list[str]] = {}
        self.suppress: dict[str, dict[str, None]] = {}

    def get(self, cid: str) -> Conclusion:
        c = self.out.get(cid)
        if c is None:
            template = self.templates.get(cid)
            if template is None:
                template = self.templates[cid] = _ConclusionTemplate(self.definitions[cid])
            c = template.new(self.sex, self.age)
            self.out[cid] = c
            self.seen[cid] = set()
        return c

    def add(self, c: Conclusion, evidence: list[Evidence]) -> None:
        """`_add_evidence` for a conclusion of `out`, still under its own id."""
        seen = self.seen[c.conclusion_id]
        target = c.evidence
        for e in evidence:
            key = (e.kind, e.description)
            if key not in seen:
                seen.add(key)
                target.append(e)

    def fire(self, cr: CompiledRule) -> bool:
        """Apply the rule if it holds; True when its conclusion is new (had not fired before)."""
        facts = self.facts
        node = cr.evaluate
        if not node.holds(facts):
            return False
        evidence: list[Evidence] = []
        node.collect(facts, evidence)
        cid = cr.conclusion
        c = self.get(cid)
        if cr.rule_id not in c.rules:
            c.rules.append(cr.rule_id)
        self.add(c, evidence)
        qualifier = cr.qualifier
        if qualifier:
            words = self.qualifiers.get(cid)
            if words is None:
                words = self.qualifiers[cid] = []
            if qualifier not in words:
                words.append(qualifier)
        if cr.suppresses:
            # A dict, not a set: the merge order (and so the report) must not depend on string hashing.
            losers = self.suppress.get(cid)
            if losers is None:
                losers = self.suppress[cid] = {}
            for loser in cr.suppresses:
                losers[loser] = None
        fired = facts.fired
        if cid in fired:
            return False
        fired.add(cid)
        return True


def derive_conclusions(
    kb: KnowledgeBase,
    facts: Facts,
    findings: list[Finding],
    alerts: list[CriticalAlert],
    items: list[EvaluatedItem],
    problems: list[Problem],
) -> list[Conclusion]:
    sex, age = facts.sex, facts.age
    compiled = rules_for(kb)
    run = _Derivation(kb, compiled, facts)
    out = run.out

    for f in findings:
        if f.conclusion is None:
            continue
        run.add(run.get(f.conclusion), [cited_finding(facts, f)])

    facts.fired = set(out)

    # A rule whose trigger facts are all absent cannot hold: skip it without evaluating its condition.
    runnable = compiled.runnable_for(facts)
    second: list[CompiledRule] = []
    for cr in runnable:
        if cr.second_pass:
            second.append(cr)
        else:
            run.fire(cr)
    # Rules that depend on other conclusions run until nothing new fires (bounded by the rule count): each round
    # stops at the first rule whose conclusion is new and starts again from the first rule.
    for _ in range(len(second) + 1):
        new = False
        for cr in second:
            if run.fire(cr):
                new = True
                break
        if not new:
            break
    qualifiers, suppress = run.qualifiers, run.suppress

    # 一元化: a suppressing conclusion absorbs the evidence of the ones it replaces. A winner that is itself absorbed
    # by another goes first, so that a chain (HbA1c → 空腹血糖受损 → 代谢综合征) ends in one line whatever the order the
    # rules fired in, and the names it had absorbed move on with it.
    absorbed_ids = {loser for losers in suppress.values() for loser in losers}
    for winner, losers in sorted(suppress.items(), key=lambda pair: pair[0] not in absorbed_ids):
        if winner not in out:
            continue
        for loser in losers:
            if loser == winner or loser not in out:
                continue
            absorbed = out.pop(loser)
            _add_evidence(out[winner], absorbed.evidence)
            out[winner].merged.append(absorbed.name)
            out[winner].merged.extend(m for m in absorbed.merged if m not in out[winner].merged)
            for r in absorbed.rules:
                if r not in out[winner].rules:
                    out[winner].rules.append(r)

    for cid, words in qualifiers.items():
        if cid in out:
            out[cid].name = out[cid].name + "".join(words)

    # Sex consistency: a conclusion that cannot apply to this sex is a data problem, not a conclusion.
    if sex in ("male", "female"):
        for cid in list(out):
            required = kb.conclusions[cid].sex
            if required != "any" and required != sex:
                dropped = out.pop(cid)
                sex_label = "女性" if sex == "female" else "男性"
                only = "男性" if required == "male" else "女性"
                problems.append(
                    Problem(
                        "sex_mismatch",
                        f"结论“{dropped.name}”只适用于{only}，但受检者为{sex_label}："
                        "请核对性别或检查结果（依据：" + "；".join(e.description for e in dropped.evidence) + "）",
                        field="sex",
                    )
                )

    _attach_critical(kb, out, alerts, items, sex, age)
    return list(out.values())


def _attach_critical(
    kb: KnowledgeBase,
    out: dict[str, Conclusion],
    alerts: list[CriticalAlert],
    items: list[EvaluatedItem],
    sex: str,
    age: float | None,
) -> None:
    by_item = {e.item_id: e for e in items if e.item_id is not None}
    for alert in alerts:
        if alert.source != "item" or alert.item_id is None:
            continue
        holders = [c for c in out.values() if any(e.item_id == alert.item_id for e in c.evidence)]
        # Prefer a conclusion whose own level matches the alert (e.g. 严重低钾血症 for K ≤ 2.8).
        holders.sort(key=lambda c: (c.level != alert.level, c.level is None))
        if holders:
            target = holders[0]
            # A critical value makes its conclusion at least as urgent as the alert (A before B before none).
            if target.level is None or (alert.level == "A" and target.level == "B"):
                target.level = alert.level
        else:
            definition = kb.conclusions.get(UNMAPPED_CRITICAL)
            if definition is None:
                continue
            cid = f"{UNMAPPED_CRITICAL}:{alert.rule_id}"
            target = out.get(cid) or _ConclusionTemplate(definition).new(sex, age)
            target.conclusion_id = cid
            target.name = f"{definition.name}：{alert.reason}"
            target.level = alert.level
            out[cid] = target
            e = by_item.get(alert.item_id)
            if e is not None:
                from zhujian.pipeline.conditions import item_evidence

                _add_evidence(target, [item_evidence(e)])
        target.critical = True
        alert.conclusion_id = target.conclusion_id
        if alert.rule_id and alert.rule_id not in target.rules:
            target.rules.append(alert.rule_id)
