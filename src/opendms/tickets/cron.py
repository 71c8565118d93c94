"""DMS crontab expressions (dms-api.md B.9): six Quartz-style fields, seconds first, with
day-of-week 1-7 meaning Sunday-Saturday. Evaluated by croniter after renumbering the
day-of-week field to cron's 0-6."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from croniter import croniter
from croniter.croniter import CroniterError

_DOW_NUMBER = re.compile(r"(?<![#/0-9])([0-9]+)")


class CronError(ValueError):
    pass


def _renumber_day_of_week(field: str) -> str:
    def shift(m: re.Match[str]) -> str:
        n = int(m.group(1))
        if not 1 <= n <= 7:
            raise CronError(f"day-of-week {n} is out of 1-7 (1 = Sunday)")
        return str(n - 1)

    return _DOW_NUMBER.sub(shift, field)


def to_croniter(expression: str) -> str:
    fields = expression.split()
    if len(fields) != 6:
        raise CronError(
            f"a DMS cron expression has 6 fields (second minute hour day month weekday), "
            f"got {len(fields)}"
        )
    fields[5] = _renumber_day_of_week(fields[5])
    return " ".join(fields)


def next_run(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that ``expression`` fires."""
    try:
        it = croniter(to_croniter(expression), after, second_at_beginning=True)
        result = it.get_next(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise CronError(str(exc) or type(exc).__name__) from exc
    assert isinstance(result, datetime)
    return result


def previous_run(expression: str, at: datetime) -> datetime:
    """The last time at or before ``at`` (to the second) that ``expression`` fired."""
    try:
        start = at.replace(microsecond=0) + timedelta(seconds=1)
        it = croniter(to_croniter(expression), start, second_at_beginning=True)
        result = it.get_prev(datetime)
    except (CroniterError, ValueError, KeyError) as exc:
        raise CronError(str(exc) or type(exc).__name__) from exc
    assert isinstance(result, datetime)
    return result


def validate(expression: str) -> str:
    """``expression`` if it is a valid DMS cron expression; raises CronError otherwise."""
    next_run(expression, datetime(2000, 1, 1))
    return expression
