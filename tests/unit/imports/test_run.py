"""Import tickets (DC_BIG_FILE) end to end on the SQLite demo database: the precheck over
the file, execution in batches with the position on the target, each insert mode,
IgnoreError, files that cannot be read, SQL and XLSX files, and a restart that neither
loses nor repeats a batch."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from opendms.execution import service as execution
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Work
from opendms.precheck import service as precheck
from opendms.store.db import Store
from opendms.store.models import Job, Order, SqlJobDetail
from opendms.targets.sqlite import SqliteChange
from tests.approval_world import World

HEADER = "id,name,email,created_at\n"


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets").free_of_approval("DC_BIG_FILE")


def filed(world: World, name: str, content: bytes, **param: Any) -> int:
    return world.import_file(name, content, **param)


def steps(world: World, order_id: int) -> dict[str, tuple[str, str]]:
    with world.store.session() as s:
        return {v.step: (v.status, v.tip) for v in precheck.steps(s, order_id)}


def executed(world: World, order_id: int) -> tuple[str, SqlJobDetail]:
    """Submit and execute the ticket to its end: the ticket's status and its one detail."""
    world.execute(order_id)
    return world.status(order_id), world.only_detail(order_id)


def customers(world: World, where: str = "id > 1000") -> list[tuple[Any, ...]]:
    with world.store.session() as s:
        from opendms.store.models import Instance

        inst = s.get(Instance, world.instance_id)
        assert inst is not None
        path = inst.host
    with sqlite3.connect(path) as db:
        return list(db.execute(f"SELECT id, name, email FROM customers WHERE {where} ORDER BY id"))


def rows(*ids: int) -> bytes:
    return (HEADER + "".join(f"{i},n{i},e{i}@x,2026-01-01\n" for i in ids)).encode()


def test_a_csv_file_is_prechecked_and_imported(world: World) -> None:
    order_id = filed(world, "new.csv", rows(1001, 1002, 1003))
    found = steps(world, order_id)
    assert found["SQL_PARSE"] == ("SUCCESS", "3 records read, for id, name, email, created_at.")
    assert found["SQL_TYPE_CHECK"] == (
        "SUCCESS",
        "The values of the first 3 records fit their columns.",
    )
    assert found["ROW_CHECK"] == ("SUCCESS", "3 rows to import.")
    status, detail = executed(world, order_id)
    assert status == "success"
    assert (detail.status, detail.affect_rows, detail.sql_type) == ("SUCCESS", 3, "INSERT")
    assert customers(world) == [
        (1001, "n1001", "e1001@x"),
        (1002, "n1002", "e1002@x"),
        (1003, "n1003", "e1003@x"),
    ]


def test_a_record_of_the_wrong_width_is_named_by_its_line(world: World) -> None:
    content = (HEADER + "1001,a,a@x,2026-01-01\n1002,b,2026-01-01\n").encode()
    order_id = filed(world, "bad.csv", content)
    assert steps(world, order_id)["SQL_PARSE"] == ("FAIL", "line 3 has 3 fields, not 4")


def test_a_value_its_column_cannot_hold_is_named_by_its_line(world: World) -> None:
    content = (HEADER + "1001,a,a@x,2026-01-01\nabc,b,b@x,2026-01-01\n").encode()
    order_id = filed(world, "bad.csv", content, ImportMode="SAFE_MODE")
    assert steps(world, order_id)["SQL_TYPE_CHECK"] == (
        "FAIL",
        "line 3: 'abc' is not a valid int for id",
    )


def test_a_header_naming_no_column_fails(world: World) -> None:
    order_id = filed(world, "bad.csv", b"id,nick\n1,a\n")
    status, tip = steps(world, order_id)["SQL_PARSE"]
    assert status == "FAIL" and "the header names 'nick', which customers lacks" in tip


