"""ExecuteDataExport's ActionDetail read at the edge (``ExportActionDetail``) onto the
export's typed plan."""

from __future__ import annotations

from typing import Any

import pytest

from opendms.actions.exports import ExportActionDetail
from opendms.errors import DmsError, ErrorCode
from opendms.exports import service as exports


def plan_of(detail: dict[str, Any] | None) -> exports.ExportPlan:
    return ExportActionDetail.read(detail).plan()


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        (
            {"fileType": "PDF"},
            "ActionDetail.fileType: 'PDF' is not one of CSV, XLSX, SQL, JSON, TXT.",
        ),
        ({"encoding": "EBCDIC"}, "ActionDetail.encoding: 'EBCDIC' is not one of"),
        ({"mode": "SLOW"}, "ActionDetail.mode: 'SLOW' is not one of FAST, NORMAL."),
        ({"startTime": "tomorrow"}, "ActionDetail.startTime: 'tomorrow' is not a time"),
        (
            {"format": "CSV"},
            "ActionDetail: unknown key format; it takes encoding, fileType, mode, startTime, "
            "transaction.",
        ),
        ({"transaction": 1}, "ActionDetail.transaction must be a boolean."),
        ({"fileType": 5}, "ActionDetail.fileType: '5' is not one of"),
    ],
)
def test_a_bad_action_detail_is_refused_by_name(detail: dict[str, Any], message: str) -> None:
    with pytest.raises(DmsError) as refused:
        plan_of(detail)
    assert refused.value.code == ErrorCode.INVALID_PARAMETER
    assert refused.value.message.startswith(message)


def test_the_transaction_flag_is_told_first_and_then_the_start() -> None:
    with pytest.raises(DmsError) as refused:
        plan_of({"fileType": "PDF", "transaction": None})
    assert refused.value.message == "ActionDetail.transaction must be a boolean."
    with pytest.raises(DmsError) as refused:
        plan_of({"fileType": "PDF", "startTime": "soon"})
    assert refused.value.message.startswith("ActionDetail.startTime: 'soon'")


def test_lower_case_values_are_read_as_their_names() -> None:
    plan = plan_of({"fileType": "csv", "encoding": "iso-8859-1", "mode": "normal"})
    assert (plan.file_type, plan.encoding, plan.mode) == ("CSV", "ISO_8859_1", "NORMAL")


def test_empty_values_and_no_detail_are_the_defaults() -> None:
    assert plan_of(None) == plan_of({}) == exports.checked_plan() == exports.ExportPlan()
    assert plan_of({"fileType": "", "startTime": "", "transaction": "yes"}) == exports.ExportPlan()
