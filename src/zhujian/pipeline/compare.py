"""Longitudinal comparison with earlier visits: per item the previous values and the change, per conclusion a
status (new, persistent, worse, improved) and the conclusions of the last visit that are gone (resolved).
The thresholds (2 mm growth, a higher category, a guideline class crossed) are KB data (compare.yaml)."""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from typing import Any

from zhujian.domain.record import MAX_AGE, Record, VisitData
from zhujian.domain.report import Conclusion, EvaluatedItem, Finding, Report
from zhujian.kb.loader import KnowledgeBase
from zhujian.kb.schema import CompareFile, ItemClassRule
from zhujian.pipeline.conditions import uses_conclusions
from zhujian.pipeline.extract import category_rank


@dataclass
class PriorReport:
    visit: VisitData
    report: Report


# Year-month labels of exam dates (`strftime` is slow and a stream has few distinct dates), bounded.
_MONTH_LABELS: dict[dt.date, str] = {}


def _visit_label(visit: VisitData) -> str:
    date = visit.exam_date
    if not date:
        return visit.visit_id
    label = _MONTH_LABELS.get(date)
    if label is None:
        if len(_MONTH_LABELS) >= 65536:
            _MONTH_LABELS.clear()
        label = _MONTH_LABELS[date] = date.strftime("%Y-%m")
    return label


def _visit_sort_key(visit: VisitData) -> tuple[int, dt.date]:
    return (0, visit.exam_date) if visit.exam_date else (1, dt.date.min)


def prior_record(record: Record, visit: VisitData) -> Record:
    age = visit.age
    now = record.age_years()
    if age is None and now is not None and record.exam_date and visit.exam_date:
        years = (record.exam_date - visit.exam_date).days / 365.25
        derived = now - years
        # A visit dated after this exam, or long before birth, gives no age a record can hold: age unknown there.
        if 0.0 <= derived <= MAX_AGE:
            age = derived
    return Record(
        person_id=record.person_id,
        visit_id=visit.visit_id,
        sex=record.sex,
        age=age,
        exam_date=visit.exam_date,
        questionnaire=visit.questionnaire or record.questionnaire,
        items=visit.items,
        texts=visit.texts,
    )


def _class_index(rule: ItemClassRule, value: float) -> int:
    return bisect_right(rule.cuts, value)


def _rules_by_item(compare: CompareFile, sex: str) -> dict[str, ItemClassRule]:
    out: dict[str, ItemClassRule] = {}
    for rule in compare.item_classes:
        if rule.sex == "any" or rule.sex == sex:
            out[rule.item] = rule
    return out


def _fmt(value: float) -> str:
    return f"{round(value, 3):g}"


def _finding_key(f: Finding) -> tuple[str, str | None]:
    return f.finding_id, f.attrs.get("side") if isinstance(f.attrs.get("side"), str) else None


def _attr_number(f: Finding, attr: str, grade_ranks: dict[str, int]) -> float | None:
    a = f.attrs
    if attr == "size_mm":
        v = a.get("size_mm")
        return float(v) if isinstance(v, int | float) else None
    if attr == "category_rank":
        return category_rank(a.get("category"))
    if attr == "grade_rank":
        g = a.get("grade")
        return float(grade_ranks[g]) if isinstance(g, str) and g in grade_ranks else None
    if attr == "count":
        c = a.get("count")
        return 2.0 if c == "多发" else (float(c) if isinstance(c, int | float) else None)
    return None