def test_a_quote_never_closed_is_named_by_its_line(world: World) -> None:
    content = (HEADER + '1001,"a,a@x,2026-01-01\n1002,b,b@x,2026-01-01\n').encode()
    order_id = filed(world, "cut.csv", content)
    status, tip = steps(world, order_id)["SQL_PARSE"]
    assert status == "FAIL" and tip.startswith("line 2 of cut.csv:"), tip


def test_bytes_not_in_the_encoding_are_named_by_their_line(world: World) -> None:
    content = HEADER.encode() + b"1001,a,a@x,2026-01-01\n1002,\xff\xfe,b@x,2026-01-01\n"
    order_id = filed(world, "enc.csv", content, FileEncoding="UTF-8")
    status, tip = steps(world, order_id)["SQL_PARSE"]
    assert status == "FAIL" and tip.startswith("line 3 of enc.csv is not valid UTF-8"), tip


def test_gbk_is_detected(world: World) -> None:
    content = (HEADER + "1001,张三,z@x,2026-01-01\n1002,李四,l@x,2026-01-01\n").encode("gbk")
    order_id = filed(world, "gbk.csv", content, FileEncoding="AUTO")
    status, _ = executed(world, order_id)
    assert status == "success"
    assert [r[1] for r in customers(world)] == ["张三", "李四"]


def test_a_duplicate_stops_insert_at_its_line_and_applies_nothing_of_its_batch(
    world: World,
) -> None:
    order_id = filed(world, "dup.csv", rows(1001, 1002, 1, 1003))  # customer 1 exists
    status, detail = executed(world, order_id)
    assert status == "processing" and detail.status == "FAIL"
    assert "line 4 of dup.csv: the record there failed: " in detail.log
    assert customers(world) == []


def test_ignore_error_skips_the_record_and_logs_its_line(world: World) -> None:
    order_id = filed(world, "dup.csv", rows(1001, 1, 1002), IgnoreError=True)
    status, detail = executed(world, order_id)
    assert status == "success" and detail.affect_rows == 2
    assert "line 3 skipped: " in detail.log and "1 records skipped" in detail.log
    assert [r[0] for r in customers(world)] == [1001, 1002]


def test_insert_ignore_and_replace_into(world: World) -> None:
    content = (HEADER + "1,renamed,c1@example.com,2026-01-01\n1001,n,n@x,2026-01-01\n").encode()
    ignored = filed(world, "a.csv", content, InsertType="INSERT_IGNORE")
    assert executed(world, ignored)[1].affect_rows == 1
    assert customers(world, "id = 1")[0][1] != "renamed"
    content = content.replace(b"1001,n", b"1002,n").replace(b"n@x", b"m@x")
    replaced = filed(world, "b.csv", content, InsertType="REPLACE_INTO")
    assert executed(world, replaced)[1].affect_rows == 2
    assert customers(world, "id = 1")[0][1] == "renamed"


def test_a_sql_file_runs_its_statements_and_refuses_other_kinds(world: World) -> None:
    script = (
        b"INSERT INTO customers VALUES (1001, 'a', 'a@x', 't');\n"
        b"UPDATE customers SET name = 'b' WHERE id = 1001;\n"
    )
    order_id = filed(world, "ok.sql", script, FileType="SQL", TableName=None)
    assert steps(world, order_id)["SQL_PARSE"] == ("SUCCESS", "2 statements parsed.")
    status, detail = executed(world, order_id)
    assert status == "success" and detail.affect_rows == 2
    assert customers(world) == [(1001, "b", "a@x")]
    bad = filed(world, "bad.sql", b"DROP TABLE customers;\n", FileType="SQL")
    status, tip = steps(world, bad)["SQL_TYPE_CHECK"]
    assert status == "FAIL" and "statement 1 (line 1) is DROP" in tip


