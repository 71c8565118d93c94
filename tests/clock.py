"""Clocks for schedulers under test: the real time moved forward by hand (``Clock``), and a
stopped time moved only by hand (``HandClock``)."""

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


class HandClock:
    """A stopped clock ``ahead`` of the real time when made, moved only by ``advance``. Being
    ahead, it finds due what a test queues "now" by the real clock, however slowly the test
    gets there."""

    def __init__(self, ahead: timedelta) -> None:
        self.now = utcnow() + ahead

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
