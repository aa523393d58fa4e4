"""The verifier on the bundled examples and every golden case: a faithful answer (built from the report's own
conclusion names and evidence values) passes, and one mutation per defect kind is rejected with that kind."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from llm_stand_in import dumps, faithful_answer

from zhujian.domain.record import Record
from zhujian.examples import example_names, load_example
from zhujian.kb.loader import KnowledgeBase
from zhujian.narration.answer import parse_answer
from zhujian.narration.digest import age_band, build_digest, must_cover
from zhujian.narration.knowledge import default_narration_knowledge
from zhujian.narration.model import PROBLEM_KINDS
from zhujian.narration.verify import default_verifier
from zhujian.pipeline.run import build_report

CASES = sorted(p for p in (Path(__file__).parents[1] / "cases").iterdir() if p.is_dir())


def _records() -> list[tuple[str, dict[str, Any]]]:
    out = [(f"example:{n}", load_example(n)) for n in example_names()]
    out += [(f"case:{p.name}", json.loads((p / "input.json").read_text(encoding="utf-8"))) for p in CASES]
    return out


RECORDS = _records()


def _report(kb: KnowledgeBase, record: dict[str, Any]) -> dict[str, Any]:
    return build_report(kb, Record.model_validate(record)).to_dict()


def _kinds(kb: KnowledgeBase, report: dict[str, Any], answer: Any) -> set[str]:
    verifier = default_verifier(kb)
    digest = build_digest(report)
    text = answer if isinstance(answer, str) else dumps(answer)
    _answer, verification = verifier.verify_text(text, verifier.context(digest))
    return {p.kind for p in verification.problems}


@pytest.mark.parametrize(("label", "record"), RECORDS, ids=[r[0] for r in RECORDS])
def test_faithful_answer_passes(kb: KnowledgeBase, label: str, record: dict[str, Any]) -> None:
    report = _report(kb, record)
    verifier = default_verifier(kb)
    digest = build_digest(report)
    answer, verification = verifier.verify_text(dumps(faithful_answer(report)), verifier.context(digest))
    assert verification.passed, [p.to_dict() for p in verification.problems]
    assert answer is not None


def _first_item_evidence(report: dict[str, Any]) -> tuple[int, Any] | None:
    for i, c in enumerate(report["conclusions"]):
        for e in c["evidence"]:
            if e["kind"] == "item" and isinstance(e.get("value"), float) and e.get("unit"):
                return i, e
    return None


def _unused_serious_term(report: dict[str, Any]) -> str:
    digest = build_digest(report).text
    for term in ("胰腺癌", "肺癌", "白血病", "肝硬化", "心肌梗死"):
        if term not in digest:
            return term
    raise AssertionError("every candidate term is in the digest")


@pytest.mark.parametrize(("label", "record"), RECORDS, ids=[r[0] for r in RECORDS])
def test_each_defect_kind_is_caught(kb: KnowledgeBase, label: str, record: dict[str, Any]) -> None:
    report = _report(kb, record)
    faithful = faithful_answer(report)
    names = [c["name"] for c in report["conclusions"]]

    def mutated(change: Any) -> dict[str, Any]:
        answer = copy.deepcopy(faithful)
        change(answer)
        return answer

    # schema: a required field missing, a wrong type, text around the object
    assert "schema" in _kinds(kb, report, mutated(lambda a: a.pop("follow_up")))
    assert "schema" in _kinds(kb, report, mutated(lambda a: a.update(conclusions="见上")))
    assert _kinds(kb, report, "好的，以下是解读：" + dumps(faithful)) == {"schema"}
    # unknown term: an invented diagnosis, and a conclusion name not in the report
    term = _unused_serious_term(report)
    assert "unknown_term" in _kinds(kb, report, mutated(lambda a: a.update(summary=a["summary"] + f"另外考虑{term}。")))
    invented = {"name": "冠状动脉粥样硬化性心脏病（新发）", "explanation": "需要重视。", "advice": "心内科就诊。"}
    assert "unknown_term" in _kinds(kb, report, mutated(lambda a: a["conclusions"].append(invented)))
    # prescription: a drug with a dose, and a regimen without a drug name
    drug = "可口服瑞舒伐他汀10mg，每日1次。"
    assert "prescription" in _kinds(kb, report, mutated(lambda a: a.update(summary=a["summary"] + drug)))
    assert "prescription" in _kinds(kb, report, mutated(lambda a: a.update(summary=a["summary"] + "药物每日两次，饭后服。")))
    # pii: a phone number, an ID number, the report's own person id
    phone = "如有疑问请致电13912345678。"
    assert "pii" in _kinds(kb, report, mutated(lambda a: a.update(summary=a["summary"] + phone)))
    id_number = "身份证110101195903151237。"
    assert "pii" in _kinds(kb, report, mutated(lambda a: a.update(summary=a["summary"] + id_number)))
    if report.get("person_id"):
        own = f"受检者{report['person_id']}。"
        assert "pii" in _kinds(kb, report, mutated(lambda a: a.update(summary=a["summary"] + own)))
    # length: empty, not Chinese, too long
    assert "length" in _kinds(kb, report, mutated(lambda a: a.update(summary=" ")))
    english = "Your results show several abnormal findings; please see your doctor soon for further tests. " * 3
    assert "length" in _kinds(kb, report, mutated(lambda a: a.update(summary=english)))
    assert "length" in _kinds(kb, report, mutated(lambda a: a.update(summary="请注意复查。" * 3000)))
    if not names:
        return
    # missing conclusion: leave out the first conclusion that must be covered
    required = [c["name"] for c in report["conclusions"] if must_cover(c)]
    if required:
        dropped = required[0]
        answer = mutated(lambda a: a.update(conclusions=[c for c in a["conclusions"] if c["name"] != dropped]))
        assert "missing_conclusion" in _kinds(kb, report, answer)
    # negation: a conclusion called absent, excluded, normal
    for phrase in (f"未见明显{names[0]}。", f"可以排除{names[0]}。", f"{names[0]}正常。"):
        assert "negation" in _kinds(kb, report, mutated(lambda a, p=phrase: a.update(summary=a["summary"] + p)))
    # number mismatch: an evidence value changed in the explanation, and a follow-up interval changed
    found = _first_item_evidence(report)
    if found is not None:
        index, evidence = found
        true_value = f"{evidence['value']:g} {evidence['unit']}"
        wrong_value = f"{evidence['value']:g}7 {evidence['unit']}"

        def change_value(a: dict[str, Any]) -> None:
            text = a["conclusions"][index]["explanation"]
            assert true_value in text
            a["conclusions"][index]["explanation"] = text.replace(true_value, wrong_value)

        assert _kinds(kb, report, mutated(change_value)) == {"number_mismatch"}
    assert "number_mismatch" in _kinds(kb, report, mutated(lambda a: a["follow_up"].append("请在137个月后复查")))


def test_every_problem_kind_is_exercised() -> None:
    assert set(PROBLEM_KINDS) == {
        "schema",
        "missing_conclusion",
        "unknown_term",
        "number_mismatch",
        "negation",
        "prescription",
        "pii",
        "length",
    }


def test_fenced_block_only_when_it_is_the_whole_answer() -> None:
    body = dumps({"summary": "总结", "conclusions": [], "lifestyle": [], "follow_up": []})
    assert parse_answer(f"```json\n{body}\n```")[0] is not None
    assert parse_answer(f"```\n{body}\n```")[0] is not None
    assert parse_answer(f"解读如下：\n```json\n{body}\n```")[0] is None
    assert parse_answer(f"{body}\n{body}")[0] is None
    assert parse_answer(body[:-1])[0] is None
    assert parse_answer("")[1][0].kind == "schema"


def test_coverage_rule_requires_critical_a_b_and_diseases_only(kb: KnowledgeBase) -> None:
    report = _report(kb, load_example("male_56_metabolic"))
    optional = [c for c in report["conclusions"] if c["category"] in ("finding", "risk_factor") and not c["level"]]
    assert optional, "the example has findings and risk factors"
    answer = faithful_answer(report)
    kept_names = {c["name"] for c in report["conclusions"]} - {c["name"] for c in optional}
    answer["conclusions"] = [c for c in answer["conclusions"] if c["name"] in kept_names]
    assert _kinds(kb, report, answer) == set()
    critical = _report(kb, load_example("female_67_critical"))
    must = [c["name"] for c in critical["conclusions"] if c["critical"] or c["level"] in ("A", "B")]
    assert must, "the critical example has class A/B conclusions"
    for name in must:
        answer = faithful_answer(critical)
        answer["conclusions"] = [c for c in answer["conclusions"] if c["name"] != name]
        assert "missing_conclusion" in _kinds(kb, critical, answer), name


def test_number_with_unit_rules(kb: KnowledgeBase) -> None:
    verifier = default_verifier(kb)
    numbers = {(n, u) for n, u, _s, _e in verifier.numbers("血压156/96 mmHg，3-6个月复查，减重5%-10%，HbA1c 6.2%，白细胞3.1×10^9/L")}
    assert ("156", "mmHg") in numbers and ("96", "mmHg") in numbers
    assert ("3", "月") in numbers and ("6", "月") in numbers
    assert ("5", "%") in numbers and ("6.2", "%") in numbers
    assert ("3.1", "10^9/L") in numbers
    assert not any(n == "9" for n, _u in numbers), "digits inside a unit are not numbers"
    assert not any(n == "1" for n, _u in numbers), "A1c is a name, not a number"


def test_lifestyle_figures_of_the_kb_are_accepted(kb: KnowledgeBase) -> None:
    report = _report(kb, load_example("female_67_critical"))
    answer = faithful_answer(report)
    answer["lifestyle"] = [a.text for a in default_narration_knowledge().lifestyle.advice]
    assert _kinds(kb, report, answer) == set()


def test_digest_has_no_identifiers_and_only_an_age_band(kb: KnowledgeBase) -> None:
    record = load_example("female_67_critical")
    report = _report(kb, record)
    digest = build_digest(report)
    assert report["visit_id"] not in digest.text
    assert report["person_id"] not in digest.text
    assert str(record["exam_date"]) not in digest.text
    assert digest.data["年龄段"] == "65-69岁"
    assert age_band(67) == "65-69岁" and age_band(90) == "90岁及以上" and age_band(None) == "未知"
    assert "67岁" not in digest.text


def test_short_numeric_ids_are_not_confused_with_measurements(kb: KnowledgeBase) -> None:
    # A visit id of "156" (as some exports number visits) and a systolic pressure of 156 mmHg: the value stays in the
    # digest and a faithful answer citing it is not a leak of the visit id.
    record = {**load_example("male_56_metabolic"), "visit_id": "156", "person_id": "42"}
    report = _report(kb, record)
    digest = build_digest(report)
    assert '"结果":"156"' in digest.text
    assert _kinds(kb, report, faithful_answer(report)) == set()


def test_long_ids_are_masked_as_whole_tokens(kb: KnowledgeBase) -> None:
    record = copy.deepcopy(load_example("male_56_metabolic"))
    record["visit_id"] = "VX2026000156"
    record["questionnaire"]["history"] = ["高血压病3年（体检单VX2026000156）"]
    report = _report(kb, record)
    digest = build_digest(report)
    assert "VX2026000156" not in digest.text
    assert "高血压病3年" in digest.text
    answer = faithful_answer(report)
    answer["summary"] += "参见VX2026000156。"
    assert "pii" in _kinds(kb, report, answer)


def test_digest_holds_no_calendar_dates(kb: KnowledgeBase) -> None:
    record = load_example("male_56_metabolic")
    report = _report(kb, record)
    assert "2025-03" in json.dumps(report, ensure_ascii=False)  # the comparison notes carry the last visit's month
    digest = build_digest(report)
    assert not re.search(r"(?:19|20)\d{2}-\d{2}", digest.text)
    assert "上次为“血脂边缘升高”" in digest.text
    assert digest.data["与上次体检比较"]["距上次体检"] == "约12个月"


def test_an_interval_in_another_calendar_unit_is_the_same_figure(kb: KnowledgeBase) -> None:
    report = _report(kb, load_example("male_56_metabolic"))
    follow_ups = " ".join(c["follow_up"] for c in report["conclusions"])
    assert "12个月" in follow_ups
    answer = faithful_answer(report)
    answer["follow_up"].append("肾囊肿：1年后复查泌尿系超声")  # 12个月
    assert _kinds(kb, report, answer) == set()
    answer["follow_up"].append("肾囊肿：37年后复查泌尿系超声")  # not a figure of the report in any unit
    assert _kinds(kb, report, answer) == {"number_mismatch"}
