"""GetMetaTableDetailInfo and GetMetaTableColumn through the signed API: the GUID ListTables
hands out, and the payloads in the SDK's shapes (actions/catalog/meta.py)."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest

from opendms.catalog import sensitive
from opendms.identity import service
from tests.conftest import Api
from tests.signer import Signer

SCHEMA = """
CREATE TABLE "line,items" (
    order_id INTEGER NOT NULL,
    line INTEGER NOT NULL,
    sku TEXT NOT NULL,
    "note,text" TEXT,
    PRIMARY KEY (order_id, line)
);
CREATE UNIQUE INDEX uq_sku_order ON "line,items" (sku, order_id);
CREATE INDEX ix_note ON "line,items" ("note,text", line);
"""


@pytest.fixture
def guid(api: Api) -> tuple[Api, str, int]:
    """A SQLite target with one table whose name and a column hold commas; its GUID."""
    api.sqlite_targets.mkdir(parents=True, exist_ok=True)
    path = api.sqlite_targets / "meta.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(SCHEMA)
    admin_id = _ok(api, "GetUser", Uid=api.admin_uid)["User"]["UserId"]
    _ok(
        api,
        "RegisterInstance",
        Host=str(path),
        Port=0,
        InstanceType="sqlite",
        InstanceAlias="meta",
        InstanceSource="PUBLIC_OWN",
        NetworkType="VPC",
        EnvType="dev",
        SafeRule="default",
        QueryTimeout=60,
        ExportTimeout=600,
        DbaUid=admin_id,
    )
    instance_id = _ok(api, "GetInstance", Host=str(path), Port=0)["Instance"]["InstanceId"]
    (db,) = _ok(api, "ListDatabases", InstanceId=instance_id)["DatabaseList"]["Database"]
    tables = _ok(api, "ListTables", DatabaseId=db["DatabaseId"], SearchName="%", ReturnGuid=True)
    (table,) = tables["TableList"]["Table"]
    assert table["TableGuid"] == f"IDB_{db['DatabaseId']}.main.line,items"
    return api, table["TableGuid"], int(db["DatabaseId"])


def _ok(api: Api, action: str, **params: Any) -> dict[str, Any]:
    body = api.call(action, **params).json()
    assert body["Success"] is True, body
    return body  # type: ignore[no-any-return]


def test_detail_info_lists_columns_in_order_and_index_columns_in_key_order(guid) -> None:
    api, table_guid, _ = guid
    detail = _ok(api, "GetMetaTableDetailInfo", TableGuid=table_guid)["DetailInfo"]
    columns = detail["ColumnList"]
    assert [(c["ColumnName"], c["Position"], c["Nullable"]) for c in columns] == [
        ("order_id", "1", False),
        ("line", "2", False),
        ("sku", "3", False),
        ("note,text", "4", True),
    ]
    assert set(columns[0]) >= {"ColumnId", "ColumnType", "AutoIncrement", "Description"}
    assert isinstance(columns[0]["ColumnId"], str)
    indexes = {i["IndexName"]: i for i in detail["IndexList"]}
    shown = {n: (i["IndexType"], i["IndexColumns"], i["Unique"]) for n, i in indexes.items()}
    assert shown == {
        "PRIMARY": ("Primary", ["order_id", "line"], True),
        "uq_sku_order": ("Unique", ["sku", "order_id"], True),
        "ix_note": ("Normal", ["note,text", "line"], False),  # a comma stays inside its name
    }
    assert all(isinstance(i["IndexId"], str) for i in indexes.values())


def test_table_column_marks_the_key_and_sensitive_columns(guid) -> None:
    api, table_guid, db_id = guid
    with api.store.session() as s:
        sensitive.set_mask(s, api.tid, db_id, "LINE,ITEMS", "SKU", "FULL", None)
    columns = _ok(api, "GetMetaTableColumn", TableGuid=table_guid)["ColumnList"]
    assert [
        (c["ColumnName"], c["Position"], c["PrimaryKey"], c["SecurityLevel"]) for c in columns
    ] == [
        ("order_id", 1, "true", "INNER"),
        ("line", 2, "true", "INNER"),
        ("sku", 3, "false", "SENSITIVE"),
        ("note,text", 4, "false", "INNER"),
    ]


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda g, db: "line,items", "InvalidParameter"),
        (lambda g, db: f"IDB_{db}.main.LINE,ITEMS", "TableNotFound"),
        (lambda g, db: f"IDB_{db}.other.line,items", "TableNotFound"),
        (lambda g, db: f"IDB_L_{db}.main.line,items", "InvalidParameter"),
    ],
)
def test_a_bad_guid_is_a_dms_error(guid, make, code: str) -> None:
    api, table_guid, db_id = guid
    for action in ("GetMetaTableDetailInfo", "GetMetaTableColumn"):
        body = api.call(action, TableGuid=make(table_guid, db_id)).json()
        assert (body["Success"], body["ErrorCode"]) == (False, code), body
    missing = api.call("GetMetaTableColumn").json()
    assert missing["Code"] == "MissingTableGuid"


def test_another_tenants_guid_is_not_found(guid) -> None:
    api, table_guid, _ = guid
    with api.store.session() as s:
        other = service.create_tenant(s, "other").tid
        user = service.register_user(s, None, other, service.new_uid(), roles="ADMIN")
        key, secret = service.create_access_key(s, api.box, user.uid, actor=None)
    body = api.call(
        "GetMetaTableDetailInfo", Signer(key.access_key_id, secret), TableGuid=table_guid
    ).json()
    assert (body["Success"], body["ErrorCode"]) == (False, "TableNotFound"), body
