"""Helpers of the alert-loop tests."""

from __future__ import annotations

import datetime as dt


class MovableClock:
    """A clock the test sets and moves; always aware UTC."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = self.now + dt.timedelta(**delta)
