"""Every error becomes an HTTP answer here, and only here.

API paths (`/api/...`) answer `{"error": {"code", "message", ...}}` with a Chinese message a person understands;
validation errors (422) name the field. Page paths answer an HTML page, or for htmx requests a message fragment that
htmx puts into the page's `#flash` box.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import escape
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from zhujian.render import PdfUnavailableError
from zhujian.storage.errors import (
    InvalidEdit,
    InvalidTransition,
    InvalidUserData,
    NotFound,
    PermissionDenied,
    SelfReviewForbidden,
    StorageError,
    UserExists,
    VersionConflict,
)
from zhujian.web.capacity import RETRY_AFTER_SECONDS, RequestTooLarge
from zhujian.web.logging import safe_path

logger = logging.getLogger("zhujian.web")


@dataclass
class WebError(Exception):
    """An error raised by the web layer itself (authentication, throttling, CSRF, bad input)."""

    status_code: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def not_authenticated() -> WebError:
    return WebError(401, "not_authenticated", "未登录或登录已过期，请重新登录", {"WWW-Authenticate": "Bearer"})


def csrf_failed() -> WebError:
    return WebError(403, "csrf_failed", "表单已失效（安全校验未通过），请刷新页面后重试")


class LoginRequired(Exception):  # noqa: N818 - an outcome, like the storage errors
    """A page needs a logged-in user: pages redirect to the login page instead of answering 401."""


_HTTP_MESSAGES = {
    400: ("bad_request", "请求格式不正确"),
    401: ("not_authenticated", "未登录或登录已过期，请重新登录"),
    403: ("forbidden", "无权执行此操作"),
    404: ("not_found", "请求的地址不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    413: ("too_large", "请求内容过大"),
}

_FIELD_MESSAGES = {
    "missing": "缺少必填字段",
    "extra_forbidden": "不允许的字段",
    "int_parsing": "应为整数",
    "int_type": "应为整数",
    "string_type": "应为文本",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "too_short": "内容过短或为空",
    "too_long": "内容过长",
    "literal_error": "取值不在允许范围内",
    "date_from_datetime_parsing": "应为日期（YYYY-MM-DD）",
    "date_parsing": "应为日期（YYYY-MM-DD）",
    "json_invalid": "不是有效的 JSON",
    "union_tag_invalid": "未知的操作类型（op 应为 edit、add、delete、merge 或 reorder）",
    "model_attributes_type": "应为对象",
    "list_type": "应为列表",
}


def _field_path(location: tuple[Any, ...] | list[Any]) -> str:
    # Drop the "body"/"query" prefix and pydantic's union-tag segments; keep list indexes.
    parts = [str(p) for p in location[1:] if p not in ("edit", "add", "delete", "merge", "reorder")]
    return ".".join(parts) or str(location[0])


def _domain_answer(exc: StorageError | PdfUnavailableError) -> tuple[int, str, dict[str, Any]]:
    if isinstance(exc, NotFound):
        return 404, "not_found", {}
    if isinstance(exc, SelfReviewForbidden):
        return 403, "self_review_forbidden", {}
    if isinstance(exc, PermissionDenied):
        return 403, "forbidden", {"action": exc.action}
    if isinstance(exc, VersionConflict):
        return 409, "version_conflict", {"expected_version": exc.expected, "current_version": exc.actual}
    if isinstance(exc, InvalidTransition):
        return 409, "invalid_transition", {"status": exc.status}
    if isinstance(exc, InvalidEdit):
        extra = {} if exc.operation_index is None else {"field": f"operations.{exc.operation_index}"}
        return 422, "invalid_edit", extra
    if isinstance(exc, UserExists):
        return 409, "user_exists", {}
    if isinstance(exc, InvalidUserData):
        return 422, "invalid_user_data", {}
    if isinstance(exc, PdfUnavailableError):
        return 503, "pdf_unavailable", {}
    return 400, "storage_error", {}


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api")


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> Response:
    """The one shape of every error answer (JSON for the API, HTML for pages)."""
    if _is_api(request):
        body = {"error": {"code": code, "message": message, **(details or {})}}
        return JSONResponse(body, status_code=status_code, headers=headers)
    if request.headers.get("HX-Request"):
        # htmx swaps nothing on 4xx by default; retarget the message into the flash box and let it swap.
        fragment = f'<div class="flash flash-error" role="alert">{escape(message)}</div>'
        merged = {"HX-Retarget": "#flash", "HX-Reswap": "innerHTML", **(headers or {})}
        return HTMLResponse(fragment, status_code=status_code, headers=merged)
    templates = request.app.state.templates
    page: Response = templates.TemplateResponse(
        request,
        "error.html",
        {"status_code": status_code, "message": message, "user": None},
        status_code=status_code,
        headers=headers,
    )
    return page


def _cause(exc: Exception) -> str:
    # The driver error's class only: the message of a database error quotes the statement's values (record data).
    original = getattr(exc, "orig", None)
    return type(original if original is not None else exc).__name__


def install_error_handlers(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StorageError | PdfUnavailableError)
        status_code, code, details = _domain_answer(exc)
        logger.info("request %s %s refused: %s", request.method, safe_path(request.url.path), code)
        return error_response(request, status_code, code, str(exc), details=details)

    async def on_web_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WebError)
        return error_response(request, exc.status_code, exc.code, exc.message, headers=exc.headers, details=exc.details)

    async def on_login_required(request: Request, exc: Exception) -> Response:
        target = "/login?next=" + quote(request.url.path, safe="/")
        if request.headers.get("HX-Request"):
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    async def on_validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        fields = []
        for error in exc.errors():
            path = _field_path(tuple(error.get("loc", ())))
            reason = _FIELD_MESSAGES.get(str(error.get("type")), str(error.get("msg", "")))
            fields.append({"field": path, "message": reason})
        first = fields[0] if fields else {"field": "?", "message": "数据不正确"}
        message = f"请求数据不正确：字段 {first['field']} {first['message']}"
        if len(fields) > 1:
            message += f"（另有 {len(fields) - 1} 处问题）"
        return error_response(request, 422, "validation_error", message, details={"fields": fields})

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        code, message = _HTTP_MESSAGES.get(exc.status_code, ("http_error", "请求无法处理"))
        if isinstance(exc.detail, str) and exc.status_code not in _HTTP_MESSAGES:
            message = exc.detail
        return error_response(request, exc.status_code, code, message, headers=dict(exc.headers or {}))

    async def on_unexpected(request: Request, exc: Exception) -> Response:
        # The traceback goes to the log; the client gets no internals (and the log gets no request body).
        logger.exception("unhandled error on %s %s", request.method, safe_path(request.url.path))
        return error_response(request, 500, "internal_error", "服务器内部错误，请稍后重试或联系管理员")

    async def on_request_too_large(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestTooLarge)
        headers, details = {"Connection": "close"}, {"max_bytes": exc.max_bytes}
        return error_response(request, 413, "too_large", str(exc.detail), headers=headers, details=details)

    async def on_database_busy(request: Request, exc: Exception) -> Response:
        # No connection within ZHUJIAN_DB_POOL_TIMEOUT, a lock wait that timed out (SQLite "database is locked"), a
        # deadlock broken by PostgreSQL, or the database unreachable: nothing was written, trying again later helps.
        logger.warning("request %s %s refused: database busy (%s)", request.method, request.url.path, _cause(exc))
        return error_response(
            request,
            503,
            "database_busy",
            f"数据库繁忙，请 {RETRY_AFTER_SECONDS} 秒后重试",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    async def on_write_conflict(request: Request, exc: Exception) -> Response:
        # A uniqueness check lost to a concurrent writer that the services do not resolve themselves.
        logger.warning("request %s %s refused: write conflict (%s)", request.method, request.url.path, _cause(exc))
        return error_response(request, 409, "write_conflict", "数据已被同时修改，请刷新后重试")

    async def on_out_of_range(request: Request, exc: Exception) -> Response:
        logger.warning("request %s %s refused: out of range (%s)", request.method, request.url.path, _cause(exc))
        return error_response(request, 422, "out_of_range", "请求数据超出允许范围")

    app.add_exception_handler(RequestTooLarge, on_request_too_large)
    app.add_exception_handler(PoolTimeout, on_database_busy)
    app.add_exception_handler(OperationalError, on_database_busy)
    app.add_exception_handler(IntegrityError, on_write_conflict)
    app.add_exception_handler(DataError, on_out_of_range)
    app.add_exception_handler(StorageError, on_domain_error)
    app.add_exception_handler(PdfUnavailableError, on_domain_error)
    app.add_exception_handler(WebError, on_web_error)
    app.add_exception_handler(LoginRequired, on_login_required)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
