"""`zhujian dataset sft` (fine-tuning pairs from signed reports) and `zhujian eval-narrator` (pass rates, problems by
kind, coverage, latency, tokens), and `zhujian report --narrator` on the command line."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from llm_stand_in import Step, dumps, faithful_answer, faithful_from_request, stand_in_server
from test_llm_narrator import BIRTH_DATE, ID_NUMBER, PERSON_ID, PHONE, VISIT_ID, _identifying_record

from db_testing import copy_of, make_team
from zhujian.domain.record import Record
from zhujian.examples import load_example
from zhujian.kb.loader import KnowledgeBase
from zhujian.narration.evaluate import percentile
from zhujian.pipeline.run import build_report
from zhujian.storage.db import create_db_engine, create_session_factory
from zhujian.storage.models import Report as ReportRow
from zhujian.storage.services import sign_report, submit_record

ROOT = Path(__file__).parents[2]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    for key in list(full_env):
        if key.startswith("ZHUJIAN_LLM_"):
            del full_env[key]
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "zhujian", *args], capture_output=True, text=True, env=full_env, timeout=300, check=False
    )


def test_dataset_sft_exports_signed_narratives_only(kb: KnowledgeBase, sqlite_template: Path, tmp_path: Path) -> None:
    url = copy_of(sqlite_template, tmp_path)
    engine = create_db_engine(url)
    factory = create_session_factory(engine)
    physician_text = "您的血钾明显偏低，需要立即就医。"
    with factory() as session:
        team = make_team(session)
        identifying = Record.model_validate(_identifying_record())
        other = Record.model_validate(load_example("male_56_metabolic"))
        draft_only = Record.model_validate({**load_example("male_56_metabolic"), "visit_id": "DRAFT-1"})
        ids = [submit_record(session, r, kb=kb, actor=team.admin).report_id for r in (identifying, other, draft_only)]
        session.commit()
        # The physician signs the first with a narrative (as the workbench stores it), the second without one.
        row = session.get(ReportRow, ids[0])
        assert row is not None
        content = copy.deepcopy(row.content)
        sections = faithful_answer(content)
        sections["summary"] = physician_text + f"如有疑问请致电{PHONE}。"
        content["narrative"] = {"source": "llm", "sections": sections, "text": "…"}
        row.content = content
        session.commit()
        sign_report(session, ids[0], actor=team.chief)
        sign_report(session, ids[1], actor=team.chief)
        session.commit()
    engine.dispose()

    out = tmp_path / "sft.jsonl"
    result = _cli("dataset", "sft", "--out", str(out), "--database-url", url)
    assert result.returncode == 0, result.stderr
    examples = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(examples) == 1
    roles = [m["role"] for m in examples[0]["messages"]]
    assert roles == ["system", "user", "assistant"]
    assistant = json.loads(examples[0]["messages"][2]["content"])
    assert assistant["summary"].startswith(physician_text)
    assert "[电话]" in assistant["summary"]
    flat = out.read_text(encoding="utf-8")
    for secret in (PERSON_ID, VISIT_ID, BIRTH_DATE, PHONE, ID_NUMBER, "王建国"):
        assert secret not in flat, secret
    manifest = json.loads((tmp_path / "sft.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert manifest["output"]["examples"] == 1
    assert manifest["skipped"] == {"no_signed_narrative": 1}  # the draft is not signed, so not even considered
    assert manifest["prompt_version"] == "narrative-zh-1"
    assert manifest["de_identification"]["placeholders_found"]["phone"] >= 2  # digest history + signed summary
    assert VISIT_ID not in json.dumps(manifest, ensure_ascii=False)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 21)]  # 1..20
    assert percentile(values, 50) == 10.0
    assert percentile(values, 95) == 19.0
    assert percentile([], 50) is None


def test_eval_narrator_reports_pass_rates_problems_latency_tokens(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    rows = [load_example("female_67_critical"), load_example("male_56_metabolic")]
    rows += [{**load_example("female_67_critical"), "visit_id": f"E-{i}"} for i in range(2)]
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "not json\n", encoding="utf-8")

    calls = {"n": 0}

    def respond(body: dict[str, Any]) -> str:
        # Request 1: a faithful answer. Request 2 (second record): one that names a drug, then a faithful retry.
        # Requests 4-5: two rejected answers. Order is fixed by concurrency 1.
        calls["n"] += 1
        faithful = json.loads(faithful_from_request(body))
        if calls["n"] in (2, 4, 5):
            faithful["summary"] += "可服用阿托伐他汀。"
        return dumps(faithful)

    with stand_in_server([Step(respond=respond)]) as server:
        env = {"ZHUJIAN_LLM_BASE_URL": server.url, "ZHUJIAN_LLM_MODEL": "stand-in-7b", "ZHUJIAN_LLM_CONCURRENCY": "1"}
        per_record = tmp_path / "eval.jsonl"
        result = _cli("eval-narrator", str(records), "--out", str(per_record), env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["records"] == 5 and summary["invalid_records"] == 1 and summary["narrated"] == 4
    assert summary["passed_first_time"] == 0.5  # records 1 and 3
    assert summary["passed_after_retry"] == 0.25  # record 2
    assert summary["fell_back"] == 0.25  # record 4
    assert summary["fallback_by_cause"] == {"verification": 1}
    assert summary["answers_with_problem_kind"]["prescription"] == 3
    assert summary["first_answers_with_problem_kind"]["prescription"] == 2
    assert summary["conclusions_covered"] == 1.0
    assert summary["required_conclusions_covered"] == 1.0
    assert summary["latency_s"]["p50"] is not None and summary["latency_s"]["p95"] >= summary["latency_s"]["p50"]
    assert summary["tokens_per_report"]["prompt"] >= 1000  # the stand-in reports 1000 prompt tokens per request
    lines = [json.loads(line) for line in per_record.read_text(encoding="utf-8").splitlines()]
    assert [line["line"] for line in lines] == [1, 2, 3, 4, 5]
    assert lines[4]["error"].startswith("invalid record")


def test_report_cli_narrator_llm_and_template(kb: KnowledgeBase, tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    record.write_text(json.dumps(load_example("female_67_critical"), ensure_ascii=False), encoding="utf-8")
    report = build_report(kb, Record.model_validate(load_example("female_67_critical"))).to_dict()
    with stand_in_server([Step(dumps(faithful_answer(report)))]) as server:
        env = {"ZHUJIAN_LLM_BASE_URL": server.url, "ZHUJIAN_LLM_MODEL": "stand-in-7b"}
        result = _cli("report", str(record), "--narrator", "llm", "--format", "json", env=env)
        assert result.returncode == 0, result.stderr
        narrative = json.loads(result.stdout)["narrative"]
        assert narrative["source"] == "llm"
        assert narrative["verification"] == {"passed": True, "problems": []}
        assert narrative["prompt_version"] == "narrative-zh-1" and narrative["model"] == "stand-in-7b"
        assert set(narrative) >= {"source", "text", "sections", "model", "prompt_version", "verification", "fallback_reason"}
        text = _cli("report", str(record), "--narrator", "llm", "--format", "text", env=env)
        assert text.returncode == 0 and text.stdout == narrative["text"]
    # Template: no server, no settings, no request.
    plain = _cli("report", str(record), "--narrator", "template")
    assert plain.returncode == 0, plain.stderr
    assert json.loads(plain.stdout)["narrative"]["source"] == "template"
    default = json.loads(_cli("report", str(record)).stdout)
    assert "narrative" not in default  # the report JSON without --narrator is unchanged
    missing = _cli("report", str(record), "--narrator", "llm")
    assert missing.returncode == 2 and "ZHUJIAN_LLM_BASE_URL" in missing.stderr
    bad = _cli("report", str(record), "--narrator", "llm", env={"ZHUJIAN_LLM_BASE_URL": "ftp://x", "ZHUJIAN_LLM_MODEL": "m"})
    assert bad.returncode == 2 and "http://" in bad.stderr
    unknown = _cli("report", str(record), "--narrator", "poet")
    assert unknown.returncode == 2 and "unknown narrator" in unknown.stderr


@pytest.mark.parametrize("name", ["template", "llm"])
def test_template_fallback_text_never_hides_critical_values(name: str, kb: KnowledgeBase, tmp_path: Path) -> None:
    record = tmp_path / "record.json"
    record.write_text(json.dumps(load_example("female_67_critical"), ensure_ascii=False), encoding="utf-8")
    env = {"ZHUJIAN_LLM_BASE_URL": "http://127.0.0.1:9/v1", "ZHUJIAN_LLM_MODEL": "m"} if name == "llm" else {}
    result = _cli("report", str(record), "--narrator", name, "--format", "text", env=env)
    assert result.returncode == 0, result.stderr
    assert "危急值及重要异常结果" in result.stdout
    assert "严重低钾血症" in result.stdout
