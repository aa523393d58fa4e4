"""`zhujian batch --narrator`: every report line carries a narrative; with the LLM narrator the requests are bounded
in concurrency, and a re-run takes the model's results from the digest-keyed cache instead of asking again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from llm_stand_in import Step, faithful_from_request, stand_in_server

from zhujian.batch.runner import BatchError, run_batch
from zhujian.examples import example_names, load_example

CASES = Path(__file__).parents[1] / "cases"


def _records(path: Path) -> list[dict[str, Any]]:
    records = [load_example(n) for n in example_names()]
    for name in ("05_critical_potassium", "09_dyslipidaemia_merged", "17_elderly_woman_many_findings"):
        records.append(json.loads((CASES / name / "input.json").read_text(encoding="utf-8")))
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return records


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_template_narrator_adds_the_narrative_without_any_server(tmp_path: Path) -> None:
    source = tmp_path / "records.jsonl"
    records = _records(source)
    out = tmp_path / "reports.jsonl"
    summary = run_batch(source, out, workers=1, narrator="template")
    lines = _lines(out)
    assert summary.reported == len(records) == len(lines)
    for line in lines:
        assert line["narrative"]["source"] == "template"
        assert line["narrative"]["verification"] is None
        assert line["visit_id"] in line["narrative"]["text"]


def test_llm_narrator_with_bounded_concurrency_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "records.jsonl"
    records = _records(source)
    out = tmp_path / "reports.jsonl"
    with stand_in_server([Step(respond=faithful_from_request, delay_s=0.2)]) as server:
        monkeypatch.setenv("ZHUJIAN_LLM_BASE_URL", server.url)
        monkeypatch.setenv("ZHUJIAN_LLM_MODEL", "stand-in-7b")
        monkeypatch.setenv("ZHUJIAN_LLM_TIMEOUT_S", "5")
        monkeypatch.setenv("ZHUJIAN_LLM_CONCURRENCY", "2")
        summary = run_batch(source, out, workers=1, narrator="llm", chunk_size=10)
        first_requests = len(server.requests)
        assert server.max_in_flight == 2  # five reports, two at a time
        lines = _lines(out)
        assert summary.reported == len(records) == len(lines)
        digests = {line["narrative"]["digest_sha256"] for line in lines}
        assert first_requests == len(digests)  # one request per distinct digest, all answers accepted
        for line in lines:
            narrative = line["narrative"]
            assert narrative["source"] == "llm", narrative
            assert narrative["verification"]["passed"] is True
            assert narrative["model"] == "stand-in-7b"
            assert line["visit_id"] in narrative["text"]
        assert summary.narration is not None and "5 written by the model" in summary.narration

        # A re-run of the same records pays nothing: every narrative comes from the cache.
        again = tmp_path / "again.jsonl"
        second = run_batch(source, again, workers=1, narrator="llm", narration_cache=tmp_path / "reports.narration-cache.jsonl")
        assert len(server.requests) == first_requests
        assert second.narration is not None and "5 taken from the cache" in second.narration
        rerun = _lines(again)
        assert [line["narrative"]["sections"] for line in rerun] == [line["narrative"]["sections"] for line in lines]
        assert all(line["visit_id"] in line["narrative"]["text"] for line in rerun)


def test_llm_narrator_failures_fall_back_and_are_not_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "records.jsonl"
    records = _records(source)
    out = tmp_path / "reports.jsonl"
    with stand_in_server([Step(status=503)]) as server:
        monkeypatch.setenv("ZHUJIAN_LLM_BASE_URL", server.url)
        monkeypatch.setenv("ZHUJIAN_LLM_MODEL", "stand-in-7b")
        run_batch(source, out, workers=1, narrator="llm")
        lines = _lines(out)
        assert len(lines) == len(records)
        for line in lines:
            assert line["narrative"]["source"] == "template"
            assert "HTTP 503" in line["narrative"]["fallback_reason"]
        cache = tmp_path / "reports.narration-cache.jsonl"
        assert cache.read_text(encoding="utf-8") == ""


def test_llm_narrator_without_settings_is_an_argument_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "records.jsonl"
    _records(source)
    monkeypatch.delenv("ZHUJIAN_LLM_BASE_URL", raising=False)
    with pytest.raises(ValueError, match="ZHUJIAN_LLM_BASE_URL"):
        run_batch(source, tmp_path / "out.jsonl", workers=1, narrator="llm")
    with pytest.raises(BatchError, match="unknown narrator"):
        run_batch(source, tmp_path / "out.jsonl", workers=1, narrator="poet")
