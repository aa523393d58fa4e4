"""The clock and the center policy of a database session.

Every time the alert loop reads ("is this alert overdue?") or writes ("notified at") comes from `clock_of(session)`,
never from the system clock directly, so tests and tools can move time. The web app puts its clock and policy into
the `info` of every session it makes (`configure_sessions`); a session without them uses the system clock and the
KB defaults.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from zhujian.alerts.policy import AlertPolicy, default_policy

Clock = Callable[[], dt.datetime]
CLOCK_KEY = "zhujian.clock"
POLICY_KEY = "zhujian.alert_policy"


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def clock_of(session: Session) -> Clock:
    clock = session.info.get(CLOCK_KEY)
    return clock if callable(clock) else system_clock


def now_of(session: Session) -> dt.datetime:
    moment = clock_of(session)()
    if moment.tzinfo is None:
        raise ValueError("the clock returned a naive datetime; it must return an aware (UTC) datetime")
    return moment


def policy_of(session: Session) -> AlertPolicy:
    policy = session.info.get(POLICY_KEY)
    return policy if isinstance(policy, AlertPolicy) else default_policy()


def configure_sessions(factory: sessionmaker[Session], *, clock: Clock, policy: AlertPolicy) -> None:
    """Give every session `factory` makes from now on this clock and policy (kept in `Session.info`)."""
    info = dict(factory.kw.get("info") or {})
    info.update({CLOCK_KEY: clock, POLICY_KEY: policy})
    factory.configure(info=info)
