"""What each kind declares: the names the wire shows for it, what its SQL may hold, and how
it runs once approved (the tables these replaced, pinned)."""

from __future__ import annotations

import pytest

from opendms.execution.cleanup import CleanupOptions
from opendms.imports.options import ImportOptions, import_options
from opendms.kinds.cron_clear import CronClear
from opendms.kinds.data_correct import DataCorrect
from opendms.kinds.data_import import DataImport
from opendms.tickets.kind import Execution
from opendms.tickets.params import DML, QUERIES
from opendms.tickets.registry import kind_of

WIRE = {  # PluginType: (DetailType, OrderType)
    "DC_COMMON": ("COMMON", "DATA_CORRECT"),
    "DC_CHUNK": ("CHUNK_DML", "DATA_CORRECT"),
    "DC_CRON_CLEAR": ("CRON_CLEAR_DATA", "DATA_CORRECT"),
    "DC_BIG_FILE": ("BIG_FILE", "DATA_CORRECT"),
    "DATA_EXPORT": (None, "DATA_EXPORT"),
    "NDDL": (None, "NDDL"),
    "TABLE_SYNC": (None, "TABLE_SYNC"),
}
DDL = frozenset({"CREATE", "ALTER", "DROP", "RENAME", "COMMENT"})


@pytest.mark.parametrize("plugin_type", WIRE)
def test_the_names_the_wire_shows(plugin_type: str) -> None:
    kind = kind_of(plugin_type)
    assert (kind.detail_type, kind.order_type) == WIRE[plugin_type]


@pytest.mark.parametrize(
    ("plugin_type", "execution"),
    [
        ("DC_COMMON", Execution("DATA_CORRECT", "statements", backup=True)),
        ("DC_CHUNK", Execution("FREE_LOCK_DML", "chunks", backup=True)),
        ("DC_CRON_CLEAR", Execution("CRON_CLEAR_DATA", "chunks", scheduled=True)),
        ("DC_BIG_FILE", Execution("BIG_FILE", "file")),
        ("DATA_EXPORT", None),
        ("NDDL", Execution("SCHEMA_DESIGN", "ddl", staged=True)),
        ("TABLE_SYNC", Execution("STRUCT_SYNC", "ddl")),
    ],
)
def test_how_an_approved_ticket_runs(plugin_type: str, execution: Execution | None) -> None:
    assert kind_of(plugin_type).execution == execution


@pytest.mark.parametrize(
    ("plugin_type", "statement_kinds", "permission", "verb", "has_precheck"),
    [
        ("DC_COMMON", DML, "CORRECT", "change", True),
        ("DC_CHUNK", DML, "CORRECT", "change", True),
        ("DC_CRON_CLEAR", frozenset({"DELETE"}), "CORRECT", "change", True),
        ("DC_BIG_FILE", DML, "CORRECT", "change", True),
        ("DATA_EXPORT", QUERIES, "EXPORT", "export", True),
        ("NDDL", DDL, "CORRECT", "change", False),
        ("TABLE_SYNC", DDL, "CORRECT", "change", True),
    ],
)
def test_what_its_sql_may_hold_and_who_may_file_it(
    plugin_type: str,
    statement_kinds: frozenset[str],
    permission: str,
    verb: str,
    has_precheck: bool,
) -> None:
    kind = kind_of(plugin_type)
    assert (kind.statement_kinds, kind.permission, kind.verb, kind.has_precheck) == (
        statement_kinds,
        permission,
        verb,
        has_precheck,
    )


IMPORT = {"DbItemList": [{"DbId": 1}], "AttachmentName": "k", "FileType": "xlsx", "TableName": "t"}
CLEANUP = {
    "DbItemList": [{"DbId": 1}],
    "CronClearItemList": [{"TableName": "t", "ColumnName": "c", "RemainDays": 7}],
    "CronFormat": "0 0 2 * * ?",
    "specifyDuration": False,
}
CHANGE = {"DbItemList": [{"DbId": 1}], "EstimateAffectRows": 1, "SqlType": "TEXT", "ExecSQL": "x"}


def test_parameters_have_the_shape_the_services_read() -> None:
    imported = DataImport.model_validate(IMPORT)
    assert isinstance(imported, ImportOptions) and not isinstance(imported, CleanupOptions)
    assert import_options(imported).file_type == "EXCEL"
    cleared = CronClear.model_validate(CLEANUP)
    assert isinstance(cleared, CleanupOptions) and not isinstance(cleared, ImportOptions)
    change = DataCorrect.model_validate(CHANGE)
    assert not isinstance(change, ImportOptions | CleanupOptions)
    with pytest.raises(TypeError):
        import_options(change)


def test_a_structure_sync_that_would_skip_failing_statements_is_refused() -> None:
    from opendms.kinds.struct_sync import StructSync

    given = {"Source": {"DbId": 1}, "Target": {"DbId": 2}}
    assert StructSync.model_validate(given).ignore_error is False
    with pytest.raises(ValueError, match="IgnoreError"):
        StructSync.model_validate({**given, "IgnoreError": True})
    with pytest.raises(ValueError, match="same database"):
        StructSync.model_validate({**given, "Target": {"DbId": 1}})
