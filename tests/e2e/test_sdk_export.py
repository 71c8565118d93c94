"""Exports through the official SDK against a real `opendms serve`: a million-row
CreateDataExportOrder ticket on MariaDB and on PostgreSQL, prechecked, approved, run by
ExecuteDataExport and downloaded over the signed link it hands out, with the sensitive column
masked; the other formats on a smaller result; a link that works only for the person it was
made for; and a committer without the EXPORT permission stopped at the precheck."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.e2e.conftest import (
    Dms,
    Server,
    cli_batch,
    export_settled,
    export_status,
    file_export,
    register_target,
    running_server,
    target_database,
)

pytestmark = [pytest.mark.e2e]

ROWS = 1_000_000
QUERY = "SELECT id, name, email FROM people"


def _setup(engine: str) -> list[str]:
    if engine == "mariadb":
        return [
            "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL, "
            "email VARCHAR(64) NOT NULL) ENGINE=InnoDB",
            "INSERT INTO people SELECT seq, CONCAT('person ', seq), "
            f"CONCAT('user', seq, '@example.com') FROM seq_1_to_{ROWS}",
        ]
    return [
        "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(32) NOT NULL, "
        "email VARCHAR(64) NOT NULL)",
        "INSERT INTO people SELECT g, 'person ' || g, 'user' || g || '@example.com' "
        f"FROM generate_series(1, {ROWS}) g",
        "ANALYZE people",
    ]


def exported(dms: Dms, db_id: int, sql: str, rows: int, file_type: str) -> tuple[int, str]:
    """``sql`` exported as ``file_type`` through a new ticket: its OrderId and link."""
    order_id = file_export(dms, db_id, sql, rows)
    assert export_settled(dms, order_id, "PRE_CHECKING") == "PRE_CHECK_SUCCESS", dms.last_raw
    assert dms.call("SubmitOrderApproval", order_id=order_id).success is True
    assert export_status(dms, order_id) == "ENABLE_EXPORT"
    detail = {"mode": "FAST", "encoding": "UTF8", "fileType": file_type}
    started = dms.call("ExecuteDataExport", order_id=order_id, action_detail=detail)
    assert started.success is True, dms.last_raw
    done = export_settled(dms, order_id, "WAITING_EXPORT", "DOING_EXPORT")
    assert done == "EXPORT_SUCCESS", dms.last_raw
    url = dms.call("GetDataExportDownloadURL", order_id=order_id).download_urlresult
    assert url.has_result is True and url.tip_message == "", dms.last_raw
    return order_id, str(url.url)


def fetch(url: str) -> httpx.Response:
    return httpx.get(url, timeout=120, trust_env=False)


def only_file(resp: httpx.Response) -> bytes:
    assert resp.status_code == 200, resp.text[:300]
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        (name,) = zf.namelist()
        return zf.read(name)


def tampered(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return parts._replace(query=urlencode(query)).geturl()


def _people_csv(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode())))


def _check_formats(dms: Dms, db_id: int) -> None:
    small = "SELECT id, name, email FROM people WHERE id <= 1000 ORDER BY id"
    for file_type in ("JSON", "TXT", "SQL", "XLSX"):
        _, url = exported(dms, db_id, small, 1000, file_type)
        data = only_file(fetch(url))
        if file_type == "JSON":
            rows: list[Any] = json.loads(data)
            assert len(rows) == 1000 and rows[0]["id"] == 1
            assert rows[0]["email"] == "*" * (len("user1@example.com") - 4) + ".com"
            assert "user1@" not in data.decode()
        elif file_type == "TXT":
            lines = data.decode().splitlines()
            assert len(lines) == 1001 and lines[0] == "id\tname\temail"
        elif file_type == "SQL":
            assert data.decode().count("INSERT INTO") == 2  # 500 rows a statement
            assert "user7@" not in data.decode()
        else:
            with zipfile.ZipFile(io.BytesIO(data)) as book:
                assert book.read("xl/worksheets/sheet1.xml").decode().count("<row ") == 1001


def _link_is_personal(server: Server, order_id: int, url: str) -> None:
    """Someone else neither gets a link nor uses the admin's as their own."""
    other = server.create_user("USER", nick="olga")
    olga = Dms(server, other, "v3")
    hidden = olga.call("GetDataExportDownloadURL", order_id=order_id)
    assert hidden.success is False and hidden.error_code == "OrderNotFound", olga.last_raw
    assert other.user_id is not None
    assert fetch(tampered(url, user=str(other.user_id))).status_code == 404
    assert fetch(tampered(url, expires="1")).status_code == 404
    assert fetch(url).status_code == 200  # still the admin's


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_a_million_rows_exported_masked_and_downloaded(engine: str) -> None:
    env = {"OPENDMS_JOB_THREADS": "1"}
    with (
        target_database(engine, *_setup(engine)) as (name, _query, where),
        running_server(env) as server,
    ):
        admin = Dms(server, server.admin, "v3")
        db_id = register_target(server, admin, name, where, f"export-{engine}", "DATA_EXPORT")
        cli_batch(server, [["column", "mask", str(db_id), "people", "email", "LAST4"]])

        order_id, url = exported(admin, db_id, QUERY, ROWS, "CSV")
        rows = _people_csv(only_file(fetch(url)))
        assert rows[0] == ["id", "name", "email"]
        assert len(rows) == ROWS + 1
        by_id = {int(r[0]): r for r in rows[1:]}
        assert sorted(by_id) == list(range(1, ROWS + 1))
        shown = by_id[123456]
        assert shown[1] == "person 123456"
        assert shown[2] == "*" * (len("user123456@example.com") - 4) + ".com"
        assert not any("@" in r[2] for r in rows[1:])

        precheck = admin.call("GetDataExportPreCheckDetail", order_id=order_id)
        (checked,) = precheck.pre_check_result.pre_check_detail_list.pre_check_detail_list
        assert (checked.sql, checked.affect_rows) == (QUERY, ROWS)
        detail = admin.call("GetDataExportOrderDetail", order_id=order_id).data_export_order_detail
        schema = name if engine == "mariadb" else "public"  # a PostgreSQL database is a schema
        assert (detail.order_detail.exe_sql, detail.order_detail.database) == (QUERY, schema)

        _link_is_personal(server, order_id, url)
        if engine == "postgresql":  # the writers are the engines'; integration runs both
            _check_formats(admin, db_id)

        # a committer without EXPORT on the database is stopped at the precheck
        carol = Dms(server, server.create_user("USER", nick="carol"), "v3")
        refused = file_export(carol, db_id, QUERY, ROWS)
        assert export_settled(carol, refused, "PRE_CHECKING") == "PRE_CHECK_FAIL"
        submit = carol.call("SubmitOrderApproval", order_id=refused)
        assert submit.success is False and submit.error_code == "InvalidOrderStatus", carol.last_raw
        assert "lacks the EXPORT permission" in str(submit.error_message)
