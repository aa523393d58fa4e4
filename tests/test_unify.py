"""一元化 as knowledge: merges never absorb a more urgent conclusion, and every merged finding stays reachable."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from zhujian.alerts.policy import default_alerts_file, followup_urgency_days
from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase
from zhujian.pipeline.run import build_report

ROOT = Path(__file__).resolve().parents[1]
RANK = {"A": 2, "B": 1, None: 0}


def test_no_rule_absorbs_a_higher_class(kb: KnowledgeBase) -> None:
    for rule in kb.rules:
        winner = kb.conclusions[rule.conclusion]
        for loser_id in rule.suppresses:
            loser = kb.conclusions[loser_id]
            assert RANK[winner.level] >= RANK[loser.level], (rule.id, winner.id, loser.id)


# Merges whose absorbed follow-up is sooner only for a purpose the merge makes moot: glycosuria's 1-month glucose
# recheck is there to diagnose an unknown diabetes, which a known diabetic does not need.
MOOT_FOLLOW_UPS = {("unify_diabetes_glycosuria", "glycosuria")}


def test_no_merge_rule_drops_a_more_urgent_follow_up(kb: KnowledgeBase) -> None:
    """The line that absorbs others keeps its own follow-up only: it must ask for action at least as soon as each
    part (windows and urgent words of alerts.yaml)."""
    rules = default_alerts_file().followup

    def days(text: str) -> float:
        value = followup_urgency_days(text, rules)
        return float("inf") if value is None else value

    checked = 0
    for rule in kb.rules:
        if not rule.id.startswith("unify_"):
            continue
        winner = kb.conclusions[rule.conclusion]
        for loser_id in rule.suppresses:
            if (rule.id, loser_id) in MOOT_FOLLOW_UPS:
                continue
            loser = kb.conclusions[loser_id]
            assert days(winner.follow_up) <= days(loser.follow_up), (rule.id, winner.follow_up, loser.follow_up)
            checked += 1
    assert checked >= 20


def _man() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ROOT / "src/zhujian/examples/male_56_metabolic.json").read_text("utf-8"))
    return data


def test_the_bundled_man_reads_as_merged_lines(kb: KnowledgeBase) -> None:
    report = build_report(kb, Record.model_validate(_man())).to_dict()
    by_name = {c["name"]: c for c in report["conclusions"]}
    by_id = {c["id"]: c for c in report["conclusions"]}
    assert set(by_name["颈动脉粥样硬化伴斑块形成"]["merged"]) == {"颈动脉斑块", "颈动脉内中膜增厚"}
    assert {"前列腺钙化", "前列腺回声不均"} <= set(by_name["前列腺增生"]["merged"])
    # Obesity (BMI 28.0, waist 96 cm) is the anthropometric component of his metabolic syndrome.
    assert {"肥胖", "中心型肥胖"} <= set(by_id["metabolic_syndrome"]["merged"])
    assert {"obesity", "central_obesity"}.isdisjoint(by_id)
    # Fundus arteriosclerosis is target-organ damage of his known hypertension.
    assert "眼底动脉硬化" in by_id["hypertension_known"]["merged"]
    # One risk-factor line: smoking, drinking and the cardiometabolic family histories.
    assert {"饮酒", "心脑血管病家族史", "糖尿病家族史"} <= set(by_id["smoking"]["merged"])
    # Prediabetes keeps its own line (an OGTT is its own next step), as do dyslipidaemia and hyperuricaemia.
    assert {"ifg", "dyslipidemia", "hyperuricemia"} <= set(by_id)
    fatty = by_name["脂肪肝伴肝酶升高"]
    assert "转氨酶升高" in fatty["merged"]
    # The merged line keeps the evidence of what it absorbed: the ALT value and the ultrasound text.
    kinds = {e["kind"] for e in fatty["evidence"]}
    assert {"item", "finding"} <= kinds or {"item", "text"} <= kinds
    assert fatty["follow_up"].startswith("1-3个月")  # the more urgent recheck of the two
    assert len(report["conclusions"]) <= 17


def test_hypokalaemia_explains_its_ecg_changes(kb: KnowledgeBase) -> None:
    record = Record.model_validate(json.loads((ROOT / "src/zhujian/examples/female_67_critical.json").read_text("utf-8")))
    first = build_report(kb, record).to_dict()["conclusions"][0]
    assert first["level"] == "A" and first["critical"]
    assert {"U波异常", "QT间期延长"} <= set(first["merged"])


def test_a_part_seen_last_time_is_neither_resolved_nor_the_new_diagnosis_s_past(kb: KnowledgeBase) -> None:
    """Last visit: obesity by BMI and fundus arteriosclerosis, no metabolic syndrome. Now both are merged into
    代谢综合征 and 高血压病: the syndrome is new, and neither part is reported as gone."""
    data = _man()
    prior = copy.deepcopy(data["prior_visits"][0])
    prior["items"] += [
        {"name": "身高", "value": "171.5", "unit": "cm"},
        {"name": "体重", "value": "83.0", "unit": "kg"},
    ]
    prior["texts"].append({"item": "眼科", "text": "眼底：双侧眼底动脉硬化Ⅰ级。"})
    prior["texts"].append({"item": "胆囊", "text": "胆囊大小形态正常，壁毛糙，腔内未见异常回声。"})
    # Hypertension was diagnosed after that visit.
    prior["questionnaire"] = {**data["questionnaire"], "history": ["脂肪肝"], "medications": []}
    data["prior_visits"] = [prior]
    last_visit = {k: prior[k] for k in ("visit_id", "exam_date", "age", "items", "texts", "questionnaire")}
    last = build_report(kb, Record.model_validate({**data, **last_visit, "prior_visits": []}))
    last_ids = {c.conclusion_id for c in last.conclusions}
    assert {"obesity", "eye_c_fundus_arteriosclerosis", "abd_c_gallbladder_wall"} <= last_ids
    assert not {"metabolic_syndrome", "abd_c_gallbladder_polyp"} & last_ids
    report = build_report(kb, Record.model_validate(data)).to_dict()
    by_id = {c["id"]: c for c in report["conclusions"]}
    # New diagnoses (a value rule; a text finding of its own) that merged a part seen last time.
    assert by_id["metabolic_syndrome"]["status"] == "new"
    assert by_id["abd_c_gallbladder_polyp"]["status"] == "new"
    # A line that exists only as a merge continues its part: the fatty liver was there, now with raised enzymes.
    assert by_id["fatty_liver_with_liver_enzymes"]["status"] != "new"
    resolved = {r["id"] for r in report["comparison"]["resolved"]}
    assert not resolved & {"obesity", "central_obesity", "eye_c_fundus_arteriosclerosis", "abd_c_gallbladder_wall"}
