"""New ticket: a chooser of ticket types, and one form per type that builds the request of the
type's Create*Order action and calls it as the user signed in, so the API validates it. What
the API finds wrong is shown beside the field it concerns (``field_for``); the rest at the
top of the form, with what the user typed kept.

An import's file is stored first by the files service, exactly as UploadFile stores it (same
size limit): console.js sends it ahead with a progress bar (``upload``) and the form then
carries only the AttachmentKey; without JavaScript the form posts the file itself."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from opendms.actions.files import UploadFileRequest
from opendms.catalog import queries
from opendms.errors import DmsError, ErrorCode
from opendms.files import service as files
from opendms.gateway.errors import GatewayError
from opendms.identity.caller import Caller
from opendms.store.models import Instance
from opendms.store.states import DatabaseState
from opendms.web.page import Page
from opendms.web.routing import Handler, get, post
from opendms.web.site import MAX_FORM_FIELDS

# The picker lists at most this many databases (SearchDatabase's largest page).
PICKER_SIZE = 1000
UPLOAD_SOURCE = "big-file"  # FileSource of an import's file (dms-api.md A.1.5)
CHUNK = 1024 * 1024
EXEC_MODES = (
    ("COMMITOR", "Me, when I choose"),
    ("AUTO", "It runs as soon as it is approved"),
    ("LAST_AUDITOR", "The last approver"),
)
TIME_UNITS = (
    ("", "Dates and times"),
    ("SECONDS", "Seconds since 1970"),
    ("MILLISECONDS", "Milliseconds since 1970"),
)
FILE_TYPES = (("CSV", "CSV"), ("EXCEL", "Excel (XLSX)"), ("SQL", "SQL statements"))
INSERT_TYPES = (
    ("INSERT", "Stop: the row is refused"),
    ("INSERT_IGNORE", "Keep the row already there"),
    ("REPLACE_INTO", "Replace the row already there"),
)
ENCODINGS = (
    ("AUTO", "Detect it"),
    ("UTF-8", "UTF-8"),
    ("GBK", "GBK"),
    ("ISO-8859-1", "ISO-8859-1"),
)
IMPORT_MODES = (
    ("SAFE_MODE", "Safe: the precheck reads the whole file"),
    ("FAST_MODE", "Fast: the file is read as it runs"),
)
Values = dict[str, str]

# ------------------------------------------------------------------ the request of each form


def _number(text: str) -> int | str | None:
    """A number field as the API reads it: an integer when it is one, else the text as typed
    (the API says what is wrong with it), nothing when empty (the API says it is missing)."""
    text = text.strip()
    if not text:
        return None
    return int(text) if re.fullmatch(r"[+-]?[0-9]{1,19}", text) else text


def _present(param: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in param.items() if v is not None}


def _db_items(v: Values) -> list[dict[str, Any]]:
    db = _number(v["db"])
    return [{"DbId": db, "Logic": False}] if db is not None else []


def _rollback(v: Values) -> dict[str, Any]:
    if not v["rollback"].strip():
        return {}
    return {"RollbackSqlType": "TEXT", "RollbackSQL": v["rollback"]}


def data_change_param(v: Values) -> dict[str, Any]:
    """CreateDataCorrectOrder's Param (dms-api.md A.1.2)."""
    return _present(
        {
            "DbItemList": _db_items(v),
            "SqlType": "TEXT",
            "ExecSQL": v["sql"],
            "EstimateAffectRows": _number(v["rows"]),
            "ExecMode": v["exec_mode"] or None,
            **_rollback(v),
        }
    )


def lock_free_param(v: Values) -> dict[str, Any]:
    """CreateFreeLockCorrectOrder's Param (A.1.3): SQL as text only, no row estimate."""
    return _present(
        {
            "DbItemList": _db_items(v),
            "SqlType": "TEXT",
            "ExecSQL": v["sql"],
            "ExecMode": v["exec_mode"] or None,
            **_rollback(v),
        }
    )


