"""The whole engine for one record: evaluate → extract → rules → rank → compose. Pure: no I/O."""

from __future__ import annotations

from zhujian import __version__
from zhujian.domain.record import Record
from zhujian.domain.report import Conclusion, CriticalAlert, Finding, Problem, Report
from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.compare import PriorReport, apply_comparison, prior_record
from zhujian.pipeline.conditions import Facts
from zhujian.pipeline.evaluate import evaluate_items
from zhujian.pipeline.extract import extract_text, lexicon_for
from zhujian.pipeline.risk_section import assess_risks
from zhujian.pipeline.rules import derive_conclusions

_LEVEL_ORDER = {"A": 0, "B": 1}
_CATEGORY_ORDER = {"disease": 0, "finding": 1, "risk_factor": 2}
_SOURCE_ORDER = {"item": 0, "finding": 1, "conclusion": 2}


def _alert_key(a: CriticalAlert) -> tuple[int, int]:
    return _LEVEL_ORDER.get(a.level, 2), _SOURCE_ORDER[a.source]


def rank_key(c: Conclusion) -> tuple[int, int, int, int, int, str]:
    """Class A (critical values lead it), then class B, then diseases, findings, risk factors (2019 consensus).
    Within a class, what got worse since the last visit, and what is new and important, comes first."""
    escalated = c.status == "worse" or (c.status == "new" and c.level in ("A", "B"))
    return (
        _LEVEL_ORDER.get(c.level or "", 2),
        0 if c.critical else 1,
        0 if escalated else 1,
        _CATEGORY_ORDER.get(c.category, 3),
        c.order,
        c.name,
    )


def rank_conclusions(conclusions: list[Conclusion]) -> list[Conclusion]:
    return sorted(conclusions, key=rank_key)


def build_report(kb: KnowledgeBase, record: Record, *, with_history: bool = True) -> Report:
    """The report of one record. Prior visits are evaluated with the same KB and compared when `with_history`."""
    evaluation = evaluate_items(kb, record)
    problems: list[Problem] = list(evaluation.problems)
    age = record.age_years()
    if record.sex == "unknown":
        problems.append(Problem("sex_unknown", "性别未知：按性别区分的参考范围和结论未使用", field="sex"))
    if age is None:
        problems.append(Problem("age_unknown", "年龄未知：按年龄区分的参考范围、eGFR 和风险评估未使用", field="age"))

    findings: list[Finding] = []
    incomplete: list[str] = []
    for index, text in enumerate(record.texts):
        # Extraction ignores sex on purpose: a prostate finding in a woman's record must surface as a problem.
        result = extract_text(kb, text.item, text.text)
        for f in result.findings:
            f.text_index = index
        findings.extend(result.findings)
        if result.incomplete:
            incomplete.append(text.item)

    findings_by_id: dict[str, list[Finding]] = {}
    for f in findings:
        findings_by_id.setdefault(f.finding_id, []).append(f)
    q = record.questionnaire
    lexicon = lexicon_for(kb)
    facts = Facts(
        sex=record.sex,
        age=age,
        items=evaluation.by_id,
        findings=findings_by_id,
        history={
            "history": q.history,
            "medications": q.medications,
            "family_history": q.family_history,
            "symptoms": q.symptoms,
        },
        smoking=q.smoking,
        drinking=q.drinking,
        grade_ranks=lexicon.grade_ranks,
        negation_cues=lexicon.history_negation_cues,
        separators=lexicon.history_separators,
    )
    alerts = list(evaluation.alerts)
    conclusions = derive_conclusions(kb, facts, findings, alerts, evaluation.items, problems)

    for f in findings:
        if f.critical is not None:
            holder = next((c for c in conclusions if c.conclusion_id == f.conclusion), None)
            if holder is not None:
                holder.critical = True
                if holder.level is None or (f.critical == "A" and holder.level == "B"):
                    holder.level = f.critical
            alerts.append(
                CriticalAlert(
                    level=f.critical,
                    reason=f"{f.name}［{f.source_item}：“{f.evidence_text}”］",
                    source="finding",
                    conclusion_id=f.conclusion,
                )
            )
    ranked = rank_conclusions(conclusions)

    # Important abnormal results (重要异常结果) are the A/B conclusions not already announced by an alert.
    announced = {a.conclusion_id for a in alerts if a.conclusion_id}
    for c in ranked:
        if c.level in ("A", "B") and c.conclusion_id not in announced:
            alerts.append(
                CriticalAlert(
                    level=c.level,
                    reason=c.name,
                    source="conclusion",
                    conclusion_id=c.conclusion_id,
                    rule_id=c.rules[0] if c.rules else None,
                )
            )
    alerts.sort(key=_alert_key)

    report = Report(
        visit_id=record.visit_id,
        person_id=record.person_id,
        sex=record.sex,
        age=age,
        exam_date=record.exam_date.isoformat() if record.exam_date else None,
        kb_version=kb.version,
        engine_version=__version__,
        conclusions=ranked,
        items=evaluation.items,
        findings=findings,
        critical=alerts,
        problems=problems,
        incomplete_texts=incomplete,
    )
    if record.employer is not None:
        # Carried through for group (团检) reports; absent from reports of records that have none.
        report.extras["employer"] = record.employer
    if not with_history:
        # A prior visit's report is only compared against: its own risk section is never shown.
        return report
    report.extras["risk"] = [a.to_dict() for a in assess_risks(kb, record, evaluation.by_id)]
    if record.prior_visits:
        priors = [
            PriorReport(visit, build_report(kb, prior_record(record, visit), with_history=False))
            for visit in record.prior_visits
        ]
        report.extras.update(apply_comparison(kb, record, report, priors, facts.grade_ranks))
        report.conclusions = rank_conclusions(report.conclusions)
    return report
