"""The New ticket pages: where an API problem is shown (``field_for``), the request each form
builds, and each form through the app: a bad value is told beside its field with what was
typed kept and nothing filed; a good one files a ticket of the right type with the right
params; a double submission files one; an import's file is stored by the files service,
ahead of the form or with it."""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from opendms.catalog import instances, queries
from opendms.errors import DmsError, ErrorCode
from opendms.files.storage import FileStore
from opendms.gateway import errors as gateway_errors
from opendms.identity import service as identity
from opendms.identity import sessions
from opendms.store.models import Attachment, Order, utcnow
from opendms.targets.base import TargetPolicy
from opendms.targets.demo import ensure_demo_target
from opendms.web.pages import new_order
from opendms.web.pages.new_order import FORMS, field_for, problems_of
from tests.conftest import Api

PASSWORD = "a long enough password"
ONCE = re.compile(r'name="once" value="([^"]+)"')

# ------------------------------------------------------------------ where a problem is shown


@pytest.mark.parametrize(
    ("slug", "where", "message", "field"),
    [
        ("data-change", "Comment", "", "comment"),
        ("data-change", "Param.ExecSQL", "", "sql"),
        ("data-change", "Param.DbItemList", "", "db"),
        ("data-change", "Param.DbItemList.0.DbId", "", "db"),
        ("data-change", "Param.EstimateAffectRows", "", "rows"),
        ("data-change", "Param.RollbackSQL", "", "rollback"),
        ("data-change", "Param", "ExecSQL is required when SqlType=TEXT", "sql"),
        ("data-change", "Param", "logical databases are not supported", None),
        ("data-change", "PluginParam.ExeSQL", "", None),  # another action's parameter
        ("data-change", "RelatedUserList", "", None),
        ("lock-free", "Param.ExecSQL", "", "sql"),
        ("lock-free", "Param.EstimateAffectRows", "", None),  # not a lock-free field
        ("cleanup", "Param.CronClearItemList.0.TableName", "", "item-0-table"),
        ("cleanup", "Param.CronClearItemList.3.RemainDays", "", "item-3-days"),
        ("cleanup", "Param.CronClearItemList.1.FilterSQL", "", "item-1-filter"),
        ("cleanup", "Param.CronClearItemList", "", None),
        ("cleanup", "Param.CronFormat", "", "cron"),
        ("cleanup", "Param", "DurationHour is required when specifyDuration is true", "hours"),
        ("import", "Param.AttachmentName", "", "file"),
        ("import", "FileName", "", "file"),
        ("import", "Param", "TableName is required when FileType=CSV", "table"),
        ("import", "Param.DbItemList", "", "db"),
        ("export", "PluginParam.ExeSQL", "", "sql"),
        ("export", "PluginParam.DbId", "", "db"),
        ("export", "PluginParam.AffectRows", "", "rows"),
        ("export", "PluginParam", "IgnoreAffectRowsReason is required when …", "skip_why"),
        ("export", "Param.ExeSQL", "", None),
    ],
)
def test_a_problem_is_shown_beside_the_field_it_concerns(
    slug: str, where: str, message: str, field: str | None
) -> None:
    assert field_for(FORMS[slug], where, message) == field


def test_problems_are_sorted_into_fields_and_the_rest() -> None:
    form = FORMS["data-change"]
    found = problems_of(
        form,
        DmsError(
            ErrorCode.INVALID_PARAMETER,
            "…",
            {
                "Param.ExecSQL": "String should have at least 1 character",
                "Param.EstimateAffectRows": "Input should be greater than or equal to 0",
                "Param": "logical databases are not supported",
            },
        ),
    )
    assert found.fields == {
        "sql": "This is required.",
        "rows": "Input should be greater than or equal to 0",
    }
    assert found.general == ["Param: logical databases are not supported"]
    comment = problems_of(
        form, gateway_errors.invalid("Comment", "String should have at least 1 character")
    )
    assert (comment.fields, comment.general) == ({"comment": "This is required."}, [])
    gone = problems_of(form, DmsError(ErrorCode.DATABASE_NOT_FOUND, "No database 9."))
    assert (gone.fields, gone.general) == ({"db": "No database 9."}, [])
    other = problems_of(form, DmsError(ErrorCode.ORDER_FORBIDDEN, "No tickets on Sundays."))
    assert (other.fields, other.general) == ({}, ["No tickets on Sundays."])
    throttled = problems_of(form, gateway_errors.throttled(5))
    assert throttled.general == ["Request was denied due to user flow control."]


# ------------------------------------------------------------------ the request of each form


def row(n: int, *values: str) -> dict[str, str]:
    """A cleanup form's n-th table row."""
    return {f"item-{n}-{f}": v for f, v in zip(new_order.ITEM_FIELDS, values, strict=True)}


