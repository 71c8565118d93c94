"""The catalog: instances → databases → tables → columns and indexes, with their owners,
DBAs and sensitive columns; and reading an instance's or a database's metadata again.

Every listing is an action's reply (``page.call``), so what a user sees is what the API
shows them. A page is named by an id, while GetInstance and GetDatabase take an address:
the address is looked up by id the way those actions look them up (in the caller's tenant),
and the reply is checked to be the same row (an address without a Sid can name another).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session
from starlette.responses import Response

from opendms.catalog import queries, sensitive
from opendms.errors import DmsError, ErrorCode
from opendms.gateway.errors import GatewayError
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.sql.script import MYSQL_ENGINES
from opendms.web.page import Page
from opendms.web.routing import get, post

LIST_SIZE = 20  # instances and databases a page
TABLES_SIZE = 50
MAX_PAGE_SIZE = 1000  # the wire's largest PageSize
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_PG_NAME = re.compile(r"[a-z_][a-z0-9_]*")  # PostgreSQL folds other names to lower case


def _number(text: str, what: str) -> int:
    """A positive whole number from the URL; anything else is not found, as an unknown id is."""
    if text.isascii() and text.isdigit() and 0 < len(text) <= 18 and int(text) > 0:
        return int(text)
    raise DmsError(
        ErrorCode.INSTANCE_NOT_FOUND if what == "instance" else ErrorCode.DATABASE_NOT_FOUND,
        f"No {what} {text[:40]!r}.",
    )


def _page_number(page: Page) -> int:
    text = page.field("page", "1") or "1"
    if text.isascii() and text.isdigit() and 0 < len(text) <= 9 and int(text) > 0:
        return int(text)
    raise DmsError(ErrorCode.INVALID_PARAMETER, "page must be a whole number from 1.")


def _search(page: Page) -> str:
    return page.field("q").strip()[:256]


def may_sync(caller: Caller) -> bool:
    """Whether to offer "Read metadata again": administrators and DBAs hold the RAM rights
    to it by default. The action decides; a refusal is shown as its message."""
    return caller.is_admin or Role.DBA in caller.roles


def address(host: str, port: int | str) -> str:
    """host:port, or the file alone for SQLite (port 0)."""
    return f"{host}:{port}" if str(port) not in ("", "0") else host


def like_literal(name: str) -> str:
    """A name as a DMS search text that matches it literally (``store.search``: backslash
    makes ``%``, ``_`` and itself plain)."""
    return re.sub(r"([\\%_])", r"\\\1", name)


def select_from(name: str, engine: str) -> str:
    """A first query on a table for the SQL console, its name quoted where it needs it."""
    if engine in MYSQL_ENGINES:
        shown = name if _PLAIN_NAME.fullmatch(name) else "`" + name.replace("`", "``") + "`"
    else:
        plain = _PLAIN_PG_NAME if engine == "postgresql" else _PLAIN_NAME
        shown = name if plain.fullmatch(name) else '"' + name.replace('"', '""') + '"'
    # text put in the SQL box for the user to read and run, under the console's own checks
    return f"SELECT * FROM {shown}"  # noqa: S608


def table_href(db_id: int | str, name: str) -> str:
    return f"/catalog/databases/{db_id}/tables/{quote(name, safe='')}"


def _owners(item: dict[str, Any]) -> list[str]:
    return list((item.get("OwnerNameList") or {}).get("OwnerNames") or [])


def _failed(exc: DmsError | GatewayError) -> tuple[str, int]:
    """A refusal's words, and the status the console's error page would give it."""
    status = exc.status if isinstance(exc, GatewayError) else 400
    if isinstance(exc, DmsError) and exc.code == ErrorCode.PERMISSION_DENIED:
        status = 403
    elif exc.code.endswith("NotFound"):
        status = 404
    return f"{exc.code}: {exc.message}", status


# ------------------------------------------------------------------ instances


async def instances(page: Page) -> Response:
    search, number = _search(page), _page_number(page)
    found = await page.call(
        "ListInstances", SearchKey=search or None, PageNumber=number, PageSize=LIST_SIZE
    )
    return page.render(
        "catalog_instances.html",
        instances=found["InstanceList"]["Instance"],
        total=int(found["TotalCount"]),
        page=number,
        size=LIST_SIZE,
        search=search,
        address=address,
    )


@dataclass(frozen=True)
class _Address:
    host: str
    port: int
    sid: str


def _instance_address(s: Session, caller: Caller, instance_id: int) -> _Address:
    inst = queries.get_instance(s, caller.tid, instance_id)
    return _Address(inst.host, inst.port, inst.sid)


async def _instance(page: Page, instance_id: int) -> dict[str, Any]:
    """GetInstance's reply for the instance with this id."""
    where = await page.read("GetInstance", _instance_address, instance_id)
    got = await page.call("GetInstance", Host=where.host, Port=where.port, Sid=where.sid or None)
    inst: dict[str, Any] = got["Instance"]
    if inst["InstanceId"] == str(instance_id):
        return inst
    # Another instance at the same host and port answered (one with a Sid, this one with
    # none): the listing filtered by host has them both.
    size, number = MAX_PAGE_SIZE, 1
    while True:
        listed = await page.call(
            "ListInstances", SearchKey=like_literal(where.host), PageNumber=number, PageSize=size
        )
        for item in listed["InstanceList"]["Instance"]:
            if item["InstanceId"] == str(instance_id):
                return dict(item)
        if number * size >= int(listed["TotalCount"]):
            raise DmsError(ErrorCode.INSTANCE_NOT_FOUND, f"Instance {instance_id} does not exist.")
        number += 1


