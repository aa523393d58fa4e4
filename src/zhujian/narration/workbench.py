"""The narrative in the workbench: generated from the report as it stands (the physician's edited conclusions),
shown beside the conclusions with where it came from, edited by the physician, kept in the signed report.

A stored narrative is the `narrative` object of the report JSON (see `Narrative.to_dict`) plus:
- `generated_sections`: the sections as the narrator wrote them, kept when the physician edits;
- `edited_by_physician`, `edited_parts`, `edited_by`: what the physician changed and who;
- `digest_sha256`: the digest the text was written from; when the conclusions change afterwards, the page says the
  narrative is out of date and offers to regenerate it.
"""

from __future__ import annotations

import copy
from typing import Any

from zhujian.narration.answer import Answer, ConclusionText, shape_answer
from zhujian.narration.digest import build_digest
from zhujian.narration.llm import LLMNarrator
from zhujian.narration.model import TEMPLATE_FORMAT_VERSION, Narrative
from zhujian.narration.render import render_answer

PHYSICIAN_NOTE = "（以上解读由主检医生审核修改。）"
_LEVEL = {"A": "A 类", "B": "B 类"}


def _template_summary(content: dict[str, Any]) -> str:
    conclusions = content.get("conclusions") or []
    if not conclusions:
        return "本次体检未发现需要列入主检结论的异常，建议保持健康生活方式，定期体检。"
    n_a = sum(1 for c in conclusions if c.get("level") == "A")
    n_b = sum(1 for c in conclusions if c.get("level") == "B")
    text = f"本次体检归纳为 {len(conclusions)} 条主检结论"
    if n_a or n_b:
        text += f"，其中 A 类重要异常 {n_a} 条、B 类重要异常 {n_b} 条，请优先处理"
    top = "、".join(str(c.get("name")) for c in conclusions[:5])
    return text + f"。主要结论：{top}{'等' if len(conclusions) > 5 else ''}。"


def template_narrative_from_content(content: dict[str, Any]) -> Narrative:
    """The template narrative of a stored report JSON: the KB's explanation and advice of each conclusion as the
    physician left them."""
    conclusions = content.get("conclusions") or []
    answer = Answer(
        summary=_template_summary(content),
        conclusions=tuple(
            ConclusionText(str(c.get("name")), str(c.get("explanation") or ""), str(c.get("advice") or ""))
            for c in conclusions
        ),
        lifestyle=(),
        follow_up=tuple(f"{c.get('name')}：{c.get('follow_up')}" for c in conclusions if c.get("follow_up")),
    )
    return Narrative(
        source="template",
        text=render_answer(content, answer, note=None),
        sections=answer.sections(),
        model=None,
        prompt_version=TEMPLATE_FORMAT_VERSION,
    )


def generate_narrative(content: dict[str, Any], narrator: LLMNarrator | None) -> dict[str, Any]:
    """A fresh narrative for the report as it stands: the template's (narrator None) or the model's, verified, with
    the template as the fallback. Returned as the JSON object to store."""
    template = template_narrative_from_content(content)
    digest = build_digest(content, narrator.knowledge if narrator else None)
    if narrator is None:
        template.digest_sha256 = digest.sha256
        narrative = template
    else:
        narrative = narrator.compose_dict(content, template, digest)
    out = narrative.to_dict()
    out["generated_sections"] = copy.deepcopy(out["sections"])
    out["edited_by_physician"] = False
    out["edited_parts"] = []
    return out


def edit_narrative_sections(
    content: dict[str, Any], narrative: dict[str, Any], sections: dict[str, Any], editor: str
) -> dict[str, Any]:
    """The stored narrative with the physician's sections: the text is rendered again from them, the generated
    sections are kept, and `edited_parts` lists what differs from what the narrator wrote."""
    answer, problems = shape_answer(sections)
    if answer is None:
        raise ValueError("; ".join(p.detail for p in problems))
    generated = narrative.get("generated_sections") or narrative.get("sections") or {}
    edited = []
    if answer.summary != generated.get("summary"):
        edited.append("summary")
    before = {c.get("name"): c for c in generated.get("conclusions", [])}
    for c in answer.conclusions:
        old = before.get(c.name, {})
        if c.explanation != old.get("explanation") or c.advice != old.get("advice"):
            edited.append(f"conclusion:{c.name}")
    for part in ("lifestyle", "follow_up"):
        if list(getattr(answer, part)) != list(generated.get(part, [])):
            edited.append(part)
    out = copy.deepcopy(narrative)
    out["sections"] = answer.sections()
    out["generated_sections"] = generated
    out["edited_by_physician"] = bool(edited)
    out["edited_parts"] = edited
    out["edited_by"] = editor
    out["text"] = render_answer(content, answer, note=PHYSICIAN_NOTE if edited else None)
    return out


def narrative_view(content: dict[str, Any]) -> dict[str, Any] | None:
    """What the review page shows about the stored narrative: its sections, a label saying where the text comes
    from, the fallback reason, and whether the conclusions changed since it was written."""
    narrative = content.get("narrative")
    if not isinstance(narrative, dict):
        return None
    verification = narrative.get("verification") or {}
    if narrative.get("source") == "llm":
        label = "AI 起草 · 已通过自动核对"
    elif narrative.get("fallback_reason"):
        label = "模板（大模型未采用）"
    else:
        label = "模板"
    stale = narrative.get("digest_sha256") not in (None, build_digest(content).sha256)
    sections = narrative.get("sections") or {}
    by_name = {c.get("name"): c for c in sections.get("conclusions", [])}
    return {
        "label": label,
        "source": narrative.get("source"),
        "model": narrative.get("model"),
        "prompt_version": narrative.get("prompt_version"),
        "fallback_reason": narrative.get("fallback_reason"),
        "problems": verification.get("problems", []),
        "edited": bool(narrative.get("edited_by_physician")),
        "edited_by": narrative.get("edited_by"),
        "stale": stale,
        "summary": sections.get("summary", ""),
        "conclusions": [
            {"name": c.get("name"), **by_name.get(c.get("name"), {"explanation": "", "advice": ""})}
            for c in content.get("conclusions") or []
        ],
        "lifestyle": "\n".join(sections.get("lifestyle", [])),
        "follow_up": "\n".join(sections.get("follow_up", [])),
        "text": narrative.get("text", ""),
    }
