"""Instances, data permissions and attachments over real HTTP with the official SDKs
(dms-api.md A.7, A.9, A.10, B.11, B.12): AddInstance and UpdateInstance on a real MariaDB,
granting, listing and revoking QUERY / EXPORT / CORRECT on an instance, a database and its
tables, and attachments uploaded from a URL or in a V3-signed body, attached to a ticket and
read back through a signed link.

One server, one set of tenants and users, and one MariaDB test database serve the whole module.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models
from alibabacloud_tea_openapi.exceptions import ServerException

from tests.conftest import mysql_database
from tests.e2e.conftest import (
    FLAVORS,
    REQUEST_ID,
    SERVING_UPLOADS,
    Creds,
    Dms,
    Flavor,
    Server,
    assert_failure,
    assert_http_error,
    register_instance,
    running_server,
    serving,
    wait_for,
)
from tests.signer import Prepared

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.usefixtures("server_still_healthy"),
]

EXPIRE = "2031-02-03 04:05:06"
LATER = "2032-12-31 23:59:59"
NO_SUCH_ID = 987_654_321
SQL_FILE = b"UPDATE orders SET status = 'paid' WHERE id = 1;\n-- uploaded by the e2e suite\n"
# register_instance of the test MariaDB, as each tenant here registers it
MARIA: dict[str, Any] = {"engine": "mariadb", "port": 3306, "user": "root", "alias": "maria-perms"}
TABLES = (
    "CREATE TABLE orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, status VARCHAR(16) NOT NULL)",
    "CREATE TABLE refunds (id BIGINT PRIMARY KEY, order_id BIGINT NOT NULL)",
)


# ------------------------------------------------------------------ operator's CLI, batched


def new_tenants(server: Server, names: list[str]) -> dict[str, int]:
    return {name: server.create_tenant(name) for name in names}


def new_users(server: Server, specs: dict[str, tuple[str, int]]) -> dict[str, Creds]:
    """One user with an access key per ``label: (roles, tid)``; the label is the nick name."""
    return {
        label: server.create_user(roles, tid=tid, nick=label)
        for label, (roles, tid) in specs.items()
    }


# ------------------------------------------------------------------ the module's world


@dataclass(frozen=True)
class World:
    server: Server
    users: dict[str, Creds]  # by nick name, see the `world` fixture
    schema: str  # the MariaDB test database
    instance_id: int  # MariaDB registered in the "perms" tenant
    db_id: int  # the test database in it
    table_ids: dict[str, int]  # its tables
    foreign_db_id: int  # the same database, registered by another tenant

    def dms(self, label: str, flavor: Flavor) -> Dms:
        return Dms(self.server, self.users[label], flavor)

    def uid(self, label: str) -> int:
        user_id = self.users[label].user_id
        assert user_id is not None
        return user_id


def database_id(dms: Dms, instance_id: int, schema: str) -> int:
    found = dms.call("ListDatabases", instance_id=str(instance_id), search_key=schema)
    (db,) = [d for d in found.database_list.database if d.schema_name == schema]
    return int(db.database_id)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """This module's server; it may fetch uploads from the loopback file server."""
    with running_server(SERVING_UPLOADS) as s:
        yield s


