"""The ticket list (``/console/orders``): the tickets the user may see, filtered by scope,
type, status, database, creation time and text, a page at a time.

The filter form is a plain GET form, so the list works without JavaScript and every view of
it is a link. With htmx a change of filter or page asks for the results alone (``HX-Target``
names them), swaps them in and pushes the URL: the page is not reloaded. A filter value that
makes no sense (a date that is no date, an unknown status) is left out of the query and named
beside its field; the list never becomes an error page for it.

The tickets are read through ``tickets.list_orders``, as ListOrders reads them (its RAM
policy, the same visibility and scope rules), with the filters the wire does not have."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session
from starlette.responses import Response

from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.store.states import OrderStatus
from opendms.tickets import registry
from opendms.tickets import service as tickets
from opendms.web.page import Page, url
from opendms.web.routing import get

RESULTS = "orders-results"  # the element htmx swaps: the results, not the form
# ListOrders' OrderResultType, in words; AS_ADMIN is offered to administrators only.
SCOPES = {
    "AS_COMMITTER": "Mine",
    "AS_HANDLER": "Waiting for me",
    "AS_Related": "Related to me",
    "AS_OWNER": "On my databases and instances",
    "AS_ADMIN": "Everyone's",
}
DEFAULT_SCOPE = "AS_COMMITTER"
# Each status as the status badges of _macros.html say it, and ListOrders' two groups.
STATUS_WORDS = {
    OrderStatus.NEW: "New",
    OrderStatus.TOAUDIT: "Waiting for approval",
    OrderStatus.APPROVED: "Approved",
    OrderStatus.REJECT: "Rejected",
    OrderStatus.PROCESSING: "Running",
    OrderStatus.SUCCESS: "Done",
    OrderStatus.CLOSED: "Closed",
}
GROUPS = {"running": ("RUNNING", "Not finished"), "finished": ("FINISHED", "Finished")}
SIZES = (10, 20, 50, 100)
DEFAULT_SIZE = 20
MAX_SEARCH = 256  # ListOrders' SearchContent
MAX_PAGE = 10**9  # ListOrders' PageNumber
MAX_ID = 2**63 - 1
# Databases the picker lists; a tenant with more gets a field for the database's id.
PICKER_MAX = 500
# What "created from/until" accept: a date (a whole day), or a date and time, in UTC.
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass
class Filters:
    """What the query string asks for: the values as typed (to show them again), the
    OrderFilter of those that make sense, and a message for each that does not."""

    values: dict[str, str]
    query: tickets.OrderFilter = field(default_factory=tickets.OrderFilter)
    errors: dict[str, str] = field(default_factory=dict)
    applied: dict[str, str] = field(default_factory=dict)  # the values the query used
    size: int = DEFAULT_SIZE
    page: int = 1

    def drop(self, name: str, message: str, **change: Any) -> None:
        """Leave the filter ``name`` out of the query (``change``: its OrderFilter fields
        as they are without it), saying why beside it."""
        self.errors[name] = message
        self.applied.pop(name, None)
        self.query = replace(self.query, **change)


def _time(text: str, *, end: bool) -> datetime:
    """A date (the whole day) or a date and time, in UTC; ``end``: the day's last second."""
    for fmt in DATE_FORMATS:
        try:
            found = datetime.strptime(text, fmt)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d" and end:
            return found.replace(hour=23, minute=59, second=59)
        return found
    raise ValueError(text)


def _number(text: str, top: int) -> int | None:
    """A whole number from 1 to ``top`` written in ASCII digits, else None."""
    if text.isascii() and text.isdigit() and len(text) <= len(str(top)) and 0 < int(text) <= top:
        return int(text)
    return None


def _scope(f: Filters, kw: dict[str, Any]) -> None:
    scope = f.values["scope"] or DEFAULT_SCOPE
    if scope not in SCOPES:
        f.errors["scope"] = f"There is no list {scope[:64]!r}; showing your own tickets."
        scope = DEFAULT_SCOPE
    kw["scope"] = scope
    if scope != DEFAULT_SCOPE:
        f.applied["scope"] = scope


def _type(f: Filters, kw: dict[str, Any]) -> None:
    kind = f.values["type"]
    if not kind:
        return
    if kind == registry.DATA_CORRECT or registry.find(kind) is not None:
        kw["plugin_type"] = f.applied["type"] = kind
    else:
        f.errors["type"] = f"There is no ticket type {kind[:64]!r}."


