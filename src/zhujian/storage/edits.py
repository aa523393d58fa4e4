"""Physician edits of a report's conclusions, as pure functions on the report JSON.

Provenance is kept inside the report JSON, on each conclusion, so every stored version is self-describing:
- `provenance`: `auto` (drafted by the engine), `edited` (an auto conclusion whose name, advice or follow-up a
  physician changed), `added` (taken from the knowledge base by a physician, with the KB advice), `merged` (several
  conclusions combined into one by a physician; their evidence, rules and ids are kept).
  `added` and `merged` conclusions stay `added` / `merged` when edited later: they were physician-made already.
- `edited_fields`: which of name / advice / follow_up a physician wrote, for every provenance.
- `merged_from`: the conclusion ids combined into a `merged` conclusion; `merged` lists the parts' names, so every
  original conclusion stays visible with its evidence.
A conclusion's `id` is its handle in edits: the KB conclusion id for auto and added ones, the first merged id for a
merged one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zhujian.alerts.policy import default_alerts_file, followup_urgency_days
from zhujian.kb.loader import KnowledgeBase
from zhujian.kb.schema import AllCondition, AnyCondition, ConclusionCondition, NotCondition
from zhujian.storage.errors import InvalidEdit

EDITABLE_FIELDS = ("name", "advice", "follow_up")
_LEVEL_RANK = {"A": 0, "B": 1}


@dataclass(frozen=True, slots=True)
class EditConclusion:
    """Change the wording of one conclusion; fields left None stay as they are."""

    conclusion_id: str
    name: str | None = None
    advice: str | None = None
    follow_up: str | None = None


@dataclass(frozen=True, slots=True)
class AddConclusion:
    """Add a KB conclusion with its KB advice. Without a position it goes after the last conclusion of the same or
    a higher level (A before B before the rest)."""

    kb_conclusion_id: str
    position: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteConclusion:
    conclusion_id: str


@dataclass(frozen=True, slots=True)
class MergeConclusions:
    """Combine several conclusions into one (一元化), at the place of the earliest. Name, advice and follow-up the
    physician leaves None are derived from the parts: the KB merge's name or the most serious part's, every part's
    advice once, the most urgent part's follow-up."""

    conclusion_ids: tuple[str, ...]
    name: str | None = None
    advice: str | None = None
    follow_up: str | None = None


@dataclass(frozen=True, slots=True)
class ReorderConclusions:
    """The new order: every current conclusion id exactly once."""

    conclusion_ids: tuple[str, ...]


EditOperation = EditConclusion | AddConclusion | DeleteConclusion | MergeConclusions | ReorderConclusions


def with_auto_provenance(report_json: dict[str, Any]) -> dict[str, Any]:
    """A copy of an engine report JSON with every conclusion marked `auto`."""
    content = copy.deepcopy(report_json)
    for conclusion in content.get("conclusions", []):
        conclusion["provenance"] = "auto"
        conclusion["edited_fields"] = []
        conclusion["merged_from"] = []
    return content


def apply_operations(
    content: dict[str, Any], operations: Sequence[EditOperation], *, kb: KnowledgeBase | None
) -> dict[str, Any]:
    """The report JSON after `operations`, applied in order to a copy. Raises InvalidEdit (naming the operation)
    for the first operation that does not fit; the input is never changed."""
    result = copy.deepcopy(content)
    conclusions: list[dict[str, Any]] = result.setdefault("conclusions", [])
    for index, operation in enumerate(operations):
        try:
            if isinstance(operation, EditConclusion):
                _edit(conclusions, operation)
            elif isinstance(operation, AddConclusion):
                _add(conclusions, operation, kb, result.get("sex"))
            elif isinstance(operation, DeleteConclusion):
                conclusions.pop(_position(conclusions, operation.conclusion_id))
            elif isinstance(operation, MergeConclusions):
                _merge(conclusions, operation, kb)
            elif isinstance(operation, ReorderConclusions):
                _reorder(conclusions, operation)
            else:  # pragma: no cover - guarded by the type checker
                raise InvalidEdit(f"未知的修改类型：{type(operation).__name__}")
        except InvalidEdit as exc:
            raise InvalidEdit(str(exc), operation_index=index) from None
    return result


