"""Tickets over real HTTP with the official SDKs (dms-api.md A.1.1-A.1.6, A.2.1, A.2.2, A.2.5,
B.1-B.6): filing every ticket type against a real MariaDB and a real PostgreSQL database through
``CreateOrder`` and the dedicated create calls, reading tickets back as each kind of reader,
listing, closing, and every refusal as the caller sees it.

One server and one set of tenants, users and registered instances serve the whole module.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.conftest import mysql_database, pg_database
from tests.e2e.conftest import (
    FLAVORS,
    REQUEST_ID,
    Creds,
    Dms,
    Flavor,
    Server,
    assert_failure,
    assert_http_error,
    base_info,
    new_tenants,
    new_users,
    refused,
    register_instance,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.usefixtures("server_still_healthy"),
]

WIRE_TIME = "%Y-%m-%d %H:%M:%S"
MB15 = 15 * 1024 * 1024  # dms-api.md A.1.2: ExecSQL up to 15 MB
NO_SUCH_DB = 987_654_321
NO_SUCH_ORDER = 987_654_321
NO_SUCH_USER = 987_654_321
TABLE_MARIADB = (
    "CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, status VARCHAR(16) NOT NULL, "
    "created_at DATETIME NOT NULL)"
)
TABLE_PG = (
    "CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, status VARCHAR(16) NOT NULL, "
    "created_at TIMESTAMP NOT NULL)"
)


# ------------------------------------------------------------------ the module's world


def insert_attachment(server: Server, owner: Creds, file_name: str, source: str) -> str:
    """An attachment of ``owner``'s, uploaded through OpenDMS's ``UploadFile`` (V3-signed
    body); returns its AttachmentKey."""
    content = f"-- {file_name}\n".encode()
    prepared = owner.signer(server).v3(
        "UploadFile", {"FileName": file_name, "FileSource": source}, raw_body=content
    )
    resp = server.send(prepared)
    assert resp.status_code == 200 and resp.json()["Success"], resp.text
    return str(resp.json()["AttachmentKey"])


@dataclass(frozen=True)
class Target:
    """A registered instance and the DbId of the test database on it."""

    engine: str
    instance_id: int
    db_id: int
    dba: Creds


@dataclass(frozen=True)
class World:
    server: Server
    tid: int
    admin: Creds  # registers the instances
    committer: Creds  # a regular user who files tickets
    related: Creds
    related2: Creds
    stranger: Creds  # same tenant, no link to any ticket
    clumsy: Creds  # files only tickets that are refused
    maria: Target
    pg: Target
    maria_name: str  # the MariaDB test database
    pg_name: str  # the PostgreSQL test database (its public schema is pg.db_id)
    foreign_admin: Creds  # another tenant
    foreign_user: Creds
    foreign_db: int
    sql_file: str  # attachment keys of this tenant
    csv_file: str
    info_file: str
    foreign_file: str  # an attachment of the other tenant

    def dms(self, who: Creds, flavor: Flavor) -> Dms:
        return Dms(self.server, who, flavor)

    def target(self, engine: str) -> Target:
        return self.maria if engine == "mariadb" else self.pg


def database_id(dms: Dms, instance_id: int, schema: str, catalog: str | None = None) -> int:
    """The DbId of ``schema`` (in PostgreSQL database ``catalog``) as ListDatabases reports it."""
    found = dms.call("ListDatabases", instance_id=str(instance_id), page_size=100)
    assert found.success, dms.last_raw
    (db,) = [
        d
        for d in found.database_list.database
        if d.schema_name == schema and catalog in (None, d.catalog_name)
    ]
    assert db.state == "NORMAL", db.to_map()
    return int(db.database_id)


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    tid, foreign_tid = new_tenants(server, "orders", "orders-elsewhere")
    (
        admin,
        maria_dba,
        pg_dba,
        committer,
        related,
        related2,
        stranger,
        clumsy,
        foreign_admin,
        foreign_user,
    ) = new_users(
        server,
        [
            ("ADMIN", tid, "Tenant Admin"),
            ("DBA", tid, "Maria DBA"),
            ("DBA", tid, "PG DBA"),
            ("USER", tid, "Committer Chen"),
            ("USER", tid, "Related Rui 瑞"),
            ("USER", tid, "Related Two"),
            ("USER", tid, "Stranger"),
            ("USER", tid, "Clumsy"),
            ("ADMIN", foreign_tid, "Foreign Admin"),
            ("USER", foreign_tid, "Foreign User"),
        ],
    )
    with ExitStack() as stack:
        maria_name, maria_conn = stack.enter_context(mysql_database())
        with maria_conn.cursor() as cur:
            cur.execute(TABLE_MARIADB)
        pg_name, pg_conn = stack.enter_context(pg_database())
        pg_conn.execute(TABLE_PG)

        dms = Dms(server, admin, "v3")
        maria_instance = register_instance(dms, maria_dba, engine="mariadb", port=3306, user="root")
        pg_instance = register_instance(
            dms, pg_dba, engine="postgresql", port=5432, user="postgres", sid=pg_name
        )
        maria = Target(
            "mariadb",
            maria_instance,
            database_id(dms, maria_instance, maria_name),
            maria_dba,
        )
        pg = Target(
            "postgresql", pg_instance, database_id(dms, pg_instance, "public", pg_name), pg_dba
        )

        other = Dms(server, foreign_admin, "v3")
        foreign_instance = register_instance(
            other, foreign_admin, engine="postgresql", port=5432, user="postgres", sid=pg_name
        )
        foreign_db = database_id(other, foreign_instance, "public", pg_name)
        assert foreign_db not in (maria.db_id, pg.db_id)

        yield World(
            server=server,
            tid=tid,
            admin=admin,
            committer=committer,
            related=related,
            related2=related2,
            stranger=stranger,
            clumsy=clumsy,
            maria=maria,
            pg=pg,
            maria_name=maria_name,
            pg_name=pg_name,
            foreign_admin=foreign_admin,
            foreign_user=foreign_user,
            foreign_db=foreign_db,
            sql_file=insert_attachment(server, committer, "fix.sql", "datacorrect"),
            csv_file=insert_attachment(server, committer, "orders.csv", "big-file"),
            info_file=insert_attachment(server, committer, "evidence.pdf", "order_info_attachment"),
            foreign_file=insert_attachment(server, foreign_user, "theirs.csv", "big-file"),
        )


# ------------------------------------------------------------------ ticket parameters


def dc_common(db_id: int, **_: Any) -> dict[str, Any]:
    return {
        "DbItemList": [{"DbId": db_id, "Logic": False}],
        "EstimateAffectRows": 1,
        "SqlType": "TEXT",
        "ExecSQL": "UPDATE orders SET status = 'paid' WHERE id = 1",
        "RollbackSqlType": "TEXT",
        "RollbackSQL": "UPDATE orders SET status = 'new' WHERE id = 1",
        "ExecMode": "COMMITOR",
        "Classify": "fix",
    }


def dc_chunk(db_id: int, **_: Any) -> dict[str, Any]:
    return {
        "DbItemList": [{"DbId": db_id, "Logic": False}],
        "SqlType": "TEXT",
        "ExecSQL": "DELETE FROM orders WHERE status = 'void'",
        "ExecMode": "AUTO",
    }


def dc_cron_clear(db_id: int, **_: Any) -> dict[str, Any]:
    return {
        "DbItemList": [{"DbId": db_id, "Logic": False}],
        "CronClearItemList": [
            {
                "TableName": "orders",
                "ColumnName": "created_at",
                "RemainDays": 30,
                "FilterSQL": "status = 'done'",
            }
        ],
        "CronFormat": "0 0 2 * * ?",
        "specifyDuration": True,
        "DurationHour": 2,
        "Classify": "housekeeping",
    }


def dc_big_file(db_id: int, attachment: str = "", **_: Any) -> dict[str, Any]:
    return {
        "DbItemList": [{"DbId": db_id, "Logic": False}],
        "AttachmentName": attachment,
        "FileType": "CSV",
        "TableName": "orders",
        "CsvFirstRowIsColumnDef": True,
        "InsertType": "INSERT_IGNORE",
        "FileEncoding": "UTF-8",
        "ImportMode": "SAFE_MODE",
        "IgnoreError": False,
    }


def data_export(db_id: int, instance_id: int | None = None, **_: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "DbId": db_id,
        "Logic": False,
        "ExeSQL": "SELECT id, status FROM orders",
        "Classify": "audit",
        "AffectRows": 10,
        "IgnoreAffectRows": False,
        "Watermark": {"WatermarkTypes": ["DATA"], "DataWatermark": "wm", "ColumnName": "status"},
    }
    if instance_id is not None:
        params["InstanceId"] = instance_id
    return params


def nddl(db_id: int, **_: Any) -> dict[str, Any]:
    return {
        "Title": "add a refunds table",
        "Description": "refunds(id, order_id, amount)",
        "DbId": db_id,
        "Logic": False,
    }


BUILDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "DC_COMMON": dc_common,
    "DC_CHUNK": dc_chunk,
    "DC_CRON_CLEAR": dc_cron_clear,
    "DC_BIG_FILE": dc_big_file,
    "DATA_EXPORT": data_export,
    "NDDL": nddl,
}
TYPES = tuple(BUILDERS)
# PluginType -> (dedicated action, its parameter model, the request field carrying it)
DEDICATED: dict[str, tuple[str, Any, str]] = {
    "DC_COMMON": (
        "CreateDataCorrectOrder",
        dms_models.CreateDataCorrectOrderRequestParam,
        "param",
    ),
    "DC_CHUNK": (
        "CreateFreeLockCorrectOrder",
        dms_models.CreateFreeLockCorrectOrderRequestParam,
        "param",
    ),
    "DC_CRON_CLEAR": (
        "CreateDataCronClearOrder",
        dms_models.CreateDataCronClearOrderRequestParam,
        "param",
    ),
    "DC_BIG_FILE": (
        "CreateDataImportOrder",
        dms_models.CreateDataImportOrderRequestParam,
        "param",
    ),
    "DATA_EXPORT": (
        "CreateDataExportOrder",
        dms_models.CreateDataExportOrderRequestPluginParam,
        "plugin_param",
    ),
}


def params_for(world: World, plugin_type: str, target: Target | None = None) -> dict[str, Any]:
    target = target or world.maria
    return BUILDERS[plugin_type](target.db_id, attachment=world.csv_file)


def camel(value: Any) -> Any:
    """PascalCase keys to CreateOrder's camelCase (``ExeSQL`` -> ``exeSQL``)."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def create_order(
    dms: Dms,
    plugin_type: str,
    params: dict[str, Any],
    *,
    comment: str = "filed by the e2e suite",
    related: list[int] | None = None,
    attachment_key: str | None = None,
    camel_case: bool = True,
) -> Any:
    """CreateOrder with camelCase PluginParam and a comma-separated RelatedUserList. The old
    SDK posts PluginParam verbatim, so its callers write the JSON text themselves."""
    plugin_param = camel(params) if camel_case else params
    kwargs: dict[str, Any] = {
        "plugin_type": plugin_type,
        "plugin_param": json.dumps(plugin_param) if dms.flavor == "old" else plugin_param,
        "comment": comment,
    }
    if related is not None:
        kwargs["related_user_list"] = ",".join(map(str, related))
    if attachment_key is not None:
        kwargs["attachment_key"] = attachment_key
    return dms.call("CreateOrder", **kwargs)


