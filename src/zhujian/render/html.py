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

DEFAULT_CENTER_NAME = "健康体检中心"

# China keeps one time zone and no daylight saving, so a fixed offset needs no tz database.
_CHINA_STANDARD_TIME = dt.timezone(dt.timedelta(hours=8), "CST")
_SEX = {"male": "男", "female": "女", "unknown": "未知"}
_LEVEL = {"A": "A类重要异常", "B": "B类重要异常"}
_STATUS = {"new": "新发现", "worse": "较上次加重", "improved": "较上次好转", "persistent": "持续存在"}
_FLAG_ARROW = {"high": "↑", "low": "↓", "abnormal": "异常"}
_ABNORMAL_FLAGS = frozenset(_FLAG_ARROW)
_NO_SECTION = "其他项目"
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

# A follow-up window that states months (or years): "3-6个月复查", "1个月内就诊", "6–12个月", "1年后", "1-2年".
# "每3个月" / "每1-3个月" is a repeating schedule, not a date: the optional 每 is captured so that such a match is
# consumed whole and skipped instead of matching its "3个月" tail.
_WINDOW = re.compile(r"(每\s*)?(?<!\d)(\d{1,2})\s*(?:[-–—~～至到]\s*(\d{1,2}))?\s*(个月|月|年)(内|以内)?")


class ReportFormatError(ValueError):
    """The input is not a report JSON this renderer understands; the message names the field."""