def _position(conclusions: list[dict[str, Any]], conclusion_id: str) -> int:
    for i, conclusion in enumerate(conclusions):
        if conclusion.get("id") == conclusion_id:
            return i
    raise InvalidEdit(f"报告中没有结论 {conclusion_id!r}")


def _clean(text: str, field: str) -> str:
    value = text.strip()
    if field == "name" and not value:
        raise InvalidEdit("结论名称不能为空")
    return value


def _mark_edited(conclusion: dict[str, Any], fields: Iterable[str]) -> None:
    edited = set(conclusion.get("edited_fields") or []) | set(fields)
    conclusion["edited_fields"] = [f for f in EDITABLE_FIELDS if f in edited]
    if conclusion.get("provenance", "auto") == "auto":
        conclusion["provenance"] = "edited"


def _edit(conclusions: list[dict[str, Any]], operation: EditConclusion) -> None:
    conclusion = conclusions[_position(conclusions, operation.conclusion_id)]
    given = {"name": operation.name, "advice": operation.advice, "follow_up": operation.follow_up}
    if all(value is None for value in given.values()):
        raise InvalidEdit("没有给出要修改的内容（名称、建议或复查时间）")
    changed = []
    for field, value in given.items():
        if value is None:
            continue
        cleaned = _clean(value, field)
        if cleaned != conclusion.get(field):
            conclusion[field] = cleaned
            changed.append(field)
    if changed:
        _mark_edited(conclusion, changed)


def _add(conclusions: list[dict[str, Any]], operation: AddConclusion, kb: KnowledgeBase | None, sex: Any) -> None:
    if kb is None:
        raise InvalidEdit("添加知识库结论需要知识库")
    definition = kb.conclusions.get(operation.kb_conclusion_id)
    if definition is None:
        raise InvalidEdit(f"知识库中没有结论 {operation.kb_conclusion_id!r}")
    present = {c.get("id") for c in conclusions}
    present.update(i for c in conclusions for i in c.get("merged_from") or [])
    if definition.id in present:
        raise InvalidEdit(f"报告中已有结论“{definition.name}”")
    if definition.sex != "any" and sex in ("male", "female") and definition.sex != sex:
        label = "男性" if definition.sex == "male" else "女性"
        raise InvalidEdit(f"结论“{definition.name}”仅适用于{label}受检者")
    added: dict[str, Any] = {
        "id": definition.id,
        "name": definition.name,
        "icd10": definition.icd10,
        "level": definition.level,
        "category": definition.category,
        "system": definition.system,
        "department": definition.department,
        "follow_up": definition.follow_up,
        "advice": definition.advice,
        "explanation": definition.explanation,
        # No measured critical value stands behind a physician's addition; the level alone ranks it.
        "critical": False,
        "status": None,
        "status_detail": [],
        "rules": [],
        "merged": [],
        "evidence": [],
        "provenance": "added",
        "edited_fields": [],
        "merged_from": [],
    }
    if operation.position is None:
        rank = _LEVEL_RANK.get(definition.level or "", 2)
        position = sum(1 for c in conclusions if _LEVEL_RANK.get(c.get("level") or "", 2) <= rank)
    else:
        if not 0 <= operation.position <= len(conclusions):
            raise InvalidEdit(f"位置 {operation.position} 超出范围（0–{len(conclusions)}）")
        position = operation.position
    conclusions.insert(position, added)


def _joined(values: Iterable[Any], separator: str) -> str:
    seen: list[str] = []
    for value in values:
        text = str(value).strip() if value else ""
        if text and text not in seen:
            seen.append(text)
    return separator.join(seen)


