"""ExecuteDataCorrect's ActionDetail read at the edge (``ExecuteActionDetail``) onto the
execution's typed plan, and a chunked statement's fields in the SQL-job reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from opendms.actions.data_correct import ExecuteActionDetail, chunk_fields
from opendms.errors import DmsError, ErrorCode
from opendms.execution import service as execution
from opendms.execution.chunked import Progress
from opendms.store.models import utcnow

CHUNK_KEYS = {
    "ChunkState",
    "ChunkStateReason",
    "ChunkCount",
    "ChunkSize",
    "CurrentKey",
    "EstimateAffectRows",
    "RowsPerSecond",
    "EtaSeconds",
    "P99ChunkMs",
    "MaxChunkMs",
}


def wire(delta: timedelta) -> str:
    return f"{utcnow() + delta:%Y-%m-%d %H:%M:%S}"


def plan_of(detail: dict[str, Any] | None) -> execution.ExecutionPlan:
    return ExecuteActionDetail.read(detail).plan()


@pytest.mark.parametrize(
    ("detail", "says"),
    [
        ({"startTime": "now", "rollback": True}, "unknown key rollback"),
        ({"startTime": "2026-01-31T23:00:00"}, "ActionDetail.startTime: '2026-01-31T23:00:00'"),
        ({"endTime": "tomorrow"}, "ActionDetail.endTime: 'tomorrow' is not a time"),
        (
            {"startTime": wire(timedelta(hours=2)), "endTime": wire(timedelta(hours=1))},
            "ActionDetail.endTime is not after startTime",
        ),
        ({"endTime": wire(timedelta(minutes=-1))}, "ActionDetail.endTime has already passed"),
        ({"transaction": "yes"}, "ActionDetail.transaction must be true or false"),
        ({"backupData": 1}, "ActionDetail.backupData must be true or false"),
        ({"transaction": None}, "ActionDetail.transaction must be true or false"),
    ],
)
def test_a_bad_action_detail_is_refused_by_its_key(detail: dict[str, Any], says: str) -> None:
    with pytest.raises(DmsError) as err:
        plan_of(detail)
    assert err.value.code == ErrorCode.INVALID_PARAMETER
    assert says in err.value.message


def test_an_unknown_key_is_told_with_the_keys_it_takes() -> None:
    with pytest.raises(DmsError) as err:
        plan_of({"rollback": True, "at": 1, "b": 2, "c": 3, "startTime": "soon"})
    assert err.value.message == (
        "ActionDetail: unknown key at, b, c; it takes startTime, endTime, transaction and "
        "backupData."
    )


def test_a_good_action_detail_is_read_onto_the_plan() -> None:
    later = wire(timedelta(hours=1))
    plan = plan_of({"startTime": "", "endTime": later, "transaction": "TRUE", "backupData": False})
    assert plan == execution.ExecutionPlan(start=None, end=later, transaction=True, backup=False)
    assert plan_of(None) == plan_of({}) == execution.ExecutionPlan()


def test_a_bad_time_is_told_before_a_bad_flag() -> None:
    with pytest.raises(DmsError) as err:
        plan_of({"endTime": "tomorrow", "backupData": 1})
    assert "ActionDetail.endTime: 'tomorrow'" in err.value.message


def test_the_plan_is_the_one_the_command_line_gets() -> None:
    later = wire(timedelta(hours=1))
    assert plan_of({"endTime": later, "backupData": "true"}) == execution.checked_plan(
        end=later, backup=True
    )


def test_a_chunked_statement_shows_state_position_rate_and_chunk_times() -> None:
    progress = Progress(
        rows=1000,
        estimate=5000,
        chunks=4,
        after=[1000, "x"],
        size=250,
        busy_ms=3000,
        histogram={"0": 3, "4": 1},
        max_chunk_ms=47,
        state="THROTTLED",
        why="busy",
    )
    assert chunk_fields(progress) == {
        "ChunkState": "THROTTLED",
        "ChunkStateReason": "busy",
        "ChunkCount": 4,
        "ChunkSize": 250,
        "CurrentKey": '[1000, "x"]',
        "EstimateAffectRows": 5000,
        "RowsPerSecond": 333.3,
        "EtaSeconds": 12,
        "P99ChunkMs": 47,
        "MaxChunkMs": 47,
    }


def test_a_chunked_statement_not_started() -> None:
    shown = chunk_fields(Progress())
    assert set(shown) == CHUNK_KEYS
    assert shown["CurrentKey"] == ""
    assert (shown["EstimateAffectRows"], shown["EtaSeconds"]) == (None, None)
    assert (shown["RowsPerSecond"], shown["P99ChunkMs"], shown["ChunkState"]) == (0.0, 0, "WAITING")