@pytest.fixture(scope="module")
def world(server: Server) -> Iterator[World]:
    tids = new_tenants(server, ["inst-v3", "inst-v1", "inst-old", "perms", "perms-foreign"])
    specs: dict[str, tuple[str, int]] = {}
    for flavor in FLAVORS:
        tid = tids[f"inst-{flavor}"]
        specs[f"Admin {flavor}"] = ("ADMIN", tid)
        specs[f"DBA One {flavor}"] = ("DBA", tid)
        specs[f"DBA Two {flavor}"] = ("DBA", tid)
        specs[f"Grantee {flavor}"] = ("USER", tids["perms"])
    specs |= {
        "Perm Admin": ("ADMIN", tids["perms"]),
        "Perm DBA": ("DBA", tids["perms"]),
        "Owner": ("USER", tids["perms"]),
        "Plain": ("USER", tids["perms"]),
        "Uploader": ("USER", tids["perms"]),
        "Grantee roles": ("USER", tids["perms"]),
        "Grantee raw": ("USER", tids["perms"]),
        "Bug Grantee": ("USER", tids["perms"]),
        "Foreign Admin": ("ADMIN", tids["perms-foreign"]),
    }
    users = new_users(server, specs)
    with mysql_database() as (schema, conn):
        with conn.cursor() as cur:
            for ddl in TABLES:
                cur.execute(ddl)
        admin = Dms(server, users["Perm Admin"], "v3")
        instance_id = register_instance(admin, users["Perm DBA"], **MARIA)
        db_id = database_id(admin, instance_id, schema)
        tables = admin.call("ListTables", database_id=str(db_id)).table_list.table
        foreign = Dms(server, users["Foreign Admin"], "v3")
        foreign_db_id = database_id(
            foreign, register_instance(foreign, users["Foreign Admin"], **MARIA), schema
        )
        assert foreign_db_id != db_id
        yield World(
            server=server,
            users=users,
            schema=schema,
            instance_id=instance_id,
            db_id=db_id,
            table_ids={t.table_name: int(t.table_id) for t in tables},
            foreign_db_id=foreign_db_id,
        )


def refused(dms: Dms, resp: Any, code: str) -> str:
    """A business error: HTTP 200, Success false, the code; returns the message."""
    assert (resp.success, resp.error_code) == (False, code), dms.last_raw
    assert REQUEST_ID.match(resp.request_id)
    assert resp.error_message, dms.last_raw
    return str(resp.error_message)


# ------------------------------------------------------------------ 1. AddInstance, UpdateInstance


def add_instance(dms: Dms, **over: Any) -> Any:
    """AddInstance of the local MariaDB (root, no password) in the dev environment; the
    caller's own user is the DBA unless ``dba_id`` says otherwise."""
    params: dict[str, Any] = {
        "instance_source": "VPC_IDC",
        "network_type": "VPC",
        "env_type": "dev",
        "safe_rule": "default",
        "query_timeout": 60,
        "export_timeout": 600,
        "dba_id": dms.creds.user_id,
        "host": "127.0.0.1",
        "port": 3306,
        "instance_type": "mariadb",
        "database_user": "root",
        "database_password": "",
        **over,
    }
    return dms.call("AddInstance", **params)


def get_instance(dms: Dms) -> Any:
    got = dms.call("GetInstance", host="127.0.0.1", port=3306)
    assert got.success, dms.last_raw
    return got.instance


def shown(inst: Any) -> tuple[Any, ...]:
    return (
        inst.instance_alias,
        inst.instance_type,
        inst.env_type,
        inst.query_timeout,
        inst.export_timeout,
        inst.dba_id,
        inst.dba_nick_name,
        inst.database_user,
    )