ITEM_FIELDS = ("table", "column", "days", "unit", "filter")
# Rows of a cleanup form's table list: as many as a form's fields allow (site.MAX_FORM_FIELDS,
# less the form's other fields). CreateDataCronClearOrder itself takes 100 tables.
MAX_ITEMS = (MAX_FORM_FIELDS - 20) // len(ITEM_FIELDS)


def item_count(v: Mapping[str, str]) -> int:
    raw = v.get("items", "1")
    count = int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 4 else 1
    return min(max(count, 1), MAX_ITEMS)


def compact_items(v: Values) -> Values:
    """A cleanup form's values with its table rows left wholly empty taken out and the rest
    numbered again from 0, as the request lists them (so that a problem with the request's
    n-th table is shown on the form's n-th row). One row stays, so that an empty form is
    told what it lacks."""
    rows = [{f: v.get(f"item-{n}-{f}", "") for f in ITEM_FIELDS} for n in range(item_count(v))]
    kept = [r for r in rows if any(x.strip() for x in r.values())] or rows[:1]
    out = {k: x for k, x in v.items() if not k.startswith("item-")}
    out["items"] = str(len(kept))
    for n, row in enumerate(kept):
        out.update({f"item-{n}-{f}": x for f, x in row.items()})
    return out


def cleanup_items(v: Values) -> list[Values]:
    return [{f: v.get(f"item-{n}-{f}", "") for f in ITEM_FIELDS} for n in range(item_count(v))]


def cleanup_param(v: Values) -> dict[str, Any]:
    """CreateDataCronClearOrder's Param (A.1.4, B.6)."""
    limit = v["limit"] == "on"
    return _present(
        {
            "DbItemList": _db_items(v),
            "CronClearItemList": [
                _present(
                    {
                        "TableName": r["table"],
                        "ColumnName": r["column"],
                        "RemainDays": _number(r["days"]),
                        "TimeUnit": r["unit"] or None,
                        "FilterSQL": r["filter"] or None,
                    }
                )
                for r in cleanup_items(v)
            ],
            "CronFormat": v["cron"],
            "specifyDuration": limit,
            "DurationHour": _number(v["hours"]) if limit else None,
        }
    )


def import_param(v: Values) -> dict[str, Any]:
    """CreateDataImportOrder's Param (A.1.5): the file by its AttachmentKey; a table and the
    row options for CSV and Excel only."""
    rows = v["file_type"] != "SQL"
    return _present(
        {
            "DbItemList": _db_items(v),
            "AttachmentName": v["attachment"] or None,
            "FileType": v["file_type"],
            "TableName": (v["table"] or None) if rows else None,
            "CsvFirstRowIsColumnDef": (v["header"] == "on") if rows else None,
            "InsertType": (v["insert_type"] or None) if rows else None,
            "FileEncoding": v["encoding"] or None,
            "ImportMode": v["import_mode"] or None,
            "IgnoreError": v["ignore_error"] == "on",
            "ExecMode": v["exec_mode"] or None,
        }
    )


def export_param(v: Values, instance_id: int | None) -> dict[str, Any]:
    """CreateDataExportOrder's PluginParam (A.1.6)."""
    skip = v["skip_check"] == "on"
    return _present(
        {
            "DbId": _number(v["db"]),
            "Logic": False,
            "InstanceId": instance_id,
            "ExeSQL": v["sql"],
            # A reason category; DMS's console picks one, the CLI says "cli".
            "Classify": "console",
            "AffectRows": _number(v["rows"]),
            "IgnoreAffectRows": skip,
            "IgnoreAffectRowsReason": (v["skip_why"] or None) if skip else None,
        }
    )


def schema_design_param(v: Values) -> dict[str, Any]:
    """CreateOrder's PluginParam for a schema design (NDDL), camelCase as DMS's console
    sends it: the design itself is given on the ticket's page (UpdateSchemaDesign)."""
    return _present(
        {
            "title": v["title"],
            "dbId": _number(v["db"]),
            "logic": False,
            "description": v["description"] or None,
        }
    )


