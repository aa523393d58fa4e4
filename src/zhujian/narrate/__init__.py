"""Narrators turn a Report into readable text."""

from zhujian.narrate.base import Narrator, get_narrator, narrator_names, register_narrator
from zhujian.narrate.template import TemplateNarrator

__all__ = ["Narrator", "TemplateNarrator", "get_narrator", "narrator_names", "register_narrator"]