async def _instance_page(
    page: Page, instance_id: int, *, error: str = "", status: int = 200
) -> Response:
    inst = await _instance(page, instance_id)
    search, number = _search(page), _page_number(page)
    dbs = await page.call(
        "ListDatabases",
        InstanceId=instance_id,
        SearchKey=search or None,
        PageNumber=number,
        PageSize=LIST_SIZE,
    )
    return page.render(
        "catalog_instance.html",
        status=status,
        inst=inst,
        owners=_owners(inst),
        databases=[{**d, "owners": _owners(d)} for d in dbs["DatabaseList"]["Database"]],
        total=int(dbs["TotalCount"]),
        page=number,
        size=LIST_SIZE,
        search=search,
        may_sync=may_sync(page.caller),
        error=error,
        address=address,
    )


async def instance(page: Page) -> Response:
    return await _instance_page(page, _number(page.request.path_params["id"], "instance"))


def _sync(
    what: str,
    action: str,
    id_param: str,
    shown: Callable[..., Awaitable[Response]],
    done: str,
) -> Callable[[Page], Awaitable[Response]]:
    """The POST behind a "Sync" button: the action once, then back to the page (with the
    action's refusal on it when it refuses)."""

    async def sync(page: Page) -> Response:
        ident = _number(page.request.path_params["id"], what)
        back = f"/catalog/{what}s/{ident}"
        if not await page.once():
            return page.redirect(back, notice="Already sent: the metadata is read once.")
        try:
            await page.call(action, **{id_param: ident})
        except (DmsError, GatewayError) as exc:
            message, status = _failed(exc)
            return await shown(page, ident, error=message, status=status)
        return page.redirect(back, notice=done)

    return sync


sync_instance = _sync(
    "instance",
    "SyncInstanceMeta",
    "InstanceId",
    _instance_page,
    "Read the instance's databases and tables again.",
)


# ------------------------------------------------------------------ databases


@dataclass(frozen=True)
class _DbAddress:
    host: str
    port: int
    sid: str
    schema: str
    instance_id: int


def _database_address(s: Session, caller: Caller, db_id: int) -> _DbAddress:
    db, inst = queries.get_database_on(s, caller.tid, db_id)
    return _DbAddress(inst.host, inst.port, inst.sid, db.schema_name, inst.instance_id)


async def _database(page: Page, db_id: int) -> dict[str, Any]:
    """GetDatabase's reply for the database with this id."""
    where = await page.read("GetDatabase", _database_address, db_id)
    got = await page.call(
        "GetDatabase",
        Host=where.host,
        Port=where.port,
        SchemaName=where.schema,
        Sid=where.sid or None,
    )
    db: dict[str, Any] = got["Database"]
    if db["DatabaseId"] == str(db_id):
        return db
    # Another database by that address answered (a PostgreSQL schema of the same name in
    # another database, or an instance shadowing this one): its instance's listing has it.
    size, number = MAX_PAGE_SIZE, 1
    while True:
        listed = await page.call(
            "ListDatabases",
            InstanceId=where.instance_id,
            SearchKey=like_literal(where.schema),
            PageNumber=number,
            PageSize=size,
        )
        for item in listed["DatabaseList"]["Database"]:
            if item["DatabaseId"] == str(db_id):
                return {**item, "InstanceAlias": ""}
        if number * size >= int(listed["TotalCount"]):
            raise DmsError(ErrorCode.DATABASE_NOT_FOUND, f"Database {db_id} does not exist.")
        number += 1


