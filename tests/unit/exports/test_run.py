"""Export tickets end to end on the SQLite demo database: ExecuteDataExport, the export job,
its file in every format, its limits, and stopping, restarting and removing it."""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from opendms.errors import DmsError, ErrorCode
from opendms.exports import service as exports
from opendms.store.models import ExportFile, Instance, Job, Order, SqlAudit
from tests.approval_world import World

CUSTOMER_1 = "SELECT id, status, amount_cents FROM orders WHERE customer_id = 1 ORDER BY id"


@pytest.fixture
def world(world: World) -> World:
    return world.free_of_approval("DATA_EXPORT")


def approved(world: World, sql: str = CUSTOMER_1, rows: int = 25, **extra: Any) -> int:
    order_id = world.export(sql, rows=rows, **extra)
    world.submit(order_id)
    assert world.status(order_id) == "Approved"
    return order_id


def run(world: World, order_id: int, who: str = "alice", **plan: Any) -> Job:
    with world.store.session() as s:
        job = exports.execute(s, world.as_(who), order_id, exports.checked_plan(**plan))
        job_id = job.job_id
    world.run_jobs()
    with world.store.session() as s:
        found = s.get(Job, job_id)
        assert found is not None
        s.expunge(found)
        return found


def exported(world: World, order_id: int) -> tuple[ExportFile, str, bytes]:
    """The ticket's export record, and the name and bytes of the one file in its zip."""
    with world.store.session() as s:
        found = s.scalars(select(ExportFile).where(ExportFile.order_id == order_id)).one()
        s.expunge(found)
    with zipfile.ZipFile(world.means.files.root / found.path) as zf:
        (name,) = zf.namelist()
        return found, name, zf.read(name)


def job_status(world: World, order_id: int) -> str:
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return exports.job_status(s, order)


def failure(job: Job) -> str:
    return str(job.checkpoint["failure"])


# ------------------------------------------------------------------ formats


def test_a_csv_export_holds_the_result_with_a_header(world: World) -> None:
    order_id = approved(world)
    job = run(world, order_id)
    assert job.state == "succeeded"
    found, name, data = exported(world, order_id)
    assert name == f"ticket-{order_id}.csv"
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["id", "status", "amount_cents"]
    assert len(rows) == 26
    assert (found.rows, found.file_type, found.encoding) == (25, "CSV", "UTF8")
    assert found.file_name == f"ticket-{order_id}-export.zip"
    assert world.status(order_id) == "success"
    assert job_status(world, order_id) == "EXPORT_SUCCESS"


def test_json_keeps_numbers_and_nulls(world: World) -> None:
    sql = "SELECT id, name, NULL AS missing, 1.5 AS ratio FROM customers WHERE id <= 2 ORDER BY id"
    order_id = approved(world, sql, rows=2)
    run(world, order_id, file_type="JSON")
    _, name, data = exported(world, order_id)
    assert name.endswith(".json")
    rows = json.loads(data)
    assert [r["id"] for r in rows] == [1, 2]
    assert rows[0]["missing"] is None and rows[0]["ratio"] == 1.5
    assert isinstance(rows[0]["name"], str)


def test_txt_is_tab_separated_with_escapes_and_null(world: World) -> None:
    sql = (
        "SELECT id, 'a' || char(9) || 'b' || char(10) || 'c' AS odd, NULL AS n "
        "FROM customers WHERE id = 1"
    )
    order_id = approved(world, sql, rows=1)
    run(world, order_id, file_type="TXT")
    _, _, data = exported(world, order_id)
    assert data.decode() == "id\todd\tn\n1\ta\\tb\\nc\tNULL\n"