def create_dedicated(
    dms: Dms,
    plugin_type: str,
    params: dict[str, Any],
    *,
    comment: str = "filed by the e2e suite",
    related: list[int] | None = None,
    attachment_key: str | None = None,
    **extra: Any,
) -> Any:
    """The dedicated call with PascalCase Param (PluginParam for exports) and a JSON-array
    RelatedUserList, built from the SDK's own parameter model."""
    action, model, field = DEDICATED[plugin_type]
    kwargs: dict[str, Any] = {field: model().from_map(params), "comment": comment, **extra}
    if related is not None:
        kwargs["related_user_list"] = list(related)
    if attachment_key is not None:
        kwargs["attachment_key"] = attachment_key
    return dms.call(action, **kwargs)


def created_id(resp: Any, action: str) -> int:
    """The one new ticket id, read from the shape the SDK parses for ``action`` (A.1.0)."""
    assert resp.success is True, resp.to_map()
    assert REQUEST_ID.match(resp.request_id)
    if action == "CreateOrder":
        ids = resp.create_order_result.order_ids
    elif action == "CreateDataExportOrder":
        ids = resp.create_order_result.create_order_result
    else:
        ids = resp.create_order_result
    assert isinstance(ids, list) and len(ids) == 1, resp.to_map()
    assert isinstance(ids[0], int) and ids[0] > 0, resp.to_map()
    return ids[0]


def file_order(dms: Dms, plugin_type: str, params: dict[str, Any], **kw: Any) -> int:
    return created_id(create_order(dms, plugin_type, params, **kw), "CreateOrder")


def file_dedicated(dms: Dms, plugin_type: str, params: dict[str, Any], **kw: Any) -> int:
    resp = create_dedicated(dms, plugin_type, params, **kw)
    return created_id(resp, DEDICATED[plugin_type][0])


def wire_time(text: str) -> datetime:
    parsed = datetime.strptime(text, WIRE_TIME)
    assert f"{parsed:{WIRE_TIME}}" == text
    return parsed


def stamp(moment: datetime) -> str:
    return f"{moment:{WIRE_TIME}}"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def listed(dms: Dms, **params: Any) -> list[int]:
    resp = dms.call("ListOrders", page_size=100, **params)
    assert resp.success is True, resp.to_map()
    ids = [o.order_id for o in resp.orders.order]
    assert resp.total_count == len(ids), resp.to_map()
    return ids


