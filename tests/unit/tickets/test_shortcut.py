"""A ticket's Param from typed values (tickets.shortcut, each kind's ``sql_param`` and
``with_reclaim_cadence``): what the command line's ``order create --db --sql`` and
``--optimize-every`` file."""

from __future__ import annotations

import pytest

from opendms.errors import DmsError
from opendms.kinds.chunked import FreeLockCorrect
from opendms.kinds.cron_clear import CronClear
from opendms.kinds.data_correct import DataCorrect
from opendms.kinds.data_export import DataExport
from opendms.tickets import shortcut
from opendms.tickets.registry import all_kinds, kind_of
from opendms.tickets.service import parse_params

ASK = shortcut.SqlTicket(db_id=3, sql="UPDATE t SET a = 1 WHERE id = 2", rows=4)
CLEANUP = {
    "DbItemList": [{"DbId": 3}],
    "CronClearItemList": [{"TableName": "t", "ColumnName": "at", "RemainDays": 30}],
    "CronFormat": "0 0 3 * * ?",
    "specifyDuration": False,
}


def _parsed(plugin_type: str, param: object) -> object:
    return parse_params(kind_of(plugin_type), param, label="Param", camel_case=False)


def test_a_data_change_states_its_rows_and_a_lock_free_one_does_not() -> None:
    common = _parsed("DC_COMMON", shortcut.sql_param("DC_COMMON", ASK))
    assert isinstance(common, DataCorrect)
    assert ([i.db_id for i in common.db_item_list], common.exec_sql) == ([3], ASK.sql)
    assert (common.sql_type, common.estimate_affect_rows) == ("TEXT", 4)
    chunk = _parsed("DC_CHUNK", shortcut.sql_param("DC_CHUNK", ASK))
    assert isinstance(chunk, FreeLockCorrect) and chunk.exec_sql == ASK.sql
    assert "EstimateAffectRows" not in shortcut.sql_param("DC_CHUNK", ASK)


def test_an_export_names_its_database_query_and_rows() -> None:
    export = _parsed("DATA_EXPORT", shortcut.sql_param("DATA_EXPORT", ASK))
    assert isinstance(export, DataExport)
    assert (export.db_id, export.exe_sql, export.affect_rows) == (3, ASK.sql, 4)
    assert (export.classify, export.ignore_affect_rows) == ("cli", False)


def test_a_type_no_kind_has_is_refused_by_create_orders_own_check() -> None:
    param = shortcut.sql_param("DC_PROC", ASK)
    assert param == {"DbItemList": [{"DbId": 3}], "SqlType": "TEXT", "ExecSQL": ASK.sql}
    with pytest.raises(DmsError, match="PluginType 'DC_PROC' cannot be created here"):
        _parsed("DC_PROC", param)


def test_only_a_cleanup_takes_a_reclaim_cadence() -> None:
    every = shortcut.with_reclaim_cadence("DC_CRON_CLEAR", CLEANUP, 3)
    assert every is not None and "OptimizeTableAfterEveryClearTimes" not in CLEANUP
    cleanup = _parsed("DC_CRON_CLEAR", every)
    assert isinstance(cleanup, CronClear)
    assert cleanup.optimize_table_after_every_clear_times == 3
    assert (
        shortcut.with_reclaim_cadence("DC_COMMON", shortcut.sql_param("DC_COMMON", ASK), 3) is None
    )
    assert shortcut.with_reclaim_cadence("DC_CRON_CLEAR", [CLEANUP], 3) is None
    assert shortcut.with_reclaim_cadence("DC_PROC", CLEANUP, 3) is None
    taking = [k.plugin_type for k in all_kinds() if k.with_reclaim_cadence({}, 1) is not None]
    assert taking == ["DC_CRON_CLEAR"]


@pytest.mark.parametrize("plugin_type", ["DC_COMMON", "DATA_EXPORT"])
def test_a_negative_row_count_is_refused_by_the_types_own_check(plugin_type: str) -> None:
    bad = shortcut.SqlTicket(db_id=3, sql="SELECT 1", rows=-1)
    with pytest.raises(DmsError, match="greater than or equal to 0"):
        _parsed(plugin_type, shortcut.sql_param(plugin_type, bad))