@pytest.mark.parametrize("flavor", FLAVORS)
def test_add_and_update_a_mariadb_instance(world: World, flavor: Flavor) -> None:
    dms = world.dms(f"Admin {flavor}", flavor)
    one, two = world.uid(f"DBA One {flavor}"), world.uid(f"DBA Two {flavor}")
    added = add_instance(dms, instance_alias=f"maria-{flavor}", dba_id=one, instance_type="MariaDB")
    assert added.success, dms.last_raw
    inst = get_instance(dms)
    assert shown(inst) == (
        f"maria-{flavor}",
        "mariadb",
        "dev",
        60,
        600,
        str(one),
        f"DBA One {flavor}",
        "root",
    )
    assert inst.database_password is None  # never sent back
    instance_id = str(inst.instance_id)
    # (the old SDK has no SearchKey on ListDatabases)
    schemas = dms.call("ListDatabases", instance_id=instance_id, page_size=1000)
    assert world.schema in [d.schema_name for d in schemas.database_list.database]

    # the same address again, and a DBA nobody knows
    again = add_instance(dms, instance_alias="dup", dba_id=one)
    refused(dms, again, "InstanceAlreadyExists")

    # alias, QueryTimeout and DBA change; nothing else moves
    updated = dms.call(
        "UpdateInstance",
        instance_id=instance_id,
        instance_alias=f"maria-{flavor}-renamed",
        query_timeout=120,
        dba_id=str(two),
    )
    assert updated.success, dms.last_raw
    after = shown(get_instance(dms))
    assert after == (
        f"maria-{flavor}-renamed",
        "mariadb",
        "dev",
        120,
        600,
        str(two),
        f"DBA Two {flavor}",
        "root",
    )

    # a wrong password is proved wrong first; nothing of the call is kept
    wrong = dms.call(
        "UpdateInstance",
        instance_id=instance_id,
        database_password="certainly-wrong",
        instance_alias="must-not-stick",
        env_type="product",
        query_timeout=5,
        dba_id=str(one),
    )
    refused(dms, wrong, "TargetAuthFailed")
    assert shown(get_instance(dms)) == after
    # ... and the stored (empty) password still works
    assert dms.call("SyncInstanceMeta", instance_id=instance_id).success, dms.last_raw

    # an unknown DBA and an unknown instance
    refused(
        dms,
        dms.call("UpdateInstance", instance_id=instance_id, dba_id=str(NO_SUCH_ID)),
        "UserNotFound",
    )
    refused(
        dms,
        dms.call("UpdateInstance", instance_id=str(NO_SUCH_ID), env_type="test"),
        "InstanceNotFound",
    )
    assert shown(get_instance(dms)) == after

    # EnvType
    assert dms.call("UpdateInstance", instance_id=instance_id, env_type="product").success
    inst = get_instance(dms)
    assert shown(inst) == (after[0], after[1], "product", *after[3:])
    listed = dms.call("ListInstances", env_type="product")
    assert [i.instance_id for i in listed.instance_list.instance] == [inst.instance_id]
    assert dms.call("ListInstances", env_type="dev").total_count == 0


# ------------------------------------------------------------------ 2. data permissions


def grant(dms: Dms, user: int, ds_type: str, perm_types: str, **target: Any) -> Any:
    params: dict[str, Any] = {
        "user_id": str(user),
        "ds_type": ds_type,
        "perm_types": perm_types,
        "expire_date": EXPIRE,
        **target,
    }
    return dms.call("GrantUserPermission", **params)


def user_permissions(dms: Dms, user: int, level: str) -> list[Any]:
    resp = dms.call("ListUserPermissions", user_id=str(user), perm_type=level, page_size=100)
    assert resp.success, dms.last_raw
    rows = resp.user_permissions.user_permission
    assert resp.total_count == len(rows), dms.last_raw
    return list(rows)


def details(row: Any) -> dict[str, Any]:
    """PermType -> its PermDetail."""
    return {d.perm_type: d for d in row.perm_details.perm_detail}


def database_permissions(dms: Dms, world: World, level: str, nick: str) -> Any:
    return dms.call(
        "ListDatabaseUserPermssions",
        db_id=str(world.db_id),
        perm_type=level,
        user_name=nick,
        page_size=100,
    )


