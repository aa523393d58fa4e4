"""The LLM narrator against a stand-in OpenAI-compatible server: every scripted behaviour ends in the faithful text
kept, or the template with the reason, within the time bound; no request carries identifying data."""

from __future__ import annotations

import copy
import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from llm_stand_in import StandIn, Step, dumps, faithful_answer, stand_in_server

from zhujian.domain.record import Record
from zhujian.domain.report import Report
from zhujian.examples import load_example
from zhujian.kb.loader import KnowledgeBase
from zhujian.narration.llm import LLMConfig, LLMNarrator
from zhujian.narration.model import Narrative
from zhujian.pipeline.run import build_report

TIMEOUT_S = 1.0
# The narration bound is 2 × timeout; the slack covers thread hand-over on a loaded test machine.
BOUND_S = 2 * TIMEOUT_S + 0.75

PERSON_ID = "PID-7731-XK"
VISIT_ID = "VIS-2026-99881"
BIRTH_DATE = "1958-05-17"
PHONE = "13912345678"
LANDLINE = "021-62345678"
ID_NUMBER = "110101195805171234"


def _identifying_record() -> dict[str, Any]:
    """The critical example with identifiers in the ids, the birth date, the questionnaire and the exam texts."""
    record = copy.deepcopy(load_example("female_67_critical"))
    record["person_id"] = PERSON_ID
    record["visit_id"] = VISIT_ID
    record.pop("age", None)
    record["birth_date"] = BIRTH_DATE
    q = record.setdefault("questionnaire", {})
    q["history"] = [
        *q.get("history", []),
        f"高血压病10年（本人电话{PHONE}，身份证号{ID_NUMBER}，出生日期{BIRTH_DATE}，联系人：王建国 {LANDLINE}，"
        f"体检号{VISIT_ID}）",
    ]
    q["family_history"] = [*q.get("family_history", []), f"父亲 冠心病（档案号{PERSON_ID}）"]
    for text in record.get("texts", []):
        text["text"] = f"受检者李秀英（{ID_NUMBER}）：" + text["text"]
    return record


@pytest.fixture(scope="module")
def report(kb: KnowledgeBase) -> Report:
    built = build_report(kb, Record.model_validate(_identifying_record()))
    # The identifiers do reach the report's evidence: the digest has to remove them.
    flat = json.dumps(built.to_dict(), ensure_ascii=False)
    for secret in (PERSON_ID, VISIT_ID, PHONE, LANDLINE, ID_NUMBER, BIRTH_DATE, "王建国"):
        assert secret in flat, secret
    return built


@pytest.fixture(scope="module")
def faithful(report: Report) -> dict[str, Any]:
    return faithful_answer(report.to_dict())


def _narrator(server: StandIn | str, kb: KnowledgeBase, *, stream: bool = False, json_mode: str = "json_object",
              timeout_s: float = TIMEOUT_S) -> LLMNarrator:
    url = server if isinstance(server, str) else server.url
    config = LLMConfig(base_url=url, model="stand-in-7b", timeout_s=timeout_s, stream=stream, json_mode=json_mode)
    return LLMNarrator(config, kb=kb)


def _run(narrator: LLMNarrator, report: Report) -> tuple[Narrative, float]:
    started = time.monotonic()
    try:
        narrative = narrator.compose(report)
    finally:
        narrator.close()
    return narrative, time.monotonic() - started


_DIGITS = re.compile(r"\d")


def _assert_no_identifiers(server: StandIn) -> None:
    assert server.raw_requests, "the stand-in received no request"
    for raw in server.raw_requests:
        text = json.loads(raw)  # decoded, so escaped Chinese is compared as text
        flat = json.dumps(text, ensure_ascii=False)
        for secret in (PERSON_ID, VISIT_ID, BIRTH_DATE, PHONE, LANDLINE, ID_NUMBER, "李秀英", "王建国", "19580517"):
            assert secret not in flat, f"a request carried {secret!r}"
        # no 11-digit mobile number or 15/18-digit ID number of any kind
        assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", flat)
        assert not re.search(r"(?<!\d)\d{17}[\dXx](?!\d)", flat)


def _assert_template(narrative: Narrative, report: Report, reason: str) -> None:
    assert narrative.source == "template"
    assert narrative.fallback_reason is not None and reason in narrative.fallback_reason, narrative.fallback_reason
    assert narrative.model == "stand-in-7b"
    assert narrative.prompt_version == "narrative-zh-1"
    assert "主检结论及建议" in narrative.text  # the template's own section heading
    for c in report.conclusions:
        assert c.name in narrative.text