def test_each_form_builds_its_actions_request() -> None:
    typed = {
        "db": "3",
        "sql": "UPDATE t SET a = 1 WHERE id = 2",
        "rows": "1",
        "exec_mode": "AUTO",
        "rollback": "",
    }
    assert new_order.data_change_param(typed) == {
        "DbItemList": [{"DbId": 3, "Logic": False}],
        "SqlType": "TEXT",
        "ExecSQL": "UPDATE t SET a = 1 WHERE id = 2",
        "EstimateAffectRows": 1,
        "ExecMode": "AUTO",
    }
    # What is not a number goes as typed, for the API to refuse; an empty field not at all.
    assert new_order.data_change_param({**typed, "rows": "many", "db": ""}) == {
        "DbItemList": [],
        "SqlType": "TEXT",
        "ExecSQL": "UPDATE t SET a = 1 WHERE id = 2",
        "EstimateAffectRows": "many",
        "ExecMode": "AUTO",
    }
    assert new_order.lock_free_param({**typed, "rollback": "UPDATE t SET a = 0"}) == {
        "DbItemList": [{"DbId": 3, "Logic": False}],
        "SqlType": "TEXT",
        "ExecSQL": "UPDATE t SET a = 1 WHERE id = 2",
        "ExecMode": "AUTO",
        "RollbackSqlType": "TEXT",
        "RollbackSQL": "UPDATE t SET a = 0",
    }
    cleanup = {
        "db": "3",
        "cron": "0 0 2 * * ?",
        "limit": "on",
        "hours": "2",
        "items": "3",
        **row(0, "t", "c", "30", "", ""),
        **row(1, "", "", "", "", ""),  # an added row left empty
        **row(2, "u", "at", "7", "SECONDS", "s = 1"),
    }
    # The empty row is taken out and the rows after it numbered again, as the request has them.
    compacted = new_order.compact_items(cleanup)
    assert compacted["items"] == "2" and compacted["item-1-table"] == "u"
    assert "item-2-table" not in compacted
    assert new_order.cleanup_param(compacted) == {
        "DbItemList": [{"DbId": 3, "Logic": False}],
        "CronClearItemList": [
            {"TableName": "t", "ColumnName": "c", "RemainDays": 30},
            {
                "TableName": "u",
                "ColumnName": "at",
                "RemainDays": 7,
                "TimeUnit": "SECONDS",
                "FilterSQL": "s = 1",
            },
        ],
        "CronFormat": "0 0 2 * * ?",
        "specifyDuration": True,
        "DurationHour": 2,
    }
    unlimited = new_order.cleanup_param({**compacted, "limit": ""})
    assert unlimited["specifyDuration"] is False and "DurationHour" not in unlimited
    imported = {
        "db": "3",
        "attachment": "att-1",
        "file_label": "x",
        "file_type": "CSV",
        "table": "people",
        "header": "on",
        "insert_type": "REPLACE_INTO",
        "encoding": "UTF-8",
        "import_mode": "SAFE_MODE",
        "ignore_error": "",
        "exec_mode": "COMMITOR",
    }
    assert new_order.import_param(imported) == {
        "DbItemList": [{"DbId": 3, "Logic": False}],
        "AttachmentName": "att-1",
        "FileType": "CSV",
        "TableName": "people",
        "CsvFirstRowIsColumnDef": True,
        "InsertType": "REPLACE_INTO",
        "FileEncoding": "UTF-8",
        "ImportMode": "SAFE_MODE",
        "IgnoreError": False,
        "ExecMode": "COMMITOR",
    }
    # A SQL file's statements name their tables: the row options are not sent.
    sql_file = new_order.import_param({**imported, "file_type": "SQL", "ignore_error": "on"})
    assert not {"TableName", "CsvFirstRowIsColumnDef", "InsertType"} & sql_file.keys()
    assert sql_file["IgnoreError"] is True
    export = {"db": "3", "sql": "SELECT 1", "rows": "10", "skip_check": "", "skip_why": "x"}
    assert new_order.export_param(export, 4) == {
        "DbId": 3,
        "Logic": False,
        "InstanceId": 4,
        "ExeSQL": "SELECT 1",
        "Classify": "console",
        "AffectRows": 10,
        "IgnoreAffectRows": False,
    }
    skipped = new_order.export_param({**export, "skip_check": "on"}, None)
    assert skipped["IgnoreAffectRows"] is True and skipped["IgnoreAffectRowsReason"] == "x"
    assert "InstanceId" not in skipped


# ------------------------------------------------------------------ through the app


