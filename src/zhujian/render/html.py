"""The examinee's report as HTML: the same page serves the on-screen preview and, through WeasyPrint, the PDF.

The report JSON (`Report.to_dict()`) is turned into a small typed view first, so that the template only lays things
out and every decision (which results are abnormal, which follow-up date to print, whether the report is signed)
can be tested in Python. All text from the report and the record reaches the page through Jinja2 autoescaping.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from zhujian.alerts.policy import default_alerts_file, followup_month_range
from zhujian.render.typography import display_unit, format_measured, measured_text, typeset

DEFAULT_CENTER_NAME = "健康体检中心"

# China keeps one time zone and no daylight saving, so a fixed offset needs no tz database.
_CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
_SEX = {"male": "男", "female": "女", "unknown": "未知"}
_LEVEL = {"A": "A类重要异常", "B": "B类重要异常"}
_STATUS = {"new": "新发现", "worse": "较上次加重", "improved": "较上次好转", "persistent": "持续存在"}
_FLAG_ARROW = {"high": "↑", "low": "↓", "abnormal": "异常"}
_ABNORMAL_FLAGS = frozenset(_FLAG_ARROW)
_NO_SECTION = "其他项目"
_TEXT_NO_SECTION = "其他检查"  # text results whose source named no section, beside others that did
_ONLY_SECTION = "检验及测量项目"  # when the source gave no sections at all
_DERIVED_SECTION = "计算指标"  # BMI, eGFR, non-HDL-C…: computed by the engine, not measured
_ROLE_LABELS = {
    "chief": "主检医生",
    "main": "主检医生",
    "主检": "主检医生",
    "主检医生": "主检医生",
    "reviewer": "审核医生",
    "review": "审核医生",
    "审核": "审核医生",
    "审核医生": "审核医生",
}
# The risk models under names an examinee knows; the report's own names carry model and guideline abbreviations.
_RISK_NAMES = {
    "china-par": "心脑血管病10年风险（China-PAR）",
    "pce": "心脑血管病10年风险（PCE）",
    "cdrs": "糖尿病风险评分",
    "egfr": "肾功能评估",
    "metabolic-syndrome": "代谢综合征",
    "bp-class": "血压分级",
    "bmi-class": "体重分类",
    "waist-class": "腰围分类",
}
# KDIGO 2012 names of the GFR (G) and albuminuria (A) categories, as the Chinese CKD guidelines translate them.
_KDIGO_WORDS = {
    "G1": "肾功能正常或偏高",
    "G2": "肾功能轻度下降",
    "G3a": "肾功能轻到中度下降",
    "G3b": "肾功能中到重度下降",
    "G4": "肾功能重度下降",
    "G5": "肾功能衰竭",
    "A1": "尿白蛋白正常或轻度升高",
    "A2": "尿白蛋白中度升高",
    "A3": "尿白蛋白重度升高",
}
# Some risk models name missing inputs by their parameter names; the examinee reads Chinese.
_INPUT_LABELS = {
    "waist_cm": "腰围",
    "fpg_mmol_l": "空腹血糖",
    "pg2h_mmol_l": "OGTT 2小时血糖",
    "tg_mmol_l": "甘油三酯",
    "hdl_mmol_l": "高密度脂蛋白胆固醇",
    "sbp_mmhg": "收缩压",
    "dbp_mmhg": "舒张压",
    "diabetes_treated": "糖尿病治疗情况",
    "hypertension_treated": "降压治疗情况",
}

class ReportFormatError(ValueError):
    """The input is not a report JSON this renderer understands; the message names the field."""


def _add_months(day: dt.date, months: int) -> str:
    index = day.year * 12 + (day.month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _follow_up_months(follow_up: str, exam_date: dt.date | None) -> tuple[str, str] | None:
    """(复查 or 就诊, the months: "2026-06 至 2026-09", "2026-04 前" or "2027-03") of a follow-up window."""
    if exam_date is None or not follow_up:
        return None
    window = followup_month_range(follow_up, default_alerts_file().followup)
    if window is None:
        return None
    label = "就诊" if "就诊" in follow_up and "复查" not in follow_up else "复查"
    if window.last is not None and window.last != window.first:
        return label, f"{_add_months(exam_date, window.first)} 至 {_add_months(exam_date, window.last)}"
    if window.within:
        return label, f"{_add_months(exam_date, window.first)} 前"
    return label, _add_months(exam_date, window.first)


def follow_up_schedule(follow_up: str, exam_date: dt.date | None) -> str | None:
    """The calendar months a follow-up window points to, counted from the exam date, or None when the window does
    not state months or years (立即就诊, 2周内, 每年, 有症状时) or the exam date is unknown.

    "3-6个月复查" with exam date 2026-03-18 → "复查日期约 2026-06 至 2026-09"; "1个月内就诊" → "就诊日期约 2026-04 前".
    """
    months = _follow_up_months(follow_up, exam_date)
    return f"{months[0]}日期约 {months[1]}" if months else None


# ----------------------------------------------------------------------------------------------- the view model


@dataclass(frozen=True, slots=True)
class AlertView:
    level: str
    title: str
    reason: str
    value: str | None
    action: str


@dataclass(frozen=True, slots=True)
class ConclusionView:
    """One conclusion as the examinee reads it: what it is and what to do. The knowledge base's `advice` is written
    for physicians and is never part of this view; `advice` here is the examinee advice of a model-written (and
    verified) or physician-edited narrative, when there is one."""

    number: int
    name: str
    level_label: str | None
    critical: bool
    status_label: str | None
    explanation: str
    advice: str
    department: str
    follow_up: str
    follow_up_date: str | None
    evidence: list[str]


@dataclass(frozen=True, slots=True)
class RecheckView:
    """A line of the summary page: a conclusion, when to recheck or see a doctor, and where."""

    name: str
    follow_up: str
    months: str | None
    department: str
    status_label: str | None


@dataclass(frozen=True, slots=True)
class SummaryView:
    """The first page: what is urgent, what to recheck and when, and what is fine."""

    urgent: list[AlertView]
    rechecks: list[RecheckView]
    fine_sections: list[str]
    fine_texts: list[str]
    all_clear: bool


@dataclass(frozen=True, slots=True)
class NarrativeView:
    """The narrative of the report (as signed): overview, lifestyle and follow-up advice, and who wrote it."""

    summary: str
    lifestyle: list[str]
    follow_up: list[str]
    note: str


@dataclass(frozen=True, slots=True)
class ItemRow:
    name: str
    value: str
    arrow: str
    abnormal: bool
    critical: bool
    unit: str
    reference: str
    change: str
    judged_normal: bool = False
    cited: bool = False  # evidence of a conclusion


@dataclass(frozen=True, slots=True)
class ItemSection:
    title: str
    rows: list[ItemRow]
    abnormal_count: int
    show_change: bool = False  # a column "与上次比较" only where a result of this section has an earlier value


@dataclass(frozen=True, slots=True)
class TextResultView:
    item: str
    section: str
    text: str
    findings: list[str]


@dataclass(frozen=True, slots=True)
class TextGroupView:
    """The text results of one section (腹部彩超, 心电图…), in the order the source listed them."""

    title: str
    results: list[TextResultView]


@dataclass(frozen=True, slots=True)
class TrendView:
    """A result measured at earlier visits too: its values oldest first and the chart drawn from them."""

    name: str
    unit: str
    history: str
    svg: Markup


@dataclass(frozen=True, slots=True)
class RiskView:
    name: str
    summary: str
    details: list[str]


@dataclass(frozen=True, slots=True)
class UnassessedRiskView:
    """A risk model that could not be computed, and what was missing to compute it."""

    name: str
    missing: str


@dataclass(frozen=True, slots=True)
class SignatureView:
    role: str
    name: str
    signed_at: str


@dataclass(frozen=True, slots=True)
class PatientReportView:
    center_name: str
    visit_id: str
    examinee: str
    examinee_label: str
    sex: str
    age: str
    exam_date: str
    kb_version: str
    engine_version: str
    alerts: list[AlertView]
    summary: SummaryView
    conclusions: list[ConclusionView]
    item_sections: list[ItemSection]
    show_change: bool
    previous_exam: str | None
    trends: list[TrendView]
    text_results: list[TextResultView]
    text_groups: list[TextGroupView]
    original_texts_missing: bool
    risks: list[RiskView]
    unassessed_risks: list[UnassessedRiskView]
    signatures: list[SignatureView]
    signed: bool
    incomplete_texts: list[str]
    problems: list[str]
    abnormal_item_count: int
    measured_item_count: int
    narrative: NarrativeView | None = None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


# ----------------------------------------------------------------------------------------------- typography
# Every unit, number and free text the examinee reads passes through `_unit`, `_number`, `_value` and `_prose`,
# which apply the typography shared by every printed output (zhujian.render.typography).


def _unit(value: Any) -> str:
    """A unit as printed: µmol/L, ×10⁹/L, kg/m²."""
    return display_unit(_text(value))


def _prose(value: Any) -> str:
    """Free text from the report or the knowledge base: units in print form, Chinese punctuation per GB/T 15834."""
    return typeset(_text(value).strip())


def _number(value: float, raw: str | None = None) -> str:
    """A number at the precision it was measured when the record's text of it is known; otherwise as a lab prints a
    computed value: no trailing zeros, two decimals at most, small values kept significant."""
    if raw is not None:
        return format_measured(value, raw)
    if value != 0 and abs(value) < 0.1:
        return f"{value:.3g}"
    shown = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if shown == "-0" else shown


def _value(item: Mapping[str, Any]) -> str:
    value = item.get("value")
    raw = item.get("raw_value")
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        if raw in (None, ""):
            qualifier = _text(item.get("qualifier"))
            prefix = qualifier if qualifier in (">", "<", "≥", "≤", ">=", "<=") else ""
            return f"{prefix}{_number(float(value))}"
        return measured_text(float(value), _text(raw), _text(item.get("qualifier")) or None)
    if value is not None and str(value).strip():
        return _prose(value)
    return _prose(raw) if raw not in (None, "") else "—"


def _reference(item: Mapping[str, Any]) -> str:
    low, high = item.get("ref_low"), item.get("ref_high")
    low_text = _number(float(low)) if isinstance(low, int | float) else None
    high_text = _number(float(high)) if isinstance(high, int | float) else None
    if low_text is not None and high_text is not None:
        return f"{low_text}–{high_text}"
    if low_text is not None:
        return f"≥{low_text}"
    if high_text is not None:
        return f"≤{high_text}"
    return ""


def _parse_date(value: Any) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and value:
        try:
            return dt.date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _timestamp(value: Any) -> str:
    """A signing time for the examinee: aware times (storage keeps UTC) are shown in China Standard Time."""
    moment: dt.datetime | None = value if isinstance(value, dt.datetime) else None
    if isinstance(value, str) and value:
        try:
            moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if moment is None:
        return _text(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(_CHINA_STANDARD_TIME)
    return moment.strftime("%Y-%m-%d %H:%M")


def _list_of_dicts(report: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = report.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise ReportFormatError(f"report field {key!r} must be a list of objects")
    return value


def _alerts(report: Mapping[str, Any], conclusions: Sequence[Mapping[str, Any]]) -> list[AlertView]:
    """The critical values and class A/B results, class A first. A class A/B conclusion that no alert of the report
    names is added too: an important result is never left off the first page."""
    by_id = {c.get("id"): c for c in conclusions if c.get("id")}
    alerts: list[AlertView] = []
    named: set[Any] = set()
    for alert in _list_of_dicts(report, "critical"):
        level = _text(alert.get("level")) or "B"
        holder = by_id.get(alert.get("conclusion_id")) if alert.get("conclusion_id") else None
        if holder is not None:
            named.add(holder.get("id"))
        reason = _prose(alert.get("reason"))
        title = _prose(holder.get("name")) if holder else reason
        value = alert.get("value")
        shown: str | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            unit = _unit(alert.get("unit"))
            shown = f"{_number(float(value))}{' ' + unit if unit else ''}"
        elif value not in (None, ""):
            shown = _prose(value)
        department = _text(holder.get("department")) if holder else ""
        follow_up = _prose(holder.get("follow_up")) if holder else ""
        alerts.append(
            AlertView(
                level=level,
                title=title,
                reason=reason if reason != title else "",
                value=shown,
                action=_alert_action(level, department, follow_up),
            )
        )
    for c in conclusions:
        level = "A" if c.get("critical") else _text(c.get("level"))
        if level in _LEVEL and c.get("id") not in named:
            alerts.append(
                AlertView(
                    level=level,
                    title=_prose(c.get("name")),
                    reason="",
                    value=None,
                    action=_alert_action(level, _text(c.get("department")), _prose(c.get("follow_up"))),
                )
            )
    return sorted(alerts, key=lambda a: a.level != "A")


def _alert_action(level: str, department: str, follow_up: str) -> str:
    """What the examinee must do now, in one sentence: class A means today, class B means soon."""
    if level == "A":
        if not department:
            where = "（急诊）"
        elif "急诊" in department:
            where = f"（{department}）"
        else:
            where = f"（急诊或{department}）"
        return f"请立即就医{where}，并携带本报告。"
    named_department = department if department and department not in follow_up else ""
    if follow_up[:1].isdigit():  # "1周内内分泌科就诊" reads as a sentence after 请于
        action = f"请于{follow_up}" + (f"（{named_department}）" if named_department else "")
    else:
        notes = [text for text in (follow_up, named_department) if text]
        action = "请尽快就诊" + (f"（{'，'.join(notes)}）" if notes else "")
    return action + "，并携带本报告。"


def _narrative_sections(report: Mapping[str, Any]) -> Mapping[str, Any] | None:
    narrative = report.get("narrative")
    if not isinstance(narrative, Mapping):
        return None
    sections = narrative.get("sections")
    return sections if isinstance(sections, Mapping) and sections.get("summary") else None


def _narrative_written_for_examinee(report: Mapping[str, Any]) -> bool:
    """A model-written (verified) or physician-edited narrative speaks to the examinee throughout; the template
    narrative copies each conclusion's physician advice and lists the follow-up windows the summary page already
    shows, so only its overview is printed."""
    narrative = report.get("narrative")
    return isinstance(narrative, Mapping) and (
        narrative.get("source") == "llm" or bool(narrative.get("edited_by_physician"))
    )


def _narrative(report: Mapping[str, Any]) -> NarrativeView | None:
    sections = _narrative_sections(report)
    if sections is None:
        return None
    narrative = report["narrative"]
    if narrative.get("edited_by_physician"):
        note = "本解读由主检医生审核修改。"
    elif narrative.get("source") == "llm":
        note = "本解读由语言模型依据本报告的结论与检查结果起草，经自动核对及主检医生审核。"
    else:
        note = "本解读依据本报告的结论生成，经主检医生审核。"
    for_examinee = _narrative_written_for_examinee(report)
    return NarrativeView(
        summary=_prose(sections.get("summary")),
        lifestyle=[_prose(t) for t in sections.get("lifestyle") or [] if _text(t).strip()],
        follow_up=[_prose(t) for t in sections.get("follow_up") or [] if _text(t).strip()] if for_examinee else [],
        note=note,
    )


# A finding's evidence ends with the words it was read from, in brackets: "脂肪肝［肝脏：“点状密集”］". The examinee
# reads the whole original description in the imaging section instead.
_QUOTED_SOURCE = re.compile(r"［[^［］]*］\s*$")


def _conclusions(
    conclusions: Sequence[Mapping[str, Any]], exam_date: dt.date | None, report: Mapping[str, Any]
) -> list[ConclusionView]:
    """Conclusion views; where a narrative written for the examinee explains a conclusion, its words are used."""
    sections = _narrative_sections(report) or {}
    for_examinee = _narrative_written_for_examinee(report)
    written = {_text(c.get("name")): c for c in sections.get("conclusions") or [] if isinstance(c, Mapping)}
    out: list[ConclusionView] = []
    for number, c in enumerate(conclusions, start=1):
        follow_up = _prose(c.get("follow_up"))
        text = written.get(_text(c.get("name")), {})
        physician_advice = _text(c.get("advice")).strip()
        examinee_advice = _text(text.get("advice")).strip() if for_examinee else ""
        if examinee_advice == physician_advice:
            examinee_advice = ""
        evidence = c.get("evidence") or []
        out.append(
            ConclusionView(
                number=number,
                name=_prose(c.get("name")),
                level_label=_LEVEL.get(_text(c.get("level"))),
                critical=bool(c.get("critical")),
                status_label=_STATUS.get(_text(c.get("status"))),
                explanation=_prose(text.get("explanation") or c.get("explanation")),
                advice=_prose(examinee_advice),
                department=_text(c.get("department")),
                follow_up=follow_up,
                follow_up_date=follow_up_schedule(follow_up, exam_date),
                evidence=[
                    _prose(_QUOTED_SOURCE.sub("", _text(e.get("description"))))
                    for e in evidence
                    if isinstance(e, Mapping) and e.get("description")
                ],
            )
        )
    return out


def _kb_section(item_id: Any) -> str | None:
    """The section (血常规, 电解质…) the knowledge base files an item under, for sources that name no sections."""
    # Imported here: loading the knowledge base takes a second or two, and most sources name their sections.
    from zhujian.kb.loader import default_kb

    item = default_kb().items.get(_text(item_id))
    return item.section if item is not None else None


def _item_sections(items: Sequence[Mapping[str, Any]], cited: frozenset[str] = frozenset()) -> list[ItemSection]:
    # Sections keep the order in which the source listed them, which is the order of the paper form. An item the
    # source gave no section is filed under its knowledge-base section, so that results are never one long list.
    grouped: dict[str, list[tuple[ItemRow, bool]]] = {}
    for item in items:
        flag = _text(item.get("flag"))
        critical = bool(item.get("critical"))
        row = ItemRow(
            name=_prose(item.get("name")) or _prose(item.get("source_name")),
            value=_value(item),
            arrow=_FLAG_ARROW.get(flag, ""),
            abnormal=flag in _ABNORMAL_FLAGS or critical,
            critical=critical,
            unit=_unit(item.get("unit")),
            reference=_reference(item),
            change=_prose(item.get("change")),
            judged_normal=flag == "normal" and not critical,
            cited=_text(item.get("item_id")) in cited,
        )
        section = _text(item.get("section")) or (
            _DERIVED_SECTION if item.get("derived") else (_kb_section(item.get("item_id")) or _NO_SECTION)
        )
        grouped.setdefault(section, []).append((row, bool(item.get("change"))))
    only_unsectioned = set(grouped) <= {_NO_SECTION, _DERIVED_SECTION}
    if _DERIVED_SECTION in grouped:  # computed values follow what was measured
        grouped[_DERIVED_SECTION] = grouped.pop(_DERIVED_SECTION)
    return [
        ItemSection(
            title=_ONLY_SECTION if only_unsectioned and title == _NO_SECTION else title,
            rows=[row for row, _ in rows],
            abnormal_count=sum(1 for row, _ in rows if row.abnormal),
            show_change=any(changed for _, changed in rows),
        )
        for title, rows in grouped.items()
    ]


def _finding_label(finding: Mapping[str, Any]) -> str:
    raw_attrs = finding.get("attrs")
    attrs: Mapping[str, Any] = raw_attrs if isinstance(raw_attrs, Mapping) else {}
    parts: list[str] = []
    if attrs.get("side"):
        parts.append(f"{attrs['side']}侧" if attrs["side"] in ("左", "右", "双") else _text(attrs["side"]))
    if isinstance(attrs.get("size_mm"), int | float):
        parts.append(f"{_number(float(attrs['size_mm']))} mm")
    if isinstance(attrs.get("count"), int) and attrs["count"] > 1:
        parts.append(f"{attrs['count']}个")
    for key in ("category", "grade"):
        if attrs.get(key):
            parts.append(_text(attrs[key]))
    label = _prose(finding.get("name"))
    if finding.get("uncertain"):
        label += "（可能）"
    return f"{label}（{'，'.join(parts)}）" if parts else label


def _text_results(findings: Sequence[Mapping[str, Any]], record: Mapping[str, Any] | None) -> list[TextResultView]:
    labels_by_item: dict[str, list[str]] = {}
    for f in findings:
        labels = labels_by_item.setdefault(_text(f.get("source_item")), [])
        label = _finding_label(f)
        if label not in labels:  # the same finding may come from two lexicon entries
            labels.append(label)
    texts = record.get("texts") if record else None
    if isinstance(texts, list) and texts:
        out: list[TextResultView] = []
        for t in texts:
            if not isinstance(t, Mapping):
                continue
            item = _text(t.get("item"))
            out.append(
                TextResultView(
                    item=_prose(item),
                    section=_prose(t.get("section")),
                    # The original description as the examining physician wrote it; only its punctuation and units
                    # are set as in the rest of the report (a half-width colon between Chinese words reads as a slip).
                    text=typeset(_text(t.get("text")).strip()),
                    findings=labels_by_item.pop(item, []),
                )
            )
        # A finding whose item is not among the record's texts is still shown, never dropped.
        return out + _findings_only(labels_by_item)
    return _findings_only(labels_by_item)


def _findings_only(labels_by_item: Mapping[str, list[str]]) -> list[TextResultView]:
    return [
        TextResultView(item=_prose(item), section="", text="", findings=labels)
        for item, labels in labels_by_item.items()
    ]


def _text_groups(results: Sequence[TextResultView]) -> list[TextGroupView]:
    grouped: dict[str, list[TextResultView]] = {}
    for result in results:
        grouped.setdefault(result.section, []).append(result)
    if list(grouped) == [""]:  # the source named no sections: one list under the chapter heading
        return [TextGroupView(title="", results=grouped[""])]
    return [TextGroupView(title=title or _TEXT_NO_SECTION, results=rows) for title, rows in grouped.items()]


# ----------------------------------------------------------------------------------------------- trends


def _trend_label(day: str, all_days: Sequence[str]) -> str:
    """Visits a year apart read best as months (2025-03); two visits in one month need the day."""
    month = day[:7]
    return month if sum(1 for d in all_days if d[:7] == month) == 1 else day[:10]


def _trends(items: Sequence[Mapping[str, Any]], exam_date: str) -> list[TrendView]:
    """A chart for every numeric result that also has a numeric value from an earlier visit, in the order of the
    result tables."""
    from zhujian.render.charts import TrendPoint, trend_chart_svg

    out: list[TrendView] = []
    for item in items:
        value = item.get("value")
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        earlier = [
            p
            for p in item.get("previous") or []
            if isinstance(p, Mapping)
            and isinstance(p.get("value"), int | float)
            and not isinstance(p.get("value"), bool)
            and _text(p.get("exam_date"))
        ]
        if not earlier:
            continue
        earlier.sort(key=lambda p: _text(p.get("exam_date")))
        days = [_text(p.get("exam_date")) for p in earlier] + [exam_date or "本次"]
        points = [
            TrendPoint(_trend_label(day, days), float(p["value"]), _text(p.get("flag")) in _ABNORMAL_FLAGS)
            for day, p in zip(days, earlier, strict=False)
        ]
        points.append(
            TrendPoint(
                _trend_label(days[-1], days) if exam_date else "本次",
                float(value),
                _text(item.get("flag")) in _ABNORMAL_FLAGS or bool(item.get("critical")),
            )
        )
        raw = item.get("raw_value")
        labels = [_number(p.value) for p in points[:-1]]
        labels.append(_number(points[-1].value, _text(raw) if isinstance(raw, str) and raw.strip() else None))
        name = _prose(item.get("name")) or _prose(item.get("source_name"))
        unit = _unit(item.get("unit"))
        low, high = item.get("ref_low"), item.get("ref_high")
        svg = trend_chart_svg(
            f"{name}（{unit}）" if unit else name,
            points,
            labels,
            float(low) if isinstance(low, int | float) else None,
            float(high) if isinstance(high, int | float) else None,
        )
        if svg is None:
            continue
        out.append(
            TrendView(
                name=name,
                unit=unit,
                history=" → ".join(f"{p.label} {shown}" for p, shown in zip(points, labels, strict=True)),
                # Our own matplotlib output, not user text: the item name inside it is drawn as glyph paths.
                svg=Markup(svg),
            )
        )
    return out


# ----------------------------------------------------------------------------------------------- risk, in words


def _risk_words(a: Mapping[str, Any]) -> str:
    """What a computed risk result means, in a sentence the examinee can read."""
    raw_result = a.get("result")
    result: Mapping[str, Any] = raw_result if isinstance(raw_result, Mapping) else {}
    raw_inputs = a.get("inputs")
    inputs: Mapping[str, Any] = raw_inputs if isinstance(raw_inputs, Mapping) else {}
    category = _prose(a.get("category"))
    model = a.get("model")

    def number(key: str, source: Mapping[str, Any] = result) -> str | None:
        value = source.get(key)
        return _number(float(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None

    if model in ("china-par", "pce") and number("risk10_pct") is not None:
        risk = f"{float(result['risk10_pct']):.1f}"
        text = f"未来10年发生心肌梗死、脑卒中等心脑血管病的风险约为 {risk}%"
        text += f"，属于{category or _prose(result.get('category'))}" if (category or result.get("category")) else ""
        text += "（低于5%为低危，5%至10%为中危，10%及以上为高危）。" if model == "china-par" else "。"
        if isinstance(result.get("ideal_risk10_pct"), int | float):
            text += f"与您同龄、同性别且各项危险因素都理想的人约为 {float(result['ideal_risk10_pct']):.1f}%。"
        return text
    if model == "cdrs" and number("score") is not None:
        return f"{number('score')} 分，{category or '已评估'}（25 分及以上为糖尿病高危）。"
    if model == "egfr" and number("egfr") is not None:
        stages = [_text(result[k]) for k in ("G", "A") if result.get(k)]
        stages = [f"{s}期（{_KDIGO_WORDS[s]}）" if s in _KDIGO_WORDS else s for s in stages]
        text = f"估算肾小球滤过率 {number('egfr')} {_unit('mL/min/1.73m2')}"
        return text + (f"，{'，'.join(stages)}。" if stages else "。")
    if model == "metabolic-syndrome" and isinstance(result.get("criteria_met"), list):
        met = [_prose(m) for m in result["criteria_met"]]
        listed = f"（{'、'.join(met)}）" if met else ""
        return f"{category}：5 项指标中符合 {len(met)} 项{listed}，符合 3 项及以上即为代谢综合征。"
    if model == "bp-class" and number("sbp", inputs) and number("dbp", inputs):
        treated = "（正在服用降压药）" if inputs.get("on_treatment") else ""
        return f"本次血压 {number('sbp', inputs)}/{number('dbp', inputs)} mmHg{treated}，属于{category}。"
    if model == "bmi-class" and number("bmi", inputs):
        return f"体重指数 {number('bmi', inputs)} {_unit('kg/m2')}，属于{category}。"
    if model == "waist-class" and number("waist_cm", inputs):
        return f"腰围 {number('waist_cm', inputs)} cm，属于{category}。"
    return f"{category}。" if category else "已评估。"


def _missing_words(a: Mapping[str, Any]) -> str:
    return "、".join(_INPUT_LABELS.get(_text(m), _prose(m)) for m in a.get("missing") or [])


def _risks(report: Mapping[str, Any]) -> tuple[list[RiskView], list[UnassessedRiskView]]:
    """Computed risks in words, and the models that could not be computed with what they lacked. The model's source
    and internal notes on its coefficients are for physicians and are not printed."""
    computed: list[RiskView] = []
    unassessed: list[UnassessedRiskView] = []
    for a in _list_of_dicts(report, "risk"):
        model = _text(a.get("model"))
        name = _RISK_NAMES.get(model) or _prose(a.get("name")) or model
        missing = _missing_words(a)
        if not a.get("computed"):
            unassessed.append(UnassessedRiskView(name=name, missing=missing or _prose(a.get("message")) or "资料不全"))
            continue
        details = [_prose(m) for m in a.get("modifiable") or [] if _text(m).strip()]
        details += [_prose(n) for n in a.get("notes") or [] if _text(n).strip()]
        if missing:
            details.append(f"缺少{missing}，补充后结果可能改变。")
        computed.append(RiskView(name=name, summary=_risk_words(a), details=details))
    return computed, unassessed


def _signatures(signatures: Sequence[Mapping[str, Any]] | None) -> list[SignatureView]:
    out: list[SignatureView] = []
    for s in signatures or []:
        name = _text(s.get("name") or s.get("physician") or s.get("physician_name"))
        if not name:
            continue
        role = _text(s.get("role"))
        out.append(
            SignatureView(
                role=_ROLE_LABELS.get(role, role or "主检医生"),
                name=name,
                signed_at=_timestamp(s.get("signed_at") or s.get("time")),
            )
        )
    # The chief examiner signs first and the reviewer after; print them in that order whatever the caller passed.
    return sorted(out, key=lambda s: (s.role != "主检医生", s.role != "审核医生"))


def _summary(
    exam_date: dt.date | None,
    alerts: list[AlertView],
    conclusions: Sequence[ConclusionView],
    sections: Sequence[ItemSection],
    text_results: Sequence[TextResultView],
    incomplete_texts: Sequence[str],
) -> SummaryView:
    """The first page. Everything urgent is there; a report with an alert or any conclusion is never all clear."""
    urgent_titles = {a.title for a in alerts}
    rechecks = [
        RecheckView(
            name=c.name,
            follow_up=c.follow_up,
            months=(_follow_up_months(c.follow_up, exam_date) or (None, None))[1],
            department=c.department if c.department and c.department not in c.follow_up else "",
            status_label=c.status_label,
        )
        for c in conclusions
        if c.name not in urgent_titles
    ]
    # A section is fine when its judged results are inside their ranges and no conclusion cites any of them: blood
    # pressure 138/82 is inside 90-139/60-89 and still the evidence of 血压正常高值.
    fine_sections = [
        s.title
        for s in sections
        if s.abnormal_count == 0
        and any(r.judged_normal for r in s.rows)
        and not any(r.cited for r in s.rows)
    ]
    fine_texts = [
        t.item for t in text_results if t.text and not t.findings and t.item not in incomplete_texts
    ]
    return SummaryView(
        urgent=alerts,
        rechecks=rechecks,
        fine_sections=fine_sections,
        fine_texts=fine_texts,
        all_clear=not alerts and not conclusions,
    )


def build_patient_report_view(
    report: Mapping[str, Any],
    record: Mapping[str, Any] | None = None,
    *,
    signatures: Sequence[Mapping[str, Any]] | None = None,
    center_name: str = DEFAULT_CENTER_NAME,
    display_name: str | None = None,
) -> PatientReportView:
    """Everything the examinee's report shows, decided in one place. Raises ReportFormatError on a report JSON
    without a visit id or with fields of the wrong shape."""
    if not isinstance(report, Mapping):
        raise ReportFormatError("the report must be a JSON object")
    if not report.get("visit_id"):
        raise ReportFormatError("report field 'visit_id' is missing")
    record = record or {}
    conclusions = _list_of_dicts(report, "conclusions")
    items = _list_of_dicts(report, "items")
    exam_date_text = _text(report.get("exam_date") or record.get("exam_date"))
    exam_date = _parse_date(exam_date_text)
    age = report.get("age") if report.get("age") is not None else record.get("age")
    sex = _text(report.get("sex") or record.get("sex"))
    comparison = report.get("comparison") if isinstance(report.get("comparison"), Mapping) else None
    signature_views = _signatures(signatures)
    measured = [i for i in items if i.get("value") is not None]
    cited = frozenset(
        _text(e.get("item_id"))
        for c in conclusions
        for e in c.get("evidence") or []
        if isinstance(e, Mapping) and e.get("item_id")
    )
    sections = _item_sections(items, cited)
    problems = [_prose(p.get("message")) for p in _list_of_dicts(report, "problems") if p.get("message")]
    alerts = _alerts(report, conclusions)
    conclusion_views = _conclusions(conclusions, exam_date, report)
    findings = _list_of_dicts(report, "findings")
    text_results = _text_results(findings, record)
    incomplete_texts = [_prose(t) for t in report.get("incomplete_texts") or []]
    risks, unassessed = _risks(report)
    return PatientReportView(
        center_name=center_name,
        visit_id=_text(report.get("visit_id")),
        examinee=display_name or _text(report.get("person_id") or record.get("person_id")) or "—",
        examinee_label="姓名" if display_name else "受检者编号",
        sex=_SEX.get(sex, sex or "未知"),
        age=f"{_number(float(age))} 岁" if isinstance(age, int | float) else "未知",
        exam_date=exam_date.isoformat() if exam_date else (exam_date_text or "未记录"),
        kb_version=_text(report.get("kb_version")),
        engine_version=_text(report.get("engine_version")),
        alerts=alerts,
        summary=_summary(exam_date, alerts, conclusion_views, sections, text_results, incomplete_texts),
        conclusions=conclusion_views,
        item_sections=sections,
        show_change=any(i.get("change") for i in items),
        previous_exam=(
            _text(comparison.get("previous_exam_date") or comparison.get("previous_visit_id")) if comparison else None
        ),
        trends=_trends(items, exam_date.isoformat() if exam_date else ""),
        text_results=text_results,
        text_groups=_text_groups(text_results),
        original_texts_missing=bool(findings) and not any(t.text for t in text_results),
        risks=risks,
        unassessed_risks=unassessed,
        signatures=signature_views,
        signed=any(s.role == "主检医生" for s in signature_views),
        incomplete_texts=incomplete_texts,
        problems=problems,
        abnormal_item_count=sum(s.abnormal_count for s in sections),
        measured_item_count=len(measured),
        narrative=_narrative(report),
    )


# ----------------------------------------------------------------------------------------------- rendering


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("zhujian.render", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=True, default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@functools.cache
def report_css() -> str:
    """The stylesheet of the examinee's report (print rules for WeasyPrint included)."""
    return resources.files("zhujian.render").joinpath("templates/report.css").read_text(encoding="utf-8")


def render_patient_report_html(
    report: Mapping[str, Any],
    record: Mapping[str, Any] | None = None,
    *,
    signatures: Sequence[Mapping[str, Any]] | None = None,
    center_name: str = DEFAULT_CENTER_NAME,
    display_name: str | None = None,
) -> str:
    """The examinee's report (A4, zh-CN) as one self-contained HTML page with its stylesheet inlined.

    `report` is the report JSON (`Report.to_dict()`); `record` the input record JSON, used for the original text
    results and as a fallback for sex, age and exam date. Records carry no names: the examinee is shown by person
    id unless the caller passes `display_name`. Each signature is `{"role": "chief" | "reviewer", "name": ...,
    "signed_at": datetime or ISO string}`; without a chief examiner's signature the report is marked as an unsigned
    draft on every page.
    """
    view = build_patient_report_view(
        report, record, signatures=signatures, center_name=center_name, display_name=display_name
    )
    template = _environment().get_template("patient_report.html")
    # The stylesheet is our own package file, not user input, so it is inlined unescaped.
    return template.render(view=view, css=Markup(report_css()))
