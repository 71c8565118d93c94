"""Imports through the official SDK against a real `opendms serve`: a million-row CSV, uploaded
with CreateUploadFileJob and filed with CreateDataImportOrder, lands in MariaDB and in
PostgreSQL exactly once although the server is killed with SIGKILL halfway; the other insert
modes on a file that overlaps it; and a SQL file."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.e2e.conftest import (
    SERVING_UPLOADS,
    Dms,
    prechecked,
    register_target,
    running_server,
    serving,
    target_database,
    wait_for,
)

pytestmark = [pytest.mark.e2e]

ROWS = 1_000_000
TABLE = "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, note TEXT NULL)"


@pytest.fixture(scope="module")
def files() -> Iterator[str]:
    """A loopback http.server serving the test's files: people.csv (a million rows),
    overlap.csv (rows 999,001 to 1,001,000, renamed) and load.sql (5,000 INSERTs)."""
    with tempfile.TemporaryDirectory(prefix="opendms-e2e-import-") as tmp:
        root = Path(tmp)
        with (root / "people.csv").open("w") as out:
            out.write("id,name,note\n")
            for start in range(1, ROWS + 1, 100_000):
                out.write(
                    "".join(
                        f'{i},"person {i}, the {i % 9}th",{"" if i % 10 else "n"}\n'
                        for i in range(start, start + 100_000)
                    )
                )
        (root / "overlap.csv").write_text(
            "id,name,note\n"
            + "".join(f"{i},renamed {i},\n" for i in range(ROWS - 999, ROWS + 1001))
        )
        (root / "load.sql").write_text(
            "".join(
                f"INSERT INTO people (id, name) VALUES ({i}, 'sql {i}');\n"
                for i in range(2_000_001, 2_005_001)
            )
        )
        with serving(Path(tmp)) as url:
            yield url


def uploaded(dms: Dms, url: str, name: str) -> str:
    created = dms.call(
        "CreateUploadFileJob", file_name=name, file_source="big-file", upload_url=f"{url}/{name}"
    )
    assert created.success, dms.last_raw

    def done() -> Any:
        detail = dms.call("GetUserUploadFileJob", job_key=created.job_key).upload_file_job_detail
        return detail if detail.job_status in ("SUCCESS", "FAIL") else None

    detail = wait_for(f"the upload of {name}", done)
    assert detail.job_status == "SUCCESS", dms.last_raw
    return str(detail.attachment_key)


def filed(dms: Dms, db_id: int, key: str, **param: Any) -> int:
    body = {"DbItemList": [{"DbId": db_id, "Logic": False}], "AttachmentName": key, **param}
    made = dms.call(
        "CreateDataImportOrder",
        param=dms_models.CreateDataImportOrderRequestParam().from_map(body),
        comment="load",
    )
    assert made.success, dms.last_raw
    (order_id,) = made.create_order_result
    detail = prechecked(dms, int(order_id), timeout=180)
    assert detail.status == "precheck_success", dms.last_raw
    assert dms.call("SubmitOrderApproval", order_id=order_id).success is True
    return int(order_id)


def job_status(dms: Dms, order_id: int) -> str:
    resp = dms.call("GetDataCorrectTaskDetail", order_id=order_id)
    assert resp.success is True, dms.last_raw
    return str(resp.data_correct_task_detail.job_status)


def finished(dms: Dms, order_id: int) -> str:
    return str(
        wait_for(
            f"import {order_id} to end",
            lambda: s if (s := job_status(dms, order_id)) in ("SUCCESS", "FAIL") else None,
            timeout=300,
        )
    )


CSV = {"FileType": "CSV", "TableName": "people", "CsvFirstRowIsColumnDef": True}


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_a_million_rows_imported_once_across_a_kill(engine: str, files: str) -> None:
    env = {"OPENDMS_JOB_THREADS": "1", "OPENDMS_JOB_LEASE_SECONDS": "3", **SERVING_UPLOADS}
    with (
        target_database(engine, TABLE) as (name, query, where),
        running_server(env) as server,
    ):
        admin = Dms(server, server.admin, "v3")
        db_id = register_target(server, admin, name, where, f"import-{engine}", "DC_BIG_FILE")

        def count(condition: str = "1=1") -> int:
            return int(query(f"SELECT COUNT(*) FROM people WHERE {condition}")[0][0])

        order_id = filed(admin, db_id, uploaded(admin, files, "people.csv"), **CSV)
        assert admin.call("ExecuteDataCorrect", order_id=order_id).success is True
        wait_for("a fifth of the rows", lambda: count() >= ROWS // 5, timeout=180)
        assert count() < ROWS
        server.kill_and_restart()
        assert finished(admin, order_id) == "SUCCESS", admin.last_raw
        assert count() == ROWS
        assert int(query("SELECT SUM(id) FROM people")[0][0]) == ROWS * (ROWS + 1) // 2
        # an empty field of a text column is the empty string (imports.columns)
        assert (count("note = ''"), count("note = 'n'")) == (ROWS - ROWS // 10, ROWS // 10)
        task = admin.call("GetDataCorrectTaskDetail", order_id=order_id)
        assert task.data_correct_task_detail.actual_affect_rows == ROWS

        # overlap.csv: 1,000 rows that exist, 1,000 new ones
        overlap = uploaded(admin, files, "overlap.csv")
        refused = filed(admin, db_id, overlap, **CSV)
        assert admin.call("ExecuteDataCorrect", order_id=refused).success is True
        assert finished(admin, refused) == "FAIL"
        assert count() == ROWS  # nothing of the failing batch
        ignored = filed(admin, db_id, overlap, **CSV, InsertType="INSERT_IGNORE")
        assert admin.call("ExecuteDataCorrect", order_id=ignored).success is True
        assert finished(admin, ignored) == "SUCCESS"
        assert (count(), count("name LIKE 'renamed%'")) == (ROWS + 1000, 1000)
        replaced = filed(admin, db_id, overlap, **CSV, InsertType="REPLACE_INTO")
        assert admin.call("ExecuteDataCorrect", order_id=replaced).success is True
        assert finished(admin, replaced) == "SUCCESS"
        assert (count(), count("name LIKE 'renamed%'")) == (ROWS + 1000, 2000)

        script = filed(admin, db_id, uploaded(admin, files, "load.sql"), FileType="SQL")
        assert admin.call("ExecuteDataCorrect", order_id=script).success is True
        assert finished(admin, script) == "SUCCESS"
        assert count("name LIKE 'sql %'") == 5000