@pytest.mark.parametrize("flavor", FLAVORS)
def test_grant_list_and_revoke(world: World, flavor: Flavor) -> None:
    nick = f"Grantee {flavor}"
    grantee = world.uid(nick)
    admin = world.dms("Perm Admin", flavor)
    db = str(world.db_id)
    orders_id, refunds_id = world.table_ids["orders"], world.table_ids["refunds"]

    assert grant(admin, grantee, "DATABASE", "QUERY,EXPORT", db_id=db).success, admin.last_raw
    assert grant(admin, grantee, "TABLE", "CORRECT", table_id=str(orders_id)).success
    assert grant(admin, grantee, "TABLE", "CORRECT", db_id=db, table_name="refunds").success
    assert grant(admin, grantee, "INSTANCE", "QUERY", instance_id=world.instance_id).success

    mine = world.dms(nick, flavor)
    (on_db,) = user_permissions(mine, grantee, "DATABASE")
    assert (on_db.ds_type, on_db.db_id, on_db.schema_name, on_db.instance_id) == (
        "DATABASE",
        db,
        world.schema,
        str(world.instance_id),
    )
    assert (on_db.user_id, on_db.user_nick_name, on_db.db_type) == (str(grantee), nick, "mariadb")
    assert (on_db.host, on_db.port, on_db.table_name) == ("127.0.0.1", 3306, "")
    assert on_db.search_name == f"{world.schema}@127.0.0.1:3306"
    on_db_details = details(on_db)
    assert set(on_db_details) == {"QUERY", "EXPORT"}
    for d in on_db_details.values():
        assert d.expire_date == EXPIRE
        assert d.user_access_id.isdigit() and d.create_date
    assert on_db_details["QUERY"].user_access_id != on_db_details["EXPORT"].user_access_id

    on_tables = user_permissions(mine, grantee, "TABLE")
    assert sorted((t.table_name, t.table_id, t.db_id) for t in on_tables) == [
        ("orders", str(orders_id), db),
        ("refunds", str(refunds_id), db),
    ]
    for row in on_tables:
        assert row.ds_type == "TABLE"
        assert [(d.perm_type, d.expire_date) for d in details(row).values()] == [
            ("CORRECT", EXPIRE)
        ]

    (on_instance,) = user_permissions(mine, grantee, "INSTANCE")
    assert (on_instance.ds_type, on_instance.instance_id, on_instance.db_id) == (
        "INSTANCE",
        str(world.instance_id),
        "",
    )
    assert (on_instance.alias, on_instance.search_name) == ("maria-perms", "maria-perms")
    assert list(details(on_instance)) == ["QUERY"]

    # granting the same table again moves the expiry, adds no row
    assert grant(admin, grantee, "TABLE", "CORRECT", table_id=str(orders_id)).success
    assert len(user_permissions(mine, grantee, "TABLE")) == 2

    # an administrator reads anyone's; a plain user only their own
    assert [r.db_id for r in user_permissions(admin, grantee, "DATABASE")] == [db]
    plain = world.dms("Plain", flavor)
    denied = plain.call("ListUserPermissions", user_id=str(grantee), perm_type="DATABASE")
    refused(plain, denied, "PermissionDenied")
    assert user_permissions(plain, world.uid("Plain"), "DATABASE") == []

    # who holds what on the database, as the DBA sees it: no Host/Port on these rows
    dba = world.dms("Perm DBA", flavor)
    listed = database_permissions(dba, world, "DATABASE", nick)
    assert listed.success, dba.last_raw
    (row,) = listed.user_permissions.user_permission
    assert (row.user_id, row.user_nick_name, row.ds_type, row.db_id) == (
        str(grantee),
        nick,
        "DATABASE",
        db,
    )
    assert set(details(row)) == {"QUERY", "EXPORT"}
    assert dba.last_raw is not None
    raw_row = dba.last_raw["UserPermissions"]["UserPermission"][0]
    assert "Host" not in raw_row and "Port" not in raw_row, raw_row
    tables = database_permissions(dba, world, "TABLE", nick).user_permissions.user_permission
    assert sorted(t.table_name for t in tables) == ["orders", "refunds"]

    # revoke QUERY on the database by its UserAccessId: EXPORT and the rest stay
    query_id = on_db_details["QUERY"].user_access_id
    revoke = {
        "user_id": str(grantee),
        "ds_type": "DATABASE",
        "db_id": db,
        "perm_types": "QUERY",
        "user_access_id": query_id,
    }
    assert admin.call("RevokeUserPermission", **revoke).success, admin.last_raw
    (on_db,) = user_permissions(mine, grantee, "DATABASE")
    assert list(details(on_db)) == ["EXPORT"]
    assert details(on_db)["EXPORT"].user_access_id == on_db_details["EXPORT"].user_access_id
    assert len(user_permissions(mine, grantee, "TABLE")) == 2
    assert len(user_permissions(mine, grantee, "INSTANCE")) == 1
    refused(admin, admin.call("RevokeUserPermission", **revoke), "UserPermissionNotFound")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_list_database_user_permissions_by_role(world: World, flavor: Flavor) -> None:
    nick = "Grantee roles"
    assert grant(
        world.dms("Perm Admin", "v3"), world.uid(nick), "DATABASE", "EXPORT", db_id=str(world.db_id)
    ).success
    admin = world.dms("Perm Admin", flavor)
    owner = world.dms("Owner", flavor)
    plain = world.dms("Plain", flavor)

    def set_owner(label: str) -> None:
        resp = admin.call(
            "SetOwners",
            resource_id=str(world.db_id),
            owner_type="DATABASE",
            owner_ids=str(world.uid(label)),
        )
        assert resp.success, admin.last_raw

    set_owner("Perm Admin")
    refused(owner, database_permissions(owner, world, "DATABASE", nick), "PermissionDenied")
    set_owner("Owner")
    for who in (admin, world.dms("Perm DBA", flavor), owner):
        resp = database_permissions(who, world, "DATABASE", nick)
        assert resp.success, who.last_raw
        assert [r.user_id for r in resp.user_permissions.user_permission] == [str(world.uid(nick))]
        assert resp.total_count == 1
    refused(plain, database_permissions(plain, world, "DATABASE", nick), "PermissionDenied")
    # another tenant's database does not exist for this tenant's DBA
    other = world.dms("Perm DBA", flavor).call(
        "ListDatabaseUserPermssions", db_id=str(world.foreign_db_id), perm_type="DATABASE"
    )
    assert (other.success, other.error_code) == (False, "DatabaseNotFound")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_grant_refusals(world: World, flavor: Flavor) -> None:
    admin = world.dms("Perm Admin", flavor)
    grantee = world.uid(f"Grantee {flavor}")
    db = str(world.db_id)
    resp = grant(admin, grantee, "DATABASE", "QUERY", db_id=str(world.foreign_db_id))
    refused(admin, resp, "DatabaseNotFound")
    resp = grant(admin, world.uid("Foreign Admin"), "DATABASE", "QUERY", db_id=db)
    refused(admin, resp, "UserNotFound")
    resp = grant(admin, grantee, "TABLE", "CORRECT", table_id=str(NO_SUCH_ID))
    refused(admin, resp, "TableNotFound")

    failure = admin.fail(
        "GrantUserPermission",
        user_id=str(grantee),
        ds_type="DATABASE",
        db_id=db,
        perm_types="QUERY",
        expire_date="2031/02/03 04:05",
    )
    assert_failure(world.server, failure, 400, "InvalidExpireDate")
    failure = admin.fail(
        "GrantUserPermission",
        user_id=str(grantee),
        ds_type="DATABASE",
        db_id=db,
        perm_types="QUERY,TELEPORT",
        expire_date=EXPIRE,
    )
    assert_failure(world.server, failure, 400, "InvalidPermTypes")
    # a plain user may not grant
    plain = world.dms("Plain", flavor)
    failure = plain.fail(
        "GrantUserPermission",
        user_id=str(grantee),
        ds_type="DATABASE",
        db_id=db,
        perm_types="QUERY",
        expire_date=EXPIRE,
    )
    assert_failure(world.server, failure, 403, "Forbidden.RAM")


