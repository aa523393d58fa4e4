"""Template narrator: the 主检报告 in Chinese, built only from the report's own fields."""

from __future__ import annotations

from zhujian.domain.report import Conclusion, CriticalAlert, Report
from zhujian.narrate.base import register_narrator
from zhujian.render.typography import display_unit, format_measured, typeset

_SEX = {"male": "男", "female": "女", "unknown": "未知"}
_LEVEL = {"A": "A类重要异常", "B": "B类重要异常"}
_STATUS = {"new": "新发现", "worse": "较上次加重", "improved": "较上次好转", "persistent": "持续存在"}


def _header(report: Report) -> list[str]:
    age = f"{report.age:g}岁" if report.age is not None else "未知"
    date = report.exam_date or "未记录"
    return [
        "主检报告（草稿，待主检医生审核签字）",
        f"体检编号：{report.visit_id}　性别：{_SEX.get(report.sex, report.sex)}　年龄：{age}　体检日期：{date}",
        f"知识库版本：{report.kb_version}　引擎版本：{report.engine_version}",
    ]


def _summary(report: Report) -> str:
    measured = [i for i in report.items if i.item_id is not None and i.value is not None]
    abnormal = [i for i in measured if i.flag in ("high", "low", "abnormal")]
    n_a = sum(1 for c in report.conclusions if c.level == "A")
    n_b = sum(1 for c in report.conclusions if c.level == "B")
    parts = [
        f"本次体检共解读 {len(measured)} 项检验/测量结果，其中 {len(abnormal)} 项超出参考范围；"
        f"影像、心电及体格检查等文字结果中发现 {len(report.findings)} 处异常所见。",
    ]
    if report.conclusions:
        parts.append(f"归纳为 {len(report.conclusions)} 条主检结论")
        if n_a or n_b:
            parts[-1] += f"，其中 A 类重要异常 {n_a} 条、B 类重要异常 {n_b} 条，请优先处理"
        parts[-1] += "。"
        top = "、".join(c.name for c in report.conclusions[:5])
        parts.append(f"主要结论：{top}{'等' if len(report.conclusions) > 5 else ''}。")
    else:
        parts.append("未发现需要列入主检结论的异常。")
    return "".join(parts)


def _conclusion_lines(index: int, c: Conclusion) -> list[str]:
    level = f"〔{_LEVEL[c.level]}〕" if c.level in _LEVEL else ""
    critical = "〔危急值〕" if c.critical else ""
    status = f"〔{_STATUS[c.status]}〕" if c.status in _STATUS else ""
    lines = [f"{index}. {c.name}{critical}{level}{status}（ICD-10 {c.icd10}）"]
    if c.evidence:
        lines.append("   依据：" + "；".join(e.description for e in c.evidence))
    if c.merged:
        lines.append("   已合并：" + "、".join(c.merged))
    if c.status_detail:
        lines.append("   变化：" + "；".join(c.status_detail))
    lines.append(f"   建议：{c.advice}")
    lines.append(f"   复查/随访：{c.follow_up}　就诊科室：{c.department}")
    lines.append(f"   说明：{c.explanation}")
    return lines


def _risk_lines(report: Report) -> list[str]:
    assessments = report.extras.get("risk") or []
    if not assessments:
        return []
    lines = ["", "【健康风险评估】"]
    for a in assessments:
        if a.get("computed"):
            result = a.get("result", {})
            if a["model"] == "china-par":
                text = (
                    f"{result['risk10_pct']:.1f}%（{result['category']}）；"
                    f"同龄理想危险因素水平为 {result['ideal_risk10_pct']:.1f}%"
                )
            elif a["model"] == "cdrs":
                text = f"{result['score']} 分（{a['category']}，≥25 分为糖尿病高危）"
            elif a["model"] == "egfr":
                text = f"eGFR {format_measured(result['egfr'])} {display_unit('mL/min/1.73m2')}，{result['G']}" + (
                    f"，{result['A']}" if "A" in result else ""
                )
            elif a["model"] == "metabolic-syndrome":
                met = "、".join(result.get("criteria_met", [])) or "无"
                text = f"{a['category']}（符合：{met}）"
            else:
                text = str(a.get("category"))
            lines.append(f"  - {a['name']}：{text}")
            for m in a.get("modifiable", []):
                lines.append(f"      可改善：{m}")
        else:
            lines.append(f"  - {a['name']}：{a.get('message') or '无法计算'}")
    return lines


def _comparison_lines(report: Report) -> list[str]:
    comparison = report.extras.get("comparison")
    if not comparison:
        return []
    lines = [
        "",
        f"【与上次体检比较】（上次：{comparison.get('previous_exam_date') or comparison['previous_visit_id']}）",
    ]
    for item in report.items:
        if item.change and (
            item.flag in ("high", "low", "abnormal")
            or any(p.get("flag") in ("high", "low", "abnormal") for p in item.previous)
        ):
            lines.append(f"  - {item.name}：{item.change}")
    for c in report.conclusions:
        if c.status in ("new", "worse", "improved"):
            lines.append(f"  - {c.name}：{_STATUS[c.status]}")
    for r in comparison.get("resolved", []):
        lines.append(f"  - {r['name']}：本次未再出现（已好转/消失）")
    return lines


def _alert_value(report: Report, alert: CriticalAlert) -> str:
    """The alert's value as measured (the record's own digits when the item is in the report) with its unit."""
    if alert.value is None:
        return ""
    if not isinstance(alert.value, float):
        return f"（{alert.value}）"
    raw = next((i.raw_value for i in report.items if alert.item_id and i.item_id == alert.item_id), None)
    unit = display_unit(alert.unit)
    return f"（{format_measured(alert.value, raw)}{' ' + unit if unit else ''}）"


class TemplateNarrator:
    name = "template"

    def narrate(self, report: Report) -> str:
        lines = _header(report)
        if report.critical:
            lines += ["", "【危急值及重要异常结果】"]
            for alert in report.critical:
                lines.append(f"  ▲ {alert.level}类：{alert.reason}{_alert_value(report, alert)}")
        lines += ["", "【综述】", _summary(report), "", "【主检结论及建议】"]
        if not report.conclusions:
            lines.append("本次体检未见明显异常，建议保持健康生活方式，定期体检。")
        for i, c in enumerate(report.conclusions, start=1):
            lines += _conclusion_lines(i, c)
        lines += _risk_lines(report)
        lines += _comparison_lines(report)
        if report.incomplete_texts:
            lines += [
                "",
                "【未能完整检查的项目】",
                "、".join(report.incomplete_texts) + "：部分结构显示不清，建议必要时复查。",
            ]
        if report.problems:
            lines += ["", "【数据质量提示】"]
            lines += [f"  - {p.message}" for p in report.problems]
        # The KB's texts and the pipeline's evidence keep ASCII unit keys (umol/L, kg/m2) and may carry
        # half-width punctuation: the printed report sets both once, here.
        return typeset("\n".join(lines)) + "\n"


register_narrator("template", TemplateNarrator)
