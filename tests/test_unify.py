"""一元化 as knowledge: merges never absorb a more urgent conclusion, and every merged finding stays reachable."""

from __future__ import annotations

import json
from pathlib import Path

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


def test_the_bundled_man_reads_as_merged_lines(kb: KnowledgeBase) -> None:
    record = Record.model_validate(json.loads((ROOT / "src/zhujian/examples/male_56_metabolic.json").read_text("utf-8")))
    report = build_report(kb, record).to_dict()
    by_name = {c["name"]: c for c in report["conclusions"]}
    assert set(by_name["颈动脉粥样硬化伴斑块形成"]["merged"]) == {"颈动脉斑块", "颈动脉内中膜增厚"}
    assert {"前列腺钙化", "前列腺回声不均"} <= set(by_name["前列腺增生"]["merged"])
    assert "中心型肥胖" in by_name["肥胖（中心型）"]["merged"]
    fatty = by_name["脂肪肝伴肝酶升高"]
    assert "转氨酶升高" in fatty["merged"]
    # The merged line keeps the evidence of what it absorbed: the ALT value and the ultrasound text.
    kinds = {e["kind"] for e in fatty["evidence"]}
    assert {"item", "finding"} <= kinds or {"item", "text"} <= kinds
    assert fatty["follow_up"].startswith("1-3个月")  # the more urgent recheck of the two
    assert len(report["conclusions"]) <= 22


def test_hypokalaemia_explains_its_ecg_changes(kb: KnowledgeBase) -> None:
    record = Record.model_validate(json.loads((ROOT / "src/zhujian/examples/female_67_critical.json").read_text("utf-8")))
    first = build_report(kb, record).to_dict()["conclusions"][0]
    assert first["level"] == "A" and first["critical"]
    assert {"U波异常", "QT间期延长"} <= set(first["merged"])