def ticket_count(dms: Dms) -> int:
    resp = dms.call("ListOrders", order_result_type="AS_COMMITTER", order_status="ALL")
    assert resp.success is True, resp.to_map()
    return int(resp.total_count)


# ------------------------------------------------------------------ 1. every type, every call


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
@pytest.mark.parametrize("flavor", FLAVORS)
def test_every_ticket_type_through_create_order_and_the_dedicated_calls(
    world: World, flavor: Flavor, engine: str
) -> None:
    target = world.target(engine)
    dms = world.dms(world.admin, flavor)
    filed: list[tuple[int, str, str]] = []
    for plugin_type in TYPES:
        params = params_for(world, plugin_type, target)
        order_id = file_order(
            dms,
            plugin_type,
            params,
            comment=f"{plugin_type} via CreateOrder",
            related=[world.related.user_id, world.related2.user_id],
        )
        filed.append((order_id, plugin_type, "CreateOrder"))
        if plugin_type in DEDICATED:
            action = DEDICATED[plugin_type][0]
            order_id = file_dedicated(
                dms,
                plugin_type,
                params,
                comment=f"{plugin_type} via {action}",
                related=[world.related.user_id, world.related2.user_id],
            )
            filed.append((order_id, plugin_type, action))

    ids = [order_id for order_id, _, _ in filed]
    assert len(filed) == 11
    assert ids == sorted(set(ids)), ids
    for order_id, plugin_type, action in filed:
        info = base_info(dms, order_id)
        assert (info.order_id, info.plugin_type, info.status_code) == (order_id, plugin_type, "new")
        assert info.comment == f"{plugin_type} via {action}"
        assert info.committer_id == world.admin.user_id
        assert info.related_user_list.user_ids == [
            str(world.related.user_id),
            str(world.related2.user_id),
        ]
        # the instance's DBA sees every ticket on it
        assert base_info(world.dms(target.dba, "v3"), order_id).order_id == order_id


@pytest.mark.parametrize("flavor", FLAVORS)
def test_pascal_case_plugin_param_and_no_related_users(world: World, flavor: Flavor) -> None:
    """PluginParam keys already in PascalCase are kept; RelatedUserList may be left out."""
    dms = world.dms(world.committer, flavor)
    order_id = file_order(dms, "DC_COMMON", dc_common(world.maria.db_id), camel_case=False)
    info = base_info(dms, order_id)
    assert info.related_user_list.user_ids == []
    assert info.related_user_nick_list.user_nicks == []
    assert info.attachment_key is None and info.origin_attachment_name is None
    order_id = file_dedicated(dms, "DC_CHUNK", dc_chunk(world.pg.db_id))
    assert base_info(dms, order_id).related_user_list.user_ids == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_sql_and_rollback_from_attachments_and_an_export_with_a_parent(
    world: World, flavor: Flavor
) -> None:
    dms = world.dms(world.committer, flavor)
    params = {
        **dc_common(world.maria.db_id),
        "SqlType": "ATTACHMENT",
        "AttachmentName": world.sql_file,
        "RollbackSqlType": "ATTACHMENT",
        "RollbackAttachmentName": world.sql_file,
    }
    del params["ExecSQL"], params["RollbackSQL"]
    assert base_info(dms, file_dedicated(dms, "DC_COMMON", params)).plugin_type == "DC_COMMON"
    assert base_info(dms, file_order(dms, "DC_COMMON", params)).plugin_type == "DC_COMMON"

    parent = file_order(dms, "DATA_EXPORT", data_export(world.pg.db_id, world.pg.instance_id))
    child = file_dedicated(
        dms, "DATA_EXPORT", data_export(world.pg.db_id, world.pg.instance_id), parent_id=parent
    )
    assert child > parent
    assert base_info(dms, child).plugin_type == "DATA_EXPORT"


# ------------------------------------------------------------------ 2. GetOrderBaseInfo


@pytest.mark.parametrize("flavor", FLAVORS)
def test_get_order_base_info_for_everyone_who_may_see_the_ticket(
    world: World, flavor: Flavor
) -> None:
    before = utc_now().replace(microsecond=0)
    filer = world.dms(world.committer, flavor)
    order_id = file_dedicated(
        filer,
        "DC_COMMON",
        dc_common(world.maria.db_id),
        comment="fix the paid flag — 修正",
        related=[world.related.user_id, world.related2.user_id],
        attachment_key=world.info_file,
    )
    after = utc_now() + timedelta(seconds=1)
    readers = {
        "committer": world.committer,
        "related": world.related,
        "dba": world.maria.dba,
        "admin": world.admin,
    }
    for who, creds in readers.items():
        dms = world.dms(creds, flavor)
        info = base_info(dms, order_id)
        assert info.order_id == order_id, who
        assert info.plugin_type == "DC_COMMON"
        assert (info.status_code, info.status_desc) == ("new", "New")
        assert info.comment == "fix the paid flag — 修正"
        assert (info.committer, info.committer_id) == ("Committer Chen", world.committer.user_id)
        created, modified = wire_time(info.create_time), wire_time(info.last_modify_time)
        assert before <= created <= after, (info.create_time, before, after)
        assert modified == created
        assert info.related_user_list.user_ids == [
            str(world.related.user_id),
            str(world.related2.user_id),
        ]
        assert info.related_user_nick_list.user_nicks == ["Related Rui 瑞", "Related Two"]
        assert (info.attachment_key, info.origin_attachment_name) == (
            world.info_file,
            "evidence.pdf",
        )
        raw = dms.last_raw
        assert raw is not None
        wire = raw["OrderBaseInfo"]
        assert isinstance(wire["RelatedUserList"]["UserIds"][0], str), wire
        assert isinstance(wire["OrderId"], int) and isinstance(wire["CommitterId"], int), wire
        assert set(wire) >= {
            "OrderId",
            "PluginType",
            "Comment",
            "Committer",
            "CommitterId",
            "CreateTime",
            "LastModifyTime",
            "StatusCode",
            "StatusDesc",
            "RelatedUserList",
            "RelatedUserNickList",
            "AttachmentKey",
            "OriginAttachmentName",
        }, wire


