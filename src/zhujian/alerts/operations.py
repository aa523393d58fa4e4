"""Operations view (运营): per local day of the center and per user, how many reports were drafted, signed and
reviewed, the turnaround from exam to signature, how many alerts were notified in time, how many follow-up tasks
were completed, and, when a QC table exists (`qc_issues` with a `report_id` column), the share of signed reports
with QC issues. Read-only; computed from the stored rows on every request.

Attribution: drafts belong to nobody (the engine); signatures to the signer, reviews to the reviewer; an alert to
the user who notified it (alerts nobody notified count on a row without a user); a follow-up task due that day to
the user who closed it (tasks closed by a later visit or still open: a row without a user).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import statistics
from collections.abc import Iterable

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from zhujian.alerts.clock import now_of, policy_of
from zhujian.storage.models import Alert, Base, FollowUpTask, Report, ReportVersion, User, Visit
from zhujian.storage.permissions import authorize
from zhujian.storage.values import Actor

QC_TABLE = "qc_issues"
NOBODY = "—"


@dataclasses.dataclass(slots=True)
class OperationsRow:
    day: dt.date
    user: str
    drafted: int = 0
    signed: int = 0
    reviewed: int = 0
    turnaround_hours: list[float] = dataclasses.field(default_factory=list)
    alerts: int = 0
    alerts_in_time: int = 0
    followup_due: int = 0
    followup_done: int = 0
    qc_reports_with_issues: int | None = None

    @property
    def median_turnaround_hours(self) -> float | None:
        return round(statistics.median(self.turnaround_hours), 1) if self.turnaround_hours else None

    @property
    def alerts_in_time_rate(self) -> float | None:
        return round(self.alerts_in_time / self.alerts, 3) if self.alerts else None

    @property
    def followup_completion(self) -> float | None:
        return round(self.followup_done / self.followup_due, 3) if self.followup_due else None

    @property
    def qc_issue_rate(self) -> float | None:
        if self.qc_reports_with_issues is None or not self.signed:
            return None
        return round(self.qc_reports_with_issues / self.signed, 3)


@dataclasses.dataclass(frozen=True, slots=True)
class OperationsView:
    date_from: dt.date
    date_to: dt.date
    rows: list[OperationsRow]
    has_qc: bool


def _qc_table() -> Table | None:
    table = Base.metadata.tables.get(QC_TABLE)
    return table if table is not None and "report_id" in table.c else None


def operations(
    session: Session,
    *,
    actor: Actor,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    qc_table: Table | None = None,
) -> OperationsView:
    """The counts for the local days `date_from`..`date_to` (inclusive; default: the last 30 days). `qc_table`
    (default: the `qc_issues` table of the schema, when there is one) feeds the QC issue rate."""
    authorize(session, actor, "read_operations")
    policy = policy_of(session)
    zone = policy.timezone
    today = policy.local_date(now_of(session))
    date_to = date_to or today
    date_from = date_from or date_to - dt.timedelta(days=29)
    if date_from > date_to:
        raise ValueError(f"date_from {date_from} is after date_to {date_to}")
    # UTC bounds of the local days, one day of margin each side; rows are then bucketed by their local day.
    start = dt.datetime.combine(date_from - dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(date_to + dt.timedelta(days=2), dt.time(), tzinfo=dt.UTC)
    names = {uid: name for uid, name in session.execute(select(User.id, User.display_name))}
    rows: dict[tuple[dt.date, str], OperationsRow] = {}

    def row(day: dt.date, user_id: int | None) -> OperationsRow | None:
        if not date_from <= day <= date_to:
            return None
        user = names.get(user_id, NOBODY) if user_id else NOBODY
        return rows.setdefault((day, user), OperationsRow(day, user))

    for (created_at,) in session.execute(
        select(Report.created_at).where(Report.created_at >= start, Report.created_at < end)
    ):
        if (r := row(created_at.astimezone(zone).date(), None)) is not None:
            r.drafted += 1

    qc = qc_table if qc_table is not None else _qc_table()
    flagged: set[int] = set()
    if qc is not None:
        flagged = set(session.scalars(select(qc.c.report_id).distinct()))
    versions = session.execute(
        select(
            ReportVersion.report_id,
            ReportVersion.change,
            ReportVersion.actor_id,
            ReportVersion.created_at,
            Visit.exam_date,
        )
        .join(Report, ReportVersion.report_id == Report.id)
        .join(Visit, Report.visit_pk == Visit.id)
        .where(
            ReportVersion.change.in_(["sign", "review_approve", "review_reject"]),
            ReportVersion.created_at >= start,
            ReportVersion.created_at < end,
        )
    )
    for report_id, change, actor_id, created_at, exam_date in versions:
        r = row(created_at.astimezone(zone).date(), actor_id)
        if r is None:
            continue
        if change == "sign":
            r.signed += 1
            if exam_date is not None:
                # The exam day starts at local midnight: the turnaround counts from then to the signature.
                exam_start = dt.datetime.combine(exam_date, dt.time(), tzinfo=zone)
                r.turnaround_hours.append((created_at - exam_start).total_seconds() / 3600)
            if qc is not None:
                r.qc_reports_with_issues = (r.qc_reports_with_issues or 0) + (report_id in flagged)
        else:
            r.reviewed += 1

    for created_at, due_at, notified_at, notified_by in session.execute(
        select(Alert.created_at, Alert.due_at, Alert.notified_at, Alert.notified_by_id).where(
            Alert.created_at >= start, Alert.created_at < end
        )
    ):
        if (r := row(created_at.astimezone(zone).date(), notified_by)) is not None:
            r.alerts += 1
            r.alerts_in_time += notified_at is not None and notified_at <= due_at

    for due_date, status, closed_by in session.execute(
        select(FollowUpTask.due_date, FollowUpTask.status, FollowUpTask.closed_by_id).where(
            FollowUpTask.due_date >= date_from, FollowUpTask.due_date <= date_to
        )
    ):
        if (r := row(due_date, closed_by)) is not None:
            r.followup_due += 1
            r.followup_done += status == "closed"

    # Newest day first; within a day the users in name order, the row without a user last.
    ordered = sorted(rows.values(), key=lambda r: (-r.day.toordinal(), r.user == NOBODY, r.user))
    return OperationsView(date_from=date_from, date_to=date_to, rows=ordered, has_qc=qc is not None)


CSV_COLUMNS = (
    ("day", "日期"),
    ("user", "人员"),
    ("drafted", "生成草稿"),
    ("signed", "签署"),
    ("reviewed", "审核"),
    ("median_turnaround_hours", "体检至签署中位时长(小时)"),
    ("alerts", "重要异常提醒"),
    ("alerts_in_time", "按时通知"),
    ("alerts_in_time_rate", "按时通知率"),
    ("followup_due", "到期随访"),
    ("followup_done", "已完成随访"),
    ("followup_completion", "随访完成率"),
)
QC_COLUMN = ("qc_issue_rate", "质控问题率")


def columns(has_qc: bool) -> tuple[tuple[str, str], ...]:
    return (*CSV_COLUMNS, QC_COLUMN) if has_qc else CSV_COLUMNS


def to_csv(view: OperationsView) -> str:
    """CSV with a header row of machine names (the page shows the Chinese labels); empty cells for no data."""
    chosen = columns(view.has_qc)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([name for name, _ in chosen])
    for r in view.rows:
        writer.writerow(_cells(r, (name for name, _ in chosen)))
    return buffer.getvalue()


def as_dict(r: OperationsRow, has_qc: bool) -> dict[str, object]:
    values = {name: getattr(r, name) for name, _ in columns(has_qc)}
    values["day"] = r.day.isoformat()
    return values


def _cells(r: OperationsRow, names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        value = getattr(r, name)
        out.append("" if value is None else value.isoformat() if isinstance(value, dt.date) else str(value))
    return out