@dataclass
class Console:
    api: Api
    cookie: str
    csrf: str
    db_id: int
    instance_id: int

    def get(self, path: str, cookie: str | None = None) -> Any:
        return self.api.client.get(
            f"/console{path}",
            headers={"cookie": f"odms_session={cookie or self.cookie}"},
            follow_redirects=False,
        )

    def once(self, path: str) -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        found = ONCE.search(page.text)
        assert found, page.text
        return found.group(1)

    def post(
        self,
        path: str,
        data: dict[str, str],
        files: dict[str, Any] | None = None,
        *,
        once: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        form = {"csrf_token": self.csrf, "once": once or self.once(path), **data}
        return self.api.client.post(
            f"/console{path}",
            data=form,
            files=files,
            headers={"cookie": f"odms_session={self.cookie}", **(headers or {})},
            follow_redirects=False,
        )

    def upload(self, files: dict[str, Any] | None, csrf: str | None = None) -> Any:
        """What console.js sends: the file, and the CSRF token in a header."""
        headers = {"cookie": f"odms_session={self.cookie}"}
        if csrf is not None:
            headers["x-csrf-token"] = csrf
        return self.api.client.post(
            "/console/orders/new/import/upload", files=files, headers=headers
        )

    def orders(self) -> list[Order]:
        with self.api.store.session() as s:
            found = list(s.scalars(select(Order).order_by(Order.order_id)))
            s.expunge_all()
            return found


def signed_in(api: Api, uid: str) -> tuple[str, str]:
    """A console session for ``uid``: (cookie token, CSRF token)."""
    with api.store.session() as s:
        sessions.set_password(s, uid, PASSWORD)
    with api.store.session() as s:
        made = sessions.sign_in(
            s, uid, PASSWORD, client_host="testclient", user_agent="test", now=utcnow()
        )
        return made.token, made.csrf_token


@pytest.fixture
def console(make_api: Callable[..., Api]) -> Console:
    api = make_api(upload_max_bytes=64 * 1024)
    target = ensure_demo_target(api.sqlite_targets, customers=5, orders_each=2)
    with api.store.session() as s:
        inst = instances.register_instance(
            s,
            api.box,
            TargetPolicy("", api.sqlite_targets),
            api.tid,
            instances.InstanceSpec(alias="demo", instance_type="sqlite", host=str(target)),
            actor=None,
        )
        (db,) = queries.list_databases(s, api.tid, inst.instance_id).items
        db_id, instance_id = db.db_id, inst.instance_id
    cookie, csrf = signed_in(api, api.admin_uid)
    return Console(api, cookie, csrf, db_id, instance_id)


def error_beside(html: str, field: str) -> str:
    found = re.search(
        rf'<p class="field-error" id="{re.escape(field)}-error"[^>]*>([^<]*)</p>', html
    )
    assert found, f"no error beside {field}"
    return unescape(found.group(1))


def general_errors(html: str) -> list[str]:
    block = re.search(r'<div class="error" role="alert" id="form-errors">(.*?)</div>', html, re.S)
    return [unescape(p) for p in re.findall(r"<p>(.*?)</p>", block.group(1), re.S)] if block else []


def params_of(order: Order) -> dict[str, Any]:
    return dict(json.loads(order.params))


def created(resp: Any) -> int:
    assert resp.status_code == 303, resp.text
    found = re.fullmatch(r"/console/orders/(\d+)\?notice=.*", resp.headers["location"])
    assert found, resp.headers["location"]
    return int(found.group(1))


def test_the_chooser_lists_each_type_with_its_explanation(console: Console) -> None:
    page = console.get("/orders/new")
    assert page.status_code == 200
    for form in FORMS.values():
        assert f'href="/console/orders/new/{form.slug}"' in page.text
        assert form.summary in page.text


def test_the_data_change_form_has_its_labels(console: Console) -> None:
    page = console.get(f"/orders/new/data-change?db={console.db_id}")
    labels = re.findall(r'<label for="([^"]+)">([^<]+)</label>', page.text)
    assert labels[:4] == [
        ("db", "Database"),
        ("sql", "SQL"),
        ("rows", "Estimated affected rows"),
        ("comment", "Reason"),
    ]
    assert '<button type="submit" class="primary">Create</button>' in page.text
    # The database the link named is chosen, among the instance's.
    assert f'<option value="{console.db_id}" selected>main</option>' in page.text
    assert '<optgroup label="demo · sqlite · product">' in page.text


GOOD = {
    "data-change": {
        "sql": "UPDATE orders SET status = 'paid' WHERE id = 1",
        "rows": "1",
        "exec_mode": "COMMITOR",
        "comment": "fix order 1",
    },
    "lock-free": {
        "sql": "UPDATE orders SET status = 'paid' WHERE status = 'new'",
        "exec_mode": "AUTO",
        "rollback": "UPDATE orders SET status = 'new' WHERE status = 'paid'",
        "comment": "pay them all",
    },
    "cleanup": {
        "items": "1",
        "item-0-table": "orders",
        "item-0-column": "created_at",
        "item-0-days": "30",
        "item-0-filter": "status = 'cancelled'",
        "cron": "0 0 2 * * ?",
        "limit": "on",
        "hours": "2",
        "comment": "old cancelled orders",
    },
    "export": {"sql": "SELECT id, status FROM orders", "rows": "10", "comment": "report"},
}
EXPECTED = {
    "data-change": (
        "DC_COMMON",
        {
            "SqlType": "TEXT",
            "ExecSQL": "UPDATE orders SET status = 'paid' WHERE id = 1",
            "EstimateAffectRows": 1,
            "ExecMode": "COMMITOR",
        },
    ),
    "lock-free": (
        "DC_CHUNK",
        {
            "SqlType": "TEXT",
            "ExecSQL": "UPDATE orders SET status = 'paid' WHERE status = 'new'",
            "ExecMode": "AUTO",
            "RollbackSqlType": "TEXT",
            "RollbackSQL": "UPDATE orders SET status = 'new' WHERE status = 'paid'",
        },
    ),
    "cleanup": (
        "DC_CRON_CLEAR",
        {
            "CronClearItemList": [
                {
                    "TableName": "orders",
                    "ColumnName": "created_at",
                    "RemainDays": 30,
                    "FilterSQL": "status = 'cancelled'",
                }
            ],
            "CronFormat": "0 0 2 * * ?",
            "specifyDuration": True,
            "DurationHour": 2,
        },
    ),
    "export": (
        "DATA_EXPORT",
        {
            "ExeSQL": "SELECT id, status FROM orders",
            "Classify": "console",
            "AffectRows": 10,
            "IgnoreAffectRows": False,
            "Logic": False,
        },
    ),
}


@pytest.mark.parametrize("slug", sorted(GOOD))
def test_a_good_form_files_its_type_with_its_params(console: Console, slug: str) -> None:
    resp = console.post(f"/orders/new/{slug}", {"db": str(console.db_id), **GOOD[slug]})
    order_id = created(resp)
    assert "precheck" in unescape(resp.headers["location"]).replace("+", " ")
    (order,) = console.orders()
    plugin_type, expected = EXPECTED[slug]
    assert (order.order_id, order.plugin_type, order.comment) == (
        order_id,
        plugin_type,
        GOOD[slug]["comment"],
    )
    params = params_of(order)
    if slug == "export":
        assert (params.pop("DbId"), params.pop("InstanceId")) == (
            console.db_id,
            console.instance_id,
        )
    else:
        assert params.pop("DbItemList") == [{"DbId": console.db_id, "Logic": False}]
    assert params == expected
    # The ticket is the API's: GetOrderBaseInfo answers it for its committer.
    info = console.api.call("GetOrderBaseInfo", OrderId=order_id).json()
    assert info["OrderBaseInfo"]["PluginType"] == plugin_type


BAD = [
    ("data-change", {"sql": ""}, "sql", "This is required."),
    ("data-change", {"rows": "-1"}, "rows", "Input should be greater than or equal to 0"),
    ("data-change", {"rows": ""}, "rows", "This is required."),
    ("data-change", {"db": ""}, "db", "This is required."),
    ("data-change", {"db": "999"}, "db", "Database 999"),
    ("data-change", {"comment": ""}, "comment", "This is required."),
    ("data-change", {"exec_mode": "SOMEONE"}, "exec_mode", "Input should be"),
    ("lock-free", {"sql": ""}, "sql", "This is required."),
    ("cleanup", {"item-0-days": "a month"}, "item-0-days", "Enter a whole number."),
    ("cleanup", {"item-0-table": ""}, "item-0-table", "This is required."),
    ("cleanup", {"cron": "every night"}, "cron", "not a valid DMS cron expression"),
    ("cleanup", {"hours": ""}, "hours", "DurationHour is required"),
    ("export", {"sql": ""}, "sql", "This is required."),
    ("export", {"rows": "lots"}, "rows", "Enter a whole number."),
    ("export", {"skip_check": "on"}, "skip_why", "IgnoreAffectRowsReason is required"),
]


@pytest.mark.parametrize(("slug", "change", "field", "says"), BAD)
def test_a_bad_value_is_told_beside_its_field_and_files_nothing(
    console: Console, slug: str, change: dict[str, str], field: str, says: str
) -> None:
    typed = {"db": str(console.db_id), **GOOD[slug], **change}
    resp = console.post(f"/orders/new/{slug}", typed)
    assert resp.status_code == 400, resp.text
    assert error_beside(resp.text, field).startswith(says), error_beside(resp.text, field)
    assert f'aria-describedby="{field}-hint {field}-error"' in resp.text or (
        f'aria-describedby="{field}-error"' in resp.text
    )
    assert general_errors(resp.text) == []
    assert console.orders() == []
    # What was typed is kept.
    for name, value in typed.items():
        if value and name not in ("db", "exec_mode", "limit", "skip_check", "items"):
            assert value.replace("'", "&#39;") in resp.text, name


def test_another_tenants_database_is_unknown_beside_the_picker(console: Console) -> None:
    with console.api.store.session() as s:
        other = identity.create_tenant(s, "other")
        user = identity.register_user(s, None, other.tid, identity.new_uid(), roles="ADMIN")
        uid = user.uid
    cookie, csrf = signed_in(console.api, uid)
    elsewhere = Console(console.api, cookie, csrf, console.db_id, console.instance_id)
    form = elsewhere.get("/orders/new/lock-free")
    assert "No database is registered yet" in form.text  # nothing to choose in that tenant
    resp = elsewhere.post("/orders/new/lock-free", {"db": str(console.db_id), **GOOD["lock-free"]})
    assert resp.status_code == 400
    assert error_beside(resp.text, "db") == f"Database {console.db_id} does not exist."
    assert console.orders() == []


def test_a_problem_no_field_owns_is_told_at_the_top(console: Console) -> None:
    # A form opened before the user's role changed: the action's RAM refusal, on the form.
    with console.api.store.session() as s:
        reader = identity.register_user(
            s, None, console.api.tid, identity.new_uid(), roles="STRUCT_READ_ONLY"
        )
        uid = reader.uid
    cookie, csrf = signed_in(console.api, uid)
    reader_console = Console(console.api, cookie, csrf, console.db_id, console.instance_id)
    typed = {"db": str(console.db_id), **GOOD["data-change"]}
    resp = reader_console.post("/orders/new/data-change", typed, once="a-token-of-the-old-form")
    assert resp.status_code == 400
    assert general_errors(resp.text) == [
        "User not authorized to operate on the specified resource: dms:CreateDataCorrectOrder."
    ]
    assert 'class="field-error"' not in resp.text
    assert "fix order 1" in resp.text
    assert console.orders() == []


def test_a_double_submission_files_one_ticket(console: Console) -> None:
    path = "/orders/new/data-change"
    once = console.once(path)
    typed = {"db": str(console.db_id), **GOOD["data-change"]}
    first = console.post(path, typed, once=once)
    second = console.post(path, typed, once=once)
    created(first)
    assert second.status_code == 303
    assert second.headers["location"].startswith("/console/?notice=This+form+was+already+sent")
    assert len(console.orders()) == 1


def test_a_refused_form_gets_a_new_one_time_token(console: Console) -> None:
    path = "/orders/new/data-change"
    once = console.once(path)
    refused = console.post(
        path, {"db": str(console.db_id), **GOOD["data-change"], "sql": ""}, once=once
    )
    again = ONCE.search(refused.text)
    assert again and again.group(1) != once
    fixed = console.post(
        path, {"db": str(console.db_id), **GOOD["data-change"]}, once=again.group(1)
    )
    created(fixed)


def test_a_textareas_line_ends_are_the_ones_typed(console: Console) -> None:
    sql = "UPDATE orders SET status = 'paid'\r\nWHERE id = 1"
    created(
        console.post(
            "/orders/new/data-change", {"db": str(console.db_id), **GOOD["data-change"], "sql": sql}
        )
    )
    (order,) = console.orders()
    assert params_of(order)["ExecSQL"] == "UPDATE orders SET status = 'paid'\nWHERE id = 1"


def test_a_sql_over_a_megabyte_is_read_and_judged(console: Console) -> None:
    big = "UPDATE orders SET status = 'paid' WHERE id = 1;\n" * 40_000  # ~2 MB
    resp = console.post(
        "/orders/new/data-change",
        {"db": str(console.db_id), **GOOD["data-change"], "sql": big, "comment": ""},
    )
    assert resp.status_code == 400
    assert error_beside(resp.text, "comment") == "This is required."


def test_a_cleanup_form_grows_a_table_row_and_files_nothing(console: Console) -> None:
    typed = {"db": str(console.db_id), **GOOD["cleanup"], "add_item": "1"}
    resp = console.post("/orders/new/cleanup", typed)
    assert resp.status_code == 200
    assert 'name="items" value="2"' in resp.text
    assert 'id="item-1-table"' in resp.text and 'value="created_at"' in resp.text
    assert console.orders() == []
    # Both rows filled: both tables are cleaned.
    two = {
        **typed,
        "items": "2",
        "item-1-table": "customers",
        "item-1-column": "created_at",
        "item-1-days": "365",
    }
    del two["add_item"]
    created(console.post("/orders/new/cleanup", two))
    (order,) = console.orders()
    tables = [i["TableName"] for i in params_of(order)["CronClearItemList"]]
    assert tables == ["orders", "customers"]


def test_a_problem_with_a_later_table_is_shown_on_its_row(console: Console) -> None:
    typed = {
        "db": str(console.db_id),
        **GOOD["cleanup"],
        "items": "3",
        **{f"item-1-{f}": "" for f in new_order.ITEM_FIELDS},  # added, left empty
        "item-2-table": "customers",
        "item-2-column": "created_at",
        "item-2-days": "a year",
    }
    resp = console.post("/orders/new/cleanup", typed)
    assert resp.status_code == 400
    # The empty row is gone; the customers row is the second, and told so.
    assert 'name="items" value="2"' in resp.text
    assert re.search(r'id="item-1-table"[^>]*value="customers"', resp.text)
    assert error_beside(resp.text, "item-1-days") == "Enter a whole number."
    assert console.orders() == []


def test_a_form_too_big_to_read_is_refused_in_words(console: Console) -> None:
    typed = {"db": str(console.db_id), **GOOD["data-change"]}
    typed |= {f"extra{n}": "x" for n in range(300)}
    resp = console.post("/orders/new/data-change", typed)
    assert resp.status_code == 400
    assert "InvalidForm" in resp.text and "Too many fields" in resp.text
    assert console.orders() == []


def test_a_user_the_policy_forbids_is_offered_nothing(console: Console) -> None:
    with console.api.store.session() as s:
        reader = identity.register_user(
            s, None, console.api.tid, identity.new_uid(), roles="STRUCT_READ_ONLY"
        )
        uid = reader.uid
    cookie, _csrf = signed_in(console.api, uid)
    chooser = console.get("/orders/new", cookie=cookie)
    assert chooser.status_code == 200
    assert "/console/orders/new/data-change" not in chooser.text
    assert "Your permissions let you file no ticket" in chooser.text
    form = console.get("/orders/new/data-change", cookie=cookie)
    assert form.status_code == 403 and "Forbidden.RAM" in form.text


# ------------------------------------------------------------------ an import's file

CSV = b"id,name,email,created_at\n900,new customer,n900@example.com,2026-02-01 00:00:00\n"
IMPORT = {
    "file_type": "CSV",
    "table": "customers",
    "header": "on",
    "insert_type": "INSERT",
    "encoding": "AUTO",
    "import_mode": "SAFE_MODE",
    "exec_mode": "COMMITOR",
    "comment": "new customers",
}


def stored_file(console: Console, key: str) -> tuple[Attachment, bytes]:
    with console.api.store.session() as s:
        found = s.get(Attachment, key)
        assert found is not None
        s.expunge(found)
    files = FileStore(console.api.data_dir / "files")
    return found, files.path_for(found.sha256).read_bytes()


def test_an_uploaded_file_is_stored_and_the_form_files_it(console: Console) -> None:
    up = console.upload({"file": ("people.csv", CSV, "text/csv")}, console.csrf)
    assert up.status_code == 200, up.text
    answer = up.json()
    attachment, content = stored_file(console, answer["AttachmentKey"])
    assert content == CSV
    assert (attachment.file_name, attachment.file_source, attachment.size_bytes) == (
        "people.csv",
        "big-file",
        len(CSV),
    )
    assert answer["FileSize"] == len(CSV) and answer["Label"] == f"people.csv ({len(CSV)} bytes)"
    resp = console.post(
        "/orders/new/import",
        {"db": str(console.db_id), "attachment": answer["AttachmentKey"], **IMPORT},
    )
    created(resp)
    (order,) = console.orders()
    assert order.plugin_type == "DC_BIG_FILE"
    assert params_of(order) == {
        "DbItemList": [{"DbId": console.db_id, "Logic": False}],
        "AttachmentName": answer["AttachmentKey"],
        "FileType": "CSV",
        "TableName": "customers",
        "CsvFirstRowIsColumnDef": True,
        "InsertType": "INSERT",
        "FileEncoding": "AUTO",
        "ImportMode": "SAFE_MODE",
        "IgnoreError": False,
        "ExecMode": "COMMITOR",
    }


def test_without_a_script_the_file_comes_with_the_form_and_is_kept_on_a_refusal(
    console: Console,
) -> None:
    typed = {"db": str(console.db_id), **IMPORT, "table": ""}
    refused = console.post(
        "/orders/new/import", typed, files={"file": ("people.csv", CSV, "text/csv")}
    )
    assert refused.status_code == 400
    assert error_beside(refused.text, "table").startswith("TableName is required")
    assert console.orders() == []
    key = re.search(r'name="attachment" value="(att-[0-9a-f]+)"', refused.text)
    assert key, refused.text
    assert "Uploaded: people.csv" in refused.text
    assert stored_file(console, key.group(1))[1] == CSV
    # Sent again with the table and no file: the file stored the first time is filed.
    again = console.post(
        "/orders/new/import",
        {**typed, "table": "customers", "attachment": key.group(1), "file_label": "people.csv"},
    )
    created(again)
    (order,) = console.orders()
    assert params_of(order)["AttachmentName"] == key.group(1)


def test_an_import_without_a_file_is_told_so_beside_the_file(console: Console) -> None:
    resp = console.post("/orders/new/import", {"db": str(console.db_id), **IMPORT})
    assert resp.status_code == 400
    assert error_beside(resp.text, "file") == "This is required."
    unknown = console.post(
        "/orders/new/import", {"db": str(console.db_id), **IMPORT, "attachment": "att-nothere"}
    )
    assert "no attachment" in error_beside(unknown.text, "file")


def test_an_upload_over_the_limit_or_badly_named_is_refused_and_kept_nowhere(
    console: Console,
) -> None:
    big = b"x" * (64 * 1024 + 1)
    up = console.upload({"file": ("big.csv", big, "text/csv")}, console.csrf)
    assert up.status_code == 400
    assert up.json()["Code"] == "InvalidParameter" and "larger than" in up.json()["Message"]
    with_form = console.post(
        "/orders/new/import",
        {"db": str(console.db_id), **IMPORT},
        files={"file": ("big.csv", big, "text/csv")},
    )
    assert with_form.status_code == 400
    assert "larger than" in error_beside(with_form.text, "file")
    with console.api.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == 0
    long_name = console.upload({"file": ("n" * 300 + ".csv", CSV, "text/csv")}, console.csrf)
    assert long_name.status_code == 400 and long_name.json()["Code"] == "InvalidFileName"
    with console.api.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == 0
    missing = console.upload(None, console.csrf)
    assert missing.status_code == 400 and missing.json()["Code"] == "MissingFile"


def test_an_upload_without_the_csrf_token_is_refused(console: Console) -> None:
    resp = console.upload({"file": ("people.csv", CSV, "text/csv")})
    assert resp.status_code == 403 and "InvalidCsrfToken" in resp.text
    with console.api.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Attachment)) == 0