@dataclass(frozen=True)
class Flagged:
    table: str
    column: str
    mask: str


def _sensitive(s: Session, caller: Caller, db_id: int) -> list[Flagged]:
    """The database's sensitive columns: GetMetaTableColumn shows the same flags, column by
    column, to whoever may read the database's catalog."""
    return [
        Flagged(f.table_name, f.column_name, f.mask) for f in sensitive.listed(s, caller.tid, db_id)
    ]


async def _database_page(page: Page, db_id: int, *, error: str = "", status: int = 200) -> Response:
    db = await _database(page, db_id)
    search, number = _search(page), _page_number(page)
    tables = await page.call(
        "ListTables",
        DatabaseId=db_id,
        SearchName=search or None,
        PageNumber=number,
        PageSize=TABLES_SIZE,
    )
    flagged = await page.read("GetMetaTableColumn", _sensitive, db_id)
    return page.render(
        "catalog_database.html",
        status=status,
        db=db,
        owners=_owners(db),
        tables=[
            {**t, "owners": _owners(t), "href": table_href(db_id, t["TableName"])}
            for t in tables["TableList"]["Table"]
        ],
        total=int(tables["TotalCount"]),
        page=number,
        size=TABLES_SIZE,
        search=search,
        flagged=flagged,
        may_sync=may_sync(page.caller),
        error=error,
        address=address,
        table_href=table_href,
    )


async def database(page: Page) -> Response:
    return await _database_page(page, _number(page.request.path_params["id"], "database"))


sync_database = _sync(
    "database", "SyncDatabaseMeta", "DbId", _database_page, "Read the database's tables again."
)


# ------------------------------------------------------------------ tables


async def _table(page: Page, db_id: int, name: str) -> dict[str, Any]:
    """ListTables' entry (with its GUID) for the table of this name: the exact name, else
    the one name that differs only in case (SQLite and MySQL on some systems ignore it)."""
    size, number = MAX_PAGE_SIZE, 1
    folded: list[dict[str, Any]] = []
    while True:
        listed = await page.call(
            "ListTables",
            DatabaseId=db_id,
            SearchName=like_literal(name),
            ReturnGuid=True,
            PageNumber=number,
            PageSize=size,
        )
        for item in listed["TableList"]["Table"]:
            if item["TableName"] == name:
                return dict(item)
            if item["TableName"].lower() == name.lower():
                folded.append(item)
        if number * size >= int(listed["TotalCount"]):
            break
        number += 1
    if len(folded) == 1:
        return dict(folded[0])
    raise DmsError(
        ErrorCode.TABLE_NOT_FOUND,
        f"Database {db_id} has no table {name[:128]!r} in its catalog (read its metadata "
        "again if it is new).",
    )


async def table(page: Page) -> Response:
    db_id = _number(page.request.path_params["id"], "database")
    name = page.request.path_params["name"]
    db = await _database(page, db_id)
    t = await _table(page, db_id, name)
    guid = t["TableGuid"]
    columns = (await page.call("GetMetaTableColumn", TableGuid=guid))["ColumnList"]
    detail = (await page.call("GetMetaTableDetailInfo", TableGuid=guid))["DetailInfo"]
    defaults = {
        c["ColumnId"]: c.get("DefaultValue")
        for c in (await page.call("ListColumns", TableId=t["TableId"]))["ColumnList"]["Column"]
    }
    return page.render(
        "catalog_table.html",
        db=db,
        table=t,
        owners=_owners(t),
        columns=[{**c, "DefaultValue": defaults.get(c["ColumnId"])} for c in columns],
        indexes=detail["IndexList"],
        query=select_from(t["TableName"], db["DbType"]),
        address=address,
    )


ROUTES = [
    get("/catalog", instances),
    get("/catalog/instances/{id}", instance),
    post("/catalog/instances/{id}/sync", sync_instance),
    get("/catalog/databases/{id}", database),
    post("/catalog/databases/{id}/sync", sync_database),
    get("/catalog/databases/{id}/tables/{name:path}", table),
]
