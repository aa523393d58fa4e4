"""Narration in `zhujian batch --narrator NAME`.

Workers attach the template narrative to every report (`build_report_with_narrative`), so each line carries a
`narrative` even when the model is not asked or fails. With `--narrator llm` the parent then narrates each finished
chunk with at most `ZHUJIAN_LLM_CONCURRENCY` requests in flight (`BatchNarration.process`), every request under the
narrator's own timeout and deadline, before the chunk is written.

Cache: one JSON line per model result, keyed by the SHA-256 of (prompt version, model, digest). A re-run — after a
crash, on the same records, or on records whose digests coincide — reuses the verified answer (re-rendered for the
report at hand) or the recorded rejection, and asks the model only for digests it has not seen. Transport failures
(timeouts, HTTP errors) are not cached, so a re-run tries those again.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from zhujian.domain.record import Record
from zhujian.domain.report import Report
from zhujian.kb.loader import KnowledgeBase
from zhujian.narration.answer import shape_answer
from zhujian.narration.digest import build_digest
from zhujian.narration.llm import LLMNarrator
from zhujian.narration.model import Narrative
from zhujian.narration.render import render_answer, template_narrative
from zhujian.pipeline.run import build_report


def build_report_with_narrative(kb: KnowledgeBase, record: Record) -> Report:
    """The engine's report with the template narrative attached (the batch workers' build function)."""
    report = build_report(kb, record)
    report.extras["narrative"] = template_narrative(report).to_dict()
    return report


def default_cache_path(output_path: Path) -> Path:
    return output_path.with_name(output_path.stem + ".narration-cache.jsonl")


class BatchNarration:
    """Narrates report lines with an LLMNarrator, bounded concurrency and a digest-keyed cache."""

    def __init__(self, narrator: LLMNarrator, cache_path: Path) -> None:
        self.narrator = narrator
        self.cache_path = cache_path
        self.cache: dict[str, dict[str, Any]] = {}
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        if cache_path.exists():
            with cache_path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        entry = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by a crash: that digest is asked again
                    if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                        self.cache[entry["key"]] = entry
        self._cache_file = cache_path.open("a", encoding="utf-8")
        self._pool = ThreadPoolExecutor(max_workers=narrator.config.concurrency, thread_name_prefix="zhujian-narrate")

    def cache_key(self, digest_sha256: str) -> str:
        text = f"{self.narrator.prompt_version}\x00{self.narrator.config.model}\x00{digest_sha256}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def process(self, lines: bytes) -> bytes:
        """Report lines in, the same lines with the model's narrative (or the template's with the reason) out."""
        reports = [json.loads(line) for line in lines.splitlines() if line.strip()]
        narrated = list(self._pool.map(self._narrate, reports))
        out = []
        for report in narrated:
            out.append(json.dumps(report, ensure_ascii=False, separators=(",", ":"), allow_nan=False) + "\n")
        return "".join(out).encode("utf-8")

    def _narrate(self, report: dict[str, Any]) -> dict[str, Any]:
        template = Narrative.from_dict(report["narrative"])
        digest = build_digest(report, self.narrator.knowledge)
        key = self.cache_key(digest.sha256)
        with self._lock:
            cached = self.cache.get(key)
        if cached is not None:
            narrative = self._from_cache(report, template, cached, digest.sha256)
            self.counts["cached"] += 1
        else:
            narrative = self.narrator.compose_dict(report, template, digest)
            # Cached only when the last request got an answer (accepted or rejected); not after a transport failure.
            if narrative.attempts and narrative.attempts[-1].verification is not None:
                self._remember(key, narrative)
        self.counts[narrative.source] += 1
        report["narrative"] = narrative.to_dict()
        return report

    def _remember(self, key: str, narrative: Narrative) -> None:
        entry = {"key": key, **{k: v for k, v in narrative.to_dict().items() if k not in ("text", "attempts")}}
        if narrative.source != "llm":
            entry.pop("sections", None)
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            self.cache[key] = entry
            self._cache_file.write(line)
            self._cache_file.flush()

    def _from_cache(
        self, report: dict[str, Any], template: Narrative, entry: dict[str, Any], digest_sha256: str
    ) -> Narrative:
        stored = Narrative.from_dict({**entry, "text": "", "sections": entry.get("sections") or {}})
        if stored.source == "llm":
            answer, _problems = shape_answer(entry.get("sections"))
            if answer is not None:
                stored.text = render_answer(report, answer)
                stored.digest_sha256 = digest_sha256
                return stored
        template.model = stored.model
        template.prompt_version = stored.prompt_version
        template.verification = stored.verification
        template.fallback_reason = stored.fallback_reason
        template.digest_sha256 = digest_sha256
        return template

    def describe(self) -> str:
        return (
            f"narratives: {self.counts['llm']:,} written by the model, {self.counts['template']:,} from the template "
            f"(fallback), {self.counts['cached']:,} taken from the cache {self.cache_path}"
        )

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._cache_file.close()
        self.narrator.close()
