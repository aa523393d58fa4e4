"""Output types of the engine. Plain slotted dataclasses: the engine builds many of them per record, and the
report is serialized through `to_dict` with the fixed field names of the public report JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Flag = Literal["normal", "high", "low", "abnormal", "unknown"]


@dataclass(slots=True)
class Problem:
    """A data-quality message: the value could not be used as given. Never fatal."""

    code: str  # unparseable | implausible | unit_unknown | item_unknown | not_done | sex_mismatch | duplicate | …
    message: str
    item: str | None = None
    value: str | None = None
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "item": self.item, "value": self.value, "field": self.field}


@dataclass(slots=True)
class EvaluatedItem:
    item_id: str | None
    name: str
    source_name: str
    raw_value: str | None
    value: float | str | None
    unit: str | None
    ref_low: float | None
    ref_high: float | None
    ref_source: str | None  # "input" | "kb" | None
    flag: Flag
    critical: bool = False
    rank: int | None = None  # ordinal items only
    qualifier: str | None = None  # ">" / "<" when the source gave a bound, or a remark such as 轻度乳糜
    derived: bool = False
    section: str | None = None
    previous: list[dict[str, Any]] = field(default_factory=list)
    change: str | None = None
    # The evidence entry describing this item, built once per report however many rules cite it (not serialized).
    evidence_cache: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "name": self.name,
            "source_name": self.source_name,
            "raw_value": self.raw_value,
            "value": self.value,
            "unit": self.unit,
            "ref_low": self.ref_low,
            "ref_high": self.ref_high,
            "ref_source": self.ref_source,
            "flag": self.flag,
            "critical": self.critical,
            "rank": self.rank,
            "qualifier": self.qualifier,
            "derived": self.derived,
            "section": self.section,
            "previous": self.previous,
            "change": self.change,
        }


@dataclass(slots=True)
class Finding:
    finding_id: str
    name: str
    icd10: str
    site: str | None
    attrs: dict[str, Any]
    source_item: str
    span: tuple[int, int]
    evidence_text: str
    uncertain: bool = False
    conclusion: str | None = None
    critical: str | None = None
    text_index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "finding_id": self.finding_id,
            "name": self.name,
            "icd10": self.icd10,
            "site": self.site,
            "attrs": self.attrs,
            "source_item": self.source_item,
            "span": list(self.span),
            "evidence_text": self.evidence_text,
            "uncertain": self.uncertain,
        }


@dataclass(slots=True)
class Evidence:
    kind: Literal["item", "finding", "history", "rule", "demographic"]
    description: str
    item_id: str | None = None
    finding_id: str | None = None
    source_item: str | None = None
    span: tuple[int, int] | None = None
    rule_id: str | None = None
    value: float | str | None = None
    unit: str | None = None
    flag: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "description": self.description}
        for key in ("item_id", "finding_id", "source_item", "rule_id", "value", "unit", "flag"):
            val = getattr(self, key)
            if val is not None:
                out[key] = val
        if self.span is not None:
            out["span"] = list(self.span)
        return out


@dataclass(slots=True)
class Conclusion:
    conclusion_id: str
    name: str
    icd10: str
    level: str | None
    category: str
    system: str
    order: int
    department: str
    follow_up: str
    advice: str
    explanation: str
    evidence: list[Evidence] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    critical: bool = False
    status: str | None = None  # new | persistent | worse | improved (longitudinal comparison)
    status_detail: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.conclusion_id,
            "name": self.name,
            "icd10": self.icd10,
            "level": self.level,
            "category": self.category,
            "system": self.system,
            "department": self.department,
            "follow_up": self.follow_up,
            "advice": self.advice,
            "explanation": self.explanation,
            "critical": self.critical,
            "status": self.status,
            "status_detail": list(self.status_detail),
            "rules": list(self.rules),
            "merged": list(self.merged),
            "evidence": [e.to_dict() for e in self.evidence],
        }


@dataclass(slots=True)
class CriticalAlert:
    level: str
    reason: str
    source: str  # "item" | "finding" | "conclusion"
    item_id: str | None = None
    value: float | str | None = None
    unit: str | None = None
    conclusion_id: str | None = None
    rule_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "reason": self.reason,
            "source": self.source,
            "item_id": self.item_id,
            "value": self.value,
            "unit": self.unit,
            "conclusion_id": self.conclusion_id,
            "rule_id": self.rule_id,
        }


@dataclass(slots=True)
class Report:
    visit_id: str
    person_id: str | None
    sex: str
    age: float | None
    exam_date: str | None
    kb_version: str
    engine_version: str
    conclusions: list[Conclusion]
    items: list[EvaluatedItem]
    findings: list[Finding]
    critical: list[CriticalAlert]
    problems: list[Problem]
    incomplete_texts: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "visit_id": self.visit_id,
            "person_id": self.person_id,
            "sex": self.sex,
            "age": self.age,
            "exam_date": self.exam_date,
            "kb_version": self.kb_version,
            "engine_version": self.engine_version,
            "critical": [c.to_dict() for c in self.critical],
            "conclusions": [c.to_dict() for c in self.conclusions],
            "items": [i.to_dict() for i in self.items],
            "findings": [f.to_dict() for f in self.findings],
            "problems": [p.to_dict() for p in self.problems],
            "incomplete_texts": list(self.incomplete_texts),
        }
        out.update(self.extras)
        return out
