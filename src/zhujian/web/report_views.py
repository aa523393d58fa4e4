"""What the workbench shows of a report, built from the services' results: signatures, the record's texts with the
matched spans highlighted, the audit trail as readable changes, and the KB conclusions a physician can add.
Pure functions over plain data, except `report_record`, the one read the services do not offer yet."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from zhujian.alerts.followup import TASK_STATE_LABELS
from zhujian.alerts.services import ALERT_STATUS_LABELS
from zhujian.kb.loader import KnowledgeBase
from zhujian.storage.models import RawRecord, Report
from zhujian.storage.permissions import authorize
from zhujian.storage.services import STATUS_LABELS
from zhujian.storage.values import Actor, AuditEntry, ReportVersionInfo

SIGNED_STATUSES = frozenset({"signed", "reviewed", "published"})
LEVEL_LABELS = {"A": "A类", "B": "B类"}
FLAG_LABELS = {"high": "↑", "low": "↓", "abnormal": "异常", "normal": "", "unknown": ""}
PROVENANCE_LABELS = {"auto": "自动", "edited": "已修改", "added": "医生添加", "merged": "已合并"}
CHANGE_LABELS = {"new": "新发", "persistent": "持续", "worse": "加重", "improved": "好转"}
ACTION_LABELS = {
    "record.submit": "接收体检数据并生成草稿",
    "record.resubmit": "接收更新的体检数据",
    "report.edit": "修改结论",
    "report.regenerate": "重新生成草稿",
    "report.sign": "主检签署",
    "report.review.approve": "审核通过",
    "report.review.reject": "审核退回",
    "report.publish": "发布报告",
    # zhujian.alerts: the loop after the draft
    "alert.open": "重要异常结果提醒",
    "alert.notify": "已通知受检者",
    "alert.contact": "联系/发送消息",
    "alert.attempt_failed": "联系未成功",
    "alert.close": "提醒闭环",
    "followup.create": "生成随访任务",
    "followup.contact": "随访联系",
    "followup.close": "随访结局",
    "followup.close_by_visit": "再次体检关闭随访",
    "report.narrate": "生成报告解读",
    "report.narrative_edit": "修改报告解读",
    "identity.read": "查看受检者身份信息",
    "identity.set": "修改受检者身份信息",
    "group.report": "生成团检报告",
    "user.create": "创建用户",
    "user.update": "修改用户",
}
OBJECT_LABELS = {"report": "报告", "person": "受检者", "user": "用户", "cohort": "团检"}
FIELD_LABELS = {"name": "名称", "advice": "建议", "follow_up": "复查时间"}
# The words for the statuses an audit entry records, by what the action acts on (its prefix): reports, alerts of
# important results, follow-up tasks (stored as open / closed; the page's due / overdue states are derived).
AUDIT_STATUS_LABELS: dict[str, dict[str, str]] = {
    "report": STATUS_LABELS,
    "record": STATUS_LABELS,
    "alert": ALERT_STATUS_LABELS,
    "followup": {"open": "未完成", **TASK_STATE_LABELS},
}


def report_record(session: Session, report_id: int, *, actor: Actor) -> dict[str, Any] | None:
    """The record JSON the report's current content was built from (for texts, PDF and FHIR), or None."""
    authorize(session, actor, "read")
    record: dict[str, Any] | None = session.scalar(
        select(RawRecord.record).join(Report, Report.raw_record_id == RawRecord.id).where(Report.id == report_id)
    )
    return dict(record) if record is not None else None


def signatures_from_history(status: str, history: Sequence[ReportVersionInfo]) -> list[dict[str, Any]]:
    """The signatures that stand for the current state: the last 主检 signature and the review approval after it.
    A report sent back or changed after signing carries no signature until it is signed again."""
    chief: dict[str, Any] | None = None
    reviewer: dict[str, Any] | None = None
    for version in history:
        if version.change == "sign":
            chief = {"role": "chief", "name": version.actor or "", "signed_at": version.created_at}
            reviewer = None
        elif version.change == "review_approve":
            reviewer = {"role": "reviewer", "name": version.actor or "", "signed_at": version.created_at}
        elif version.change in ("review_reject", "edit", "auto_update", "regenerate"):
            chief = reviewer = None
    if status not in SIGNED_STATUSES:
        return []
    return [s for s in (chief, reviewer) if s is not None]


@dataclass(frozen=True, slots=True)
class TextPiece:
    text: str
    finding: str | None  # the finding's name when this piece is a matched span
    uncertain: bool = False


@dataclass(frozen=True, slots=True)
class TextView:
    item: str
    section: str | None
    pieces: list[TextPiece]
    matched: bool