def _merge(conclusions: list[dict[str, Any]], operation: MergeConclusions, kb: KnowledgeBase | None) -> None:
    """One conclusion in place of several (一元化), at the place of the earliest part. Unless the physician wrote
    them: the name of a KB merge rule that covers exactly these parts, else the name of the most serious part; the
    most urgent part's follow-up; every part's advice and explanation once each. Departments, evidence and rules are
    combined without repeats, and every part's name stays in `merged`."""
    ids = list(operation.conclusion_ids)
    if len(ids) < 2:
        raise InvalidEdit("合并至少需要两条结论")
    if len(set(ids)) != len(ids):
        raise InvalidEdit("合并的结论有重复")
    positions = [_position(conclusions, i) for i in ids]
    by_place = sorted(zip(positions, ids, strict=True))
    parts = [conclusions[p] for p, _ in by_place]
    principal = parts[min(range(len(parts)), key=lambda i: _seriousness(parts[i], kb, i))]
    # The principal part first, then the others in report order.
    ordered = [principal, *(p for p in parts if p is not principal)]
    levels = [str(p["level"]) for p in parts if p.get("level") in _LEVEL_RANK]
    unified = _kb_unified(parts, kb) if operation.name is None else None
    name = _clean(operation.name, "name") if operation.name is not None else (unified or str(principal.get("name")))
    merged = copy.deepcopy(principal)
    merged.update(
        {
            "id": ids[0],
            "name": name,
            "advice": operation.advice.strip()
            if operation.advice is not None
            else _joined((p.get("advice") for p in ordered), "\n"),
            "follow_up": operation.follow_up.strip()
            if operation.follow_up is not None
            else _most_urgent_follow_up(ordered),
            "explanation": _joined((p.get("explanation") for p in ordered), "\n"),
            "department": _joined((d for p in ordered for d in str(p.get("department") or "").split("/")), "/"),
            "level": min(levels, key=lambda level: _LEVEL_RANK[level]) if levels else None,
            "critical": any(bool(p.get("critical")) for p in parts),
            "evidence": _unique(e for p in parts for e in p.get("evidence") or []),
            "rules": list(dict.fromkeys(r for p in parts for r in p.get("rules") or [])),
            "merged": list(
                dict.fromkeys(
                    n
                    for p in ordered
                    for n in [str(p.get("name")), *(str(m) for m in p.get("merged") or [])]
                    if n and n != name
                )
            ),
            "merged_from": list(dict.fromkeys([m for p in parts for m in p.get("merged_from") or []] + ids)),
            "provenance": "merged",
            "edited_fields": [
                f
                for f in EDITABLE_FIELDS
                if getattr(operation, f) is not None or f in set().union(*(p.get("edited_fields") or [] for p in parts))
            ],
        }
    )
    for position in sorted(positions, reverse=True):
        conclusions.pop(position)
    conclusions.insert(by_place[0][0], merged)


# Seriousness of a conclusion, for naming a merge after its most serious part: critical value, class A, class B,
# then disease before finding before risk factor, then the KB order (the order a report lists them in).
_CATEGORY_RANK = {"disease": 0, "finding": 1, "risk_factor": 2}


def _seriousness(conclusion: dict[str, Any], kb: KnowledgeBase | None, place: int) -> tuple[int, int, int, int, int]:
    definition = kb.conclusions.get(str(conclusion.get("id"))) if kb is not None else None
    return (
        0 if conclusion.get("critical") else 1,
        _LEVEL_RANK.get(conclusion.get("level") or "", 2),
        _CATEGORY_RANK.get(str(conclusion.get("category")), 3),
        definition.order if definition is not None else 10**6,
        place,
    )


def _most_urgent_follow_up(parts: Sequence[dict[str, Any]]) -> str:
    """The follow-up of the part that asks for action soonest (windows and urgent words from the KB's alerts.yaml);
    texts without a time come after every timed one, ties keep the parts' order (most serious first)."""
    rules = default_alerts_file().followup
    texts = [str(p.get("follow_up") or "").strip() for p in parts]
    timed = [(followup_urgency_days(t, rules), i) for i, t in enumerate(texts) if t]
    if not timed:
        return ""
    _, first = min(timed, key=lambda pair: (pair[0] is None, pair[0] or 0.0, pair[1]))
    return texts[first]