def test_sql_reloads_into_the_same_table(world: World) -> None:
    order_id = approved(world, "SELECT * FROM customers WHERE id <= 3 ORDER BY id", rows=3)
    run(world, order_id, file_type="SQL")
    _, _, data = exported(world, order_id)
    text = data.decode()
    assert text.startswith(
        'INSERT INTO "customers" ("id", "name", "email", "created_at") VALUES\n(1, '
    )
    assert text.count("INSERT INTO") == 1 and text.endswith(");\n")
    import sqlite3

    copy = sqlite3.connect(":memory:")
    copy.execute("CREATE TABLE customers (id INTEGER, name TEXT, email TEXT, created_at TEXT)")
    copy.executescript(text)
    assert copy.execute("SELECT count(*), min(id), max(id) FROM customers").fetchone() == (
        1 * 3,
        1,
        3,
    )


def test_xlsx_is_a_workbook_stored_as_it_is(world: World) -> None:
    order_id = approved(world)
    run(world, order_id, file_type="XLSX")
    found, name, data = exported(world, order_id)
    assert name.endswith(".xlsx") and found.rows == 25
    with zipfile.ZipFile(io.BytesIO(data)) as book:
        sheet = book.read("xl/worksheets/sheet1.xml").decode()
        strings = (
            book.read("xl/sharedStrings.xml").decode()
            if "xl/sharedStrings.xml" in book.namelist()
            else ""
        )
    assert sheet.count("<row ") == 26  # the header and 25 rows
    assert "amount_cents" in strings + sheet


def test_a_character_the_encoding_lacks_fails_the_export_naming_the_rows(world: World) -> None:
    sql = "SELECT id, 'caf\u00e9 \u4e2d' AS word FROM customers WHERE id <= 3"
    order_id = approved(world, sql, rows=3)
    job = run(world, order_id, encoding="ISO_8859_1")
    assert job.state == "failed"
    assert failure(job) == (
        "A value in rows 1 to 3 cannot be written in ISO_8859_1 ('\u4e2d'); export as UTF8."
    )
    assert job_status(world, order_id) == "EXPORT_FAIL"
    assert list((world.means.files.root / "exports").iterdir()) == []  # nothing half written
    ok = run(world, order_id := approved(world, sql, rows=3), encoding="GBK")
    assert ok.state == "succeeded"
    assert "caf\u00e9 \u4e2d".encode("gbk") in exported(world, order_id)[2]


# ------------------------------------------------------------------ limits


def test_more_rows_than_the_cap_fail_the_export(world: World) -> None:
    world.means = replace(world.means, export_max_rows=10)
    world.rebuild_runner()
    order_id = approved(world)
    job = run(world, order_id)
    assert job.state == "failed"
    assert failure(job).startswith("The result has more than 10 rows, the most an export may hold")


def test_an_export_past_the_instance_timeout_fails(world: World) -> None:
    with world.store.session() as s:
        inst = s.get(Instance, world.instance_id)
        assert inst is not None
        inst.export_timeout = 1
    world.means = replace(world.means, row_check_seconds=0.1)
    world.rebuild_runner()
    slow = (
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000000) "
        "SELECT count(*) AS n FROM r"
    )
    order_id = approved(
        world, slow, rows=1, IgnoreAffectRows=True, IgnoreAffectRowsReason="a long count"
    )
    job = run(world, order_id)
    assert job.state == "failed"
    assert "interrupted" in failure(job) or "ExportTimeout of 1 s" in failure(job)


# ------------------------------------------------------------------ who and when


def test_only_the_committer_runs_an_approved_export_once(world: World) -> None:
    order_id = world.export(CUSTOMER_1, rows=25)
    with world.store.session() as s, pytest.raises(DmsError) as early:
        exports.execute(s, world.as_("alice"), order_id, exports.checked_plan())
    assert early.value.code == ErrorCode.ORDER_STATUS_INVALID
    world.submit(order_id)
    with world.store.session() as s, pytest.raises(DmsError) as other:
        exports.execute(s, world.as_("admin"), order_id, exports.checked_plan())
    assert other.value.code == ErrorCode.PERMISSION_DENIED
    assert run(world, order_id).state == "succeeded"
    with world.store.session() as s, pytest.raises(DmsError) as twice:
        exports.execute(s, world.as_("alice"), order_id, exports.checked_plan())
    assert twice.value.code == ErrorCode.ORDER_STATUS_INVALID