TABLE_ARROWS = re.compile(r"\s*(?:->|→|=>)\s*")


def table_pairs(text: str) -> list[dict[str, str]]:
    """A structure sync's tables as typed, one a line: ``orders``, or ``orders -> orders_v2``
    to make the target's table of another name match (TableInfoList). Blank lines are
    skipped; an arrow with nothing on one side goes as typed, for the API to refuse."""
    pairs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = TABLE_ARROWS.split(line.strip(), maxsplit=1)
        pair = {"SourceTableName": parts[0]}
        if len(parts) == 2:
            pair["TargetTableName"] = parts[1]
        pairs.append(pair)
    return pairs


def _database_ref(text: str) -> dict[str, Any] | None:
    db = _number(text)
    return {"DbId": db, "Logic": False} if db is not None else None


def structure_sync_param(v: Values) -> dict[str, Any]:
    """CreateStructSyncOrder's Param (A.1.7): no table list is every table of the source."""
    return _present(
        {
            "Source": _database_ref(v["source"]),
            "Target": _database_ref(v["target"]),
            "TableInfoList": table_pairs(v["tables"]) or None,
        }
    )


# ------------------------------------------------------------------ the forms


# Business errors that name no field but concern one.
CODE_FIELDS: Mapping[str, str] = {
    ErrorCode.DATABASE_NOT_FOUND: "db",
    ErrorCode.ATTACHMENT_NOT_FOUND: "file",
}


@dataclass(frozen=True)
class TicketForm:
    slug: str  # /orders/new/<slug>
    title: str
    summary: str  # its line on the chooser
    action: str
    param: str  # the action's parameter that carries the JSON object
    names: tuple[str, ...]  # the form's fields besides the reason (``comment``)
    # A parameter's path inside ``param`` (list indexes as {n}) -> the form field beside
    # which its problems are shown.
    fields: Mapping[str, str]
    defaults: Mapping[str, str] = field(default_factory=dict)
    # Request parameters the form always sends as they are (CreateOrder's PluginType).
    fixed: Mapping[str, str] = field(default_factory=dict)
    # Business errors that name no field, by code -> the field they concern.
    code_fields: Mapping[str, str] = field(default_factory=lambda: CODE_FIELDS)
    # Lists inside ``param`` typed one item a line into one field: a problem with the n-th
    # item is told beside that field as "<word> n: …".
    lines: Mapping[str, str] = field(default_factory=dict)
    # What the ticket's page says it waits for, once filed.
    next_step: str = "Its precheck is running: once it passes, submit it for approval here."

    @property
    def template(self) -> str:
        return f"new_order_{self.slug.replace('-', '_')}.html"


