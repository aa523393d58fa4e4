"""Security headers on every response: pages, API, PDFs, static files and error answers.

- Content-Security-Policy: scripts and styles from this origin only — no inline script, no inline style, no eval
  (htmx runs with `allowEval: false`); no framing (`frame-ancestors 'none'`, and X-Frame-Options DENY for old
  browsers); forms post only to this origin. The API documentation pages (/docs, /redoc) are FastAPI's, which load
  Swagger UI / ReDoc from a CDN and start them with an inline script: they get a policy that allows that CDN and
  exactly those inline blocks, by their SHA-256 — still nothing else inline.
- X-Content-Type-Options nosniff, Referrer-Policy no-referrer (report URLs never leave in a Referer), and
  `Cache-Control: no-store` on everything except /static, so no report, worklist or PDF stays in a browser or proxy
  cache on a shared workstation.
- Strict-Transport-Security when the request came over HTTPS (directly or via a trusted proxy).
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from zhujian.web.security import scope_is_https

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Browsers show a PDF through a built-in viewer embedded in the document: `object-src 'self'` lets it load this one.
PDF_POLICY = "default-src 'none'; object-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
DOCS_CDN = "https://cdn.jsdelivr.net"
HSTS = "max-age=31536000"

COMMON_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}

_INLINE_SCRIPT = re.compile(rb"<script>(.*?)</script>", re.DOTALL)
_INLINE_STYLE = re.compile(rb"<style>(.*?)</style>", re.DOTALL)


def _sha256_source(block: bytes) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(block).digest()).decode() + "'"


def docs_policy(html: bytes) -> str:
    """The policy of a documentation page: the CDN, and its own inline blocks by hash."""
    scripts = " ".join(_sha256_source(b) for b in _INLINE_SCRIPT.findall(html))
    styles = " ".join(_sha256_source(b) for b in _INLINE_STYLE.findall(html))
    return (
        f"default-src 'self'; script-src 'self' {DOCS_CDN} {scripts}; style-src 'self' {DOCS_CDN} "
        f"https://fonts.googleapis.com {styles}; font-src 'self' https://fonts.gstatic.com; "
        f"img-src 'self' data: {DOCS_CDN} https://fastapi.tiangolo.com; worker-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    )


class SecurityHeadersMiddleware:
    """Pure ASGI middleware (no response buffering, except the small documentation pages that need hashing)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        https = scope_is_https(scope)
        if path in DOCS_PATHS:
            await self._documentation(scope, receive, send, https)
            return

        cached = not path.startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = _with_security_headers(message.get("headers") or [], cached, https)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _documentation(self, scope: Scope, receive: Receive, send: Send, https: bool) -> None:
        start: Message | None = None
        body = bytearray()

        async def collect(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if message.get("more_body", False):
                    return
                assert start is not None
                headers = _with_security_headers(start.get("headers") or [], True, https, docs_policy(bytes(body)))
                start["headers"] = [(n, v) for n, v in headers if n.lower() != b"content-length"]
                start["headers"].append((b"content-length", str(len(body)).encode("latin-1")))
                await send(start)
                await send({"type": "http.response.body", "body": bytes(body), "more_body": False})
                return
            await send(message)

        await self.app(scope, receive, collect)


def _raw_headers(policy: str, no_store: bool, https: bool) -> tuple[tuple[bytes, bytes], ...]:
    headers = {"Content-Security-Policy": policy, **COMMON_HEADERS}
    if no_store:
        headers["Cache-Control"] = "no-store"
    if https:
        headers["Strict-Transport-Security"] = HSTS
    return tuple((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items())


# The headers added to every answer, encoded once per combination (PDF or not, no-store or not, HTTPS or not):
# setting them one by one through MutableHeaders scans the header list each time, on every response.
_RAW_HEADERS = {
    (pdf, no_store, https): _raw_headers(PDF_POLICY if pdf else PAGE_POLICY, no_store, https)
    for pdf in (False, True)
    for no_store in (False, True)
    for https in (False, True)
}
_SET_BY_US = frozenset(name for name, _ in _RAW_HEADERS[(False, True, True)])


def _with_security_headers(
    headers: list[tuple[bytes, bytes]], no_store: bool, https: bool, policy: str | None = None
) -> list[tuple[bytes, bytes]]:
    """The response's own headers, less any it set itself that this middleware sets, plus this middleware's; with
    `policy`, that Content-Security-Policy instead of the page or PDF one (the documentation pages)."""
    pdf = False
    kept = []
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"content-type" and value.startswith(b"application/pdf"):
            pdf = True
        if lowered not in _SET_BY_US:
            kept.append((name, value))
    kept.extend(_RAW_HEADERS[(pdf, no_store, https)] if policy is None else _raw_headers(policy, no_store, https))
    return kept