def _status(f: Filters, kw: dict[str, Any]) -> None:
    word = f.values["status"].lower()  # "approved" is as good as DMS's "Approved"
    known = {s.value.lower(): s for s in OrderStatus}
    if not word:
        return
    if word in GROUPS:
        kw["status"] = GROUPS[word][0]
        f.applied["status"] = word
    elif word in known:
        kw["statuses"] = frozenset({known[word]})
        f.applied["status"] = known[word].value
    else:
        f.errors["status"] = f"There is no status {f.values['status'][:64]!r}."


def _database(f: Filters, kw: dict[str, Any]) -> None:
    if not f.values["db"]:
        return
    db_id = _number(f.values["db"], MAX_ID)
    if db_id is None:
        f.errors["db"] = "A database is chosen by its id, a number."
    else:
        kw["db_id"] = db_id
        f.applied["db"] = str(db_id)


def _times(f: Filters, kw: dict[str, Any]) -> None:
    for name, field_name, end in (("since", "start", False), ("until", "end", True)):
        text = f.values[name]
        if not text:
            continue
        try:
            kw[field_name] = _time(text, end=end)
        except ValueError:
            f.errors[name] = (
                "Write a date as YYYY-MM-DD, or a date and time as YYYY-MM-DD HH:MM (UTC)."
            )
        else:
            f.applied[name] = text
    if kw.get("start") and kw.get("end") and kw["start"] > kw["end"]:
        f.errors["until"] = "This is before the “from” date: no ticket could be in between."
        del kw["end"]
        f.applied.pop("until")


def _search(f: Filters, kw: dict[str, Any]) -> None:
    text = f.values["q"]
    if len(text) > MAX_SEARCH:
        f.errors["q"] = f"Search for at most {MAX_SEARCH} characters."
    elif text:
        kw["search"] = f.applied["q"] = text


def _paging(f: Filters, _kw: dict[str, Any]) -> None:
    size, number = f.values["size"], f.values["page"]
    if size in {str(n) for n in SIZES}:
        f.size = int(size)
        if f.size != DEFAULT_SIZE:
            f.applied["size"] = size
    elif size:
        f.errors["size"] = f"Show {', '.join(map(str, SIZES))} tickets a page."
    if number:
        found = _number(number, MAX_PAGE)
        if found is None:
            f.errors["page"] = f"There is no page {number[:32]!r}; here is the first."
        else:
            f.page = found


def read_filters(page: Page) -> Filters:
    """The query string's filters: each value that makes sense goes into the OrderFilter
    (and into ``applied``, the list's address), each other one gets a message."""
    names = ("scope", "type", "status", "db", "since", "until", "q", "size", "page")
    f = Filters({name: page.field(name).strip() for name in names})
    kw: dict[str, Any] = {}
    for parse in (_scope, _type, _status, _database, _times, _search, _paging):
        parse(f, kw)
    f.query = tickets.OrderFilter(**kw)
    return f


# ------------------------------------------------------------------ reads


@dataclass(frozen=True)
class Row:
    order_id: int
    plugin_type: str
    type_name: str
    comment: str
    committer: str
    created_at: datetime
    status_code: str
    status_detail: str  # StatusDesc where it says more than the status (a failed execution)
    databases: tuple[str, ...]


@dataclass(frozen=True)
class Databases:
    """The picker's databases: (DbId, name) by name, and how many the tenant has (counted
    to one past the picker's limit: more, and the filter takes an id instead)."""

    choices: list[tuple[int, str]]
    total: int


@dataclass(frozen=True)
class Listing:
    total: int
    rows: list[Row]
    databases: Databases | None  # None: not asked for, or the user may not search them


def database_name(catalog: str, schema: str, instance: str) -> str:
    """A database as the list names it: schema (catalog.schema where the catalog is more
    than MySQL's "def"), and its instance."""
    if catalog and catalog not in (schema, "def"):
        schema = f"{catalog}.{schema}"
    return f"{schema} · {instance}"


