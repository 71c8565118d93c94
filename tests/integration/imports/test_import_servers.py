"""Import tickets on real MariaDB and PostgreSQL databases, through the services: a CSV of
several batches with NULLs, empty strings and awkward text in each insert mode, a failing
record that stops the import at its line with nothing of its batch applied, and a SQL
file."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opendms.execution import service as execution
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Work
from opendms.store.db import Store
from opendms.store.models import Job, Order, SqlJobDetail
from tests.approval_world import World
from tests.integration.server_db import ServerDb

pytestmark = pytest.mark.integration

HEADER = "id,name,note,amount,born\n"


@pytest.fixture(params=["mariadb", "postgresql"])
def server(
    request: pytest.FixtureRequest,
    store: Store,
    box: SecretBox,
    tmp_path: Path,
) -> Iterator[ServerDb]:
    engine = request.param

    def prepare(conn: Any) -> None:
        with conn.cursor() as cur:
            cur.execute(
                "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
                "note TEXT NULL, amount DECIMAL(10,2) NULL, born DATE NULL)"
            )

    with World.on_server(engine, store, box, tmp_path, prepare) as (world, name, conn):
        world.free_of_approval("DC_BIG_FILE")
        world.tune(import_batch_rows=1000, import_batch_bytes=(64_000, 64_000))
        yield ServerDb(engine, name, conn, world, box)


def imported(server: ServerDb, content: str, **param: Any) -> tuple[str, SqlJobDetail]:
    w = server.world
    param = {"TableName": "people", **param}
    order_id = w.import_file("people.csv", content.encode(), **param)
    w.execute(order_id)
    return w.status(order_id), w.only_detail(order_id)


def line(i: int) -> str:
    return f'{i},"name {i}, the ""{i}th""",note {i},{i}.25,2000-01-{1 + i % 28:02d}\n'


def test_a_csv_of_many_batches_lands_exactly(server: ServerDb) -> None:
    body = HEADER + "".join(line(i) for i in range(1, 4501))
    body += '4501,"",,,\n4502,"two\nlines",\\N,1.5,\n'  # empty, NULL, a line break
    status, detail = imported(server, body)
    assert status == "success", detail.log
    assert detail.affect_rows == 4502
    assert detail.progress["chunks"] >= 5  # one per batch of 1000
    assert server.rows("SELECT COUNT(*) FROM people") == [(4502,)]
    assert server.rows("SELECT name, note FROM people WHERE id = 7") == [
        ('name 7, the "7th"', "note 7")
    ]
    odd = server.rows("SELECT id, name, note, amount, born FROM people WHERE id > 4500 ORDER BY id")
    assert [(r[0], r[1], r[2], r[4]) for r in odd] == [
        (4501, "", "", None),  # an empty text field is '', an empty date NULL
        (4502, "two\nlines", None, None),
    ]


def test_insert_modes_on_an_existing_row(server: ServerDb) -> None:
    server.sql("INSERT INTO people (id, name) VALUES (1, 'old')")
    body = HEADER + line(1) + line(2)
    status, detail = imported(server, body)
    assert status == "processing" and detail.status == "FAIL"
    assert "line 2 of people.csv: the record there failed" in detail.log
    assert server.rows("SELECT COUNT(*) FROM people") == [(1,)]  # nothing of the batch

    status, detail = imported(server, body, InsertType="INSERT_IGNORE")
    assert (status, detail.affect_rows) == ("success", 1)
    assert server.rows("SELECT name FROM people WHERE id = 1") == [("old",)]

    status, detail = imported(server, body.replace("name 1,", "new 1,"), InsertType="REPLACE_INTO")
    assert (status, detail.affect_rows) == ("success", 2)
    assert server.rows("SELECT name FROM people WHERE id = 1") == [('new 1, the "1th"',)]


