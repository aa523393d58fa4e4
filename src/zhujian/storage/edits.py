"""Physician edits of a report's conclusions, as pure functions on the report JSON.

Provenance is kept inside the report JSON, on each conclusion, so every stored version is self-describing:
- `provenance`: `auto` (drafted by the engine), `edited` (an auto conclusion whose name, advice or follow-up a
  physician changed), `added` (taken from the knowledge base by a physician, with the KB advice), `merged` (several
  conclusions combined into one by a physician; their evidence, rules and ids are kept).
  `added` and `merged` conclusions stay `added` / `merged` when edited later: they were physician-made already.
- `edited_fields`: which of name / advice / follow_up a physician wrote, for every provenance.
- `merged_from`: the conclusion ids combined into a `merged` conclusion.
A conclusion's `id` is its handle in edits: the KB conclusion id for auto and added ones, the first merged id for a
merged one.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from zhujian.kb.loader import KnowledgeBase
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
    """Combine several conclusions into one, at the place of the first. Name, advice and follow-up default to the
    parts' texts joined in order."""

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
                _merge(conclusions, operation)
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


def _merge(conclusions: list[dict[str, Any]], operation: MergeConclusions) -> None:
    ids = list(operation.conclusion_ids)
    if len(ids) < 2:
        raise InvalidEdit("合并至少需要两条结论")
    if len(set(ids)) != len(ids):
        raise InvalidEdit("合并的结论有重复")
    positions = [_position(conclusions, i) for i in ids]
    parts = [conclusions[p] for p in positions]
    first = parts[0]
    levels = [str(p["level"]) for p in parts if p.get("level") in _LEVEL_RANK]
    merged = copy.deepcopy(first)
    merged.update(
        {
            "name": _clean(operation.name, "name")
            if operation.name is not None
            else _joined((p.get("name") for p in parts), "、"),
            "advice": operation.advice.strip()
            if operation.advice is not None
            else _joined((p.get("advice") for p in parts), "\n"),
            "follow_up": operation.follow_up.strip()
            if operation.follow_up is not None
            else _joined((p.get("follow_up") for p in parts), "；"),
            "explanation": _joined((p.get("explanation") for p in parts), "\n"),
            "department": _joined((p.get("department") for p in parts), "/"),
            "level": min(levels, key=lambda level: _LEVEL_RANK[level]) if levels else None,
            "critical": any(bool(p.get("critical")) for p in parts),
            "evidence": [e for p in parts for e in p.get("evidence") or []],
            "rules": list(dict.fromkeys(r for p in parts for r in p.get("rules") or [])),
            "merged": list(
                dict.fromkeys(
                    [m for p in parts for m in p.get("merged") or []] + [str(p.get("name")) for p in parts[1:]]
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
    for position in sorted(positions[1:], reverse=True):
        conclusions.pop(position)
    conclusions[_position(conclusions, ids[0])] = merged


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
