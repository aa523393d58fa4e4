"""A stand-in OpenAI-compatible chat-completions server for the narration tests, and faithful answers built from a
report's own evidence.

The server runs in a thread on 127.0.0.1 with an OS-assigned port, answers POST …/chat/completions from a script
(one step per request, the last step repeating), streams server-sent events when the request asks for a stream, and
keeps every request body it received so that tests can scan them for identifying data.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    """One scripted response: `content` as the assistant's message, or an HTTP `status` error, after `delay_s`.
    `raw` replaces the whole body (a response that is not a chat completion). `trickle_s` streams the content one
    character at a time with this pause (only in streaming mode)."""

    content: str | None = None
    status: int = 200
    delay_s: float = 0.0
    raw: str | None = None
    trickle_s: float = 0.0
    respond: Callable[[dict[str, Any]], str] | None = None  # builds the content from the request body


@dataclass
class StandIn:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    raw_requests: list[str] = field(default_factory=list)
    script: list[Step] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    _served: int = 0

    def next_step(self) -> Step:
        index = min(self._served, len(self.script) - 1)
        self._served += 1
        return self.script[index]


def _completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-standin",
        "object": "chat.completion",
        "created": 0,
        "model": "stand-in",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": len(content), "total_tokens": 1000 + len(content)},
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-standin",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "stand-in",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, ensure_ascii=False).encode("utf-8") + b"\n\n"


@contextmanager
def stand_in_server(script: list[Step]) -> Iterator[StandIn]:
    state = StandIn(url="", script=list(script))
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length).decode("utf-8")
            with lock:
                state.raw_requests.append(raw)
                state.requests.append(json.loads(raw))
                step = state.next_step()
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                self._answer(step, raw)
            finally:
                with lock:
                    state.in_flight -= 1

        def _answer(self, step: Step, raw: str) -> None:
            if step.delay_s:
                time.sleep(step.delay_s)
            if step.respond is not None:
                step = Step(content=step.respond(json.loads(raw)))
            try:
                if step.status != 200:
                    body = json.dumps({"error": {"message": "scripted failure", "type": "server_error"}}).encode()
                    self._send(step.status, body, "application/json")
                elif step.raw is not None:
                    self._send(200, step.raw.encode("utf-8"), "application/json")
                elif json.loads(raw).get("stream"):
                    self._stream(step)
                else:
                    body = json.dumps(_completion(step.content or ""), ensure_ascii=False).encode("utf-8")
                    self._send(200, body, "application/json")
            except (BrokenPipeError, ConnectionResetError):
                return

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _stream(self, step: Step) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            content = step.content or ""
            self.wfile.write(_chunk({"role": "assistant", "content": ""}))
            size = 1 if step.trickle_s else max(1, math.ceil(len(content) / 7))
            for start in range(0, len(content), size):
                self.wfile.write(_chunk({"content": content[start : start + size]}))
                self.wfile.flush()
                if step.trickle_s:
                    time.sleep(step.trickle_s)
            self.wfile.write(_chunk({}, "stop"))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


# ---- faithful answers built from the report's own evidence -----------------------------------------------------


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _range(item: dict[str, Any]) -> str | None:
    low, high = item.get("ref_low"), item.get("ref_high")
    if low is not None and high is not None:
        return f"{_number(low)}-{_number(high)}"
    if high is not None:
        return f"不超过{_number(high)}"
    if low is not None:
        return f"不低于{_number(low)}"
    return None


def faithful_answer(report: dict[str, Any]) -> dict[str, Any]:
    """An answer that says only what the report says: every conclusion by its exact name, every item value with its
    unit exactly as in the evidence, the reference range with that unit, the KB's follow-up interval."""
    items = {i["item_id"]: i for i in report["items"] if i.get("item_id")}
    conclusions = []
    for c in report["conclusions"]:
        facts = []
        for e in c["evidence"]:
            if e["kind"] != "item" or e.get("value") is None:
                continue
            item = items.get(e.get("item_id"), {})
            unit = e.get("unit") or ""
            fact = f"{item.get('name') or e.get('source_item')}为{_number(e['value'])}{(' ' + unit) if unit else ''}"
            ref = _range(item)
            if ref and unit and isinstance(e["value"], float):
                fact += f"（参考范围{ref} {unit}）"
            facts.append(fact)
        explanation = f"本次体检的主检结论之一是“{c['name']}”。" + ("其中" + "；".join(facts) + "。" if facts else "")
        advice = f"建议{c['follow_up']}，请到{c['department']}就诊。" if c.get("follow_up") else "请按主检医生的建议处理。"
        conclusions.append({"name": c["name"], "explanation": explanation, "advice": advice})
    return {
        "summary": "本次体检发现的情况已按轻重缓急排列，请先处理排在前面的重要结果，并按建议按时复查。",
        "conclusions": conclusions,
        "lifestyle": ["成人每周进行至少150分钟中等强度有氧运动", "每天食盐不超过5克", "保证睡眠，戒烟限酒"],
        "follow_up": [f"{c['name']}：{c['follow_up']}" for c in report["conclusions"][:5] if c.get("follow_up")],
    }


def digest_of_request(body: dict[str, Any]) -> dict[str, Any]:
    """The digest the narrator sent: the JSON object after 报告摘要： in the user message (a retry appends what was
    wrong after it)."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    digest, _end = json.JSONDecoder().raw_decode(user.split("报告摘要：", 1)[1].strip())
    assert isinstance(digest, dict)
    return digest


def faithful_from_request(body: dict[str, Any]) -> str:
    """A faithful answer built from the digest in the request: each conclusion's exact name, its evidence values with
    their units, its follow-up interval."""
    digest = digest_of_request(body)
    conclusions = []
    for c in digest["主检结论"]:
        facts = [
            f"{e['项目']}为{e['结果']}{(' ' + e['单位']) if e.get('单位') else ''}" for e in c["依据"] if "项目" in e
        ]
        explanation = f"本次体检的主检结论之一是“{c['名称']}”。" + ("其中" + "；".join(facts) + "。" if facts else "")
        conclusions.append({"name": c["名称"], "explanation": explanation, "advice": f"建议{c['复查随访']}。"})
    return dumps(
        {
            "summary": "本次体检发现的情况已按轻重缓急排列，请先处理排在前面的重要结果。",
            "conclusions": conclusions,
            "lifestyle": ["成人每周进行至少150分钟中等强度有氧运动"],
            "follow_up": [],
        }
    )


def dumps(answer: Any) -> str:
    return json.dumps(answer, ensure_ascii=False)


Mutation = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any] | str]