def apply_comparison(
    kb: KnowledgeBase, record: Record, report: Report, priors: list[PriorReport], grade_ranks: dict[str, int]
) -> dict[str, Any]:
    """Annotate `report` in place; return the comparison summary for the report JSON."""
    compare = kb.compare
    if compare is None or not priors:
        return {}
    priors = sorted(priors, key=lambda p: _visit_sort_key(p.visit), reverse=True)
    last = priors[0]
    label = _visit_label(last.visit)
    class_rules = _rules_by_item(compare, record.sex)

    # Per prior visit, what every compared item cites of it: its id, its date and its label (formatted once).
    prior_info: list[tuple[str, str | None, str]] = [
        (p.visit.visit_id, p.visit.exam_date.isoformat() if p.visit.exam_date else None, _visit_label(p.visit))
        for p in priors
    ]
    prior_values: dict[str, list[tuple[int, EvaluatedItem]]] = {}
    for index, p in enumerate(priors):
        for e in p.report.items:
            if e.item_id is not None and isinstance(e.value, float):
                prior_values.setdefault(e.item_id, []).append((index, e))

    crossed: dict[str, tuple[str, str]] = {}  # item_id → (worse|improved, description)
    for e in report.items:
        if e.item_id is None or not isinstance(e.value, float):
            continue
        history = prior_values.get(e.item_id)
        if not history:
            continue
        previous: list[dict[str, Any]] = []
        for index, pe in history:
            info = prior_info[index]
            previous.append({"visit_id": info[0], "exam_date": info[1], "value": pe.value, "flag": pe.flag})
        e.previous = previous
        index0, prev = history[0]
        assert isinstance(prev.value, float)
        delta = e.value - prev.value
        unit = f" {e.unit}" if e.unit else ""
        when = prior_info[index0][2]
        if abs(delta) <= compare.stable_fraction * max(abs(prev.value), 1e-9):
            e.change = f"较上次({when})持平"
        else:
            e.change = f"较上次({when}){'升高' if delta > 0 else '降低'} {_fmt(abs(delta))}{unit}"
        rule = class_rules.get(e.item_id)
        if rule is not None:
            before, after = _class_index(rule, prev.value), _class_index(rule, e.value)
            if before != after:
                up = after > before
                worse = up if rule.worse == "up" else not up
                crossed[e.item_id] = (
                    "worse" if worse else "improved",
                    f"{e.name} {_fmt(prev.value)}→{_fmt(e.value)}{unit}，跨越指南分级界值（{rule.source}）",
                )

    prior_findings: dict[tuple[str, str | None], Finding] = {}
    for f in last.report.findings:
        prior_findings.setdefault(_finding_key(f), f)
    by_finding_id = {f.finding_id: f for f in report.findings}
    findings_by_key = {_finding_key(f): f for f in report.findings}
    # Per finding id, this visit's findings of it (by side) that the last visit had too, in `findings_by_key` order.
    matched_findings: dict[str, list[tuple[Finding, Finding]]] = {}
    for key, f in findings_by_key.items():
        old_finding = prior_findings.get(key)
        if old_finding is not None:
            matched_findings.setdefault(key[0], []).append((f, old_finding))

    previous_ids = {_base_id(c) for c in last.report.conclusions}
    now_ids = {_base_id(c) for c in report.conclusions}
    # The last visit's conclusions gone now, with their evidence keys, and what the last visit examined: computed
    # at most once (on first need) rather than for every conclusion compared.
    gone: list[tuple[Conclusion, set[str]]] | None = None
    examined: _Examined | None = None
    continued: set[str] = set()
    for c in report.conclusions:
        details: list[str] = []
        worse = improved = False
        for ev in c.evidence:
            if ev.item_id is not None and ev.item_id in crossed:
                kind, text = crossed[ev.item_id]
                worse |= kind == "worse"
                improved |= kind == "improved"
                details.append(text)
            if ev.finding_id is not None and ev.finding_id in by_finding_id:
                for f, old in matched_findings.get(ev.finding_id, ()):
                    for change in compare.finding_worse:
                        now_v = _attr_number(f, change.attr, grade_ranks)
                        old_v = _attr_number(old, change.attr, grade_ranks)
                        if now_v is not None and old_v is not None and now_v - old_v >= change.min_increase - 1e-9:
                            worse = True
                            details.append(f"{f.name}：{change.description}（上次 {_fmt(old_v)}，本次 {_fmt(now_v)}）")
        predecessor = None
        if _base_id(c) not in previous_ids:
            if gone is None:
                gone = [(old, _evidence_keys(old)) for old in last.report.conclusions if _base_id(old) not in now_ids]
            candidates = gone
            if c.merged and _fired_on_its_own(kb, c):
                # A conclusion of the last visit that is now one of this diagnosis's merged parts (一元化) still
                # holds and is no earlier form of it: 代谢综合征 is new even if 肥胖 was there before. A line that
                # exists only as a merge (脂肪肝伴肝酶升高) does continue its parts.
                candidates = [(old, keys) for old, keys in gone if not _merged_into(old, c)]
            predecessor = _same_problem(c, candidates)
        if predecessor is not None:
            # The same items or findings now support a different conclusion (e.g. 空腹血糖受损 → 糖尿病范围):
            # one problem that changed, not a new one plus a resolved one.
            continued.add(_base_id(predecessor))
            details.insert(0, f"上次({label})为“{predecessor.name}”")
        if _base_id(c) not in previous_ids and predecessor is None:
            if examined is None:
                examined = _Examined.of(last)
            if not examined.any_of(c):
                # The last visit did not measure what this conclusion rests on: nothing to compare with.
                c.status = None
                c.status_detail = [f"上次({label})未做相关检查"]
                continue
            c.status = "new"
            details.insert(0, f"上次({label})无此结论")
        elif worse:
            c.status = "worse"
        elif improved:
            c.status = "improved"
        else:
            c.status = "persistent"
        c.status_detail = list(dict.fromkeys(details))

    current_ids = {_base_id(c) for c in report.conclusions}
    # Only conclusions with merged parts can have absorbed one of the last visit's.
    merging = [now for now in report.conclusions if now.merged]
    resolved = [
        {"id": _base_id(c), "name": c.name, "icd10": c.icd10, "last_seen": label}
        for c in last.report.conclusions
        if _base_id(c) not in current_ids
        and _base_id(c) not in continued
        and not any(_merged_into(c, now) for now in merging)
    ]
    return {
        "comparison": {
            "previous_visit_id": last.visit.visit_id,
            "previous_exam_date": last.visit.exam_date.isoformat() if last.visit.exam_date else None,
            "visits_compared": len(priors),
            "resolved": resolved,
        }
    }