@pytest.mark.parametrize("flavor", FLAVORS)
def test_get_order_base_info_hides_tickets_from_everyone_else(world: World, flavor: Flavor) -> None:
    order_id = file_order(
        world.dms(world.committer, "v3"),
        "NDDL",
        nddl(world.maria.db_id),
        related=[world.related.user_id],
    )
    missing = world.dms(world.committer, flavor).call("GetOrderBaseInfo", order_id=NO_SUCH_ORDER)
    unknown = refused(missing, "OrderNotFound", str(NO_SUCH_ORDER))
    for creds in (world.stranger, world.pg.dba, world.foreign_admin, world.foreign_user):
        resp = world.dms(creds, flavor).call("GetOrderBaseInfo", order_id=order_id)
        message = refused(resp, "OrderNotFound")
        assert resp.order_base_info is None, resp.to_map()
        # the same answer an unknown id gets: nothing tells that the ticket exists
        assert message == unknown.replace(str(NO_SUCH_ORDER), str(order_id))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_foreign_tenants_tid_is_refused_by_the_gateway(world: World, flavor: Flavor) -> None:
    order_id = file_order(world.dms(world.committer, "v3"), "NDDL", nddl(world.pg.db_id))
    failure = world.dms(world.foreign_admin, flavor).fail(
        "GetOrderBaseInfo", order_id=order_id, tid=world.tid
    )
    assert_failure(world.server, failure, 403, "Forbidden.Tenant")


# ------------------------------------------------------------------ 3. ListOrders


@dataclass(frozen=True)
class Listing:
    """A tenant of its own with a known set of tickets, so that every count is exact."""

    admin: Creds
    dba: Creds
    committer: Creds
    related: Creds
    other: Creds
    ids: dict[str, int]  # name -> OrderId
    closed: frozenset[str]
    created: list[str]  # CreateTime of every ticket, in filing order
    closed_at: str  # LastModifyTime of the first close

    def of(self, *names: str) -> list[int]:
        """OrderIds of ``names``, newest first (ListOrders' order)."""
        return sorted((self.ids[n] for n in names), reverse=True)


@pytest.fixture(scope="module")
def listing(server: Server, world: World) -> Listing:
    (tid,) = new_tenants(server, "orders-listing")
    admin, dba, committer, related, other = new_users(
        server,
        [
            ("ADMIN", tid, "List Admin"),
            ("DBA", tid, "List DBA"),
            ("USER", tid, "List Committer"),
            ("USER", tid, "List Related"),
            ("USER", tid, "List Other"),
        ],
    )
    boss = Dms(server, admin, "v3")
    # the same two test databases as ``world``, registered again in this tenant
    maria = register_instance(boss, dba, engine="mariadb", port=3306, user="root")
    maria_db = database_id(boss, maria, world.maria_name)
    pg = register_instance(
        boss, admin, engine="postgresql", port=5432, user="postgres", sid=world.pg_name
    )
    pg_db = database_id(boss, pg, "public", world.pg_name)
    csv = insert_attachment(server, committer, "list.csv", "big-file")

    me, them = Dms(server, committer, "v3"), Dms(server, other, "v3")
    ids = {
        "fix": file_dedicated(
            me,
            "DC_COMMON",
            dc_common(maria_db),
            comment="fix paid status",
            related=[related.user_id],
        ),
        "purge": file_dedicated(me, "DC_CHUNK", dc_chunk(maria_db), comment="purge cancelled"),
        "cleanup": file_dedicated(
            me, "DC_CRON_CLEAR", dc_cron_clear(maria_db), comment="keep 100% of recent rows"
        ),
        "import": file_dedicated(
            me,
            "DC_BIG_FILE",
            dc_big_file(maria_db, attachment=csv),
            comment="load backfill",
            related=[related.user_id],
        ),
        "export": file_dedicated(
            me, "DATA_EXPORT", data_export(maria_db), comment="quarterly export"
        ),
        "design": file_order(me, "NDDL", nddl(maria_db), comment="design refunds table"),
        "theirs": file_order(
            them, "DC_COMMON", dc_common(maria_db), comment="another fix", related=[related.user_id]
        ),
        "pg_export": file_order(them, "DATA_EXPORT", data_export(pg_db), comment="pg export"),
    }
    created = [base_info(boss, i).create_time for i in ids.values()]
    time.sleep(1.1)  # so that the closes fall into a later second than every create
    assert me.call("CloseOrder", order_id=ids["purge"], close_reason="not needed").success
    closed_at = base_info(boss, ids["purge"]).last_modify_time  # the earlier of the two closes
    assert (
        Dms(server, dba, "v3")
        .call("CloseOrder", order_id=ids["export"], close_reason="duplicate")
        .success
    )
    return Listing(
        admin,
        dba,
        committer,
        related,
        other,
        ids,
        frozenset({"purge", "export"}),
        created,
        closed_at,
    )


