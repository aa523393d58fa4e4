"""`zhujian eval-narrator RECORDS.jsonl`: what a center needs to decide whether to switch the LLM narrator on.

Runs the configured model over canonical records (with the narrator's own concurrency) and reports: the share of
reports whose first answer passed verification, the share passing after the retry, the share that fell back to the
template (and why), problems by kind over all answers checked, the share of conclusions the accepted narratives
explain (all, and those the coverage rule requires), latency per narration (p50, p95), and tokens per report.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from zhujian.domain.record import Record
from zhujian.kb.loader import KnowledgeBase
from zhujian.narration.digest import must_cover
from zhujian.narration.llm import LLMNarrator
from zhujian.narration.model import PROBLEM_KINDS, Narrative
from zhujian.pipeline.run import build_report


@dataclass(frozen=True)
class Outcome:
    line: int
    narrative: Narrative | None
    elapsed_s: float
    conclusions: int
    required: int
    covered: int
    required_covered: int
    error: str | None = None


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def _evaluate_one(narrator: LLMNarrator, kb: KnowledgeBase, line_no: int, text: str) -> Outcome:
    try:
        record = Record.model_validate_json(text)
    except ValueError as exc:
        return Outcome(line_no, None, 0.0, 0, 0, 0, 0, f"invalid record: {str(exc).splitlines()[0]}")
    report = build_report(kb, record)
    started = time.monotonic()
    narrative = narrator.compose(report)
    elapsed = time.monotonic() - started
    names = {c["name"] for c in narrative.sections.get("conclusions", [])} if narrative.source == "llm" else set()
    required = [c.name for c in report.conclusions if must_cover(c.to_dict())]
    return Outcome(
        line_no,
        narrative,
        elapsed,
        len(report.conclusions),
        len(required),
        sum(1 for c in report.conclusions if c.name in names),
        sum(1 for n in required if n in names),
    )


def evaluate(
    narrator: LLMNarrator, kb: KnowledgeBase, lines: Iterable[tuple[int, str]]
) -> tuple[dict[str, Any], list[Outcome]]:
    """Narrate every (line number, record JSON) and summarize; outcomes are in input order."""
    with ThreadPoolExecutor(max_workers=narrator.config.concurrency) as pool:
        outcomes = list(pool.map(lambda item: _evaluate_one(narrator, kb, *item), lines))
    return summarize(outcomes, narrator), outcomes


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(outcomes: list[Outcome], narrator: LLMNarrator) -> dict[str, Any]:
    narrated = [o for o in outcomes if o.narrative is not None]
    first_pass = 0
    after_retry = 0
    fallback: Counter[str] = Counter()
    problems: Counter[str] = Counter({kind: 0 for kind in PROBLEM_KINDS})
    first_problems: Counter[str] = Counter({kind: 0 for kind in PROBLEM_KINDS})
    prompt_tokens: list[int] = []
    completion_tokens: list[int] = []
    for o in narrated:
        assert o.narrative is not None
        attempts = o.narrative.attempts
        if attempts and attempts[0].verification is not None and attempts[0].verification.passed:
            first_pass += 1
        elif o.narrative.source == "llm":
            after_retry += 1
        if o.narrative.source == "template":
            last = attempts[-1] if attempts else None
            fallback["transport" if last is None or last.error else "verification"] += 1
        for i, attempt in enumerate(attempts):
            if attempt.verification is not None:
                for kind in attempt.verification.kinds:
                    problems[kind] += 1
                    if i == 0:
                        first_problems[kind] += 1
        if any(a.prompt_tokens is not None for a in attempts):
            prompt_tokens.append(sum(a.prompt_tokens or 0 for a in attempts))
        if any(a.completion_tokens is not None for a in attempts):
            completion_tokens.append(sum(a.completion_tokens or 0 for a in attempts))
    accepted = [o for o in narrated if o.narrative is not None and o.narrative.source == "llm"]
    latencies = [o.elapsed_s for o in narrated]
    n = len(narrated)
    return {
        "model": narrator.config.model,
        "prompt_version": narrator.prompt_version,
        "records": len(outcomes),
        "invalid_records": len(outcomes) - n,
        "narrated": n,
        "passed_first_time": _share(first_pass, n),
        "passed_after_retry": _share(after_retry, n),
        "passed_total": _share(first_pass + after_retry, n),
        "fell_back": _share(n - first_pass - after_retry, n),
        "fallback_by_cause": dict(fallback),
        "answers_with_problem_kind": dict(problems),
        "first_answers_with_problem_kind": dict(first_problems),
        "conclusions_covered": _share(sum(o.covered for o in accepted), sum(o.conclusions for o in accepted)),
        "required_conclusions_covered": _share(
            sum(o.required_covered for o in accepted), sum(o.required for o in accepted)
        ),
        "latency_s": {
            "p50": round(p, 3) if (p := percentile(latencies, 50)) is not None else None,
            "p95": round(p, 3) if (p := percentile(latencies, 95)) is not None else None,
        },
        "tokens_per_report": {
            "prompt": round(sum(prompt_tokens) / len(prompt_tokens), 1) if prompt_tokens else None,
            "completion": round(sum(completion_tokens) / len(completion_tokens), 1) if completion_tokens else None,
        },
    }


def outcome_line(o: Outcome) -> str:
    out: dict[str, Any] = {"line": o.line, "elapsed_s": round(o.elapsed_s, 3), "error": o.error}
    if o.narrative is not None:
        out.update(
            {
                "source": o.narrative.source,
                "fallback_reason": o.narrative.fallback_reason,
                "attempts": [a.to_dict() for a in o.narrative.attempts],
                "conclusions": o.conclusions,
                "covered": o.covered,
            }
        )
    return json.dumps(out, ensure_ascii=False)