SQL_FIELDS = {
    "DbItemList": "db",
    "SqlType": "sql",
    "ExecSQL": "sql",
    "ExecMode": "exec_mode",
    "RollbackSqlType": "rollback",
    "RollbackSQL": "rollback",
}
FORMS = {
    f.slug: f
    for f in (
        TicketForm(
            "data-change",
            "Data change",
            "Run INSERT, UPDATE or DELETE statements on a database once they are approved.",
            "CreateDataCorrectOrder",
            "Param",
            ("db", "sql", "rows", "exec_mode", "rollback"),
            {**SQL_FIELDS, "EstimateAffectRows": "rows"},
            {"exec_mode": "COMMITOR"},
        ),
        TicketForm(
            "lock-free",
            "Lock-free change",
            "Change many rows of one table in small batches that never hold a lock for long.",
            "CreateFreeLockCorrectOrder",
            "Param",
            ("db", "sql", "exec_mode", "rollback"),
            SQL_FIELDS,
            {"exec_mode": "COMMITOR"},
        ),
        TicketForm(
            "cleanup",
            "Cleanup schedule",
            "Delete rows older than a number of days from tables, on a schedule.",
            "CreateDataCronClearOrder",
            "Param",
            ("db", "cron", "limit", "hours", "items"),
            {
                "DbItemList": "db",
                "CronClearItemList.{n}.TableName": "item-{n}-table",
                "CronClearItemList.{n}.ColumnName": "item-{n}-column",
                "CronClearItemList.{n}.RemainDays": "item-{n}-days",
                "CronClearItemList.{n}.TimeUnit": "item-{n}-unit",
                "CronClearItemList.{n}.FilterSQL": "item-{n}-filter",
                "CronFormat": "cron",
                "specifyDuration": "limit",
                "DurationHour": "hours",
            },
            {"items": "1"},
        ),
        TicketForm(
            "import",
            "Import",
            "Load a CSV, Excel or SQL file into a database.",
            "CreateDataImportOrder",
            "Param",
            (
                "db",
                "attachment",
                "file_label",
                "file_type",
                "table",
                "header",
                "insert_type",
                "encoding",
                "import_mode",
                "ignore_error",
                "exec_mode",
            ),
            {
                "DbItemList": "db",
                "AttachmentName": "file",
                "FileType": "file_type",
                "TableName": "table",
                "CsvFirstRowIsColumnDef": "header",
                "InsertType": "insert_type",
                "FileEncoding": "encoding",
                "ImportMode": "import_mode",
                "IgnoreError": "ignore_error",
                "ExecMode": "exec_mode",
            },
            {
                "file_type": "CSV",
                "header": "on",
                "insert_type": "INSERT",
                "encoding": "AUTO",
                "import_mode": "SAFE_MODE",
                "exec_mode": "COMMITOR",
            },
        ),
        TicketForm(
            "export",
            "Export",
            "Export the result of a query as a file, once it is approved.",
            "CreateDataExportOrder",
            "PluginParam",
            ("db", "sql", "rows", "skip_check", "skip_why"),
            {
                "DbId": "db",
                "Logic": "db",
                "InstanceId": "db",
                "ExeSQL": "sql",
                "AffectRows": "rows",
                "IgnoreAffectRows": "skip_check",
                "IgnoreAffectRowsReason": "skip_why",
            },
        ),
        TicketForm(
            "schema-design",
            "Schema design",
            "Change tables (DDL) on a development database, then carry the same change to "
            "test and product, stage by stage, each shown what it lacks first.",
            "CreateOrder",
            "PluginParam",
            ("title", "db", "description"),
            {
                "Title": "title",
                "DbId": "db",
                "Logic": "db",
                "Description": "description",
            },
            fixed={"PluginType": "NDDL"},
            next_step="Give it its design here: it is reviewed at once, then compared with "
            "each stage's database.",
        ),
        TicketForm(
            "structure-sync",
            "Structure sync",
            "Make the tables of a target database match those of a source: both are read live, "
            "and the DDL is written for the target engine.",
            "CreateStructSyncOrder",
            "Param",
            ("source", "target", "tables"),
            {
                "Source": "source",
                "Target": "target",
                "TableInfoList": "tables",
            },
            # The target is the database a structure sync changes, the one the API checks.
            code_fields={ErrorCode.DATABASE_NOT_FOUND: "target"},
            lines={"TableInfoList": "Table"},
            next_step="Its precheck compares the two databases and reviews the DDL: once it "
            "passes, submit it for approval here.",
        ),
    )
}
# Request parameters outside the JSON object, on every form.
COMMON_FIELDS = {"Comment": "comment", "FileName": "file"}
# pydantic's words for the commonest problems, as a form says them.
PLAIN = {
    "Field required": "This is required.",
    "String should have at least 1 character": "This is required.",
    "List should have at least 1 item after validation, not 0": "This is required.",
    "Input should be a valid integer, unable to parse string as an integer": (
        "Enter a whole number."
    ),
}
_INDEX = re.compile(r"^[0-9]+$")


# ------------------------------------------------------------------ errors beside fields


