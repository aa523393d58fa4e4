"""Fine-tuning pairs from signed reports: `zhujian dataset sft --out FILE.jsonl`.

Each signed report (status signed, reviewed or published) whose content holds a narrative becomes one example in the
OpenAI chat fine-tuning format: the system prompt and the user turn exactly as the LLM narrator sends them (the
de-identified digest of the signed conclusions, so the physician's edits are what the model learns from), and the
physician-signed narrative as the assistant turn, as the JSON answer the narrator expects. The assistant text is
masked with the same identifier patterns as the digest. Signed reports without a narrative are counted, not exported.

Next to the output, `<out>.manifest.json` records what was exported and how it was de-identified: row → report
content hash (no visit or person id), placeholder counts, skipped reports by reason, prompt version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zhujian.deid import PLACEHOLDERS
from zhujian.narration.answer import shape_answer
from zhujian.narration.digest import _Masker, build_digest
from zhujian.narration.knowledge import NarrationKnowledge, default_narration_knowledge

MANIFEST_FORMAT = "zhujian-sft-manifest/1"
SIGNED = ("signed", "reviewed", "published")


@dataclass(frozen=True)
class SignedReport:
    content: dict[str, Any]
    content_hash: str
    status: str


def sft_example(report: dict[str, Any], knowledge: NarrationKnowledge) -> tuple[dict[str, Any] | None, str | None]:
    """(example, None) or (None, why it was skipped) for one signed report's content."""
    narrative = report.get("narrative")
    sections = narrative.get("sections") if isinstance(narrative, dict) else None
    if not sections:
        return None, "no_signed_narrative"
    answer, _problems = shape_answer(sections)
    if answer is None:
        return None, "narrative_not_in_answer_shape"
    digest = build_digest(report, knowledge)
    mask = _Masker(digest.identifiers)
    sections_out = answer.sections()
    masked = json.loads(mask(json.dumps(sections_out, ensure_ascii=False)))
    prompt = knowledge.prompt
    required = "、".join(digest.required) if digest.required else "（无，按需解读）"
    example = {
        "messages": [
            {"role": "system", "content": prompt.system},
            {"role": "user", "content": prompt.user.replace("{required}", required).replace("{digest}", digest.text)},
            {"role": "assistant", "content": json.dumps(masked, ensure_ascii=False)},
        ]
    }
    return example, None


def signed_reports(database_url: str) -> Iterator[SignedReport]:
    """Signed reports of a workbench database, oldest first, one at a time."""
    from sqlalchemy import select

    from zhujian.storage.db import create_db_engine, create_session_factory
    from zhujian.storage.models import Report

    engine = create_db_engine(database_url)
    try:
        factory = create_session_factory(engine)
        with factory() as session:
            ids = session.scalars(select(Report.id).where(Report.status.in_(SIGNED)).order_by(Report.id)).all()
            for report_id in ids:
                row = session.get(Report, report_id)
                if row is not None:
                    yield SignedReport(dict(row.content), row.content_hash, row.status)
                    session.expunge(row)
    finally:
        engine.dispose()


def export_sft(
    reports: Iterable[SignedReport], output_path: Path, knowledge: NarrationKnowledge | None = None
) -> dict[str, Any]:
    """Write the examples to `output_path` (JSON lines) and the manifest next to it; return the manifest."""
    knowledge = knowledge or default_narration_knowledge()
    rows: list[dict[str, Any]] = []
    skipped: Counter[str] = Counter()
    placeholders: Counter[str] = Counter()
    tmp = output_path.with_name(output_path.name + ".partial")
    with tmp.open("w", encoding="utf-8") as sink:
        for signed in reports:
            example, reason = sft_example(signed.content, knowledge)
            if example is None:
                skipped[reason or "unknown"] += 1
                continue
            text = json.dumps(example, ensure_ascii=False)
            for kind, placeholder in PLACEHOLDERS.items():
                placeholders[kind] += text.count(placeholder)
            sink.write(text + "\n")
            rows.append({"row": len(rows) + 1, "report_content_sha256": signed.content_hash, "status": signed.status})
    tmp.replace(output_path)
    manifest = {
        "format": MANIFEST_FORMAT,
        "created_at": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "output": {
            "file": output_path.name,
            "sha256": hashlib.sha256(output_path.read_bytes()).hexdigest(),
            "examples": len(rows),
        },
        "prompt_version": knowledge.prompt_version,
        "de_identification": {
            "user_turn": "the narrator's digest: sex, five-year age band, conclusions, evidence values, risk results, "
            "KB advice; no person id, visit id, dates of birth or exam; free text masked with zhujian.deid patterns",
            "assistant_turn": "the signed narrative, masked with the same patterns and the report's identifiers",
            "placeholders_found": dict(sorted(placeholders.items())),
            "placeholders": PLACEHOLDERS,
        },
        "skipped": dict(sorted(skipped.items())),
        "rows": rows,
    }
    manifest_path = output_path.with_name(output_path.name + ".manifest.json")
    manifest_path.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest
