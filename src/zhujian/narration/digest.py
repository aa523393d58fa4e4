"""The de-identified digest of a report: everything the model may see, and nothing that identifies the person.

The digest holds the sex, a five-year age band, the ranked conclusions with their class, evidence values with units
and reference ranges, risk results, the comparison with earlier visits (as changes, without visit ids) and the KB's
advice and explanation for each conclusion, plus the general lifestyle advice of the KB. It never holds the person
id, visit id, exam or birth date, and every free text that reaches it (findings' source text, history entries,
comparison notes) is masked with the `zhujian.deid` patterns (names after cues, ID numbers, phones, e-mails,
addresses, record numbers, birth dates) and stripped of the report's own identifiers.

It is built from the report JSON (`Report.to_dict()`), so the same function serves a fresh report, a batch output
line and a signed report stored in the workbench.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any

from zhujian.deid import PLACEHOLDERS, Deidentifier
from zhujian.narration.knowledge import NarrationKnowledge, default_narration_knowledge

SEX_ZH = {"male": "男", "female": "女", "unknown": "未知"}
FLAG_ZH = {"high": "偏高", "low": "偏低", "abnormal": "异常", "normal": "正常", "unknown": "未判定"}
STATUS_ZH = {"new": "新发现", "worse": "较上次加重", "improved": "较上次好转", "persistent": "持续存在"}
CATEGORY_ZH = {"disease": "疾病", "finding": "异常发现", "risk_factor": "危险因素"}
AGE_BAND_YEARS = 5


def age_band(age: float | None) -> str:
    """A five-year band (55-59岁) instead of the exact age; 90 and over as one band."""
    if age is None or not math.isfinite(age) or age < 0:
        return "未知"
    if age >= 90:
        return "90岁及以上"
    low = int(age // AGE_BAND_YEARS) * AGE_BAND_YEARS
    return f"{low}-{low + AGE_BAND_YEARS - 1}岁"


def conclusion_class(conclusion: dict[str, Any]) -> str:
    """The class a narrative must respect: 危急值, A类/B类重要异常, or the conclusion's category."""
    parts = []
    if conclusion.get("critical"):
        parts.append("危急值")
    if conclusion.get("level") in ("A", "B"):
        parts.append(f"{conclusion['level']}类重要异常")
    if not parts:
        parts.append(CATEGORY_ZH.get(str(conclusion.get("category")), str(conclusion.get("category"))))
    return "、".join(parts)


def must_cover(conclusion: dict[str, Any]) -> bool:
    """The coverage rule: a narrative must explain every critical, class A, class B and disease conclusion by its
    exact name. Findings and risk factors may be covered or left to the structured list (the rendered text still
    lists them with the KB's explanation), so a report of 25 conclusions does not force 25 paragraphs."""
    return bool(conclusion.get("critical")) or conclusion.get("level") in ("A", "B") or conclusion.get(
        "category"
    ) == "disease"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}" if math.isfinite(value) else str(value)
    return str(value)


def _range_text(item: dict[str, Any]) -> str | None:
    low, high = item.get("ref_low"), item.get("ref_high")
    if low is not None and high is not None:
        return f"{_number(low)}-{_number(high)}"
    if high is not None:
        return f"≤{_number(high)}"
    if low is not None:
        return f"≥{_number(low)}"
    return None


def _months_between(earlier: str | None, later: str | None) -> int | None:
    try:
        a = dt.date.fromisoformat(str(earlier)[:10])
        b = dt.date.fromisoformat(str(later)[:10])
    except ValueError:
        return None
    return max(0, round((b - a).days / 30.44))


def _risk_result(assessment: dict[str, Any]) -> str | None:
    if not assessment.get("computed"):
        return None
    result = assessment.get("result") or {}
    model = assessment.get("model")
    category = assessment.get("category")
    if model == "china-par" and "risk10_pct" in result:
        text = f"10年风险{result['risk10_pct']:.1f}%（{result.get('category') or category}）"
        if result.get("ideal_risk10_pct") is not None:
            text += f"，同龄理想危险因素水平为{result['ideal_risk10_pct']:.1f}%"
        return text
    if model == "cdrs" and "score" in result:
        return f"{result['score']}分（{category}，≥25分为糖尿病高危）"
    if model == "egfr" and "egfr" in result:
        return f"eGFR {_number(result['egfr'])} mL/min/1.73m²，{result.get('G', '')}" + (
            f"，{result['A']}" if result.get("A") else ""
        )
    if model == "metabolic-syndrome":
        met = "、".join(result.get("criteria_met", [])) or "无"
        return f"{category}（符合：{met}）"
    return str(category) if category is not None else None


@dataclass(frozen=True)
class Digest:
    """The digest (a JSON-able dict), its canonical text, its hash, and what the verifier needs to know."""

    data: dict[str, Any]
    text: str
    sha256: str
    conclusions: tuple[dict[str, Any], ...]  # the report's conclusions (name, level, category, critical, merged)
    required: tuple[str, ...]  # names a narrative must cover
    identifiers: tuple[str, ...]  # the report's own identifiers, never to appear in a request or an answer


# A purely numeric id shorter than this cannot be told from a measurement (visit 12 vs 12 U/L): it is not searched for
# in free text. Longer ids, and ids with letters, are masked wherever they stand as a whole token.
MIN_NUMERIC_ID_DIGITS = 6