# ------------------------------------------------------------------ schema changes


@pytest.mark.parametrize(
    ("slug", "where", "message", "field"),
    [
        ("schema-design", "PluginParam.Title", "", "title"),
        ("schema-design", "PluginParam.DbId", "", "db"),
        ("schema-design", "PluginParam.Description", "", "description"),
        ("schema-design", "PluginParam", "logical databases are not supported", None),
        ("schema-design", "Param.Title", "", None),  # another action's parameter
        ("structure-sync", "Param.Source", "", "source"),
        ("structure-sync", "Param.Source.DbId", "", "source"),
        ("structure-sync", "Param.Target.VersionId", "", "target"),
        ("structure-sync", "Param.TableInfoList.2.TargetTableName", "", "tables"),
        ("structure-sync", "Param", "Source and Target are the same database", "source"),
        ("structure-sync", "Param", "TableInfoList names target table t twice", "tables"),
    ],
)
def test_a_schema_change_problem_is_shown_beside_its_field(
    slug: str, where: str, message: str, field: str | None
) -> None:
    assert field_for(FORMS[slug], where, message) == field


def test_the_schema_change_forms_build_their_actions_requests() -> None:
    typed = {"title": "emails", "db": "3", "description": ""}
    assert new_order.schema_design_param(typed) == {"title": "emails", "dbId": 3, "logic": False}
    described = new_order.schema_design_param({**typed, "description": "for the newsletter"})
    assert described["description"] == "for the newsletter"
    sync = {
        "source": "3",
        "target": "4",
        "tables": "orders\n\n  customers -> clients \nitems→items_v2\nold =>\n",
    }
    assert new_order.structure_sync_param(sync) == {
        "Source": {"DbId": 3, "Logic": False},
        "Target": {"DbId": 4, "Logic": False},
        "TableInfoList": [
            {"SourceTableName": "orders"},
            {"SourceTableName": "customers", "TargetTableName": "clients"},
            {"SourceTableName": "items", "TargetTableName": "items_v2"},
            {"SourceTableName": "old", "TargetTableName": ""},  # for the API to refuse
        ],
    }
    every = new_order.structure_sync_param({**sync, "tables": " \n"})
    assert every == {
        "Source": {"DbId": 3, "Logic": False},
        "Target": {"DbId": 4, "Logic": False},
    }
    assert "Source" not in new_order.structure_sync_param({**sync, "source": ""})


