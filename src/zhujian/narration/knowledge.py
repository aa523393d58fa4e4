"""The narration knowledge: the prompt and the verifier's word lists, as versioned YAML in the KB folder.

Files (under `kb/data`): `prompts/narrative.yaml` (the Chinese prompt and its version), `narration/serious_terms.yaml`
(disease words a narrative may use only when the report names them), `narration/drugs.yaml` (drug names, dose and
regimen patterns), `narration/negation.yaml` (cues that would deny a conclusion), `narration/units.yaml` (units a
number may carry) and `narration/lifestyle.yaml` (general advice with its figures). Each is validated by a strict
model here; a problem names the file and the path, as for the rest of the KB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from zhujian.kb.loader import KBError, KBProblem, _parse
from zhujian.kb.schema import StrictModel


class PromptFile(StrictModel):
    version: Annotated[str, Field(min_length=1)]
    source: str
    system: Annotated[str, Field(min_length=1)]
    user: Annotated[str, Field(min_length=1)]
    retry: Annotated[str, Field(min_length=1)]

    @field_validator("user")
    @classmethod
    def _user_placeholders(cls, text: str) -> str:
        for name in ("{digest}", "{required}"):
            if name not in text:
                raise ValueError(f"the user prompt must contain the placeholder {name}")
        return text

    @field_validator("retry")
    @classmethod
    def _retry_placeholders(cls, text: str) -> str:
        if "{problems}" not in text:
            raise ValueError("the retry prompt must contain the placeholder {problems}")
        return text


class SeriousTermsFile(StrictModel):
    source: str
    terms: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]


def _check_patterns(patterns: list[str]) -> list[str]:
    for i, pattern in enumerate(patterns):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"pattern {i} {pattern!r} is not a valid regular expression: {exc}") from exc
    return patterns


class DrugsFile(StrictModel):
    source: str
    agents: list[Annotated[str, Field(min_length=2)]]
    classes: list[Annotated[str, Field(min_length=2)]]
    dose_patterns: list[str]

    @field_validator("dose_patterns")
    @classmethod
    def _valid(cls, patterns: list[str]) -> list[str]:
        return _check_patterns(patterns)


class NegationFile(StrictModel):
    source: str
    gap: Annotated[int, Field(ge=0, le=10)]
    gap_words: list[Annotated[str, Field(min_length=1)]]
    before: list[Annotated[str, Field(min_length=1)]]
    after: list[Annotated[str, Field(min_length=1)]]


class UnitsFile(StrictModel):
    source: str
    units: dict[str, Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]]


class LifestyleAdvice(StrictModel):
    text: Annotated[str, Field(min_length=1)]
    source: str


class LifestyleFile(StrictModel):
    source: str
    advice: list[LifestyleAdvice]


@dataclass(frozen=True)
class NarrationKnowledge:
    prompt: PromptFile
    serious_terms: SeriousTermsFile
    drugs: DrugsFile
    negation: NegationFile
    units: UnitsFile
    lifestyle: LifestyleFile
    root: Path

    @property
    def prompt_version(self) -> str:
        return self.prompt.version


def _default_root() -> Path:
    return Path(str(resources.files("zhujian").joinpath("kb/data")))


def load_narration_knowledge(root: Path | None = None) -> NarrationKnowledge:
    """Load and validate the prompt and word lists under `root` (default: the bundled KB). Raises KBError listing
    every problem at once."""
    root = root or _default_root()
    problems: list[KBProblem] = []
    files: dict[str, tuple[type[StrictModel], Path]] = {
        "prompt": (PromptFile, root / "prompts" / "narrative.yaml"),
        "serious_terms": (SeriousTermsFile, root / "narration" / "serious_terms.yaml"),
        "drugs": (DrugsFile, root / "narration" / "drugs.yaml"),
        "negation": (NegationFile, root / "narration" / "negation.yaml"),
        "units": (UnitsFile, root / "narration" / "units.yaml"),
        "lifestyle": (LifestyleFile, root / "narration" / "lifestyle.yaml"),
    }
    parsed: dict[str, object] = {}
    for key, (model, path) in files.items():
        if not path.is_file():
            problems.append(KBProblem(str(path.relative_to(root)), "", "missing"))
            continue
        parsed[key] = _parse(model, path, root, problems)
    if problems:
        raise KBError(problems)
    return NarrationKnowledge(root=root, **parsed)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def default_narration_knowledge() -> NarrationKnowledge:
    return load_narration_knowledge()