def test_grant_user_permission_is_post_only(world: World) -> None:
    server = world.server
    signer = world.users["Perm Admin"].signer(server)
    grantee = str(world.uid("Grantee raw"))
    query = {
        "UserId": grantee,
        "DsType": "DATABASE",
        "DbId": str(world.db_id),
        "PermTypes": "QUERY",
        "ExpireDate": LATER,
    }
    resp = server.send(signer.v3("GrantUserPermission", query, method="GET"))
    assert_http_error(server, resp, 400, "UnsupportedHTTPMethod")
    resp = server.send(signer.v1("GrantUserPermission", query, method="GET"))
    assert_http_error(server, resp, 400, "UnsupportedHTTPMethod")
    listing = {"UserId": grantee, "PermType": "DATABASE"}
    listed = server.send(signer.v3("ListUserPermissions", listing, method="GET"))
    assert listed.json()["TotalCount"] == 0, listed.text  # the GET granted nothing

    resp = server.send(signer.v3("GrantUserPermission", query))
    assert resp.status_code == 200 and resp.json()["Success"] is True, resp.text
    for method in ("GET", "POST"):  # listing takes either
        listed = server.send(signer.v3("ListUserPermissions", listing, method=method))
        assert listed.status_code == 200, listed.text
        (row,) = listed.json()["UserPermissions"]["UserPermission"]
        (detail,) = row["PermDetails"]["PermDetail"]
        assert (detail["PermType"], detail["ExpireDate"]) == ("QUERY", LATER), row