def field_for(form: TicketForm, where: str, message: str = "") -> str | None:
    """The form field a problem at request parameter ``where`` (``Param.ExecSQL``,
    ``Param.CronClearItemList.0.TableName``, ``Comment``) is shown beside; None: at the top.
    A problem with the whole object (a rule across its fields) names the field it is about
    first in its message (``DurationHour is required when …``)."""
    if where in COMMON_FIELDS:
        return COMMON_FIELDS[where]
    head, _, rest = where.partition(".")
    if head != form.param:
        return None
    if not rest:
        first = message.split(" ", 1)[0]
        return form.fields.get(first)
    parts = rest.split(".")
    numbers = [p for p in parts if _INDEX.match(p)]
    shape = [("{n}" if _INDEX.match(p) else p) for p in parts]
    while shape:
        found = form.fields.get(".".join(shape))
        if found is not None:
            return found.replace("{n}", numbers[0]) if "{n}" in found and numbers else found
        shape.pop()
    return None


def plain(message: str) -> str:
    return PLAIN.get(message, message)


@dataclass
class Problems:
    """What the API found wrong, sorted into the form's fields and the rest."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def add(self, form: TicketForm, where: str, message: str) -> None:
        name = field_for(form, where, message) if where else None
        if name is None:
            self.general.append(f"{where}: {message}" if where else message)
        else:
            self.fields.setdefault(name, line_of(form, where) + plain(message))


def line_of(form: TicketForm, where: str) -> str:
    """ "Table 2: " for a problem with the second item of a list typed a line an item."""
    parts = where.split(".")
    for n in range(1, len(parts) - 1):
        word = form.lines.get(".".join(parts[1 : n + 1])) if parts[0] == form.param else None
        if word is not None and _INDEX.match(parts[n + 1]):
            return f"{word} {int(parts[n + 1]) + 1}: "
    return ""


def problems_of(form: TicketForm, exc: DmsError | GatewayError) -> Problems:
    found = Problems()
    if isinstance(exc, GatewayError):
        # Its message names the parameter already; beside its field, only what is wrong.
        why = exc.message.removeprefix(f"The specified parameter {exc.field.split('.')[0]} ")
        why = why.removeprefix("is not valid: ")
        rest = exc.field.partition(".")[2]
        found.add(form, exc.field, why.removeprefix(f"{rest}: ") if rest else why)
    elif exc.fields:
        for where, message in exc.fields.items():
            found.add(form, where, message)
    elif exc.code in form.code_fields:
        found.fields[form.code_fields[exc.code]] = exc.message
    else:
        found.general.append(exc.message)
    return found


# ------------------------------------------------------------------ the database picker


@dataclass(frozen=True)
class DbChoice:
    db_id: int
    instance_id: int
    name: str
    usable: bool
    state: str


@dataclass(frozen=True)
class DbGroup:
    label: str  # the instance
    choices: list[DbChoice]


@dataclass(frozen=True)
class Databases:
    groups: list[DbGroup]
    total: int

    @property
    def shown(self) -> int:
        return sum(len(g.choices) for g in self.groups)

    def instance_of(self, db: str) -> int | None:
        for g in self.groups:
            for c in g.choices:
                if str(c.db_id) == db:
                    return c.instance_id
        return None


def databases(s: Session, caller: Caller) -> Databases:
    """The databases SearchDatabase shows the caller, by instance (what its handler reads)."""
    found = queries.search_databases(s, caller.tid, page=1, size=PICKER_SIZE)
    ids = {d.instance_id for d in found.items}
    instances = {
        i.instance_id: i for i in s.scalars(select(Instance).where(Instance.instance_id.in_(ids)))
    }
    groups: dict[int, DbGroup] = {}
    for d in found.items:
        inst = instances[d.instance_id]
        group = groups.get(inst.instance_id)
        if group is None:
            label = f"{inst.alias or inst.host} · {inst.instance_type} · {inst.env_type}"
            group = groups[inst.instance_id] = DbGroup(label, [])
        name = d.schema_name
        if inst.instance_type == "postgresql" and d.catalog_name != d.schema_name:
            name = f"{d.catalog_name}.{d.schema_name}"
        group.choices.append(
            DbChoice(d.db_id, d.instance_id, name, d.state == DatabaseState.NORMAL, d.state)
        )
    return Databases(list(groups.values()), found.total)


async def _databases(page: Page) -> Databases | str:
    try:
        return await page.read("SearchDatabase", databases)
    except GatewayError as exc:  # may file tickets but not list databases: say so there
        return exc.message


# ------------------------------------------------------------------ pages


async def chooser(page: Page) -> Response:
    allowed = [f for f in FORMS.values() if await page.may(f.action)]
    return page.render("new_order.html", forms=allowed, db=page.field("db"))


def _text(page: Page, name: str) -> str:
    # Browsers send a textarea's lines ending in CR LF; the user typed LF.
    return page.field(name).replace("\r\n", "\n")


def _values(page: Page, form: TicketForm) -> Values:
    if page.form is None:  # a fresh form: its defaults, and a database the link chose
        values = {name: form.defaults.get(name, "") for name in (*form.names, "comment")}
        values["db"] = page.field("db")
        return values
    values = {name: _text(page, name) for name in (*form.names, "comment")}
    if form.slug == "cleanup":
        for n in range(item_count(values)):
            for f in ITEM_FIELDS:
                values[f"item-{n}-{f}"] = _text(page, f"item-{n}-{f}")
        values = compact_items(values)
    return values


def _slots(form: TicketForm, values: Values) -> set[str]:
    """The fields the form shows an error beside."""
    slots = {*form.names, "comment"}
    if form.slug == "import":
        slots.add("file")
    if form.slug == "cleanup":
        slots |= {f"item-{n}-{f}" for n in range(item_count(values)) for f in ITEM_FIELDS}
    return slots


async def _render(
    page: Page,
    form: TicketForm,
    values: Values,
    problems: Problems | None = None,
    status: int = 200,
) -> Response:
    picker = await _databases(page)
    problems = problems or Problems()
    slots = _slots(form, values)
    beside = {k: v for k, v in problems.fields.items() if k in slots}
    general = problems.general + [v for k, v in problems.fields.items() if k not in slots]
    return page.render(
        form.template,
        status=status,
        form=form,
        values=values,
        errors=beside,
        general=general,
        databases=picker if isinstance(picker, Databases) else None,
        databases_refused=picker if isinstance(picker, str) else "",
        exec_modes=EXEC_MODES,
        time_units=TIME_UNITS,
        file_types=FILE_TYPES,
        insert_types=INSERT_TYPES,
        encodings=ENCODINGS,
        import_modes=IMPORT_MODES,
        items=item_count(values),
        max_items=MAX_ITEMS,
        max_upload=page.gateway.means.uploads.max_bytes,
    )


def _form_page(form: TicketForm) -> Handler:
    async def show(page: Page) -> Response:
        assert page.live is not None
        # Not allowed to file it: the API's own refusal (Forbidden.RAM), on the error page.
        await page.authorize(form.action)
        return await _render(page, form, _values(page, form))

    return show


@dataclass(frozen=True)
class Stored:
    attachment_key: str
    file_name: str
    size: int

    @property
    def label(self) -> str:
        return f"{self.file_name} ({size_text(self.size)})"


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size:,} bytes"
    scaled = float(size)
    for unit in ("KiB", "MiB", "GiB"):
        scaled /= 1024
        if scaled < 1024 or unit == "GiB":
            break
    return f"{scaled:,.1f} {unit}"


def _file_of(page: Page) -> UploadFile | None:
    sent = page.form.get("file") if page.form is not None else None
    return sent if isinstance(sent, UploadFile) and sent.filename else None


async def store_upload(page: Page, sent: UploadFile) -> Stored:
    """A file posted to the console, stored as UploadFile stores a request body: the same
    name rule, the files service and its size limit, under UploadFile's RAM policy. Starlette
    has spooled the upload to a temporary file; it is copied into the store a chunk at a time."""
    # Browsers send the file's own name; some old ones sent the whole path.
    name = re.split(r"[\\/]", sent.filename or "")[-1]
    UploadFileRequest.from_params({"FileName": name, "FileSource": UPLOAD_SOURCE})
    means = page.gateway.means

    def save(s: Session, caller: Caller) -> Stored:
        sent.file.seek(0)
        chunks = iter(lambda: sent.file.read(CHUNK), b"")
        found = files.save_attachment(
            s, means.files, caller, name, UPLOAD_SOURCE, chunks, means.uploads
        )
        return Stored(found.attachment_key, found.file_name, found.size_bytes)

    try:
        return await page.read("UploadFile", save)
    finally:
        await sent.close()


async def upload(page: Page) -> Response:
    """console.js's upload of an import's file, ahead of the form: its AttachmentKey, as JSON."""
    sent = _file_of(page)
    if sent is None:
        return JSONResponse({"Code": "MissingFile", "Message": "Choose a file."}, status_code=400)
    try:
        stored = await store_upload(page, sent)
    except (DmsError, GatewayError) as exc:
        status = exc.status if isinstance(exc, GatewayError) else 400
        return JSONResponse({"Code": str(exc.code), "Message": exc.message}, status_code=status)
    return JSONResponse(
        {
            "AttachmentKey": stored.attachment_key,
            "FileName": stored.file_name,
            "FileSize": stored.size,
            "Label": stored.label,
        }
    )


def _create(form: TicketForm) -> Handler:
    async def create(page: Page) -> Response:
        values = _values(page, form)
        if form.slug == "cleanup" and page.field("add_item"):
            # Another table row: the same form again, one row longer; nothing is filed.
            values["items"] = str(min(item_count(values) + 1, MAX_ITEMS))
            return await _render(page, form, values)
        if not await page.once():
            return page.redirect(
                "/", notice="This form was already sent: the ticket it made is under My tickets."
            )
        sent = _file_of(page) if form.slug == "import" else None
        if sent is not None:  # no script sent the file ahead: it came with the form
            try:
                stored = await store_upload(page, sent)
            except (DmsError, GatewayError) as exc:
                refused = Problems(fields={"file": exc.message})
                return await _render(page, form, values, refused, status=400)
            # Kept in the form, should the ticket be refused: the file need not travel again.
            values["attachment"], values["file_label"] = stored.attachment_key, stored.label
        try:
            order_id = await _file(page, form, values)
        except (DmsError, GatewayError) as exc:
            return await _render(page, form, values, problems_of(form, exc), status=400)
        return page.redirect(
            f"/orders/{order_id}",
            notice=f"Ticket #{order_id} was created. {form.next_step}",
        )

    return create


async def _file(page: Page, form: TicketForm, values: Values) -> int:
    """File the ticket through its action; its id."""
    if form.slug == "export":
        picker = await _databases(page)
        instance = picker.instance_of(values["db"]) if isinstance(picker, Databases) else None
        param = export_param(values, instance)
    else:
        param = PARAMS[form.slug](values)
    made = await page.call(
        form.action, Comment=values["comment"], **form.fixed, **{form.param: param}
    )
    result = made["CreateOrderResult"]
    # CreateDataExportOrder wraps its list once more, CreateOrder names it (dms-api.md A.1.0).
    if isinstance(result, dict):
        result = result.get("OrderIds") or result["CreateOrderResult"]
    return int(result[0])


PARAMS: dict[str, Callable[[Values], dict[str, Any]]] = {
    "data-change": data_change_param,
    "lock-free": lock_free_param,
    "cleanup": cleanup_param,
    "import": import_param,
    "schema-design": schema_design_param,
    "structure-sync": structure_sync_param,
}


ROUTES = [
    get("/orders/new", chooser),
    post("/orders/new/import/upload", upload),
    *(get(f"/orders/new/{slug}", _form_page(form)) for slug, form in FORMS.items()),
    *(post(f"/orders/new/{slug}", _create(form)) for slug, form in FORMS.items()),
]