def test_every_statement_of_a_sql_file_is_checked_in_fast_mode_too(world: World) -> None:
    """FAST_MODE once parsed only the first 1,000 statements and ran the rest unread: a
    function off the allowlist at statement 1,050 would have run."""
    script = "".join(
        f"INSERT INTO customers VALUES ({2000 + i}, 'n', 'e@x', 't');\n" for i in range(1, 1050)
    )
    script += "UPDATE customers SET name = load_extension('/tmp/evil') WHERE id = 2001;\n"
    order_id = filed(
        world, "big.sql", script.encode(), FileType="SQL", TableName=None, ImportMode="FAST_MODE"
    )
    status, tip = steps(world, order_id)["SQL_PARSE"]
    assert status == "FAIL" and "statement 1050 (line 1050): it calls load_extension()" in tip


def test_an_xlsx_workbook_is_imported(world: World) -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["id", "name", "email", "created_at"])
    sheet.append([1001, "x", "x@x", "2026-01-01"])
    sheet.append([1002.0, "y", "y@x", "2026-01-02"])
    out = io.BytesIO()
    book.save(out)
    order_id = filed(world, "book.xlsx", out.getvalue(), FileType="XLSX")
    status, detail = executed(world, order_id)
    assert status == "success" and detail.affect_rows == 2
    assert [r[0] for r in customers(world)] == [1001, 1002]


def started(world: World, order_id: int) -> Work:
    """The ticket submitted and its execute job made, running as a runner's claim leaves
    it: each call of the executor on the work is one step."""
    world.submit(order_id)
    with world.store.session() as s:
        job_id = execution.execute(
            s, world.as_("alice"), order_id, execution.ExecutionPlan()
        ).job_id
        s.get_one(Job, job_id).state = "running"
    return Work(job_id, order_id, "execute", 1, world.store)


def test_a_restart_goes_on_from_the_targets_position(world: World) -> None:
    # one batch of two a step: two records (30 bytes each) by Python, or a 60-byte block
    world.tune(import_batch_rows=2, import_batch_bytes=(60, 60), import_step_seconds=0.0)
    order_id = filed(world, "many.csv", rows(*range(1001, 1011)))
    work = started(world, order_id)
    job_id = work.job_id
    first = world.runner.executors["execute"]
    first(work, {})
    first(work, {})
    assert len(customers(world)) == 4  # two batches committed, each with the position
    world.rebuild_runner()  # another process: no open file, only the target's marker
    world.runner.executors["execute"](work, {})
    assert len(customers(world)) == 6  # it went on from there: nothing twice
    with world.store.session() as s:
        s.get_one(Job, job_id).state = "queued"
    world.run_jobs()
    assert [r[0] for r in customers(world)] == list(range(1001, 1011))
    with world.store.session() as s:
        assert s.get_one(Order, order_id).status_code == "success"


def test_the_block_that_ends_the_file_finishes_the_import_in_its_transaction(
    world: World,
) -> None:
    # five blocks of two records, one a step: the fifth step ends the job, with no
    # transaction after it to say the file is done
    world.tune(import_batch_bytes=(60, 60), import_step_seconds=0.0)
    work = started(world, filed(world, "ten.csv", rows(*range(1001, 1011))))
    step = world.runner.executors["execute"]
    ended = [bool(step(work, {}).done) for _ in range(5)]
    assert ended == [False, False, False, False, True]
    assert [r[0] for r in customers(world)] == list(range(1001, 1011))


def test_only_the_imports_last_commit_waits_for_the_disk(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    waited: list[bool] = []
    soon = [False]
    commit = SqliteChange.commit

    def commit_soon(self: SqliteChange) -> None:
        soon[0] = True

    def committed(self: SqliteChange) -> None:
        waited.append(not soon[0])
        soon[0] = False
        commit(self)

    monkeypatch.setattr(SqliteChange, "commit_soon", commit_soon)
    monkeypatch.setattr(SqliteChange, "commit", committed)
    world.tune(import_batch_bytes=(60, 60))
    order_id = filed(world, "ten.csv", rows(*range(1001, 1011)))
    world.execute(order_id)
    assert world.status(order_id) == "success"
    # the position claimed, then five blocks: a crash of the server may undo any but the last
    assert waited == [False] * 5 + [True]