# ------------------------------------------------------------------ 3. attachments


@pytest.fixture(scope="module")
def file_server() -> Iterator[str]:
    """A small http.server on loopback serving ``fix.sql``; any other path is a 404."""
    with tempfile.TemporaryDirectory(prefix="opendms-e2e-files-") as tmp:
        (Path(tmp) / "fix.sql").write_bytes(SQL_FILE)
        with serving(Path(tmp)) as url:
            yield url


def upload_job(dms: Dms, url: str, name: str = "fix.sql") -> Any:
    created = dms.call(
        "CreateUploadFileJob", file_name=name, file_source="datacorrect", upload_url=url
    )
    assert created.success, dms.last_raw
    assert created.job_key

    def ended() -> Any:  # the fetch runs on the server's upload runner
        got = dms.call("GetUserUploadFileJob", job_key=created.job_key)
        assert got.success, dms.last_raw
        status = got.upload_file_job_detail.job_status
        return got.upload_file_job_detail if status in ("SUCCESS", "FAIL") else None

    detail = wait_for(f"the upload of {name}", ended, timeout=60)
    assert (detail.job_key, detail.file_name, detail.upload_url) == (created.job_key, name, url)
    assert (detail.file_source, detail.upload_type) == ("datacorrect", "URL")
    return detail


def file_ticket(dms: Dms, world: World, key: str) -> int:
    """A DC_COMMON ticket whose SQL is the attachment ``key``, which is also its attachment."""
    param = dms_models.CreateDataCorrectOrderRequestParam().from_map(
        {
            "DbItemList": [{"DbId": world.db_id, "Logic": False}],
            "EstimateAffectRows": 1,
            "SqlType": "ATTACHMENT",
            "AttachmentName": key,
            "RollbackSqlType": "TEXT",
            "RollbackSQL": "UPDATE orders SET status = 'new' WHERE id = 1",
            "Classify": "fix",
        }
    )
    resp = dms.call(
        "CreateDataCorrectOrder", param=param, comment="SQL from an upload", attachment_key=key
    )
    assert resp.success, dms.last_raw
    (order_id,) = resp.create_order_result
    return int(order_id)


def download_link(dms: Dms, order_id: int) -> str:
    resp = dms.call("GetOrderAttachmentFile", order_id=order_id)
    assert resp.success, dms.last_raw
    return str(resp.file_url)