def test_a_data_change_is_not_exported(world: World) -> None:
    order_id = world.file("UPDATE orders SET status = 'x' WHERE id = 1")
    with world.store.session() as s, pytest.raises(DmsError) as refused:
        exports.execute(s, world.as_("alice"), order_id, exports.checked_plan())
    assert refused.value.code == ErrorCode.UNSUPPORTED_PLUGIN_TYPE


def test_lower_case_values_are_read_as_their_names() -> None:
    plan = exports.checked_plan(file_type="csv", encoding="iso-8859-1", mode="normal")
    assert (plan.file_type, plan.encoding, plan.mode) == ("CSV", "ISO_8859_1", "NORMAL")


def test_checked_plan_reads_names_as_a_person_spells_them() -> None:
    plan = exports.checked_plan(file_type="xlsx", encoding="gb2312", start="")
    assert plan == exports.ExportPlan(file_type="XLSX", encoding="GB2312", mode="FAST")
    assert exports.checked_plan() == exports.ExportPlan()
    with pytest.raises(DmsError) as refused:
        exports.checked_plan(file_type="PDF")
    assert refused.value.message.startswith("ActionDetail.fileType: 'PDF' is not one of")


def test_job_status_follows_the_ticket(world: World) -> None:
    order_id = world.export(CUSTOMER_1, rows=1)
    assert job_status(world, order_id) == "PRE_CHECK_FAIL"
    order_id = world.export(CUSTOMER_1, rows=25)
    assert job_status(world, order_id) == "PRE_CHECK_SUCCESS"
    world.submit(order_id)
    assert job_status(world, order_id) == "ENABLE_EXPORT"
    with world.store.session() as s:
        exports.execute(s, world.as_("alice"), order_id, exports.checked_plan())
    assert job_status(world, order_id) == "WAITING_EXPORT"
    world.run_jobs()
    assert job_status(world, order_id) == "EXPORT_SUCCESS"


def test_a_stopped_export_restarts_and_a_removed_file_is_gone(world: World) -> None:
    order_id = approved(world)
    with world.store.session() as s:
        job_id = exports.execute(s, world.as_("alice"), order_id, exports.checked_plan()).job_id
    with world.store.session() as s:
        exports.stop(s, world.as_("alice"), order_id, job_id)
    assert world.run_jobs() == 0
    assert job_status(world, order_id) == "EXPORT_FAIL"
    with world.store.session() as s:
        assert exports.download_url(s, world.as_("alice"), order_id) == (
            None,
            "The export failed: stopped by alice",
        )
        again = exports.restart(s, world.as_("alice"), order_id, job_id).job_id
    world.run_jobs()
    assert job_status(world, order_id) == "EXPORT_SUCCESS"
    with world.store.session() as s, pytest.raises(DmsError):
        exports.restart(s, world.as_("alice"), order_id, again)  # it succeeded
    with world.store.session() as s:
        exports.remove(s, world.as_("alice"), order_id, again)
    with world.store.session() as s:
        assert exports.download_url(s, world.as_("alice"), order_id) == (
            None,
            "The export's file was removed.",
        )


def test_a_download_is_for_those_who_may_see_the_ticket_and_is_audited(world: World) -> None:
    order_id = approved(world)
    job = run(world, order_id)
    root = world.means.files.root
    with world.store.session() as s:
        assert exports.open_download(s, root, world.id("carol"), job.job_id, "1.2.3.4:5") is None
        opened = exports.open_download(s, root, world.id("alice"), job.job_id, "1.2.3.4:5")
        assert opened is not None and opened[0].is_file()
    with world.store.session() as s:
        lines = s.scalars(select(SqlAudit).where(SqlAudit.order_id == order_id)).all()
        assert [(a.sql_type, a.exec_state, a.affect_rows) for a in lines] == [
            ("SELECT", "SUCCESS", 25),
            ("EXPORT_DOWNLOAD", "SUCCESS", 25),
        ]
        assert re.fullmatch(r"downloaded by alice from 1\.2\.3\.4:5", lines[1].remark)
