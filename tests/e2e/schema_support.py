"""What the schema-change end-to-end tests share: the OpenDMS extension actions called with a
raw V3-signed request (the SDKs have no model for them), registering instances of a given
environment and DdlOnline, and each engine's table structure read straight from its own
catalog, independently of OpenDMS's reading of it."""

from __future__ import annotations

import re
from typing import Any

from tests.e2e.conftest import REQUEST_ID, Creds, Dms, Server, wait_for


def extension(server: Server, who: Creds, action: str, **params: Any) -> dict[str, Any]:
    """An OpenDMS extension action called as ``who`` (V3 signature, parameters in the query);
    its JSON body, whatever it says (HTTP 200: a business answer)."""
    query = {name: str(value) for name, value in params.items()}
    resp = server.send(who.signer(server).v3(action, query))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert isinstance(body, dict) and REQUEST_ID.match(body["RequestId"]), body
    return body


def extension_refused(
    server: Server, who: Creds, action: str, code: str, *fragments: str, **params: Any
) -> str:
    """An extension action's business refusal: Success false, ``code``, every fragment in
    its message; the message."""
    body = extension(server, who, action, **params)
    assert body["Success"] is False, body
    assert body["ErrorCode"] == code, body
    for fragment in fragments:
        assert fragment in body["ErrorMessage"], (fragment, body)
    return str(body["ErrorMessage"])


def add_instance(
    dms: Dms,
    *,
    alias: str,
    engine: str,
    port: int,
    user: str,
    env: str,
    dba: Creds,
    sid: str | None = None,
    ddl_online: int | None = None,
) -> int:
    """A MariaDB or PostgreSQL server (``sid``: the PostgreSQL catalog) added with AddInstance
    in environment ``env`` under the default security rules, ``dba`` its DBA; its
    InstanceId."""
    added = dms.call(
        "AddInstance",
        instance_alias=alias,
        instance_source="VPC_IDC",
        network_type="VPC",
        env_type=env,
        safe_rule="default",
        query_timeout=60,
        export_timeout=600,
        dba_id=dba.user_id,
        host="127.0.0.1",
        port=port,
        sid=sid,
        instance_type=engine,
        database_user=user,
        database_password="",
        ddl_online=ddl_online,
    )
    assert added.success is True, dms.last_raw
    got = dms.call("GetInstance", host="127.0.0.1", port=port, sid=sid)
    assert got.success is True, dms.last_raw
    assert got.instance.env_type == env, dms.last_raw
    if ddl_online is not None:
        assert got.instance.ddl_online == ddl_online, dms.last_raw
    return int(got.instance.instance_id)


def db_id(dms: Dms, instance_id: int, schema: str, catalog: str | None = None) -> int:
    """The DbId of ``schema`` (of ``catalog``, on PostgreSQL) on an instance."""
    found = dms.call("ListDatabases", instance_id=str(instance_id), page_size=1000)
    assert found.success is True, dms.last_raw
    ids = [
        int(d.database_id)
        for d in found.database_list.database
        if d.schema_name == schema and catalog in (None, d.catalog_name)
    ]
    assert len(ids) == 1, (schema, catalog, dms.last_raw)
    return ids[0]


def status_of(dms: Dms, order_id: int) -> str:
    """The ticket's StatusCode (GetOrderBaseInfo)."""
    resp = dms.call("GetOrderBaseInfo", order_id=order_id)
    assert resp.success is True, dms.last_raw
    return str(resp.order_base_info.status_code)


def approve(committer: Dms, approver: Dms, order_id: int) -> None:
    """The submitted ticket approved by ``approver`` (ApproveOrder AGREE): Approved."""
    assert status_of(committer, order_id) == "toaudit", committer.last_raw
    info = committer.call("GetOrderBaseInfo", order_id=order_id).order_base_info
    agreed = approver.call(
        "ApproveOrder",
        workflow_instance_id=info.workflow_instance_id,
        approval_type="AGREE",
        comment="looks right",
    )
    assert agreed.success is True, approver.last_raw
    wait_for("the approval", lambda: status_of(committer, order_id) == "Approved", timeout=30)


# ------------------------------------------------------------------ structures, read directly


def mariadb_tables(query: Any, schema: str) -> dict[str, str]:
    """Each base table of ``schema`` and its SHOW CREATE TABLE, without the AUTO_INCREMENT
    counter (a table's next number, not its structure)."""
    names = [
        str(n)
        for (n,) in query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
            f"'{schema}' AND TABLE_TYPE = 'BASE TABLE'"
        )
    ]
    found = {}
    for name in names:
        ((_, text),) = query(f"SHOW CREATE TABLE `{schema}`.`{name}`")
        found[name] = re.sub(r" AUTO_INCREMENT=\d+", "", str(text))
    return found


def mariadb_triggers(query: Any, schema: str) -> list[str]:
    return [
        str(n)
        for (n,) in query(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
            f"WHERE TRIGGER_SCHEMA = '{schema}'"
        )
    ]


PG_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       coalesce(pg_get_expr(d.adbin, d.adrelid), ''), coalesce(col_description(c.oid, a.attnum), '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum
"""
PG_INDEXES = """
SELECT t.relname, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %(schema)s
"""
PG_CONSTRAINTS = """
SELECT t.relname, k.conname, pg_get_constraintdef(k.oid)
FROM pg_constraint k
JOIN pg_class t ON t.oid = k.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = %(schema)s
"""
PG_TABLE_COMMENTS = """
SELECT c.relname, coalesce(obj_description(c.oid, 'pg_class'), '')
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
"""


def pg_tables(conn: Any, schema: str) -> dict[str, dict[str, Any]]:
    """Each table of ``schema``: its columns (name, type, NOT NULL, default, comment), its
    indexes (their definitions, the schema's name taken out), constraints and comment, read
    from pg_catalog. A column default that names a sequence keeps only the function."""
    args = {"schema": schema}
    tables: dict[str, dict[str, Any]] = {}

    def table(name: str) -> dict[str, Any]:
        return tables.setdefault(
            name, {"columns": [], "indexes": set(), "constraints": set(), "comment": ""}
        )

    for name, column, typ, not_null, default, comment in conn.execute(PG_COLUMNS, args):
        # nextval('<schema>.t_id_seq'::regclass): the sequence's schema is the table's own
        unqualified = re.sub(r"nextval\('[^']*'::regclass\)", "nextval(<sequence>)", default)
        table(name)["columns"].append((column, typ, not_null, unqualified, comment))
    for name, definition in conn.execute(PG_INDEXES, args):
        table(name)["indexes"].add(definition.replace(f" {_pg_quoted(schema)}.", " "))
    for name, constraint, definition in conn.execute(PG_CONSTRAINTS, args):
        table(name)["constraints"].add((constraint, definition))
    for name, comment in conn.execute(PG_TABLE_COMMENTS, args):
        table(name)["comment"] = comment
    return tables


def _pg_quoted(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_]*", name) else '"' + name.replace('"', '""') + '"'


def pg_triggers(conn: Any, schema: str) -> list[str]:
    """The triggers (not a constraint's own) on the tables of ``schema``."""
    return [
        str(n)
        for (n,) in conn.execute(
            "SELECT tg.tgname FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %(schema)s AND NOT tg.tgisinternal",
            {"schema": schema},
        )
    ]