def _second_database(console: Console) -> int:
    """Another SQLite target beside the demo, with no tables: a structure sync's target."""
    path = console.api.sqlite_targets / "empty" / "empty.db"
    path.parent.mkdir()
    sqlite3.connect(path).close()
    with console.api.store.session() as s:
        inst = instances.register_instance(
            s,
            console.api.box,
            TargetPolicy("", console.api.sqlite_targets),
            console.api.tid,
            instances.InstanceSpec(alias="empty", instance_type="sqlite", host=str(path)),
            actor=None,
        )
        (db,) = queries.list_databases(s, console.api.tid, inst.instance_id).items
        return db.db_id


def test_the_schema_design_form_files_an_nddl_ticket(console: Console) -> None:
    page = console.get(f"/orders/new/schema-design?db={console.db_id}")
    labels = re.findall(r'<label for="([^"]+)">([^<]+)</label>', page.text)
    assert labels == [
        ("title", "Title"),
        ("db", "Base database"),
        ("description", "Description"),
        ("comment", "Reason"),
    ]
    assert f'<option value="{console.db_id}" selected>main</option>' in page.text
    resp = console.post(
        "/orders/new/schema-design",
        {
            "title": "an index on orders",
            "db": str(console.db_id),
            "description": "the status page\r\nis slow",
            "comment": "orders by status",
        },
    )
    order_id = created(resp)
    assert "Give+it+its+design+here" in resp.headers["location"]
    (order,) = console.orders()
    assert (order.order_id, order.plugin_type, order.comment) == (
        order_id,
        "NDDL",
        "orders by status",
    )
    assert params_of(order) == {
        "Title": "an index on orders",
        "DbId": console.db_id,
        "Logic": False,
        "Description": "the status page\nis slow",
    }


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"title": ""}, "title", "This is required."),
        ({"db": ""}, "db", "This is required."),
        ({"db": "999"}, "db", "Database 999"),
        ({"comment": ""}, "comment", "This is required."),
    ],
)
def test_a_bad_schema_design_is_told_beside_its_field(
    console: Console, change: dict[str, str], field: str, says: str
) -> None:
    typed = {"title": "x", "db": str(console.db_id), "description": "", "comment": "c", **change}
    resp = console.post("/orders/new/schema-design", typed)
    assert resp.status_code == 400, resp.text
    assert error_beside(resp.text, field).startswith(says), error_beside(resp.text, field)
    assert general_errors(resp.text) == [] and console.orders() == []