def _kb_unified(parts: Sequence[dict[str, Any]], kb: KnowledgeBase | None) -> str | None:
    """The name the KB gives these parts together: a merge rule (one with `suppresses`) whose condition names only
    conclusions, holds for exactly these parts and whose conclusion and suppressed ones cover every part. The
    rule's own conclusion gives the name (the part's wording when it is one of the parts), with the rule's
    qualifier."""
    if kb is None:
        return None
    present = {str(p.get("id")) for p in parts} | {str(m) for p in parts for m in p.get("merged_from") or []}
    own_ids = {str(p.get("id")) for p in parts}
    for rule in kb.rules:
        family = {rule.conclusion, *rule.suppresses}
        if not rule.suppresses or not own_ids <= family or not _holds_on_conclusions(rule.when, present):
            continue
        part = next((p for p in parts if p.get("id") == rule.conclusion), None)
        name = str(part.get("name")) if part is not None else kb.conclusions[rule.conclusion].name
        if rule.qualifier and rule.qualifier not in name:
            name += rule.qualifier
        return name
    return None


def _holds_on_conclusions(condition: Any, present: set[str]) -> bool:
    """Whether a rule condition holds when exactly `present` conclusions are known; False for a condition that
    needs any other fact (a value, a text finding): only what the parts themselves say is used."""
    if isinstance(condition, ConclusionCondition):
        return condition.conclusion in present
    if isinstance(condition, AllCondition):
        return all(_holds_on_conclusions(c, present) for c in condition.all)
    if isinstance(condition, AnyCondition):
        return any(_holds_on_conclusions(c, present) for c in condition.any)
    if isinstance(condition, NotCondition):
        inner = condition.not_
        # "not <conclusion>" is decidable from the parts; a negated fact of another kind is not.
        return _only_conclusions(inner) and not _holds_on_conclusions(inner, present)
    return False


def _only_conclusions(condition: Any) -> bool:
    if isinstance(condition, ConclusionCondition):
        return True
    if isinstance(condition, AllCondition):
        return all(_only_conclusions(c) for c in condition.all)
    if isinstance(condition, AnyCondition):
        return all(_only_conclusions(c) for c in condition.any)
    if isinstance(condition, NotCondition):
        return _only_conclusions(condition.not_)
    return False


def _unique(items: Iterable[Any]) -> list[Any]:
    """Items without repeats, in order (two parts often cite the same value, e.g. the blood pressure)."""
    out: list[Any] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def _reorder(conclusions: list[dict[str, Any]], operation: ReorderConclusions) -> None:
    current = [c.get("id") for c in conclusions]
    wanted = list(operation.conclusion_ids)
    if len(wanted) != len(set(wanted)) or sorted(wanted) != sorted(str(i) for i in current):
        raise InvalidEdit("新的顺序必须恰好包含报告中的每条结论各一次")
    by_id = {c.get("id"): c for c in conclusions}
    conclusions[:] = [by_id[i] for i in wanted]


def report_level(conclusions: Iterable[dict[str, Any]]) -> tuple[str | None, bool]:
    """(highest level among the conclusions: "A", "B" or None; critical: a class-A conclusion backed by a critical
    value, i.e. a 危急值 that must be handled first)."""
    highest: str | None = None
    critical = False
    for conclusion in conclusions:
        level = conclusion.get("level")
        if level in _LEVEL_RANK and (highest is None or _LEVEL_RANK[level] < _LEVEL_RANK[highest]):
            highest = level
        if level == "A" and conclusion.get("critical"):
            critical = True
    return highest, critical


def worklist_priority(highest_level: str | None, critical: bool) -> int:
    """0 critical, 1 other class A, 2 class B, 3 the rest: the first worklist sort key."""
    if critical:
        return 0
    return {"A": 1, "B": 2}.get(highest_level or "", 3)


def conclusion_summary(conclusions: Sequence[dict[str, Any]], limit: int = 3, max_chars: int = 300) -> str:
    names = [str(c.get("name") or "") for c in conclusions[:limit]]
    text = "；".join(names) + ("等" if len(conclusions) > limit else "")
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"