@dataclass(frozen=True, slots=True)
class _Examined:
    """What a prior visit had data for: items with a value, text exams, a questionnaire."""

    items: frozenset[str]
    exams: frozenset[str]
    history: bool

    @classmethod
    def of(cls, prior: PriorReport) -> _Examined:
        return cls(
            frozenset(e.item_id for e in prior.report.items if e.item_id is not None and e.value is not None),
            frozenset(t.item for t in prior.visit.texts),
            prior.visit.questionnaire is not None,
        )

    def any_of(self, c: Conclusion) -> bool:
        """Did the prior visit have data for any of this conclusion's evidence (an item, a text of the same exam,
        or a questionnaire answer)?"""
        for e in c.evidence:
            if e.item_id is not None and e.item_id in self.items:
                return True
            if e.finding_id is not None and e.source_item in self.exams:
                return True
            if e.kind == "history" and self.history:
                return True
        return False


def _evidence_keys(c: Conclusion) -> set[str]:
    keys = {f"item:{e.item_id}" for e in c.evidence if e.item_id}
    keys |= {f"finding:{e.finding_id}" for e in c.evidence if e.finding_id}
    return keys


def _same_problem(c: Conclusion, gone: list[tuple[Conclusion, set[str]]]) -> Conclusion | None:
    """A conclusion of the last visit, gone now (`gone`: in the last visit's order, with their evidence keys), of the
    same organ system and resting on the same items or findings."""
    mine = _evidence_keys(c)
    for old, keys in gone:
        if old.system == c.system and not mine.isdisjoint(keys):
            return old
    return None


def _merged_into(old: Conclusion, now: Conclusion) -> bool:
    """`old` (last visit) is listed among the parts merged into `now`. Merged names are the parts' names without the
    qualifiers added after the merge, so "空腹血糖受损（伴糖化血红蛋白偏高）" is the part "空腹血糖受损"."""
    return any(old.name == m or old.name.startswith((m + "（", m + "、")) for m in now.merged)


@dataclass(frozen=True, slots=True)
class _OwnGrounds:
    """Per KB, what lets a conclusion stand on its own facts: (rule id, conclusion id) of every rule that does not
    rest on other conclusions, and the conclusion each text finding maps to. Built once instead of scanning every
    rule for each compared conclusion."""

    version: str
    rules: frozenset[tuple[str, str]]
    finding_conclusions: dict[str, str | None]


_OWN_GROUNDS: dict[int, _OwnGrounds] = {}


def _own_grounds(kb: KnowledgeBase) -> _OwnGrounds:
    cached = _OWN_GROUNDS.get(id(kb))
    if cached is None or cached.version != kb.version:
        cached = _OwnGrounds(
            kb.version,
            frozenset((r.id, r.conclusion) for r in kb.rules if not uses_conclusions(r.when)),
            {fid: finding.conclusion for fid, finding in kb.findings.items()},
        )
        _OWN_GROUNDS[id(kb)] = cached
    return cached


def _fired_on_its_own(kb: KnowledgeBase, c: Conclusion) -> bool:
    """`c` stands on its own facts (a rule on values or history, or a text finding of its own), not only as the
    merge of other conclusions."""
    grounds = _own_grounds(kb)
    cid = c.conclusion_id
    for rule_id in c.rules:
        if (rule_id, cid) in grounds.rules:
            return True
    conclusion_of = grounds.finding_conclusions
    for e in c.evidence:
        fid = e.finding_id
        if fid is not None and fid in conclusion_of and conclusion_of[fid] == cid:
            return True
    return False


def _base_id(c: Conclusion) -> str:
    return c.conclusion_id
