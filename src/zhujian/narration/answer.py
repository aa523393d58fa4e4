"""Reading a model's answer: strict JSON of the fixed shape, nothing guessed.

The whole answer must be one JSON object. The only wrapping accepted is a Markdown code fence around the whole answer
(```json … ```), which several chat models add even in JSON mode; text before or after the object, or several
objects, make the answer unusable — searching for the first `{` would accept answers that are not what was asked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from zhujian.narration.model import VerificationProblem

_FENCE = re.compile(r"\A```(?:json|JSON)?[ \t]*\n(?P<body>.*)\n[ \t]*```\Z", re.DOTALL)

# The JSON Schema of an answer, sent to servers that enforce one (`json_schema` mode).
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "summary": {"type": "string"},
        "conclusions": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "explanation": {"type": "string"},
                    "advice": {"type": "string"},
                },
                "required": ["name", "explanation", "advice"],
            },
        },
        "lifestyle": {"type": "array", "items": {"type": "string"}},
        "follow_up": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["summary", "conclusions", "lifestyle", "follow_up"],
}


@dataclass(frozen=True, slots=True)
class ConclusionText:
    name: str
    explanation: str
    advice: str


@dataclass(frozen=True, slots=True)
class Answer:
    summary: str
    conclusions: tuple[ConclusionText, ...]
    lifestyle: tuple[str, ...]
    follow_up: tuple[str, ...]

    def sections(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "conclusions": [
                {"name": c.name, "explanation": c.explanation, "advice": c.advice} for c in self.conclusions
            ],
            "lifestyle": list(self.lifestyle),
            "follow_up": list(self.follow_up),
        }

    def texts(self) -> list[tuple[str, str]]:
        """(where, text) for every string of the answer, in reading order."""
        out = [("summary", self.summary)]
        for i, c in enumerate(self.conclusions):
            out += [
                (f"conclusions[{i}].name", c.name),
                (f"conclusions[{i}].explanation", c.explanation),
                (f"conclusions[{i}].advice", c.advice),
            ]
        out += [(f"lifestyle[{i}]", t) for i, t in enumerate(self.lifestyle)]
        out += [(f"follow_up[{i}]", t) for i, t in enumerate(self.follow_up)]
        return out


def _schema(detail: str) -> tuple[None, list[VerificationProblem]]:
    return None, [VerificationProblem("schema", detail)]


def _string_list(value: Any, field: str, problems: list[VerificationProblem]) -> tuple[str, ...]:
    if not isinstance(value, list):
        problems.append(VerificationProblem("schema", f"{field} must be a list of strings, got {type(value).__name__}"))
        return ()
    out = []
    for i, entry in enumerate(value):
        if isinstance(entry, str):
            out.append(entry)
        else:
            problems.append(VerificationProblem("schema", f"{field}[{i}] must be a string, got {type(entry).__name__}"))
    return tuple(out)


def shape_answer(data: Any) -> tuple[Answer | None, list[VerificationProblem]]:
    """An Answer from decoded JSON, or the `schema` problems that prevent it. Extra keys are allowed."""
    if not isinstance(data, dict):
        return _schema(f"the answer must be a JSON object, got {type(data).__name__}")
    problems: list[VerificationProblem] = []
    for key in ("summary", "conclusions", "lifestyle", "follow_up"):
        if key not in data:
            problems.append(VerificationProblem("schema", f"missing field {key!r}"))
    if problems:
        return None, problems
    summary = data["summary"]
    if not isinstance(summary, str):
        problems.append(VerificationProblem("schema", f"summary must be a string, got {type(summary).__name__}"))
    conclusions: list[ConclusionText] = []
    raw_conclusions = data["conclusions"]
    if not isinstance(raw_conclusions, list):
        problems.append(
            VerificationProblem("schema", f"conclusions must be a list, got {type(raw_conclusions).__name__}")
        )
        raw_conclusions = []
    seen: set[str] = set()
    for i, entry in enumerate(raw_conclusions):
        if not isinstance(entry, dict):
            problems.append(VerificationProblem("schema", f"conclusions[{i}] must be an object"))
            continue
        fields = {}
        for key in ("name", "explanation", "advice"):
            value = entry.get(key)
            if not isinstance(value, str):
                got = type(value).__name__
                problems.append(VerificationProblem("schema", f"conclusions[{i}].{key} must be a string, got {got}"))
            fields[key] = value if isinstance(value, str) else ""
        if fields["name"] in seen:
            problems.append(VerificationProblem("schema", f"conclusions[{i}].name {fields['name']!r} appears twice"))
        seen.add(fields["name"])
        conclusions.append(ConclusionText(**fields))
    lifestyle = _string_list(data["lifestyle"], "lifestyle", problems)
    follow_up = _string_list(data["follow_up"], "follow_up", problems)
    if problems:
        return None, problems
    assert isinstance(summary, str)
    return Answer(summary, tuple(conclusions), lifestyle, follow_up), []


def parse_answer(text: str | None) -> tuple[Answer | None, list[VerificationProblem]]:
    """Decode a model's answer text. The whole text must be the JSON object (or a fenced block that is the whole
    answer); anything else is a `schema` problem saying why."""
    if text is None or not text.strip():
        return _schema("the answer is empty")
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced is not None:
        body = fenced.group("body").strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        return _schema(f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})")
    return shape_answer(data)
