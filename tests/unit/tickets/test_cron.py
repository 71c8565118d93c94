from __future__ import annotations

from datetime import datetime

import pytest

from opendms.tickets.cron import CronError, next_run, validate


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 0 2 * * ?", datetime(2026, 1, 1), datetime(2026, 1, 1, 2)),
        ("0 */15 * * * *", datetime(2026, 1, 1, 0, 1), datetime(2026, 1, 1, 0, 15)),
        # Quartz counts weekdays from Sunday = 1: "2" is Monday
        ("0 0 2 ? * 2", datetime(2026, 1, 1), datetime(2026, 1, 5, 2)),
        ("0 0 2 ? * 1", datetime(2026, 1, 1), datetime(2026, 1, 4, 2)),
        ("0 0 2 ? * MON-FRI", datetime(2026, 1, 3), datetime(2026, 1, 5, 2)),
        ("0 0 2 ? * 2-6", datetime(2026, 1, 3), datetime(2026, 1, 5, 2)),
        ("0 0 2 L * ?", datetime(2026, 2, 1), datetime(2026, 2, 28, 2)),
        ("0 0 2 ? * 6#3", datetime(2026, 1, 1), datetime(2026, 1, 16, 2)),
    ],
)
def test_next_run(expression: str, after: datetime, expected: datetime) -> None:
    assert next_run(expression, after) == expected


@pytest.mark.parametrize(
    "bad", ["", "0 0 2 * *", "0 0 2 * * ? 2026", "61 0 2 * * ?", "0 0 2 ? * 8", "x y z a b c"]
)
def test_bad_expressions(bad: str) -> None:
    with pytest.raises(CronError):
        validate(bad)