def test_a_sql_file_runs_in_batches(server: ServerDb) -> None:
    script = (
        "".join(f"INSERT INTO people (id, name) VALUES ({i}, 'p{i}');\n" for i in range(1, 1201))
        + "UPDATE people SET note = 'done' WHERE id <= 600;\n"
    )
    w = server.world
    order_id = w.import_file("load.sql", script.encode(), FileType="SQL", TableName=None)
    w.execute(order_id)
    with w.store.session() as s:
        assert s.get_one(Order, order_id).status_code == "success"
    assert server.rows("SELECT COUNT(*), COUNT(note) FROM people") == [(1200, 600)]


AWKWARD = [
    "id,name,note,amount,born",
    '1,"a, ""quoted"" name","two',
    'lines",1.50,2020-01-02',
    "2,,,,",  # empty text is '', empty number and date NULL
    '3,"","","",""',  # quoted empties the same
    "4, spaced ,C:\\path\\to,0.00,2020-01-02",  # spaces and backslashes as they are
    '5,\u00e9\u4e2d,"x,y",-3.25,2021-12-31',
]


def _loaded_by(monkeypatch: pytest.MonkeyPatch, loader: bool) -> list[int]:
    """Blocks the database's loader took, counted; with ``loader`` False it is never asked."""
    from opendms.imports import run

    taken: list[int] = []
    original = run.Writer._loaded

    def counted(self: run.Writer, block: Any) -> int | None:
        found = original(self, block) if loader else None
        if found is not None:
            taken.append(found)
        return found

    monkeypatch.setattr(run.Writer, "_loaded", counted)
    return taken


def _table(server: ServerDb) -> list[tuple[Any, ...]]:
    return server.rows("SELECT id, name, note, amount, born FROM people ORDER BY id")


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_the_loader_reads_a_csv_as_python_reads_it(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch, ending: str
) -> None:
    body = ending.join(AWKWARD) + ending
    taken = _loaded_by(monkeypatch, loader=True)
    assert imported(server, body)[0] == "success"
    assert taken == [5]  # one block, the database's loader parsed it
    by_loader = _table(server)
    server.sql("DELETE FROM people")
    monkeypatch.undo()
    assert _loaded_by(monkeypatch, loader=False) == []
    assert imported(server, body)[0] == "success"
    assert _table(server) == by_loader
    assert [r[1:3] for r in by_loader[:4]] == [
        ('a, "quoted" name', "two" + ending + "lines"),
        ("", ""),
        ("", ""),
        (" spaced ", "C:\\path\\to"),
    ]
    assert [r[3:] for r in by_loader[1:3]] == [(None, None), (None, None)]