def fetch(url: str) -> httpx.Response:
    return httpx.get(url, trust_env=False, timeout=30)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_upload_jobs_tickets_and_download_links(
    world: World, file_server: str, flavor: Flavor
) -> None:
    server = world.server
    me = world.dms("Uploader", flavor)

    done = upload_job(me, f"{file_server}/fix.sql")
    assert (done.job_status, done.file_size, done.uploaded_size) == (
        "SUCCESS",
        len(SQL_FILE),
        len(SQL_FILE),
    )
    key = str(done.attachment_key)
    assert key

    failed = upload_job(me, f"{file_server}/missing.sql", "missing.sql")
    assert failed.job_status == "FAIL"
    assert "404" in str(failed.job_status_desc), failed.to_map()
    assert failed.attachment_key is None

    bad = me.call(
        "CreateUploadFileJob",
        file_name="passwd",
        file_source="datacorrect",
        upload_url="file:///etc/passwd",
    )
    assert "http" in refused(me, bad, "InvalidParameter")

    other = world.dms("Plain", flavor)
    refused(other, other.call("GetUserUploadFileJob", job_key=done.job_key), "UploadJobNotFound")
    refused(me, me.call("GetUserUploadFileJob", job_key="job-nope"), "UploadJobNotFound")

    order_id = file_ticket(me, world, key)
    info = me.call("GetOrderBaseInfo", order_id=order_id).order_base_info
    assert (info.attachment_key, info.origin_attachment_name) == (key, "fix.sql")

    link = download_link(me, order_id)
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == server.base_url, link
    assert parts.path == f"/files/{key}", link
    got = fetch(link)
    assert got.status_code == 200, got.text
    assert got.content == SQL_FILE
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(SQL_FILE).hexdigest()
    # the DBA may read the ticket's attachment too; a stranger may not even see the ticket
    assert fetch(download_link(world.dms("Perm DBA", flavor), order_id)).content == SQL_FILE
    refused(other, other.call("GetOrderAttachmentFile", order_id=order_id), "OrderNotFound")

    # a changed signature, or the signature of one key on another, is a JSON 404
    signature = re.search(r"signature=([^&]+)", link)
    assert signature
    sig = signature.group(1)
    forged = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    tampered = link.replace(f"signature={sig}", f"signature={forged}")
    assert_http_error(server, fetch(tampered), 404, "InvalidAction.NotFound")
    unsigned = link.split("?")[0]
    assert_http_error(server, fetch(unsigned), 404, "InvalidAction.NotFound")
    second = upload_job(me, f"{file_server}/fix.sql", "again.sql")
    assert second.attachment_key and second.attachment_key != key
    elsewhere = link.replace(f"/files/{key}", f"/files/{second.attachment_key}")
    assert_http_error(server, fetch(elsewhere), 404, "InvalidAction.NotFound")


def signed_upload(world: World, label: str, name: str, body: bytes) -> Prepared:
    """``UploadFile`` with the file as the body, V3-signed over the body's hash."""
    creds = world.users[label]
    return creds.signer(world.server).v3("UploadFile", {"FileName": name}, raw_body=body)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_upload_file_body_becomes_a_ticket_attachment(world: World, flavor: Flavor) -> None:
    server = world.server
    body = f"DELETE FROM refunds WHERE id = 7; -- {flavor}\n".encode()
    resp = server.send(signed_upload(world, "Uploader", f"fix-{flavor}.sql", body))
    assert resp.status_code == 200, resp.text
    uploaded = resp.json()
    assert uploaded["Success"] is True, uploaded
    assert REQUEST_ID.match(uploaded["RequestId"])
    assert (uploaded["FileSize"], uploaded["Sha256"]) == (
        len(body),
        hashlib.sha256(body).hexdigest(),
    )
    key = uploaded["AttachmentKey"]

    me = world.dms("Uploader", flavor)
    order_id = file_ticket(me, world, key)
    info = me.call("GetOrderBaseInfo", order_id=order_id).order_base_info
    assert (info.attachment_key, info.origin_attachment_name) == (key, f"fix-{flavor}.sql")
    got = fetch(download_link(me, order_id))
    assert got.status_code == 200, got.text
    assert got.content == body

    # the body is not what was signed
    tampered = signed_upload(world, "Uploader", "x.sql", body)
    tampered.body = body + b"-- more\n"
    assert_http_error(server, server.send(tampered), 400, "SignatureDoesNotMatch")


def test_upload_file_refuses_a_v1_signature(world: World) -> None:
    signer = world.users["Uploader"].signer(world.server)
    resp = world.server.send(signer.v1("UploadFile", {"FileName": "fix.sql"}))
    assert_http_error(world.server, resp, 400, "IncompleteSignature")
    form = world.server.send(
        signer.v1("UploadFile", {"FileName": "fix.sql"}, form={"x": "DELETE FROM t"})
    )
    assert_http_error(world.server, form, 400, "IncompleteSignature")


# ------------------------------------------------------------------ product bugs


@pytest.fixture(scope="module")
def bare() -> Iterator[tuple[Server, dict[str, Creds]]]:
    """A server of its own, with an administrator in each of three tenants: the instance bugs
    below end in a 500 (a traceback in the log) and must not trip the module's health check."""
    with running_server() as s, mysql_database():  # (skips when MariaDB is missing)
        tids = new_tenants(s, ["collide", "port", "host"])
        admins = new_users(s, {name: ("ADMIN", tid) for name, tid in tids.items()})
        yield s, admins