def identifier_pattern(identifiers: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern matching any of the identifiers as a whole token (not inside a longer run of letters or digits)."""
    usable = [
        i
        for i in identifiers
        if len(i) >= 3 and not (i.isdigit() and len(i) < MIN_NUMERIC_ID_DIGITS)
    ]
    if not usable:
        return None
    alternatives = "|".join(re.escape(i) for i in sorted(usable, key=len, reverse=True))
    return re.compile(f"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")


# Calendar dates in free text (上次(2025-03), 2024年5月12日): the digest speaks of "the last visit", never of a date.
_BRACKETED_DATE = re.compile(r"[(（]\s*(?:19|20)\d{2}[-/.年]\d{1,2}(?:[-/.月]\d{1,2}日?)?\s*[)）]")
_DATE = re.compile(r"(?<!\d)(?:19|20)\d{2}(?:[-/.]\d{1,2}(?:[-/.]\d{1,2})?|年\d{1,2}月(?:\d{1,2}日)?)(?!\d)")


class _Masker:
    def __init__(self, identifiers: tuple[str, ...]) -> None:
        self._deid = Deidentifier(secrets.token_bytes(32))
        self._identifiers = identifier_pattern(identifiers)

    def __call__(self, text: str) -> str:
        if self._identifiers is not None:
            text = self._identifiers.sub(PLACEHOLDERS["record_number"], text)
        text = self._deid.scrub_text(text)
        if any(ch.isdigit() for ch in text):
            text = _DATE.sub("[日期]", _BRACKETED_DATE.sub("", text))
        return text


def report_identifiers(report: dict[str, Any], extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    found = [str(report[k]) for k in ("person_id", "visit_id") if report.get(k)]
    comparison = report.get("comparison") or {}
    if comparison.get("previous_visit_id"):
        found.append(str(comparison["previous_visit_id"]))
    return tuple(dict.fromkeys([*found, *extra]))


def build_digest(
    report: dict[str, Any],
    knowledge: NarrationKnowledge | None = None,
    identifiers: tuple[str, ...] = (),
) -> Digest:
    """The de-identified digest of a report JSON. `identifiers`: more strings that identify the person (a name, a
    birth date as written) to strip from free text besides the report's person and visit ids."""
    knowledge = knowledge or default_narration_knowledge()
    ids = report_identifiers(report, identifiers)
    mask = _Masker(ids)
    items = {i.get("item_id"): i for i in report.get("items", []) if i.get("item_id")}

    conclusions_out: list[dict[str, Any]] = []
    kept: list[dict[str, Any]] = []
    for c in report.get("conclusions", []):
        evidence: list[dict[str, Any]] = []
        for e in c.get("evidence", []):
            kind = e.get("kind")
            if kind == "item" and e.get("value") is not None:
                item = items.get(e.get("item_id"), {})
                entry: dict[str, Any] = {
                    "项目": item.get("name") or e.get("source_item") or e.get("item_id"),
                    "结果": _number(e["value"]) if not isinstance(e["value"], str) else mask(e["value"]),
                }
                if e.get("unit"):
                    entry["单位"] = e["unit"]
                ref = _range_text(item)
                if ref:
                    entry["参考范围"] = ref
                if e.get("flag"):
                    entry["提示"] = FLAG_ZH.get(e["flag"], e["flag"])
                if item.get("change"):
                    entry["与上次比较"] = mask(str(item["change"]))
                evidence.append(entry)
            elif kind == "finding":
                evidence.append({"所见": mask(str(e.get("description", "")))})
            elif kind == "history":
                evidence.append({"病史": mask(str(e.get("description", "")))})
            elif kind == "demographic":
                evidence.append({"人口学": mask(str(e.get("description", "")))})
        entry_c: dict[str, Any] = {"名称": c["name"], "类别": conclusion_class(c)}
        if c.get("status") in STATUS_ZH:
            entry_c["变化"] = STATUS_ZH[c["status"]]
        details = [mask(str(d)) for d in c.get("status_detail", [])]
        if details:
            entry_c["变化说明"] = details
        if c.get("merged"):
            entry_c["已合并"] = list(c["merged"])
        entry_c["依据"] = evidence
        entry_c["复查随访"] = c.get("follow_up", "")
        entry_c["就诊科室"] = c.get("department", "")
        entry_c["知识库建议"] = c.get("advice", "")
        entry_c["知识库说明"] = c.get("explanation", "")
        conclusions_out.append(entry_c)
        kept.append(
            {
                "name": c["name"],
                "level": c.get("level"),
                "category": c.get("category"),
                "critical": bool(c.get("critical")),
                "merged": list(c.get("merged", [])),
            }
        )

    data: dict[str, Any] = {
        "性别": SEX_ZH.get(str(report.get("sex")), "未知"),
        "年龄段": age_band(report.get("age")),
        "主检结论": conclusions_out,
    }
    alerts = []
    for a in report.get("critical", []):
        text = mask(str(a.get("reason", "")))
        if a.get("value") is not None:
            text += f"（{_number(a['value'])}{' ' + a['unit'] if a.get('unit') else ''}）"
        alerts.append(f"{a.get('level')}类：{text}")
    if alerts:
        data["危急值及重要异常"] = alerts
    risks = []
    for assessment in report.get("risk") or []:
        result = _risk_result(assessment)
        if result:
            risks.append({"名称": assessment.get("name"), "结果": result})
    if risks:
        data["风险评估"] = risks
    comparison = report.get("comparison")
    if comparison:
        compared: dict[str, Any] = {}
        months = _months_between(comparison.get("previous_exam_date"), report.get("exam_date"))
        if months is not None:
            compared["距上次体检"] = f"约{months}个月"
        resolved = [r.get("name") for r in comparison.get("resolved", []) if r.get("name")]
        if resolved:
            compared["本次未再出现"] = resolved
        data["与上次体检比较"] = compared
    data["生活方式参考"] = [a.text for a in knowledge.lifestyle.advice]

    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    sha = hashlib.sha256(text.encode("utf-8")).hexdigest()
    required = tuple(c["name"] for c in kept if must_cover(c))
    return Digest(data, text, sha, tuple(kept), required, ids)
