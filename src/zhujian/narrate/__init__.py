"""Narrators turn a Report into readable text."""

from zhujian.narrate.base import Narrator, get_narrator, narrator_names, register_narrator
from zhujian.narrate.template import TemplateNarrator


def _llm_narrator() -> Narrator:
    # Imported on demand: the template narrator must not pull in the HTTP client.
    from zhujian.narration.llm import LLMNarrator

    return LLMNarrator()


register_narrator("llm", _llm_narrator)

__all__ = ["Narrator", "TemplateNarrator", "get_narrator", "narrator_names", "register_narrator"]
