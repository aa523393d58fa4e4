"""Narratives as text and sections: the template's, and the readable text of a verified model answer."""

from __future__ import annotations

import math
from typing import Any

from zhujian.domain.report import Report
from zhujian.narrate.template import TemplateNarrator, _summary
from zhujian.narration.answer import Answer
from zhujian.narration.model import TEMPLATE_FORMAT_VERSION, Narrative
from zhujian.render.typography import display_unit, typeset

_SEX = {"male": "男", "female": "女", "unknown": "未知"}
_LEVEL = {"A": "A类重要异常", "B": "B类重要异常"}
AI_NOTE = (
    "（以上解读由语言模型根据本报告的结论与证据起草，已经自动核对结论、数字、用药与身份信息，须经主检医生审核签字。）"
)


def template_narrative(report: Report) -> Narrative:
    """The template narrator's text, with the same sections a model answer has (built from the KB's own texts)."""
    sections: dict[str, Any] = {
        "summary": _summary(report),
        "conclusions": [{"name": c.name, "explanation": c.explanation, "advice": c.advice} for c in report.conclusions],
        "lifestyle": [],
        "follow_up": [f"{c.name}：{c.follow_up}" for c in report.conclusions if c.follow_up],
    }
    return Narrative(
        source="template",
        text=TemplateNarrator().narrate(report),
        sections=sections,
        model=None,
        prompt_version=TEMPLATE_FORMAT_VERSION,
    )


def _number(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return str(value)


def render_answer(report: dict[str, Any], answer: Answer, note: str | None = AI_NOTE) -> str:
    """The examinee-facing text of a verified answer. The header and the critical values come from the report, never
    from the model; every conclusion of the report is listed in rank order, with the model's explanation and advice
    where it wrote one and the KB's explanation and follow-up where it did not."""
    age = report.get("age")
    lines = [
        "主检报告（草稿，待主检医生审核签字）",
        f"体检编号：{report.get('visit_id')}　性别：{_SEX.get(str(report.get('sex')), '未知')}　"
        f"年龄：{_number(age) + '岁' if age is not None else '未知'}　体检日期：{report.get('exam_date') or '未记录'}",
    ]
    alerts = report.get("critical") or []
    if alerts:
        lines += ["", "【危急值及重要异常结果】"]
        for alert in alerts:
            value = ""
            if alert.get("value") is not None:
                unit = f" {display_unit(alert['unit'])}" if alert.get("unit") else ""
                value = f"（{_number(alert['value'])}{unit}）"
            lines.append(f"  ▲ {alert.get('level')}类：{alert.get('reason')}{value}")
    lines += ["", "【综述】", answer.summary.strip(), "", "【主检结论解读】"]
    written = {c.name: c for c in answer.conclusions}
    conclusions = report.get("conclusions") or []
    if not conclusions:
        lines.append("本次体检未见需要列入主检结论的异常。")
    for i, c in enumerate(conclusions, start=1):
        marks = "〔危急值〕" if c.get("critical") else ""
        marks += f"〔{_LEVEL[c['level']]}〕" if c.get("level") in _LEVEL else ""
        lines.append(f"{i}. {c['name']}{marks}")
        text = written.get(c["name"])
        if text is not None:
            if text.explanation.strip():
                lines.append(f"   解读：{text.explanation.strip()}")
            if text.advice.strip():
                lines.append(f"   建议：{text.advice.strip()}")
        else:
            lines.append(f"   说明：{c.get('explanation', '')}")
        if c.get("follow_up"):
            lines.append(f"   复查/随访：{c['follow_up']}　就诊科室：{c.get('department', '')}")
    if answer.lifestyle:
        lines += ["", "【生活方式建议】"] + [f"  - {t.strip()}" for t in answer.lifestyle if t.strip()]
    if answer.follow_up:
        lines += ["", "【复查与随访安排】"] + [f"  - {t.strip()}" for t in answer.follow_up if t.strip()]
    if note:
        lines += ["", note]
    # Set like the template's text: SI units and full-width Chinese punctuation, whatever the model wrote.
    return typeset("\n".join(lines)) + "\n"