def test_what_the_loader_would_misread_python_reads(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = HEADER + "1,NULL,\\N,,\n" + '2,b"c,d,,\n'  # the word NULL, \N, a quote inside
    taken = _loaded_by(monkeypatch, loader=True)
    assert imported(server, body)[0] == "success"
    assert taken == []
    assert server.rows("SELECT id, name, note FROM people ORDER BY id") == [
        (1, "NULL", None),
        (2, 'b"c', "d"),
    ]


def test_a_refused_block_is_written_record_by_record_to_name_the_line(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.sql("INSERT INTO people (id, name) VALUES (3, 'old')")
    body = HEADER + "".join(line(i) for i in range(1, 6))
    taken = _loaded_by(monkeypatch, loader=True)
    status, detail = imported(server, body, IgnoreError=True)
    assert (status, detail.affect_rows, taken) == ("success", 4, [])
    assert "line 4 skipped" in detail.log  # the duplicate, found by Python's reading
    assert server.rows("SELECT name FROM people WHERE id = 3") == [("old",)]


def test_an_import_cut_short_goes_on_from_the_block_it_stopped_at(server: ServerDb) -> None:
    """Two stretches by different runners (a crash in between): the second starts from the
    byte and line the target's marker holds, and nothing is written twice."""
    w = server.world
    w.tune(import_batch_bytes=(2_000, 2_000), import_step_seconds=0.0)  # a block a step
    body = HEADER + "".join(line(i) for i in range(1, 201))
    order_id = w.import_file("people.csv", body.encode(), TableName="people")
    w.submit(order_id)
    with w.store.session() as s:
        job_id = execution.execute(s, w.as_("alice"), order_id, execution.ExecutionPlan()).job_id
        s.get_one(Job, job_id).state = "running"  # as a runner's claim leaves it
    w.runner.executors["execute"](Work(job_id, order_id, "execute", 1, w.store), {})
    written = server.rows("SELECT COUNT(*) FROM people")[0][0]
    assert 0 < written < 200
    w.rebuild_runner()  # another process: no open file, only the target's marker
    with w.store.session() as s:
        s.get_one(Job, job_id).state = "queued"
    w.run_jobs()
    assert w.status(order_id) == "success"
    assert server.rows("SELECT COUNT(*), COUNT(DISTINCT id), MAX(id) FROM people") == [
        (200, 200, 200)
    ]


# ------------------------------------------------------------------ two blocks at a time


def _spied(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """What each call of Importer.``name`` (a block written beside another, or again after
    giving way) came to: Written, Position (moved on) or NoneType (the one before failed)."""
    from opendms.imports import run

    seen: list[str] = []
    original = getattr(run.Importer, name)

    def spied(self: run.Importer, *args: Any) -> Any:
        found = original(self, *args)
        seen.append(type(found).__name__)
        return found

    monkeypatch.setattr(run.Importer, name, spied)
    return seen


def test_blocks_are_written_two_at_a_time_in_the_files_order(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    paired = _spied(monkeypatch, "_beside")
    status, detail = imported(server, HEADER + "".join(line(i) for i in range(1, 4001)))
    assert status == "success", detail.log
    assert detail.affect_rows == 4000
    # all but the first, which is written as one alone would be
    assert paired == ["Written"] * (detail.progress["chunks"] - 1) and len(paired) >= 2
    # its time is the clock's, not the two sessions' busy time added up
    assert detail.time_ms == detail.progress["wall_ms"]
    assert server.rows("SELECT COUNT(*), COUNT(DISTINCT id), MAX(id) FROM people") == [
        (4000, 4000, 4000)
    ]


def test_a_record_failing_beside_the_next_block_stops_the_import_at_its_line(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block after the failing one was written beside it: it rolls back too, and the
    table holds the file's records up to the failing block, nothing after."""
    paired = _spied(monkeypatch, "_beside")
    server.sql("INSERT INTO people (id, name) VALUES (2500, 'old')")
    status, detail = imported(server, HEADER + "".join(line(i) for i in range(1, 4001)))
    assert status == "processing" and detail.status == "FAIL"
    assert "line 2501 of people.csv: the record there failed" in detail.log
    ((count, top),) = server.rows("SELECT COUNT(*), MAX(id) FROM people WHERE id <> 2500")
    assert 0 < count == top < 2500  # a whole first part of the file
    assert server.rows("SELECT COUNT(*) FROM people WHERE id > 2500") == [(0,)]
    assert "NoneType" in paired  # the block after gave up: the one before it failed


@pytest.mark.parametrize(("mode", "kept"), [("REPLACE_INTO", "fourth"), ("INSERT_IGNORE", "first")])
def test_a_block_waiting_on_a_lock_the_next_holds_has_the_next_give_way(
    server: ServerDb,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    mode: str,
    kept: str,
) -> None:
    """The file holds ids 1..1000 four times: the first block (held back a while here)
    then waits on keys the second, written beside it, wrote first, while the second waits
    for the first to commit. The second gives way and is written again after the first:
    the rows are those of the file read in order (REPLACE: the last line's, IGNORE: the
    first's). Blocks that give way (here one is enough) leave the rest one at a time."""
    from opendms.imports import run

    caplog.set_level(logging.INFO, logger="opendms.imports")
    original = run.Writer.batch

    def first_held_back(self: run.Writer, batch: run.Batch) -> run.Outcome:
        if batch.block is not None and batch.block.line == 2:
            time.sleep(0.5)  # (the second gives way at 1 s)
        return original(self, batch)

    monkeypatch.setattr(run.Writer, "batch", first_held_back)
    monkeypatch.setattr(run, "GIVE_WAYS", 1)  # then the rest a block at a time
    paired = _spied(monkeypatch, "_beside")
    pad = "-" * 50  # 64 kB blocks of some 800 records: the second holds ids the first does
    copies = ["first", "second", "third", "fourth"]
    body = "".join(f"{i},{c} {i} {pad},,,\n" for c in copies for i in range(1, 1001))
    status, detail = imported(server, HEADER + body, InsertType=mode)
    assert status == "success", detail.log
    assert "gave way to the one before it" in caplog.text
    assert "1 blocks gave way: the rest is written a block at a time" in caplog.text
    # the second block, and the third (taken before the second gave way), written beside
    assert paired == ["Written", "Written"] and detail.progress["chunks"] >= 5
    names = server.rows("SELECT name FROM people ORDER BY id")
    assert names == [(f"{kept} {i} {pad}",) for i in range(1, 1001)]


def test_a_table_with_an_auto_increment_key_is_written_a_block_at_a_time(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its keys follow the file's order."""
    paired = _spied(monkeypatch, "_beside")
    key = (
        "id INT AUTO_INCREMENT PRIMARY KEY"
        if server.engine == "mariadb"
        else "id SERIAL PRIMARY KEY"
    )
    server.sql(f"CREATE TABLE counted ({key}, name VARCHAR(64))")
    server.sync()
    body = "name\n" + "".join(f"record number {i:06d} of the file\n" for i in range(1, 6001))
    status, detail = imported(server, body, TableName="counted")
    assert status == "success", detail.log
    assert detail.progress["chunks"] >= 3 and paired == []
    names = server.rows("SELECT name FROM counted ORDER BY id")
    assert names == [(f"record number {i:06d} of the file",) for i in range(1, 6001)]


def test_a_file_failing_mid_way_waits_for_the_blocks_written_beside(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader fails while two blocks are being written: both end (committed in order,
    or rolled back) before the sessions go back, and the failure is the ticket's."""
    from opendms.imports import run

    original, taken = run.Reader.take, []

    def failing_third(self: run.Reader, *args: Any) -> run.Batch:
        taken.append(1)
        if len(taken) == 3:
            raise run.ImportFailed("people.csv went bad")
        return original(self, *args)

    monkeypatch.setattr(run.Reader, "take", failing_third)
    status, detail = imported(server, HEADER + "".join(line(i) for i in range(1, 4001)))
    assert status == "processing" and detail.status == "FAIL"
    assert "people.csv went bad" in detail.log
    assert not [t for t in threading.enumerate() if t.name == "opendms-import-beside"]
    ((count, top),) = server.rows("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM people")
    assert count == top < 4000  # a whole first part of the file, the two blocks' at most


def test_without_a_second_session_an_import_writes_a_block_at_a_time(
    server: ServerDb, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from opendms.imports import run
    from opendms.targets.base import TargetError

    def refused() -> Any:
        raise TargetError("too many connections")

    original = run.Importer.stretch

    def stretch(self: run.Importer, *args: Any) -> run.Stretch:
        return original(self, *args[:4], refused)

    monkeypatch.setattr(run.Importer, "stretch", stretch)
    paired = _spied(monkeypatch, "_beside")
    caplog.set_level(logging.INFO, logger="opendms.imports")
    status, detail = imported(server, HEADER + "".join(line(i) for i in range(1, 4001)))
    assert status == "success", detail.log
    assert "one session only: too many connections" in caplog.text
    assert paired == [] and detail.progress["chunks"] >= 3
    assert server.rows("SELECT COUNT(*), MAX(id) FROM people") == [(4000, 4000)]
