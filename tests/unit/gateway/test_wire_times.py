"""Times reach the edge as datetimes and leave it as the API writes them
(``gateway.wire.wire_times``): a cleanup's schedule, as GetDataCronClearConfig and
GetDataCorrectOrderDetail show it."""

from __future__ import annotations

from datetime import datetime

from opendms.execution.cleanup import Config, CronStatus
from opendms.gateway.wire import wire_time, wire_times
from opendms.kinds.cron_clear import config_fields

AT = datetime(2026, 1, 31, 23, 0, 5)


def test_each_datetime_is_written_and_nothing_else_changes() -> None:
    fields = {"A": AT, "B": None, "C": 3, "D": "2026-01-31", "E": [AT]}
    assert wire_times(fields) == {
        "A": "2026-01-31 23:00:05",
        "B": None,
        "C": 3,
        "D": "2026-01-31",
        "E": [AT],  # only the fields themselves
    }


def test_a_schedule_shows_its_times_as_the_api_writes_them() -> None:
    found = Config("0 0 3 * * ?", CronStatus.WAITING, 2, None, AT, 0, 0, 0)
    shown = wire_times(config_fields(found))
    assert shown["CronNextCallTime"] == wire_time(AT) == "2026-01-31 23:00:05"
    assert shown["CronLastCallStartTime"] is None
    assert (shown["CronFormat"], shown["CronStatus"]) == ("0 0 3 * * ?", "WAITING")