def add_maria(dms: Dms, host: str, port: int = 3306) -> None:
    resp = add_instance(dms, instance_alias=f"maria@{host.strip()}", host=host, port=port)
    assert resp.success, dms.last_raw


def test_update_instance_onto_a_taken_address_is_refused(
    bare: tuple[Server, dict[str, Creds]],
) -> None:
    """Moving an instance onto a Host:Port:Sid another instance has is refused like adding it
    there: the business error InstanceAlreadyExists, not a unique-constraint failure."""
    server, admins = bare
    dms = Dms(server, admins["collide"], "v3")
    add_maria(dms, "127.0.0.1")
    add_maria(dms, "localhost")  # the same MariaDB under another name
    moving = dms.call("GetInstance", host="localhost", port=3306).instance.instance_id
    try:
        resp = dms.call("UpdateInstance", instance_id=moving, host="127.0.0.1")
    except ServerException as exc:
        pytest.fail(f"UpdateInstance onto a taken address: HTTP {exc.status_code} {exc.code}")
    assert (resp.success, resp.error_code) == (False, "InstanceAlreadyExists"), dms.last_raw


def test_update_instance_port_zero_means_the_default(
    bare: tuple[Server, dict[str, Creds]],
) -> None:
    """Port 0 means the engine's default port for UpdateInstance as for AddInstance: the
    instance is still found at 127.0.0.1:3306 afterwards."""
    server, admins = bare
    dms = Dms(server, admins["port"], "v3")
    add_maria(dms, "127.0.0.1", port=0)
    inst = dms.call("GetInstance", host="127.0.0.1", port=3306).instance
    assert inst.port == 3306  # AddInstance: 0 is the default port
    assert dms.call("UpdateInstance", instance_id=inst.instance_id, port=0).success
    got = dms.call("GetInstance", host="127.0.0.1", port=3306)
    assert got.success, dms.last_raw
    assert got.instance.port == 3306


def test_update_instance_trims_the_host(
    bare: tuple[Server, dict[str, Creds]],
) -> None:
    """UpdateInstance stores Host trimmed, as AddInstance does, so the instance stays findable
    by the address it connects to."""
    server, admins = bare
    dms = Dms(server, admins["host"], "v3")
    add_maria(dms, " 127.0.0.1 ")
    inst = dms.call("GetInstance", host="127.0.0.1", port=3306).instance
    assert inst.host == "127.0.0.1"  # AddInstance strips
    assert dms.call("UpdateInstance", instance_id=inst.instance_id, host=" localhost ").success
    got = dms.call("GetInstance", host="localhost", port=3306)
    assert got.success, dms.last_raw
    assert got.instance.host == "localhost"


def test_column_level_listings_are_empty(world: World) -> None:
    """OpenDMS has no column privileges: PermType=COLUMN lists nothing rather than every
    privilege at other levels."""
    admin = world.dms("Perm Admin", "v3")
    user = world.uid("Bug Grantee")
    assert grant(admin, user, "DATABASE", "QUERY", db_id=str(world.db_id)).success
    assert grant(admin, user, "TABLE", "CORRECT", table_id=str(world.table_ids["orders"])).success
    rows = user_permissions(admin, user, "COLUMN")
    assert [(r.ds_type, r.table_name) for r in rows] == []
    listed = database_permissions(admin, world, "COLUMN", "Bug Grantee")
    assert listed.total_count == 0, admin.last_raw


def test_grant_on_an_unknown_table_name_is_refused(world: World) -> None:
    """A TABLE grant by DbId + TableName checks the table like one by TableId: TableNotFound
    for a table the catalog does not know."""
    admin = world.dms("Perm Admin", "v3")
    user = world.uid("Bug Grantee")
    resp = grant(admin, user, "TABLE", "QUERY", db_id=str(world.db_id), table_name="no_such_table")
    assert (resp.success, resp.error_code) == (False, "TableNotFound"), admin.last_raw