@pytest.mark.parametrize("flavor", FLAVORS)
def test_list_orders_scopes(listing: Listing, world: World, flavor: Flavor) -> None:
    server = world.server
    committer = Dms(server, listing.committer, flavor)
    mine = ("fix", "purge", "cleanup", "import", "export", "design")
    assert listed(committer) == listing.of(*mine)  # AS_COMMITTER is the default
    assert listed(committer, order_result_type="AS_COMMITTER") == listing.of(*mine)
    related = Dms(server, listing.related, flavor)
    assert listed(related, order_result_type="AS_Related") == listing.of("fix", "import", "theirs")
    assert listed(related) == []
    dba = Dms(server, listing.dba, flavor)
    # nothing waits on the DBA or the admin: new tickets wait on their committers to submit
    assert listed(dba, order_result_type="AS_HANDLER") == []
    assert listed(dba, order_result_type="AS_OWNER") == listing.of(*mine, "theirs")
    admin = Dms(server, listing.admin, flavor)
    assert listed(admin, order_result_type="AS_ADMIN") == listing.of(*listing.ids)
    assert listed(admin, order_result_type="AS_HANDLER") == []  # approvals: test_sdk_approvals
    for who in (committer, dba, related):
        resp = who.call("ListOrders", order_result_type="AS_ADMIN")
        refused(resp, "PermissionDenied", "AS_ADMIN")
        assert resp.orders is None and resp.total_count is None, resp.to_map()
    # another tenant's administrator sees none of them
    assert listed(Dms(server, world.foreign_admin, flavor), order_result_type="AS_ADMIN") == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_list_orders_filters(listing: Listing, world: World, flavor: Flavor) -> None:
    admin = Dms(world.server, listing.admin, flavor)

    def find(**params: Any) -> list[int]:
        return listed(admin, order_result_type="AS_ADMIN", **params)

    everything = listing.of(*listing.ids)
    running = [n for n in listing.ids if n not in listing.closed]
    assert find(order_status="ALL") == everything
    assert find(order_status="RUNNING") == listing.of(*running)
    assert find(order_status="FINISHED") == listing.of(*listing.closed)

    assert find(plugin_type="DC_COMMON") == listing.of("fix", "theirs")
    assert find(plugin_type="DATA_CORRECT") == listing.of(
        "fix", "purge", "cleanup", "import", "theirs"
    )
    assert find(plugin_type="DATA_CORRECT", order_status="RUNNING") == listing.of(
        "fix", "cleanup", "import", "theirs"
    )
    assert find(plugin_type="DATA_EXPORT") == listing.of("export", "pg_export")
    assert find(plugin_type="NDDL") == listing.of("design")
    assert find(plugin_type="PERM_APPLY") == []

    assert find(search_content="refunds table") == listing.of("design")  # the comment
    assert find(search_content="status = 'void'") == listing.of("purge")  # the SQL
    # DMS search patterns: % and _ are wildcards, a backslash makes one a character
    assert find(search_content="100\\%") == listing.of("cleanup")
    assert find(search_content="\\%") == listing.of("cleanup")
    assert find(search_content="%") == everything
    assert find(search_content="no ticket says this") == []
    assert listing.ids["design"] in find(search_content=str(listing.ids["design"]))

    first, last = wire_time(min(listing.created)), wire_time(max(listing.created))
    window = {"start_time": stamp(first), "end_time": stamp(last + timedelta(seconds=1))}
    assert find(search_date_type="CREATE_TIME", **window) == everything
    assert find(**window) == everything  # CREATE_TIME is the default
    assert find(end_time=stamp(first - timedelta(seconds=1))) == []
    assert find(start_time=stamp(last + timedelta(seconds=1))) == []
    assert find(start_time=stamp(first - timedelta(days=1))) == everything
    # MODIFY_TIME: only the closes happened at or after closed_at
    closed = {"search_date_type": "MODIFY_TIME", "start_time": listing.closed_at}
    assert find(**closed) == listing.of(*listing.closed)
    assert find(search_date_type="CREATE_TIME", start_time=listing.closed_at) == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_list_orders_pages_and_row_shape(listing: Listing, world: World, flavor: Flavor) -> None:
    admin = Dms(world.server, listing.admin, flavor)
    everything = listing.of(*listing.ids)
    pages = []
    for number in (1, 2, 3, 4):
        resp = admin.call(
            "ListOrders", order_result_type="AS_ADMIN", page_number=number, page_size=3
        )
        assert resp.success is True and resp.total_count == len(everything), resp.to_map()
        pages.append([o.order_id for o in resp.orders.order])
    assert pages == [everything[0:3], everything[3:6], everything[6:8], []]

    resp = admin.call("ListOrders", order_result_type="AS_ADMIN", search_content="quarterly")
    raw = admin.last_raw
    assert raw is not None and isinstance(raw["Orders"]["Order"], list), raw  # wrapper object
    assert raw["TotalCount"] == 1
    (row,) = resp.orders.order
    assert row.order_id == listing.ids["export"]
    assert (row.plugin_type, row.comment) == ("DATA_EXPORT", "quarterly export")
    assert (row.committer, row.committer_id) == ("List Committer", listing.committer.user_id)
    assert (row.status_code, row.status_desc) == ("closed", "Closed")
    assert wire_time(row.last_modify_time) > wire_time(row.create_time)
    assert set(raw["Orders"]["Order"][0]) == {
        "OrderId",
        "PluginType",
        "Comment",
        "Committer",
        "CommitterId",
        "CreateTime",
        "LastModifyTime",
        "StatusCode",
        "StatusDesc",
    }


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"order_result_type": "AS_NOBODY"}, "InvalidOrderResultType"),
        ({"order_status": "OPEN"}, "InvalidOrderStatus"),
        ({"search_date_type": "CLOSE_TIME"}, "InvalidSearchDateType"),
        ({"start_time": "2024-01-01T00:00:00Z"}, "InvalidStartTime"),
        ({"page_size": 101}, "InvalidPageSize"),
        ({"page_number": 0}, "InvalidPageNumber"),
    ],
)
def test_list_orders_malformed_filters_are_gateway_errors(
    world: World, params: dict[str, Any], code: str
) -> None:
    for flavor in FLAVORS:
        failure = world.dms(world.committer, flavor).fail("ListOrders", **params)
        assert_failure(world.server, failure, 400, code)


def test_end_time_includes_its_whole_second(listing: Listing, world: World) -> None:
    """Times on the wire have whole seconds while stored ones have microseconds: a ticket whose
    CreateTime reads T is found with StartTime = EndTime = T (EndTime covers its whole second)."""
    admin = Dms(world.server, listing.admin, "v3")
    design = base_info(admin, listing.ids["design"])
    found = listed(
        admin,
        order_result_type="AS_ADMIN",
        start_time=design.create_time,
        end_time=design.create_time,
    )
    assert listing.ids["design"] in found, (design.create_time, found)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_search_content_finds_sql_with_double_quotes(world: World, flavor: Flavor) -> None:
    """SearchContent looks through the comment and the parameters as plain text, so SQL that
    quotes identifiers the PostgreSQL way is found by the text the user wrote."""
    dms = world.dms(world.committer, flavor)
    table = f"t_{uuid.uuid4().hex[:12]}"
    sql = f"UPDATE \"{table}\" SET status = 'x' WHERE id = 1"
    order_id = file_dedicated(dms, "DC_COMMON", {**dc_common(world.pg.db_id), "ExecSQL": sql})
    assert listed(dms, search_content=table) == [order_id]
    assert listed(dms, search_content=f'"{table}"') == [order_id]


# ------------------------------------------------------------------ 4. CloseOrder


@pytest.mark.parametrize("flavor", FLAVORS)
def test_close_order(world: World, flavor: Flavor) -> None:
    committer = world.dms(world.committer, flavor)
    marker = f"close-me-{uuid.uuid4().hex}"
    order_id = file_dedicated(
        committer,
        "DC_CRON_CLEAR",
        dc_cron_clear(world.maria.db_id),
        comment=marker,
        related=[world.related.user_id],
    )
    assert listed(committer, search_content=marker, order_status="RUNNING") == [order_id]

    failure = committer.fail("CloseOrder", order_id=order_id)
    assert_failure(world.server, failure, 400, "MissingCloseReason")
    failure = committer.fail("CloseOrder", order_id=order_id, close_reason="")
    assert_failure(world.server, failure, 400, "InvalidCloseReason")
    refused(
        world.dms(world.related, flavor).call("CloseOrder", order_id=order_id, close_reason="x"),
        "PermissionDenied",
    )
    for outsider in (world.stranger, world.foreign_admin):
        resp = world.dms(outsider, flavor).call("CloseOrder", order_id=order_id, close_reason="x")
        refused(resp, "OrderNotFound")
    assert base_info(committer, order_id).status_code == "new"

    resp = committer.call("CloseOrder", order_id=order_id, close_reason="changed my mind")
    assert resp.success is True, resp.to_map()
    assert REQUEST_ID.match(resp.request_id)
    info = base_info(committer, order_id)
    assert (info.status_code, info.status_desc) == ("closed", "Closed")
    assert wire_time(info.last_modify_time) >= wire_time(info.create_time)
    assert base_info(world.dms(world.related, flavor), order_id).status_code == "closed"

    for closer in (world.committer, world.admin):
        again = world.dms(closer, flavor).call("CloseOrder", order_id=order_id, close_reason="x")
        refused(again, "InvalidOrderStatus", str(order_id), "closed")
    for status, found in (("FINISHED", [order_id]), ("RUNNING", []), ("ALL", [order_id])):
        assert listed(committer, search_content=marker, order_status=status) == found


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_dba_and_an_administrator_close_other_peoples_tickets(
    world: World, flavor: Flavor
) -> None:
    committer = world.dms(world.committer, "v3")
    on_pg = file_order(committer, "DATA_EXPORT", data_export(world.pg.db_id))
    on_maria = file_order(committer, "NDDL", nddl(world.maria.db_id))
    # the MariaDB DBA does not run the PostgreSQL instance
    refused(
        world.dms(world.maria.dba, flavor).call("CloseOrder", order_id=on_pg, close_reason="x"),
        "OrderNotFound",
    )
    pg_dba = world.dms(world.pg.dba, flavor)
    assert pg_dba.call("CloseOrder", order_id=on_pg, close_reason="not on this host").success
    admin = world.dms(world.admin, flavor)
    assert admin.call("CloseOrder", order_id=on_maria, close_reason="policy").success
    for order_id in (on_pg, on_maria):
        assert base_info(committer, order_id).status_code == "closed"


