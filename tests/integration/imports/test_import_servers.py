"""Import tickets on real MariaDB and PostgreSQL databases, through the services: a CSV of
several batches with NULLs, empty strings and awkward text in each insert mode, a failing
record that stops the import at its line with nothing of its batch applied, and a SQL
file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Order, SqlJobDetail
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
        world.tune(import_batch_rows=1000)
        yield ServerDb(engine, name, conn, world, box)


def imported(server: ServerDb, content: str, **param: Any) -> tuple[str, SqlJobDetail]:
    w = server.world
    order_id = w.import_file("people.csv", content.encode(), TableName="people", **param)
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