def test_the_structure_sync_form_files_a_table_sync_ticket(console: Console) -> None:
    target = _second_database(console)
    page = console.get("/orders/new/structure-sync")
    labels = re.findall(r'<label for="([^"]+)">([^<]+)</label>', page.text)
    assert labels == [
        ("source", "Source database"),
        ("target", "Target database"),
        ("tables", "Tables"),
        ("comment", "Reason"),
    ]
    resp = console.post(
        "/orders/new/structure-sync",
        {
            "source": str(console.db_id),
            "target": str(target),
            "tables": "orders\r\ncustomers -> clients",
            "comment": "a copy for reports",
        },
    )
    order_id = created(resp)
    assert "compares+the+two+databases" in resp.headers["location"]
    (order,) = console.orders()
    assert (order.order_id, order.plugin_type) == (order_id, "TABLE_SYNC")
    params = params_of(order)
    assert (params["Source"]["DbId"], params["Target"]["DbId"]) == (console.db_id, target)
    assert params["TableInfoList"] == [
        {"SourceTableName": "orders"},
        {"SourceTableName": "customers", "TargetTableName": "clients"},
    ]
    assert params["IgnoreError"] is False  # the only value OpenDMS takes


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"source": ""}, "source", "This is required."),
        ({"target": ""}, "target", "This is required."),
        ({"target": "999"}, "target", "Database 999"),
        ({"target": "{source}"}, "source", "Source and Target are the same database"),
        ({"tables": "orders\n\nlines ->"}, "tables", "Table 2: This is required."),
        ({"tables": "a -> t\nb -> t"}, "tables", "TableInfoList names target table t twice"),
    ],
)
def test_a_bad_structure_sync_is_told_beside_its_field(
    console: Console, change: dict[str, str], field: str, says: str
) -> None:
    target = _second_database(console)
    typed = {
        "source": str(console.db_id),
        "target": str(target),
        "tables": "",
        "comment": "c",
        **{k: v.replace("{source}", str(console.db_id)) for k, v in change.items()},
    }
    resp = console.post("/orders/new/structure-sync", typed)
    assert resp.status_code == 400, resp.text
    assert error_beside(resp.text, field).startswith(says), error_beside(resp.text, field)
    assert general_errors(resp.text) == [] and console.orders() == []
    if typed["tables"]:
        assert typed["tables"].replace(">", "&gt;") in resp.text  # what was typed is kept