# ------------------------------------------------------------------ 5. validation errors

DROP = object()  # ``change(Key=DROP)`` leaves Key out


def change(**edits: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def apply(params: dict[str, Any]) -> dict[str, Any]:
        out = dict(params)
        for key, value in edits.items():
            if value is DROP:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    return apply


def cron_item(**edits: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def apply(params: dict[str, Any]) -> dict[str, Any]:
        (item,) = params["CronClearItemList"]
        return {**params, "CronClearItemList": [change(**edits)(item)]}

    return apply


ORDER, OWN = "CreateOrder", "dedicated"
BOTH = (ORDER, OWN)
# (case, PluginType, the calls it is filed through, what changes in the valid parameters,
#  the field path the message names after "Param."/"PluginParam.", other message fragments)
CASES: list[tuple[str, str, tuple[str, ...], Any, str, tuple[str, ...]]] = [
    # DC_COMMON
    ("no-db-items", "DC_COMMON", BOTH, change(DbItemList=DROP), "DbItemList", ()),
    ("no-estimate", "DC_COMMON", BOTH, change(EstimateAffectRows=DROP), "EstimateAffectRows", ()),
    ("bad-sql-type", "DC_COMMON", BOTH, change(SqlType="SQL"), "SqlType", ("TEXT",)),
    (
        "negative-estimate",
        "DC_COMMON",
        (OWN,),
        change(EstimateAffectRows=-1),
        "EstimateAffectRows",
        (),
    ),
    ("bad-exec-mode", "DC_COMMON", (ORDER,), change(ExecMode="NOW"), "ExecMode", ("COMMITOR",)),
    ("text-without-sql", "DC_COMMON", BOTH, change(ExecSQL=DROP), "", ("ExecSQL is required",)),
    (
        "attachment-without-name",
        "DC_COMMON",
        (OWN,),
        change(SqlType="ATTACHMENT", ExecSQL=DROP),
        "",
        ("AttachmentName is required",),
    ),
    (
        "rollback-attachment-without-name",
        "DC_COMMON",
        (ORDER,),
        change(RollbackSqlType="ATTACHMENT", RollbackSQL=DROP),
        "",
        ("RollbackAttachmentName is required",),
    ),
    (
        "logical-db",
        "DC_COMMON",
        BOTH,
        lambda p: {**p, "DbItemList": [{**p["DbItemList"][0], "Logic": True}]},
        "DbItemList.0",
        ("logical",),
    ),
    (
        "db-id-not-a-number",
        "DC_COMMON",
        (OWN,),
        lambda p: {**p, "DbItemList": [{"DbId": "first", "Logic": False}]},
        "DbItemList.0.DbId",
        (),
    ),
    # DC_CHUNK
    ("no-sql", "DC_CHUNK", BOTH, change(ExecSQL=DROP), "ExecSQL", ()),
    ("empty-sql", "DC_CHUNK", (OWN,), change(ExecSQL=""), "ExecSQL", ()),
    (
        "attachment",
        "DC_CHUNK",
        BOTH,
        change(SqlType="ATTACHMENT", AttachmentName="x.sql"),
        "SqlType",
        ("TEXT",),
    ),
    ("no-db-items", "DC_CHUNK", (ORDER,), change(DbItemList=[]), "DbItemList", ()),
    # DC_CRON_CLEAR
    ("no-items", "DC_CRON_CLEAR", BOTH, change(CronClearItemList=DROP), "CronClearItemList", ()),
    (
        "no-specify-duration",
        "DC_CRON_CLEAR",
        BOTH,
        change(specifyDuration=DROP),
        "specifyDuration",
        (),
    ),
    (
        "duration-without-hours",
        "DC_CRON_CLEAR",
        BOTH,
        change(DurationHour=DROP),
        "",
        ("DurationHour is required",),
    ),
    (
        "cron-5-fields",
        "DC_CRON_CLEAR",
        BOTH,
        change(CronFormat="0 2 * * *"),
        "CronFormat",
        ("6 fields",),
    ),
    (
        "cron-weekday-8",
        "DC_CRON_CLEAR",
        BOTH,
        change(CronFormat="0 0 2 ? * 8"),
        "CronFormat",
        ("day-of-week 8",),
    ),
    ("cron-garbage", "DC_CRON_CLEAR", (OWN,), change(CronFormat="at night"), "CronFormat", ()),
    (
        "no-column",
        "DC_CRON_CLEAR",
        BOTH,
        cron_item(ColumnName=DROP),
        "CronClearItemList.0.ColumnName",
        (),
    ),
    (
        "negative-days",
        "DC_CRON_CLEAR",
        (OWN,),
        cron_item(RemainDays=-1),
        "CronClearItemList.0.RemainDays",
        (),
    ),
    (
        "bad-time-unit",
        "DC_CRON_CLEAR",
        (ORDER,),
        cron_item(TimeUnit="HOURS"),
        "CronClearItemList.0.TimeUnit",
        (),
    ),
    # DC_BIG_FILE
    ("no-attachment", "DC_BIG_FILE", BOTH, change(AttachmentName=DROP), "AttachmentName", ()),
    ("bad-file-type", "DC_BIG_FILE", BOTH, change(FileType="PDF"), "FileType", ("CSV",)),
    (
        "csv-without-table",
        "DC_BIG_FILE",
        BOTH,
        change(TableName=DROP),
        "",
        ("TableName is required",),
    ),
    ("bad-insert-type", "DC_BIG_FILE", (OWN,), change(InsertType="UPSERT"), "InsertType", ()),
    (
        "two-databases",
        "DC_BIG_FILE",
        (ORDER,),
        lambda p: {**p, "DbItemList": p["DbItemList"] * 2},
        "DbItemList",
        ("at most 1",),
    ),
    # DATA_EXPORT (PluginParam on both calls)
    ("no-sql", "DATA_EXPORT", BOTH, change(ExeSQL=DROP), "ExeSQL", ()),
    ("no-classify", "DATA_EXPORT", BOTH, change(Classify=DROP), "Classify", ()),
    ("negative-rows", "DATA_EXPORT", BOTH, change(AffectRows=-5), "AffectRows", ()),
    (
        "ignore-rows-without-reason",
        "DATA_EXPORT",
        BOTH,
        change(IgnoreAffectRows=True),
        "",
        ("IgnoreAffectRowsReason is required",),
    ),
    (
        "bad-watermark",
        "DATA_EXPORT",
        (OWN,),
        change(Watermark={"WatermarkTypes": ["PDF"]}),
        "Watermark.WatermarkTypes.0",
        (),
    ),
    ("logical-db", "DATA_EXPORT", (ORDER,), change(Logic=True), "", ("logical",)),
    # NDDL (CreateOrder only)
    ("no-title", "NDDL", (ORDER,), change(Title=DROP), "Title", ()),
    ("long-title", "NDDL", (ORDER,), change(Title="t" * 257), "Title", ("256",)),
    ("db-id-not-a-number", "NDDL", (ORDER,), change(DbId="abc"), "DbId", ()),
    ("no-db-id", "NDDL", (ORDER,), change(DbId=DROP), "DbId", ()),
]
VALIDATION = [
    pytest.param(plugin_type, via, edit, path, fragments, id=f"{plugin_type}-{case}-{via}")
    for case, plugin_type, vias, edit, path, fragments in CASES
    for via in vias
]


def file_any(dms: Dms, via: str, plugin_type: str, params: dict[str, Any], **kw: Any) -> Any:
    if via == ORDER:
        return create_order(dms, plugin_type, params, **kw)
    return create_dedicated(dms, plugin_type, params, **kw)


def label(via: str, plugin_type: str) -> str:
    return "Param" if via == OWN and plugin_type != "DATA_EXPORT" else "PluginParam"


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(("plugin_type", "via", "edit", "path", "fragments"), VALIDATION)
def test_invalid_parameters_are_named(
    world: World,
    flavor: Flavor,
    plugin_type: str,
    via: str,
    edit: Callable[[dict[str, Any]], dict[str, Any]],
    path: str,
    fragments: tuple[str, ...],
) -> None:
    dms = world.dms(world.clumsy, flavor)
    params = edit(params_for(world, plugin_type))
    resp = file_any(dms, via, plugin_type, params)
    where = f"{label(via, plugin_type)}.{path}" if path else label(via, plugin_type)
    message = refused(resp, "InvalidParameter", f"{where}:", *fragments)
    if label(via, plugin_type) == "Param":
        assert "PluginParam" not in message, message
    assert resp.create_order_result is None, resp.to_map()
    assert ticket_count(dms) == 0  # nothing was filed


@pytest.mark.parametrize("flavor", FLAVORS)
def test_nddl_refuses_a_logical_database(world: World, flavor: Flavor) -> None:
    """OpenDMS has no logical databases: NDDL refuses ``Logic: true`` like every other type
    rather than filing against the physical database that happens to have that id."""
    dms = world.dms(world.committer, flavor)
    resp = create_order(dms, "NDDL", {**nddl(world.maria.db_id), "Logic": True})
    if resp.success:  # the ticket exists; do not leave it open
        dms.call("CloseOrder", order_id=created_id(resp, "CreateOrder"), close_reason="bug")
    refused(resp, "InvalidParameter", "PluginParam", "logical")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_valid_parameters_of_the_validation_cases_are_accepted(
    world: World, flavor: Flavor
) -> None:
    """The baseline every validation case changes is itself valid, for every type and call."""
    dms = world.dms(world.committer, flavor)
    for plugin_type in TYPES:
        params = params_for(world, plugin_type)
        assert file_order(dms, plugin_type, params)
        if plugin_type in DEDICATED:
            assert file_dedicated(dms, plugin_type, params)


def with_db(plugin_type: str, params: dict[str, Any], db_id: int) -> dict[str, Any]:
    if "DbItemList" in params:
        return {**params, "DbItemList": [{"DbId": db_id, "Logic": False}]}
    return {**params, "DbId": db_id}


FILINGS = [
    pytest.param(plugin_type, via, id=f"{plugin_type}-{via}")
    for plugin_type in TYPES
    for via in BOTH
    if via == ORDER or plugin_type in DEDICATED
]


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(("plugin_type", "via"), FILINGS)
def test_unknown_and_foreign_databases(
    world: World, flavor: Flavor, plugin_type: str, via: str
) -> None:
    dms = world.dms(world.clumsy, flavor)
    params = params_for(world, plugin_type)
    for db_id in (NO_SUCH_DB, world.foreign_db):
        resp = file_any(dms, via, plugin_type, with_db(plugin_type, params, db_id))
        refused(resp, "DatabaseNotFound", str(db_id))
    assert ticket_count(dms) == 0


@pytest.mark.parametrize("flavor", FLAVORS)
def test_business_refusals(world: World, flavor: Flavor) -> None:
    dms = world.dms(world.clumsy, flavor)
    common = dc_common(world.maria.db_id)
    by_attachment = change(SqlType="ATTACHMENT", ExecSQL=DROP)(common)

    for via in BOTH:
        # SQL from an attachment nobody uploaded, or another tenant uploaded
        for key in ("no-such-attachment", world.foreign_file):
            resp = file_any(dms, via, "DC_COMMON", {**by_attachment, "AttachmentName": key})
            refused(resp, "AttachmentNotFound", key)
            resp = file_any(
                dms, via, "DC_BIG_FILE", {**params_for(world, "DC_BIG_FILE"), "AttachmentName": key}
            )
            refused(resp, "AttachmentNotFound", key)
        rollback = change(RollbackSqlType="ATTACHMENT", RollbackSQL=DROP)(common)
        resp = file_any(dms, via, "DC_COMMON", {**rollback, "RollbackAttachmentName": "gone"})
        refused(resp, "AttachmentNotFound", "gone")
        # the ticket's own attachment
        resp = file_any(dms, via, "DC_COMMON", common, attachment_key="gone")
        refused(resp, "AttachmentNotFound", "AttachmentKey")
        resp = file_any(dms, via, "DC_COMMON", common, attachment_key=world.foreign_file)
        refused(resp, "AttachmentNotFound", "AttachmentKey")
        # related users must be users of the caller's tenant
        for outsider in (world.foreign_user.user_id, NO_SUCH_USER):
            resp = file_any(
                dms,
                via,
                "DC_COMMON",
                common,
                related=[world.related.user_id, outsider],
            )
            refused(resp, "UserNotFound", str(outsider))
        # an InstanceId that is not the database's
        wrong = {
            **common,
            "DbItemList": [{"DbId": world.maria.db_id, "InstanceId": world.pg.instance_id}],
        }
        refused(file_any(dms, via, "DC_COMMON", wrong), "InvalidParameter", "InstanceId")
    wrong_instance = data_export(world.maria.db_id, world.pg.instance_id)
    refused(create_dedicated(dms, "DATA_EXPORT", wrong_instance), "InvalidParameter", "InstanceId")
    # a parent ticket the caller cannot see
    resp = create_dedicated(
        dms, "DATA_EXPORT", data_export(world.maria.db_id), parent_id=NO_SUCH_ORDER
    )
    refused(resp, "OrderNotFound", str(NO_SUCH_ORDER))

    # types CreateOrder does not take
    for plugin_type in ("DATA_CORRECT", "PERM_APPLY", "DC_PROC", "dc_common"):
        resp = create_order(dms, plugin_type, common)
        message = refused(resp, "UnsupportedPluginType", plugin_type)
        if plugin_type == "DATA_CORRECT":
            assert "ListOrders" in message
    assert ticket_count(dms) == 0


# ------------------------------------------------------------------ gateway refusals


@pytest.mark.parametrize("flavor", FLAVORS)
def test_missing_required_parameters_are_gateway_errors(world: World, flavor: Flavor) -> None:
    dms = world.dms(world.clumsy, flavor)
    common = dc_common(world.maria.db_id)
    plugin_param = json.dumps(camel(common)) if flavor == "old" else camel(common)
    checks = [
        (
            "CreateOrder",
            {"plugin_type": "DC_COMMON", "plugin_param": plugin_param},
            "MissingComment",
        ),
        ("CreateOrder", {"plugin_param": plugin_param, "comment": "c"}, "MissingPluginType"),
        ("CreateOrder", {"plugin_type": "DC_COMMON", "comment": "c"}, "MissingPluginParam"),
        ("CreateDataCorrectOrder", {"comment": "c"}, "MissingParam"),
        ("CreateDataExportOrder", {"comment": "c"}, "MissingPluginParam"),
        ("GetOrderBaseInfo", {}, "MissingOrderId"),
    ]
    for action, params, code in checks:
        assert_failure(world.server, dms.fail(action, **params), 400, code)
    # CreateOrder's RelatedUserList is a list of ids, not of names
    failure = dms.fail(
        "CreateOrder",
        plugin_type="DC_COMMON",
        plugin_param=plugin_param,
        comment="c",
        related_user_list="alice,bob",
    )
    assert_failure(world.server, failure, 400, "InvalidRelatedUserList")
    assert ticket_count(dms) == 0


def test_plugin_param_that_is_not_json_from_the_old_sdk(world: World) -> None:
    """The old SDK posts PluginParam as the caller wrote it: text that is not JSON is a 400."""
    dms = world.dms(world.clumsy, "old")
    for text in ("{dbId: 1}", "{'dbId': 1}", "[1, 2]", ""):
        failure = dms.fail("CreateOrder", plugin_type="NDDL", plugin_param=text, comment="c")
        assert_failure(world.server, failure, 400, "InvalidPluginParam")
    assert ticket_count(dms) == 0


@pytest.mark.parametrize("scheme", ["v3", "v1"])
@pytest.mark.parametrize(
    ("action", "name"),
    [
        ("CreateDataCorrectOrder", "Param"),
        ("CreateFreeLockCorrectOrder", "Param"),
        ("CreateDataCronClearOrder", "Param"),
        ("CreateDataImportOrder", "Param"),
        ("CreateDataExportOrder", "PluginParam"),
        ("CreateOrder", "PluginParam"),
    ],
)
def test_param_that_is_not_json_is_a_gateway_error(
    world: World, scheme: str, action: str, name: str
) -> None:
    """The SDKs always serialise Param; a hand-made request (tests/signer.py) can send text
    that is not JSON, or JSON that is not an object."""
    signer = world.clumsy.signer(world.server)
    sign = signer.v3 if scheme == "v3" else signer.v1
    for bad in ('{"DbItemList": [', "[1, 2]", "not json"):
        query = {"Comment": "c", name: bad, "PluginType": "DC_COMMON"}
        resp = world.server.send(sign(action, query))
        body = assert_http_error(world.server, resp, 400, f"Invalid{name}")
        assert name in body["Message"]
    resp = world.server.send(
        sign("CreateDataCorrectOrder", {"Comment": "c", "Param": "{}", "RelatedUserList": "[1,"})
    )
    assert_http_error(world.server, resp, 400, "InvalidRelatedUserList")


# ------------------------------------------------------------------ SQL size limit


def signed_correct_order(world: World, who: Creds, exec_sql: str) -> Any:
    """CreateDataCorrectOrder with ``exec_sql`` in Param, in the URL as the SDKs send it,
    signed by hand (tests/signer.py): a request line of 15 MB, sent with http.client."""
    param = json.dumps(
        {
            "DbItemList": [{"DbId": world.maria.db_id, "Logic": False}],
            "EstimateAffectRows": 1,
            "ExecSQL": exec_sql,
            "SqlType": "TEXT",
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    prepared = who.signer(world.server).v3(
        "CreateDataCorrectOrder", {"Comment": "big", "Param": param}
    )
    assert len(prepared.url) > MB15
    resp = world.server.send_raw(prepared)
    assert resp.status_code == 200, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/json")
    return dms_models.CreateDataCorrectOrderResponseBody().from_map(resp.json())


def big_sql(size: int) -> str:
    """An UPDATE of exactly ``size`` ASCII characters."""
    head = "UPDATE orders SET status = 'x' WHERE id IN (1"
    return head + " " * (size - len(head) - 1) + ")"


def test_sql_of_15_mb_is_accepted_and_one_byte_more_is_refused(world: World) -> None:
    big_filer = world.committer
    dms = world.dms(big_filer, "v3")
    before = ticket_count(dms)
    resp = signed_correct_order(world, big_filer, big_sql(MB15 + 1))
    refused(resp, "InvalidParameter", "Param.ExecSQL")
    assert resp.create_order_result is None
    assert ticket_count(dms) == before

    order_id = created_id(
        signed_correct_order(world, big_filer, big_sql(MB15)), "CreateDataCorrectOrder"
    )
    assert base_info(dms, order_id).plugin_type == "DC_COMMON"
    assert ticket_count(dms) == before + 1


def test_sql_limit_counts_utf8_bytes(world: World) -> None:
    """15 MB is a size in UTF-8 bytes (dms-api.md A.1.2), not characters: 15 MB - 1 ASCII
    characters and one two-byte character, 15 MB + 1 bytes in all, are refused."""
    sql = big_sql(MB15 - 1) + "é"
    assert len(sql.encode()) == MB15 + 1 and len(sql) == MB15
    resp = signed_correct_order(world, world.committer, sql)
    refused(resp, "InvalidParameter", "Param.ExecSQL")
