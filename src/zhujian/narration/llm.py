"""The LLM narrator: asks an OpenAI-compatible chat-completions server to write the narrative, checks the answer,
and falls back to the template narrative when the model fails.

Flow of one narration (the whole flow is bounded by `2 × ZHUJIAN_LLM_TIMEOUT_S`):

1. Build the de-identified digest of the report (`digest.py`) and the prompt (`kb/data/prompts/narrative.yaml`).
2. Ask the model once. A transport failure (timeout, connection refused, HTTP error, a response that is not a chat
   completion) ends here: the template narrative is used and the reason recorded.
3. Verify the answer (`verify.py`). If it passes, its text is the narrative.
4. Otherwise ask once more, the same prompt followed by what was wrong (problem kinds and details, masked; the
   rejected answer itself is not sent back). If that answer passes, it is the narrative; if not, the template is
   used with the reason, and `verification` keeps the problems of the last answer checked.

Each request runs in a worker thread and is abandoned when the deadline passes, so a server that trickles bytes
cannot hold a narration longer than the bound; the HTTP client's own timeout then ends the abandoned request.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from zhujian.domain.report import Report
from zhujian.kb.loader import KnowledgeBase, default_kb
from zhujian.narration.answer import ANSWER_SCHEMA, Answer
from zhujian.narration.digest import Digest, _Masker, build_digest
from zhujian.narration.knowledge import NarrationKnowledge, default_narration_knowledge
from zhujian.narration.model import Attempt, Narrative, Verification
from zhujian.narration.render import render_answer, template_narrative
from zhujian.narration.verify import Verifier, VerifyContext, default_verifier
from zhujian.settings import Settings, load_settings

RETRY_ROUNDS = 1  # one retry after a rejected answer
_DEADLINE_FACTOR = 2.0
_MIN_REQUEST_S = 0.05


class LLMConfigError(ValueError):
    """The LLM narrator was chosen but its settings cannot work (no server URL, no model name)."""


@dataclass(frozen=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 30.0
    temperature: float = 0.2
    max_tokens: int = 3000
    json_mode: str = "json_object"
    stream: bool = False
    concurrency: int = 4

    @property
    def deadline_s(self) -> float:
        """The longest a whole narration may take, retry included."""
        return _DEADLINE_FACTOR * self.timeout_s

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> LLMConfig:
        settings = settings or load_settings()
        required = (("ZHUJIAN_LLM_BASE_URL", settings.llm_base_url), ("ZHUJIAN_LLM_MODEL", settings.llm_model))
        missing = [name for name, value in required if not value]
        if missing:
            raise LLMConfigError(
                f"the LLM narrator needs {' and '.join(missing)} (e.g. ZHUJIAN_LLM_BASE_URL=http://127.0.0.1:8000/v1 "
                "ZHUJIAN_LLM_MODEL=Qwen/Qwen2.5-7B-Instruct); see docs/llm.md"
            )
        assert settings.llm_base_url is not None and settings.llm_model is not None
        return cls(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            timeout_s=settings.llm_timeout_s,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
            json_mode=settings.llm_json_mode,
            stream=settings.llm_stream,
            concurrency=settings.llm_concurrency,
        )


class TransportError(Exception):
    """The model gave no answer: timeout, connection failure, HTTP error, or a response of the wrong shape."""


@dataclass(frozen=True)
class Reply:
    text: str
    prompt_tokens: int | None
    completion_tokens: int | None


def _usage(usage: Any) -> tuple[int | None, int | None]:
    if usage is None:
        return None, None
    return getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None)


class ChatClient:
    """A thin wrapper around `openai.OpenAI` that returns the answer text or raises TransportError."""

    def __init__(self, config: LLMConfig) -> None:
        import openai

        self._openai = openai
        self.config = config
        self._client = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "not-needed",
            timeout=config.timeout_s,
            max_retries=0,  # retries are this narrator's decision, within its deadline
        )

    def _response_format(self) -> dict[str, Any] | None:
        if self.config.json_mode == "json_schema":
            return {"type": "json_schema", "json_schema": {"name": "narrative", "schema": ANSWER_SCHEMA}}
        if self.config.json_mode == "json_object":
            return {"type": "json_object"}
        return None

    def complete(self, messages: list[dict[str, str]], timeout_s: float, cancelled: threading.Event) -> Reply:
        openai = self._openai
        kwargs: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
            "timeout": timeout_s,
        }
        response_format = self._response_format()
        if response_format is not None:
            kwargs["response_format"] = response_format
        try:
            if self.config.stream:
                return self._stream(kwargs, cancelled)
            response = self._client.chat.completions.create(**kwargs)
            choice = response.choices[0]
            text = choice.message.content
            if not isinstance(text, str):
                raise TransportError("the response has no message content")
            return Reply(text, *_usage(response.usage))
        except openai.APITimeoutError as exc:
            raise TransportError(f"no answer within {timeout_s:.1f} s") from exc
        except openai.APIConnectionError as exc:
            where = self.config.base_url
            raise TransportError(f"cannot reach the server at {where} ({exc.__class__.__name__})") from exc
        except openai.APIStatusError as exc:
            raise TransportError(f"the server answered HTTP {exc.status_code}") from exc
        except openai.OpenAIError as exc:
            raise TransportError(f"client error: {exc.__class__.__name__}") from exc
        except (AttributeError, IndexError, TypeError, KeyError) as exc:
            raise TransportError(f"the response is not a chat completion ({exc.__class__.__name__})") from exc

    def _stream(self, kwargs: dict[str, Any], cancelled: threading.Event) -> Reply:
        parts: list[str] = []
        usage: tuple[int | None, int | None] = (None, None)
        stream = self._client.chat.completions.create(stream=True, **kwargs)
        try:
            for chunk in stream:
                if cancelled.is_set():
                    raise TransportError("abandoned at the deadline")
                if getattr(chunk, "usage", None) is not None:
                    usage = _usage(chunk.usage)
                if chunk.choices:
                    delta = chunk.choices[0].delta
                    if delta is not None and delta.content:
                        parts.append(delta.content)
        finally:
            stream.close()
        return Reply("".join(parts), *usage)


def _problem_lines(verification: Verification, mask: _Masker) -> str:
    return "\n".join(f"- [{p.kind}] {mask(p.detail)}" for p in verification.problems)


class LLMNarrator:
    """`Narrator` that writes with a language model and verifies every answer; see the module docstring."""

    name = "llm"

    def __init__(
        self,
        config: LLMConfig | None = None,
        *,
        kb: KnowledgeBase | None = None,
        knowledge: NarrationKnowledge | None = None,
        verifier: Verifier | None = None,
        client: ChatClient | None = None,
    ) -> None:
        self.config = config or LLMConfig.from_settings()
        self.kb = kb or default_kb()
        self.knowledge = knowledge or default_narration_knowledge()
        self.verifier = verifier or default_verifier(self.kb, self.knowledge)
        self.client = client or ChatClient(self.config)
        # Requests run here so that a narration can stop waiting at its deadline.
        self._requests = ThreadPoolExecutor(
            max_workers=2 * self.config.concurrency + 2, thread_name_prefix="zhujian-llm"
        )

    @property
    def prompt_version(self) -> str:
        return self.knowledge.prompt_version

    def narrate(self, report: Report) -> str:
        return self.compose(report).text

    def compose(self, report: Report) -> Narrative:
        return self.compose_dict(report.to_dict(), template_narrative(report))

    def messages(self, digest: Digest) -> list[dict[str, str]]:
        prompt = self.knowledge.prompt
        required = "、".join(digest.required) if digest.required else "（无，按需解读）"
        user = prompt.user.replace("{required}", required).replace("{digest}", digest.text)
        return [{"role": "system", "content": prompt.system}, {"role": "user", "content": user}]

    def _ask(self, messages: list[dict[str, str]], deadline: float) -> Reply:
        remaining = deadline - time.monotonic()
        if remaining < _MIN_REQUEST_S:
            raise TransportError("no time left before the deadline")
        timeout = min(self.config.timeout_s, remaining)
        cancelled = threading.Event()
        future: Future[Reply] = self._requests.submit(self.client.complete, messages, timeout, cancelled)
        try:
            return future.result(timeout=timeout)
        except FutureTimeout:
            cancelled.set()
            raise TransportError(f"no answer within {timeout:.1f} s") from None

    def compose_dict(self, report: dict[str, Any], template: Narrative, digest: Digest | None = None) -> Narrative:
        """The narrative of a report JSON; `template` is what to show when the model fails."""
        started = time.monotonic()
        deadline = started + self.config.deadline_s
        digest = digest or build_digest(report, self.knowledge)
        context: VerifyContext = self.verifier.context(digest)
        messages = self.messages(digest)
        attempts: list[Attempt] = []
        last: Verification | None = None
        reason: str | None = None
        for round_no in range(RETRY_ROUNDS + 1):
            asked = time.monotonic()
            try:
                reply = self._ask(messages, deadline)
            except TransportError as exc:
                attempts.append(Attempt(time.monotonic() - asked, None, None, None, str(exc)))
                reason = f"model request {round_no + 1} failed: {exc}"
                break
            answer, verification = self.verifier.verify_text(reply.text, context)
            attempts.append(
                Attempt(time.monotonic() - asked, reply.prompt_tokens, reply.completion_tokens, verification)
            )
            last = verification
            if verification.passed and answer is not None:
                return self._accepted(report, answer, digest, verification, attempts)
            if round_no < RETRY_ROUNDS:
                mask = _Masker(digest.identifiers)
                retry = self.knowledge.prompt.retry.replace("{problems}", _problem_lines(verification, mask))
                # One user turn, not two in a row: some chat templates insist on alternating roles.
                system, user = self.messages(digest)
                messages = [system, {"role": "user", "content": user["content"] + "\n\n" + retry}]
            else:
                reason = "the model's answer failed verification twice (" + ", ".join(verification.kinds) + ")"
        return Narrative(
            source="template",
            text=template.text,
            sections=template.sections,
            model=self.config.model,
            prompt_version=self.prompt_version,
            verification=last,
            fallback_reason=reason,
            digest_sha256=digest.sha256,
            attempts=attempts,
        )

    def _accepted(
        self,
        report: dict[str, Any],
        answer: Answer,
        digest: Digest,
        verification: Verification,
        attempts: list[Attempt],
    ) -> Narrative:
        return Narrative(
            source="llm",
            text=render_answer(report, answer),
            sections=answer.sections(),
            model=self.config.model,
            prompt_version=self.prompt_version,
            verification=verification,
            fallback_reason=None,
            digest_sha256=digest.sha256,
            attempts=attempts,
        )

    def close(self) -> None:
        self._requests.shutdown(wait=False, cancel_futures=True)