def test_faithful_answer_is_kept(kb: KnowledgeBase, report: Report, faithful: dict[str, Any]) -> None:
    with stand_in_server([Step(dumps(faithful))]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    assert narrative.source == "llm", narrative.to_dict()
    assert narrative.verification is not None and narrative.verification.passed
    assert narrative.fallback_reason is None
    assert narrative.sections["summary"] == faithful["summary"]
    assert faithful["conclusions"][0]["explanation"] in narrative.text
    assert "危急值及重要异常结果" in narrative.text  # the critical block comes from the report, not from the model
    assert len(server.requests) == 1
    assert server.requests[0]["model"] == "stand-in-7b"
    assert server.requests[0]["response_format"] == {"type": "json_object"}
    assert elapsed < BOUND_S
    _assert_no_identifiers(server)


def test_faithful_streamed_answer_is_kept(kb: KnowledgeBase, report: Report, faithful: dict[str, Any]) -> None:
    with stand_in_server([Step(dumps(faithful))]) as server:
        narrative, elapsed = _run(_narrator(server, kb, stream=True), report)
    assert narrative.source == "llm", narrative.to_dict()
    assert server.requests[0]["stream"] is True
    assert elapsed < BOUND_S
    _assert_no_identifiers(server)


def test_json_schema_mode_sends_the_answer_schema(kb: KnowledgeBase, report: Report, faithful: dict[str, Any]) -> None:
    with stand_in_server([Step(dumps(faithful))]) as server:
        narrative, _ = _run(_narrator(server, kb, json_mode="json_schema"), report)
        assert narrative.source == "llm"
        schema = server.requests[0]["response_format"]["json_schema"]["schema"]
        assert schema["required"] == ["summary", "conclusions", "lifestyle", "follow_up"]
    with stand_in_server([Step(dumps(faithful))]) as server:
        _run(_narrator(server, kb, json_mode="none"), report)
        assert "response_format" not in server.requests[0]


def _defects(report: Report, faithful: dict[str, Any]) -> dict[str, str]:
    first = report.conclusions[0].name
    dropped = copy.deepcopy(faithful)
    dropped["conclusions"] = dropped["conclusions"][1:]
    evidence_index, true_value = next(
        (i, f"{e.value:g} {e.unit}")
        for i, c in enumerate(report.conclusions)
        for e in c.evidence
        if e.kind == "item" and isinstance(e.value, float) and e.unit
    )
    wrong_number = copy.deepcopy(faithful)
    wrong_number["conclusions"][evidence_index]["explanation"] = wrong_number["conclusions"][evidence_index][
        "explanation"
    ].replace(true_value, true_value.replace(" ", "7 ", 1))

    def with_summary(extra: str) -> str:
        return dumps({**faithful, "summary": faithful["summary"] + extra})

    return {
        "schema": dumps({k: v for k, v in faithful.items() if k != "lifestyle"}),
        "missing_conclusion": dumps(dropped),
        "unknown_term": with_summary("此外提示胰腺癌可能。"),
        "number_mismatch": dumps(wrong_number),
        "negation": with_summary(f"本次未见明显{first}。"),
        "prescription": with_summary("请口服氯化钾缓释片1g，每日3次。"),
        "pii": with_summary("如有疑问请拨打13800138000。"),
        "length": dumps({**faithful, "summary": "Please follow your doctor's advice and repeat the tests soon. " * 3}),
    }


KINDS = ["schema", "missing_conclusion", "unknown_term", "number_mismatch", "negation", "prescription", "pii", "length"]


@pytest.mark.parametrize("kind", KINDS)
def test_defect_then_faithful_retry_is_kept(kind: str, kb: KnowledgeBase, report: Report, faithful: dict[str, Any]) -> None:
    defect = _defects(report, faithful)[kind]
    with stand_in_server([Step(defect), Step(dumps(faithful))]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    assert narrative.source == "llm", narrative.to_dict()
    assert len(server.requests) == 2
    first = narrative.attempts[0].verification
    assert first is not None and not first.passed and kind in first.kinds, first
    retry_prompt = server.requests[1]["messages"][-1]["content"]
    assert f"[{kind}]" in retry_prompt  # the retry tells the model what was wrong
    assert elapsed < BOUND_S
    _assert_no_identifiers(server)


@pytest.mark.parametrize("kind", KINDS)
def test_defect_twice_falls_back_with_the_reason(
    kind: str, kb: KnowledgeBase, report: Report, faithful: dict[str, Any]
) -> None:
    defect = _defects(report, faithful)[kind]
    with stand_in_server([Step(defect)]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    _assert_template(narrative, report, "failed verification twice")
    assert narrative.verification is not None and not narrative.verification.passed
    assert kind in narrative.verification.kinds
    assert kind in (narrative.fallback_reason or "")
    assert len(server.requests) == 2
    assert elapsed < BOUND_S
    _assert_no_identifiers(server)


@pytest.mark.parametrize(
    ("answer", "detail"),
    [
        ('{"summary": "您的检查结果', "not valid JSON"),
        ("以下是您的报告解读：{}", "not valid JSON"),
        ('["summary", "conclusions"]', "must be a JSON object"),
        ('{"summary": 3, "conclusions": {}, "lifestyle": "多运动", "follow_up": []}', "must be a string"),
    ],
    ids=["truncated", "prose-before-json", "array", "wrong-types"],
)
def test_malformed_or_wrong_shape_falls_back(
    answer: str, detail: str, kb: KnowledgeBase, report: Report
) -> None:
    with stand_in_server([Step(answer)]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    _assert_template(narrative, report, "(schema)")
    assert narrative.verification is not None
    assert any(detail in p.detail for p in narrative.verification.problems), narrative.verification
    assert elapsed < BOUND_S


def test_fenced_whole_answer_is_accepted(kb: KnowledgeBase, report: Report, faithful: dict[str, Any]) -> None:
    with stand_in_server([Step(f"```json\n{dumps(faithful)}\n```")]) as server:
        narrative, _ = _run(_narrator(server, kb), report)
    assert narrative.source == "llm"


def test_http_500_falls_back_without_retry(kb: KnowledgeBase, report: Report) -> None:
    with stand_in_server([Step(status=500)]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    _assert_template(narrative, report, "HTTP 500")
    assert narrative.verification is None
    assert len(server.requests) == 1
    assert elapsed < BOUND_S


def test_response_that_is_not_a_chat_completion_falls_back(kb: KnowledgeBase, report: Report) -> None:
    with stand_in_server([Step(raw='{"result": "ok"}')]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    _assert_template(narrative, report, "failed")
    assert elapsed < BOUND_S


def test_server_slower_than_the_timeout(kb: KnowledgeBase, report: Report, faithful: dict[str, Any]) -> None:
    with stand_in_server([Step(dumps(faithful), delay_s=3 * TIMEOUT_S)]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    _assert_template(narrative, report, "no answer within")
    assert elapsed < BOUND_S


def test_streaming_server_that_trickles_past_the_deadline(
    kb: KnowledgeBase, report: Report, faithful: dict[str, Any]
) -> None:
    # Each character arrives quickly (no read timeout fires), but the whole answer would take minutes.
    with stand_in_server([Step(dumps(faithful), trickle_s=0.02)]) as server:
        narrative, elapsed = _run(_narrator(server, kb, stream=True), report)
    _assert_template(narrative, report, "no answer within")
    assert elapsed < BOUND_S


def test_slow_first_answer_leaves_the_retry_only_the_time_left(
    kb: KnowledgeBase, report: Report, faithful: dict[str, Any]
) -> None:
    defect = _defects(report, faithful)["negation"]
    with stand_in_server([Step(defect, delay_s=0.8 * TIMEOUT_S), Step(dumps(faithful), delay_s=1.5 * TIMEOUT_S)]) as server:
        narrative, elapsed = _run(_narrator(server, kb), report)
    _assert_template(narrative, report, "no answer within")
    assert narrative.verification is not None and "negation" in narrative.verification.kinds
    assert elapsed < BOUND_S


@pytest.fixture
def closed_port() -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield f"http://127.0.0.1:{port}/v1"


def test_no_server_listening(kb: KnowledgeBase, report: Report, closed_port: str) -> None:
    narrative, elapsed = _run(_narrator(closed_port, kb), report)
    _assert_template(narrative, report, "cannot reach the server")
    assert elapsed < BOUND_S


def test_faithful_on_both_examples_passes_end_to_end(kb: KnowledgeBase) -> None:
    for name in ("male_56_metabolic", "female_67_critical"):
        example = build_report(kb, Record.model_validate(load_example(name)))
        with stand_in_server([Step(dumps(faithful_answer(example.to_dict())))]) as server:
            narrative, _ = _run(_narrator(server, kb), example)
        assert narrative.source == "llm", (name, narrative.to_dict())
