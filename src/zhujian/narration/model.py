"""What a narration produces: the narrative attached to a report, and the verifier's findings about an answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

ProblemKind = Literal[
    "schema", "missing_conclusion", "unknown_term", "number_mismatch", "negation", "prescription", "pii", "length"
]
PROBLEM_KINDS: tuple[ProblemKind, ...] = (
    "schema",
    "missing_conclusion",
    "unknown_term",
    "number_mismatch",
    "negation",
    "prescription",
    "pii",
    "length",
)
# The template narrative is not written from a prompt; this names its format instead.
TEMPLATE_FORMAT_VERSION = "template-1"


@dataclass(frozen=True, slots=True)
class VerificationProblem:
    kind: ProblemKind
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Verification:
    """The verifier's verdict on one model answer."""

    passed: bool
    problems: tuple[VerificationProblem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "problems": [p.to_dict() for p in self.problems]}

    @property
    def kinds(self) -> list[str]:
        return sorted({p.kind for p in self.problems})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request to the model: how long it took, what it cost, and what the verifier said (None: no answer)."""

    latency_s: float
    prompt_tokens: int | None
    completion_tokens: int | None
    verification: Verification | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency_s": round(self.latency_s, 3),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "verification": self.verification.to_dict() if self.verification else None,
            "error": self.error,
        }


@dataclass(slots=True)
class Narrative:
    """The readable narrative of a report and where it came from.

    `verification` describes the last model answer checked (None for the template narrator, which asks no model).
    `fallback_reason` says why the template text is shown although a model was asked.
    """

    source: Literal["llm", "template"]
    text: str
    sections: dict[str, Any]
    model: str | None
    prompt_version: str
    verification: Verification | None = None
    fallback_reason: str | None = None
    digest_sha256: str | None = None
    attempts: list[Attempt] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "text": self.text,
            "sections": self.sections,
            "model": self.model,
            "prompt_version": self.prompt_version,
            "verification": self.verification.to_dict() if self.verification else None,
            "fallback_reason": self.fallback_reason,
        }
        if self.digest_sha256 is not None:
            out["digest_sha256"] = self.digest_sha256
        if self.attempts:
            out["attempts"] = [a.to_dict() for a in self.attempts]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Narrative:
        verification = data.get("verification")
        return cls(
            source=data["source"],
            text=data["text"],
            sections=data.get("sections") or {},
            model=data.get("model"),
            prompt_version=data.get("prompt_version") or "",
            verification=(
                Verification(
                    bool(verification["passed"]),
                    tuple(VerificationProblem(p["kind"], p["detail"]) for p in verification.get("problems", [])),
                )
                if verification
                else None
            ),
            fallback_reason=data.get("fallback_reason"),
            digest_sha256=data.get("digest_sha256"),
            attempts=[
                Attempt(
                    a.get("latency_s", 0.0),
                    a.get("prompt_tokens"),
                    a.get("completion_tokens"),
                    (
                        Verification(
                            bool(a["verification"]["passed"]),
                            tuple(
                                VerificationProblem(p["kind"], p["detail"])
                                for p in a["verification"].get("problems", [])
                            ),
                        )
                        if a.get("verification")
                        else None
                    ),
                    a.get("error"),
                )
                for a in data.get("attempts", [])
            ],
        )
