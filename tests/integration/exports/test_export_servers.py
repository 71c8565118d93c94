"""Export tickets on real MariaDB and PostgreSQL databases, through the services: every file
format of a table with awkward values, masked and unmasked (PostgreSQL's COPY path and the
cursor path), encodings, and a SQL export loaded back into the same server."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.catalog import sensitive
from opendms.exports import service as exports
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import ExportFile, Job
from tests.approval_world import World
from tests.integration.server_db import ServerDb

pytestmark = pytest.mark.integration

NOTES = ["plain", 'say "hi", then go', "two\nlines", "tab\there", "back\\slash", None, "中文 café"]
ROWS = 70


def _people(engine: str) -> str:
    if engine == "mariadb":
        return (
            "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
            "email VARCHAR(128) NOT NULL, amount DECIMAL(10,2) NOT NULL, born DATE, "
            "note TEXT NULL) DEFAULT CHARSET utf8mb4"
        )
    return (
        "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
        "email VARCHAR(128) NOT NULL, amount NUMERIC(10,2) NOT NULL, born DATE, note TEXT NULL)"
    )


def _fill(conn: Any, engine: str) -> None:
    with conn.cursor() as cur:
        cur.execute(_people(engine))
        cur.executemany(
            "INSERT INTO people VALUES (%s, %s, %s, %s, %s, %s)",
            [
                (
                    i,
                    f"person {i}",
                    f"user{i}@example.com",
                    Decimal(i) / 4,
                    f"19{50 + i % 50}-0{1 + i % 9}-1{i % 10}",
                    NOTES[i % len(NOTES)],
                )
                for i in range(1, ROWS + 1)
            ],
        )


@pytest.fixture(params=["mariadb", "postgresql"])
def server(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[ServerDb]:
    engine = request.param

    def prepare(conn: Any) -> None:
        _fill(conn, engine)

    with World.on_server(engine, store, box, tmp_path, prepare) as (world, name, conn):
        world.free_of_approval("DATA_EXPORT")
        yield ServerDb(engine, name, conn, world, box)


def export(server: ServerDb, sql: str, rows: int = ROWS, **plan: Any) -> tuple[Job, bytes]:
    """``sql`` exported through an approved ticket; the job, and the file in its zip."""
    w = server.world
    order_id = w.export(sql, rows=rows)
    w.submit(order_id)
    assert w.status(order_id) == "Approved", w.status(order_id)
    with w.store.session() as s:
        job_id = exports.execute(s, w.as_("alice"), order_id, exports.checked_plan(**plan)).job_id
    w.run_jobs()
    with w.store.session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
        found = s.scalars(select(ExportFile).where(ExportFile.job_id == job_id)).one_or_none()
        if found is None:
            return job, b""
        with zipfile.ZipFile(w.means.files.root / found.path) as zf:
            return job, zf.read(zf.namelist()[0])


def expected(i: int) -> list[str]:
    note = NOTES[i % len(NOTES)]
    return [str(i), f"person {i}", f"user{i}@example.com", f"{Decimal(i) / 4:.2f}", note or ""]


ALL = "SELECT id, name, email, amount, note FROM people ORDER BY id"


def test_csv_holds_every_value_as_written(server: ServerDb) -> None:
    job, data = export(server, ALL)
    assert job.state == "succeeded", job.checkpoint
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["id", "name", "email", "amount", "note"]
    assert rows[1:] == [expected(i) for i in range(1, ROWS + 1)]


def test_masked_csv_hides_the_flagged_column(server: ServerDb) -> None:
    w = server.world
    with w.store.session() as s:
        sensitive.set_mask(s, w.tid, w.db_id, "people", "email", "LAST4", None)
    job, data = export(server, "SELECT id, email, name FROM people ORDER BY id")
    assert job.state == "succeeded", job.checkpoint
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[1][1] == "*" * (len("user1@example.com") - 4) + ".com"
    assert all(r[1].endswith(".com") and "user" not in r[1] for r in rows[1:])


@pytest.mark.parametrize("file_type", ["JSON", "TXT", "SQL", "XLSX"])
def test_every_format_holds_every_row(server: ServerDb, file_type: str) -> None:
    job, data = export(server, ALL, file_type=file_type)
    assert job.state == "succeeded", job.checkpoint
    if file_type == "JSON":
        rows = json.loads(data)
        assert len(rows) == ROWS
        assert rows[1]["note"] == NOTES[2] and rows[0]["amount"] == "0.25"
        assert rows[4]["note"] is None  # id 5
    elif file_type == "TXT":
        lines = data.decode().split("\n")
        assert lines[0] == "id\tname\temail\tamount\tnote"
        assert lines[3] == "3\tperson 3\tuser3@example.com\t0.75\ttab\\there"
        assert lines[5] == "5\tperson 5\tuser5@example.com\t1.25\tNULL"
        assert len(lines) == ROWS + 2  # the header, the rows and the final newline
    elif file_type == "SQL":
        server.sql("CREATE TABLE people_copy AS SELECT * FROM people WHERE 1 = 0")
        text = data.decode().replace("INTO `people`", "INTO `people_copy`")
        text = text.replace('INTO "people"', 'INTO "people_copy"')
        for statement in text.split(";\n"):
            if statement.strip():
                server.sql(statement)
        copied = server.rows("SELECT id, name, email, amount, note FROM people_copy ORDER BY id")
        original = server.rows(ALL)
        assert copied == original
    else:
        with zipfile.ZipFile(io.BytesIO(data)) as book:
            sheet = book.read("xl/worksheets/sheet1.xml").decode()
        assert sheet.count("<row ") == ROWS + 1


def test_gbk_holds_chinese_and_refuses_what_it_cannot_hold(server: ServerDb) -> None:
    job, data = export(
        server, "SELECT id, note FROM people WHERE id = 6 OR id = 13", rows=2, encoding="GBK"
    )
    assert job.state == "succeeded", job.checkpoint
    assert data.count("中文 café".encode("gbk")) == 2
    server.sql("UPDATE people SET note = 'snow ☃ man' WHERE id = 1")
    job, _ = export(server, "SELECT id, note FROM people WHERE id = 1", rows=1, encoding="GBK")
    assert job.state == "failed"
    failure = job.checkpoint["failure"]
    assert "☃" in failure or "GBK" in failure, failure


def test_binary_values_and_repeated_column_names(server: ServerDb) -> None:
    binary = "UNHEX('00ff')" if server.engine == "mariadb" else "'\\x00ff'::bytea"
    sql = (
        f"SELECT p.id, q.id, {binary} AS b, '' AS empty, NULL AS missing FROM people p "
        "JOIN people q ON q.id = p.id WHERE p.id <= 2 ORDER BY p.id"
    )
    job, data = export(server, sql, rows=2)
    assert job.state == "succeeded", job.checkpoint
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["id", "id", "b", "empty", "missing"]
    shown = "0x00ff" if server.engine == "mariadb" else "\\x00ff"  # as each database prints it
    assert rows[1:] == [["1", "1", shown, "", ""], ["2", "2", shown, "", ""]]
