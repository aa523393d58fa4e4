"""How the workbench pages show times and queues: every time in the center's time zone (ZHUJIAN_CENTER_TIMEZONE,
the zone the PDF and the alert deadlines use) through one Jinja filter, `localtime`, and each role's own worklist
queue (the reports waiting for that role's next step), as data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final, cast
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.templating import Jinja2Templates

from zhujian.storage.values import ReportStatus, Role

MINUTES = "%Y-%m-%d %H:%M"
SECONDS = "%Y-%m-%d %H:%M:%S"


def local_time(moment: dt.datetime | None, zone: ZoneInfo, fmt: str = MINUTES) -> str:
    """`moment` in `zone`, or "—" when there is none. Stored times are UTC; a naive value is taken as UTC (never as
    the server's own zone)."""
    if moment is None:
        return "—"
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(zone).strftime(fmt)


def install_display(app: FastAPI, zone: ZoneInfo) -> None:
    """Keep the center's zone (`app.state.center_timezone`, for local dates computed in Python) and register, in
    the app's templates, the `localtime` filter (`{{ moment|localtime }}`, `{{ moment|localtime(seconds=true) }}`)
    and the zone's name (`timezone_name`)."""

    def localtime(moment: dt.datetime | None, seconds: bool = False) -> str:
        return local_time(moment, zone, SECONDS if seconds else MINUTES)

    app.state.center_timezone = zone
    templates: Jinja2Templates = app.state.templates
    templates.env.filters["localtime"] = localtime
    templates.env.globals["timezone_name"] = zone.key


def center_timezone(request: Request) -> ZoneInfo:
    zone: ZoneInfo = request.app.state.center_timezone
    return zone


@dataclass(frozen=True, slots=True)
class Queue:
    """A role's own worklist: the reports waiting for its next step."""

    key: str  # the worklist's `status` parameter that selects it
    label: str
    statuses: tuple[ReportStatus, ...]


ALL_REPORTS = "all"  # the worklist's `status` value for every report

# Who acts next on a report of each status (see zhujian.storage.permissions): the chief physician edits and signs
# drafts, edited and sent-back reports; the reviewing physician reviews signed ones; the health manager publishes
# reviewed ones. The auditor has no step of their own and sees every report.
ROLE_QUEUES: Final[dict[Role, Queue]] = {
    "chief_physician": Queue("mine", "待主检", ("draft", "edited", "rejected")),
    "reviewing_physician": Queue("mine", "待审核", ("signed",)),
    "health_manager": Queue("mine", "待发布", ("reviewed",)),
}


def queue_of(role: str) -> Queue | None:
    """The role's own queue, or None for a role that opens on every report."""
    return ROLE_QUEUES.get(cast(Role, role))
