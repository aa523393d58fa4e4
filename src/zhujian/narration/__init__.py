"""Narration: the readable narrative of a report, written by the template or by a language model that the engine
checks sentence by sentence (`zhujian report --narrator llm`, `zhujian batch --narrator llm`).

Entry point: `narrate_report(report, narrator)` returns a `Narrative` (source, text, sections, model, prompt version,
verification, fallback reason). The template narrator is the default and makes no network call. The LLM narrator
(`llm.py`) sends only the de-identified digest (`digest.py`), verifies every answer (`verify.py`) and falls back to
the template when the model fails. `dataset.py` exports fine-tuning pairs, `evaluate.py` measures a model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from zhujian.domain.report import Report
from zhujian.narration.model import Narrative, Verification, VerificationProblem
from zhujian.narration.render import template_narrative

if TYPE_CHECKING:
    from zhujian.narration.llm import LLMNarrator

NARRATOR_NAMES = ("template", "llm")

__all__ = ["NARRATOR_NAMES", "Narrative", "Verification", "VerificationProblem", "narrate_report", "narrator_for"]


def narrator_for(name: str) -> LLMNarrator | None:
    """The narrator object for a name: None for the template (nothing to set up), an LLMNarrator for 'llm' (its
    settings are validated here, so a missing server URL fails before any report is built)."""
    if name == "template":
        return None
    if name == "llm":
        from zhujian.narration.llm import LLMNarrator

        return LLMNarrator()
    raise ValueError(f"unknown narrator {name!r}; known: {', '.join(NARRATOR_NAMES)}")


def narrate_report(report: Report, narrator: LLMNarrator | None = None) -> Narrative:
    """The report's narrative: the template's when `narrator` is None, else the model's, verified, or the
    template's with the reason it fell back."""
    if narrator is None:
        return template_narrative(report)
    return narrator.compose(report)
