"""A clock for schedulers under test."""

from __future__ import annotations

from datetime import datetime, timedelta

from opendms.store.models import utcnow


class Clock:
    """The real time, moved forward by hand: jobs queued at the real time stay due."""

    def __init__(self) -> None:
        self.ahead = timedelta(0)

    def __call__(self) -> datetime:
        return utcnow() + self.ahead

    @property
    def now(self) -> datetime:
        return self()

    @now.setter
    def now(self, at: datetime) -> None:
        self.ahead = max(timedelta(0), at - utcnow())