def listing(
    s: Session,
    caller: Caller,
    f: tickets.OrderFilter,
    page: int,
    size: int,
    *,
    pick_databases: bool = False,
) -> Listing:
    """A page of the caller's tickets as ListOrders reads them, with what the list shows of
    each (committer, status in words, databases) read for the whole page at once; and with
    ``pick_databases`` the databases SearchDatabase finds, for the picker. One transaction
    and one trip to a worker thread for all of it."""
    if f.db_id is not None:
        queries.get_database(s, caller.tid, f.db_id)  # DatabaseNotFound: said beside it
    found = tickets.list_orders(s, caller, f, page, size)
    people = identity.users_by_id(s, [o.committer_id for o in found.items])
    descs = tickets.status_descs(s, found.items)
    names = tickets.database_names(s, [o.order_id for o in found.items])
    rows = []
    for o in found.items:
        kind = registry.find(o.plugin_type)
        committer = people.get(o.committer_id)
        desc = descs[o.order_id]
        rows.append(
            Row(
                order_id=o.order_id,
                plugin_type=o.plugin_type,
                type_name=kind.summary if kind else o.plugin_type,
                comment=o.comment,
                committer=(committer.nick_name or committer.uid) if committer else "",
                created_at=o.created_at,
                status_code=o.status_code,
                status_detail="" if desc == tickets.STATUS_DESC.get(o.status_code) else desc,
                databases=tuple(
                    database_name(d.catalog_name, d.schema_name, d.instance_alias)
                    for d in names[o.order_id]
                ),
            )
        )
    return Listing(found.total, rows, databases(s, caller) if pick_databases else None)


def databases(s: Session, caller: Caller) -> Databases:
    """The databases the caller finds with SearchDatabase, for the picker (one more than it
    lists, to tell whether there are more)."""
    found = queries.database_choices(s, caller.tid, PICKER_MAX + 1)
    choices = [(db_id, database_name(*name)) for db_id, *name in found[:PICKER_MAX]]
    return Databases(sorted(choices, key=lambda c: (c[1].lower(), c[0])), len(found))


async def read_listing(page: Page, f: Filters, *, pick_databases: bool) -> Listing:
    """The listing (read as ListOrders, under its RAM policy), with the picker's databases
    when asked and SearchDatabase is allowed (else the filter takes an id). A filter the
    service refuses is left out and named beside its field: AS_ADMIN asked by someone who
    is no administrator, a database the tenant has not."""
    pick = pick_databases and await page.may("SearchDatabase")
    while True:
        query = f.query
        try:
            return await page.read(
                "ListOrders", listing, query, f.page, f.size, pick_databases=pick
            )
        except DmsError as exc:
            if exc.code == ErrorCode.PERMISSION_DENIED and query.scope == "AS_ADMIN":
                f.drop("scope", f"{exc.message} Showing your own tickets.", scope=DEFAULT_SCOPE)
            elif exc.code == ErrorCode.DATABASE_NOT_FOUND and query.db_id is not None:
                f.drop("db", f"No database {query.db_id} here.", db_id=None)
            else:
                raise


# ------------------------------------------------------------------ the page


def _wants_results_only(page: Page) -> bool:
    """An htmx request for the results alone; a history restore wants the whole page."""
    headers = page.request.headers
    return headers.get("hx-target") == RESULTS and not headers.get("hx-history-restore-request")


async def orders(page: Page) -> Response:
    f = read_filters(page)
    results_only = _wants_results_only(page)
    found = await read_listing(page, f, pick_databases=not results_only)
    context: dict[str, Any] = {
        "listing": found,
        "f": f,
        "query": f.applied,
        "results_id": RESULTS,
        "filter_names": ("scope", "type", "status", "db", "since", "until", "q", "size"),
    }
    if results_only:
        response = page.render("_orders_results.html", oob=True, **context)
        # the address bar shows the list as asked, without empty or refused fields
        response.headers["hx-push-url"] = url("/orders", **f.applied, page=_page_param(f))
        return response
    caller = page.caller
    return page.render(
        "orders.html",
        oob=False,
        scopes={k: v for k, v in SCOPES.items() if k != "AS_ADMIN" or caller.is_admin},
        kinds=[(k.plugin_type, k.summary) for k in registry.all_kinds()],
        data_correct=registry.DATA_CORRECT,
        statuses=[(s.value, word) for s, word in STATUS_WORDS.items()],
        groups={k: v[1] for k, v in GROUPS.items()},
        sizes=SIZES,
        picker=found.databases,
        # a date field shows a date only: a time given in the address keeps a text field
        date_types={
            name: "text" if f.values[name] and not _DATE.fullmatch(f.values[name]) else "date"
            for name in ("since", "until")
        },
        **context,
    )


def _page_param(f: Filters) -> int | None:
    return f.page if f.page > 1 and "page" not in f.errors else None


ROUTES = [get("/orders", orders)]