def highlighted_texts(record: dict[str, Any] | None, findings: Iterable[dict[str, Any]]) -> list[TextView]:
    """The record's free texts cut into pieces, the spans of the report's findings marked. A finding points at its
    text by `source_item` (and `text_index` when given, else the first text of that item whose span matches)."""
    texts: list[dict[str, Any]] = list((record or {}).get("texts") or [])
    spans: dict[int, list[tuple[int, int, str, bool]]] = {}
    for finding in findings:
        span = finding.get("span")
        if not isinstance(span, list | tuple) or len(span) != 2:
            continue
        start, end = int(span[0]), int(span[1])
        index = _text_index(texts, finding, start, end)
        if index is not None:
            spans.setdefault(index, []).append(
                (start, end, str(finding.get("name") or ""), bool(finding.get("uncertain")))
            )
    views = []
    for index, text in enumerate(texts):
        body = str(text.get("text") or "")
        pieces: list[TextPiece] = []
        cursor = 0
        for start, end, name, uncertain in sorted(spans.get(index, [])):
            if start < cursor or end > len(body) or start >= end:
                continue  # overlapping or out-of-range spans stay unmarked rather than garbled
            if start > cursor:
                pieces.append(TextPiece(body[cursor:start], None))
            pieces.append(TextPiece(body[start:end], name, uncertain))
            cursor = end
        if cursor < len(body):
            pieces.append(TextPiece(body[cursor:], None))
        views.append(TextView(str(text.get("item") or ""), text.get("section"), pieces, index in spans))
    return views


def _text_index(texts: list[dict[str, Any]], finding: dict[str, Any], start: int, end: int) -> int | None:
    given = finding.get("text_index")
    candidates = [i for i, t in enumerate(texts) if t.get("item") == finding.get("source_item")]
    if isinstance(given, int) and 0 <= given < len(texts):
        return given
    wanted = finding.get("evidence_text")
    for i in candidates:
        if wanted and str(texts[i].get("text") or "")[start:end] == wanted:
            return i
    return candidates[0] if candidates else None


def abnormal_first(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items with a flag first (critical ones at the very top), the rest in the record's order."""
    ordered = list(items)
    return sorted(ordered, key=lambda i: (not i.get("critical"), i.get("flag") in ("normal", "unknown", None)))


def reference_range(item: dict[str, Any]) -> str:
    low, high = item.get("ref_low"), item.get("ref_high")
    if low is not None and high is not None:
        return f"{_number(low)}–{_number(high)}"
    if low is not None:
        return f"≥{_number(low)}"
    if high is not None:
        return f"≤{_number(high)}"
    return ""


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def audit_changes(entry: AuditEntry) -> list[str]:
    """Human-readable lines for one audit entry: status changes and, for edits, what happened to each conclusion."""
    before, after = entry.before or {}, entry.after or {}
    lines: list[str] = []
    if before.get("status") and after.get("status") and before["status"] != after["status"]:
        words = AUDIT_STATUS_LABELS.get(entry.action.split(".")[0], STATUS_LABELS)
        shown = [words.get(str(state), str(state)) for state in (before["status"], after["status"])]
        lines.append(f"状态：{shown[0]} → {shown[1]}")
    if "version" in after:
        lines.append(f"版本：{before.get('version', '—')} → {after['version']}")
    if after.get("note"):
        lines.append(f"原因：{after['note']}")
    old = {c.get("id"): c for c in before.get("conclusions") or []}
    new = {c.get("id"): c for c in after.get("conclusions") or []}
    if old and new:
        for cid, conclusion in new.items():
            previous = old.get(cid)
            if previous is None:
                lines.append(f"新增结论：{conclusion.get('name')}")
                continue
            for field, label in FIELD_LABELS.items():
                if previous.get(field) != conclusion.get(field):
                    old_text, new_text = previous.get(field) or "—", conclusion.get(field) or "—"
                    lines.append(f"{conclusion.get('name')}｜{label}：{old_text} → {new_text}")
        for cid, conclusion in old.items():
            if cid not in new and not any(cid in (c.get("merged_from") or []) for c in new.values()):
                lines.append(f"删除结论：{conclusion.get('name')}")
        merged = [
            c
            for c in new.values()
            if c.get("provenance") == "merged" and c.get("id") in old and old[c.get("id")].get("provenance") != "merged"
        ]
        lines.extend(f"合并结论：{c.get('name')}" for c in merged)
        if [c for c in new if c in old] != [c for c in old if c in new]:
            lines.append("调整了结论顺序")
    return lines


def search_kb_conclusions(kb: KnowledgeBase, query: str, *, sex: str | None = None, limit: int = 20) -> list[Any]:
    """KB conclusion definitions whose name or id contains `query` (names first), fitting the examinee's sex."""
    needle = query.strip().lower()
    if not needle:
        return []
    by_name, by_id = [], []
    for definition in kb.conclusions.values():
        if sex in ("male", "female") and definition.sex not in ("any", sex):
            continue
        if needle in definition.name.lower():
            by_name.append(definition)
        elif needle in definition.id:
            by_id.append(definition)
    return (sorted(by_name, key=lambda d: (len(d.name), d.name)) + by_id)[:limit]