def _add_months(day: dt.date, months: int) -> str:
    index = day.year * 12 + (day.month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def follow_up_schedule(follow_up: str, exam_date: dt.date | None) -> str | None:
    """The calendar months a follow-up window points to, counted from the exam date, or None when the window does
    not state months or years (立即就诊, 2周内, 每年, 有症状时) or the exam date is unknown.

    "3-6个月复查" with exam date 2026-03-18 → "复查日期约 2026-06 至 2026-09"; "1个月内就诊" → "就诊日期约 2026-04 前".
    """
    if exam_date is None or not follow_up:
        return None
    match = next((m for m in _WINDOW.finditer(follow_up) if m.group(1) is None), None)
    if match is None:
        return None
    factor = 12 if match.group(4) == "年" else 1
    first = int(match.group(2)) * factor
    last = int(match.group(3)) * factor if match.group(3) else None
    if first == 0 or (last is not None and last < first):
        return None
    label = "就诊" if "就诊" in follow_up and "复查" not in follow_up else "复查"
    if last is not None and last != first:
        return f"{label}日期约 {_add_months(exam_date, first)} 至 {_add_months(exam_date, last)}"
    if match.group(5):
        return f"{label}日期约 {_add_months(exam_date, first)} 前"
    return f"{label}日期约 {_add_months(exam_date, first)}"


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
    number: int
    name: str
    icd10: str
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


@dataclass(frozen=True, slots=True)
class ItemSection:
    title: str
    rows: list[ItemRow]
    abnormal_count: int


@dataclass(frozen=True, slots=True)
class TextResultView:
    item: str
    section: str
    text: str
    findings: list[str]


@dataclass(frozen=True, slots=True)
class RiskView:
    name: str
    computed: bool
    summary: str
    details: list[str]
    source: str


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
    conclusions: list[ConclusionView]
    item_sections: list[ItemSection]
    show_change: bool
    previous_exam: str | None
    text_results: list[TextResultView]
    risks: list[RiskView]
    signatures: list[SignatureView]
    signed: bool
    incomplete_texts: list[str]
    problems: list[str]
    abnormal_item_count: int
    measured_item_count: int
    narrative: NarrativeView | None = None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _number(value: float) -> str:
    """Results as a lab prints them: no trailing zeros, two decimals at most, small values kept significant."""
    if value != 0 and abs(value) < 0.1:
        return f"{value:.3g}"
    shown = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if shown == "-0" else shown


def _value(item: Mapping[str, Any]) -> str:
    value = item.get("value")
    qualifier = _text(item.get("qualifier"))
    prefix = qualifier if qualifier in (">", "<", "≥", "≤", ">=", "<=") else ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return f"{prefix}{_number(float(value))}"
    if value is not None and str(value).strip():
        return str(value)
    raw = item.get("raw_value")
    return _text(raw) if raw not in (None, "") else "—"


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
    by_id = {c.get("id"): c for c in conclusions if c.get("id")}
    alerts: list[AlertView] = []
    for alert in _list_of_dicts(report, "critical"):
        level = _text(alert.get("level")) or "B"
        holder = by_id.get(alert.get("conclusion_id")) if alert.get("conclusion_id") else None
        reason = _text(alert.get("reason"))
        title = _text(holder.get("name")) if holder else reason
        value = alert.get("value")
        shown: str | None = None
        if isinstance(value, int | float) and not isinstance(value, bool):
            shown = f"{_number(float(value))}{' ' + _text(alert.get('unit')) if alert.get('unit') else ''}"
        elif value not in (None, ""):
            shown = _text(value)
        department = _text(holder.get("department")) if holder else ""
        follow_up = _text(holder.get("follow_up")) if holder else ""
        alerts.append(
            AlertView(
                level=level,
                title=title,
                reason=reason if reason != title else "",
                value=shown,
                action=_alert_action(level, department, follow_up),
            )
        )
    return alerts


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
    return NarrativeView(
        summary=_text(sections.get("summary")),
        lifestyle=[_text(t) for t in sections.get("lifestyle") or [] if _text(t)],
        follow_up=[_text(t) for t in sections.get("follow_up") or [] if _text(t)],
        note=note,
    )


def _conclusions(
    conclusions: Sequence[Mapping[str, Any]], exam_date: dt.date | None, narrative: Mapping[str, Any] | None = None
) -> list[ConclusionView]:
    """Conclusion views; where the report's narrative explains a conclusion, its explanation and advice are used."""
    written = {
        _text(c.get("name")): c for c in (narrative or {}).get("conclusions") or [] if isinstance(c, Mapping)
    }
    out: list[ConclusionView] = []
    for number, c in enumerate(conclusions, start=1):
        follow_up = _text(c.get("follow_up"))
        text = written.get(_text(c.get("name")), {})
        evidence = c.get("evidence") or []
        out.append(
            ConclusionView(
                number=number,
                name=_text(c.get("name")),
                icd10=_text(c.get("icd10")),
                level_label=_LEVEL.get(_text(c.get("level"))),
                critical=bool(c.get("critical")),
                status_label=_STATUS.get(_text(c.get("status"))),
                explanation=_text(text.get("explanation") or c.get("explanation")),
                advice=_text(text.get("advice") or c.get("advice")),
                department=_text(c.get("department")),
                follow_up=follow_up,
                follow_up_date=follow_up_schedule(follow_up, exam_date),
                evidence=[
                    _text(e.get("description")) for e in evidence if isinstance(e, Mapping) and e.get("description")
                ],
            )
        )
    return out


def _item_sections(items: Sequence[Mapping[str, Any]]) -> list[ItemSection]:
    # Sections keep the order in which the source listed them, which is the order of the paper form.
    grouped: dict[str, list[ItemRow]] = {}
    for item in items:
        flag = _text(item.get("flag"))
        critical = bool(item.get("critical"))
        row = ItemRow(
            name=_text(item.get("name")) or _text(item.get("source_name")),
            value=_value(item),
            arrow=_FLAG_ARROW.get(flag, ""),
            abnormal=flag in _ABNORMAL_FLAGS or critical,
            critical=critical,
            unit=_text(item.get("unit")),
            reference=_reference(item),
            change=_text(item.get("change")),
        )
        section = _text(item.get("section")) or (_DERIVED_SECTION if item.get("derived") else _NO_SECTION)
        grouped.setdefault(section, []).append(row)
    only_unsectioned = set(grouped) <= {_NO_SECTION, _DERIVED_SECTION}
    if _DERIVED_SECTION in grouped:  # computed values follow what was measured
        grouped[_DERIVED_SECTION] = grouped.pop(_DERIVED_SECTION)
    return [
        ItemSection(
            title=_ONLY_SECTION if only_unsectioned and title == _NO_SECTION else title,
            rows=rows,
            abnormal_count=sum(1 for r in rows if r.abnormal),
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
    label = _text(finding.get("name"))
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
                    item=item,
                    section=_text(t.get("section")),
                    text=_text(t.get("text")),
                    findings=labels_by_item.pop(item, []),
                )
            )
        return out
    return [TextResultView(item=item, section="", text="", findings=labels) for item, labels in labels_by_item.items()]


def _risk_summary(a: Mapping[str, Any]) -> str:
    raw_result = a.get("result")
    result: Mapping[str, Any] = raw_result if isinstance(raw_result, Mapping) else {}
    category = _text(a.get("category"))
    model = a.get("model")
    if model == "china-par" and isinstance(result.get("risk10_pct"), int | float):
        text = f"10年风险 {float(result['risk10_pct']):.1f}%（{category or _text(result.get('category'))}）"
        if isinstance(result.get("ideal_risk10_pct"), int | float):
            text += f"；同龄理想危险因素水平 {float(result['ideal_risk10_pct']):.1f}%"
        return text
    if model == "cdrs" and result.get("score") is not None:
        return f"{result['score']} 分（{category}，≥25 分为糖尿病高危）"
    if model == "egfr" and result.get("egfr") is not None:
        stage = "，".join(_text(result[k]) for k in ("G", "A") if result.get(k))
        return f"eGFR {result['egfr']} mL/min/1.73m²（{stage}）" if stage else f"eGFR {result['egfr']} mL/min/1.73m²"
    if model == "metabolic-syndrome" and isinstance(result.get("criteria_met"), list):
        met = "、".join(_text(m) for m in result["criteria_met"]) or "无"
        return f"{category}（符合：{met}）"
    return category or "已评估"


def _risks(report: Mapping[str, Any]) -> list[RiskView]:
    out: list[RiskView] = []
    for a in _list_of_dicts(report, "risk"):
        missing = [_INPUT_LABELS.get(_text(m), _text(m)) for m in a.get("missing") or []]
        details: list[str] = []
        if a.get("computed"):
            summary = _risk_summary(a)
            details += [f"可改善：{m}" for m in a.get("modifiable") or []]
            if missing:
                details.append("缺少的项目可能改变结论：" + "、".join(missing))
        else:
            summary = "未能评估"
            if missing:
                details.append("缺少：" + "、".join(missing))
            elif a.get("message"):
                details.append(_text(a.get("message")))
        out.append(
            RiskView(
                name=_text(a.get("name")) or _text(a.get("model")),
                computed=bool(a.get("computed")),
                summary=summary,
                details=details,
                source=_text(a.get("source")),
            )
        )
    return out


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
    sections = _item_sections(items)
    problems = [_text(p.get("message")) for p in _list_of_dicts(report, "problems") if p.get("message")]
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
        alerts=_alerts(report, conclusions),
        conclusions=_conclusions(conclusions, exam_date, _narrative_sections(report)),
        item_sections=sections,
        show_change=any(i.get("change") for i in items),
        previous_exam=(
            _text(comparison.get("previous_exam_date") or comparison.get("previous_visit_id")) if comparison else None
        ),
        text_results=_text_results(_list_of_dicts(report, "findings"), record),
        risks=_risks(report),
        signatures=signature_views,
        signed=any(s.role == "主检医生" for s in signature_views),
        incomplete_texts=[_text(t) for t in report.get("incomplete_texts") or []],
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
