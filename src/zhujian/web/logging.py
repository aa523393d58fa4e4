"""Logging of the workbench without identifiers.

The access log writes method, path, status and client address, never the query string: a search box carries
ID numbers, phone numbers, names and person ids (`/api/worklist?search=110101199003071234`). The workbench's paths
hold only route words and numeric report ids, but a client can put anything into a path, so a path segment is
logged only when it has that shape (lower-case route words, short numbers); any other segment is masked. Every other
log message goes through the `zhujian.deid` patterns (ID numbers, phone numbers, e-mail addresses, names after a
cue…) and a mask for long digit runs — a last line of defence behind code that does not log record content or
typed-in user names in the first place.

`uvicorn_log_config()` is the uvicorn `log_config` of `zhujian serve`; `install_access_log_filter()` puts the same
filter on uvicorn's access logger for apps started another way (create_app calls it).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import unquote

from zhujian.deid import find_pii

ACCESS_LOGGER = "uvicorn.access"
MASK = "[masked]"
# Digit runs of 7 or more (ID numbers, phone numbers, card and record numbers) even without context; dates,
# report ids and counts are shorter.
_LONG_DIGITS = re.compile(r"(?<![0-9A-Za-z])[0-9]{7,}[Xx]?(?![0-9A-Za-z])")


def redact(text: str) -> str:
    """`text` with every identifier `zhujian.deid` recognises, and every long digit run, replaced by a mask."""
    spans = sorted(find_pii(text), key=lambda span: span.start)
    pieces: list[str] = []
    position = 0
    for span in spans:
        if span.start < position:
            continue
        pieces.append(text[position : span.start])
        pieces.append(MASK)
        position = span.end
    pieces.append(text[position:])
    return _LONG_DIGITS.sub(MASK, "".join(pieces))


# A route word (api, reports, kb-search, report.pdf, htmx.min.js, oauth2-redirect) or a report id (12, 12.pdf).
_ROUTE_WORD = re.compile(r"[a-z][a-z0-9_.-]{0,39}")
_SHORT_NUMBER = re.compile(r"[0-9]{1,6}(?:\.pdf)?")


def _safe_segment(segment: str) -> str:
    if _SHORT_NUMBER.fullmatch(segment):
        return segment
    if _ROUTE_WORD.fullmatch(segment) and sum(c.isdigit() for c in segment) <= 2:
        return segment
    return MASK


def safe_path(path_with_query: str) -> str:
    """A request target for the log: the path without its query string; segments that are not route words or
    short numbers are masked."""
    path = unquote(path_with_query.split("?", 1)[0].split("#", 1)[0], errors="replace")
    return "/".join(_safe_segment(segment) if segment else "" for segment in path.split("/"))


class AccessLogFilter(logging.Filter):
    """Rewrites uvicorn access records (`'%s - "%s %s HTTP/%s" %d'`: client, method, target, version, status) so
    the target has no query string and no identifier."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], safe_path(args[2]), args[3], args[4])
        return True


class RedactingFilter(logging.Filter):
    """Masks identifiers in any record's message (the message is formatted once here, its arguments dropped)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == ACCESS_LOGGER and isinstance(record.args, tuple) and len(record.args) == 5:
            # uvicorn's access formatter needs the arguments: clean the target and keep the shape.
            return AccessLogFilter().filter(record)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format string: keep what was given, masked
            message = str(record.msg)
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts can quote input (a validation error with the value): keep the type, mask the text.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def install_access_log_filter() -> None:
    """Put the access filter on uvicorn's access logger once (a logger filter sees every record logged to it,
    whatever handlers a deployment configures)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLogFilter) for f in logger.filters):
        logger.addFilter(AccessLogFilter())


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's default console logging plus the workbench's loggers, every handler behind the redacting filter."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "access": {"()": AccessLogFilter},
            "redact": {"()": RedactingFilter},
        },
        "formatters": {
            "default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"},
            "access": {
                "()": "uvicorn.logging.AccessFormatter",
                "fmt": '%(levelprefix)s %(client_addr)s - "%(request_line)s" %(status_code)s',
            },
            "app": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        },
        "handlers": {
            "default": {
                "formatter": "default",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
            "access": {
                "formatter": "access",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "filters": ["redact"],
            },
            "app": {
                "formatter": "app",
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["redact"],
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
            ACCESS_LOGGER: {"handlers": ["access"], "level": level, "propagate": False, "filters": ["access"]},
            "zhujian": {"handlers": ["app"], "level": level, "propagate": False},
        },
    }
