"""The narrator interface: turns a finished Report into the readable 主检报告 text.

The template narrator is the default and needs nothing else; other narrators (for example one that asks a language
model for a smoother 综述) register through `register_narrator` and must return text built only from the report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from zhujian.domain.report import Report


class Narrator(Protocol):
    name: str

    def narrate(self, report: Report) -> str: ...


_NARRATORS: dict[str, Callable[[], Narrator]] = {}


def register_narrator(name: str, factory: Callable[[], Narrator]) -> None:
    _NARRATORS[name] = factory


def get_narrator(name: str = "template") -> Narrator:
    if name not in _NARRATORS:
        known = ", ".join(sorted(_NARRATORS))
        raise KeyError(f"unknown narrator {name!r}; known: {known}")
    return _NARRATORS[name]()


def narrator_names() -> list[str]:
    return sorted(_NARRATORS)
