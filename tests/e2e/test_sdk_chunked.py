"""A lock-free change through the official SDK against a real `opendms serve`: a
CreateFreeLockCorrectOrder ticket updates every row of a million-row table on MariaDB and on
PostgreSQL while another connection keeps writing single rows; it is paused and restarted on
request, the server is killed with SIGKILL halfway and started again, and every row ends
changed exactly once, with the writer never held up for long."""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pymysql
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.e2e.conftest import (
    Dms,
    prechecked,
    register_target,
    running_server,
    target_database,
    wait_for,
)

pytestmark = [pytest.mark.e2e]

ROWS = 1_000_000
UPDATE = "UPDATE t SET n = n + 1 WHERE 1=1"
WRITER_BOUND_SECONDS = 2.0  # a chunk waits at most 2 s for a lock; the writer no longer


@contextmanager
def writer(connect: Callable[[], Any]) -> Iterator[list[float]]:
    """Single-row updates of random rows every 20 ms on a connection of their own, until
    the block ends; yields each one's time, as it goes."""
    waits: list[float] = []
    stop = threading.Event()

    def run() -> None:
        conn = connect()
        try:
            cur = conn.cursor()
            while not stop.is_set():
                began = time.perf_counter()
                cur.execute(f"UPDATE t SET w = w + 1 WHERE id = {random.randint(1, ROWS)}")
                waits.append(time.perf_counter() - began)
                time.sleep(0.02)
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield waits
    finally:
        stop.set()
        thread.join()


def connector(engine: str, name: str) -> Callable[[], Any]:
    if engine == "mariadb":
        return lambda: pymysql.connect(
            host="127.0.0.1", user="root", password="", database=name, autocommit=True
        )
    return lambda: psycopg.connect(
        f"host=127.0.0.1 port=5432 user=postgres dbname={name}", autocommit=True
    )


def job_status(admin: Dms, order_id: int) -> str:
    resp = admin.call("GetDataCorrectTaskDetail", order_id=order_id)
    assert resp.success is True, admin.last_raw
    return str(resp.data_correct_task_detail.job_status)


def _still(count: Callable[[], int]) -> int | None:
    """The count when it did not change over a second, else None (ask again)."""
    before = count()
    time.sleep(1.0)
    after = count()
    return after if after == before else None


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_a_million_rows_lock_free_paused_restarted_and_killed(engine: str) -> None:
    env = {
        "OPENDMS_JOB_THREADS": "1",
        "OPENDMS_JOB_LEASE_SECONDS": "3",
        # small chunks and a rest after each: slow enough to pause and kill in the middle
        "OPENDMS_CHUNK_MAX_ROWS": "10000",
        "OPENDMS_CHUNK_SLEEP_RATIO": "1",
    }
    fill = (
        [
            "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL, w INT NOT NULL) ENGINE=InnoDB",
            f"INSERT INTO t SELECT seq, 0, 0 FROM seq_1_to_{ROWS}",
        ]
        if engine == "mariadb"
        else [
            "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL, w INT NOT NULL)",
            f"INSERT INTO t SELECT g, 0, 0 FROM generate_series(1, {ROWS}) g",
            "VACUUM ANALYZE t",
        ]
    )
    with target_database(engine, *fill) as (name, query, where), running_server(env) as server:
        admin = Dms(server, server.admin, "v3")
        db_id = register_target(server, admin, name, where, f"chunk-{engine}", "DC_CHUNK")

        param = dms_models.CreateFreeLockCorrectOrderRequestParam().from_map(
            {
                "DbItemList": [{"DbId": db_id, "Logic": False}],
                "SqlType": "TEXT",
                "ExecSQL": UPDATE,
                "ExecMode": "COMMITOR",
            }
        )
        created = admin.call("CreateFreeLockCorrectOrder", param=param, comment="lock-free")
        assert created.success is True, admin.last_raw
        (order_id,) = created.create_order_result
        detail = prechecked(admin, order_id)
        assert detail.status == "precheck_success", admin.last_raw
        assert detail.order_detail.actual_affect_rows == ROWS
        assert admin.call("SubmitOrderApproval", order_id=order_id).success is True

        def done() -> int:
            return int(query("SELECT COUNT(*) FROM t WHERE n = 1")[0][0])

        with writer(connector(engine, name)) as waits:
            assert admin.call("ExecuteDataCorrect", order_id=order_id).success is True
            wait_for("a tenth of the rows", lambda: done() >= ROWS // 10)

            paused = admin.call("PauseDataCorrectSQLJob", order_id=order_id, type="ALL")
            assert paused.success is True, admin.last_raw
            wait_for("the pause", lambda: job_status(admin, order_id) == "PAUSE")
            # the step in flight, if any, ends at its next chunk boundary: rows stop changing
            held = wait_for("the rows to stand still", lambda: _still(done), timeout=60)
            time.sleep(1.5)
            assert done() == held, "rows kept changing while paused"
            assert held < ROWS

            restarted = admin.call("RestartDataCorrectSQLJob", order_id=order_id, type="ALL")
            assert restarted.success is True, admin.last_raw
            wait_for("more than half", lambda: done() > max(held, ROWS // 2))
            server.kill_and_restart()

            status = wait_for(
                "the ticket to finish",
                lambda: s if (s := job_status(admin, order_id)) in ("SUCCESS", "FAIL") else None,
                timeout=240,
            )
        assert status == "SUCCESS", admin.last_raw
        counts = dict(query("SELECT n, COUNT(*) FROM t GROUP BY n"))
        assert counts == {1: ROWS}, counts  # every row once: none missed, none twice
        assert sum(int(w) for (w,) in query("SELECT SUM(w) FROM t")) == len(waits)
        assert max(waits) < WRITER_BOUND_SECONDS, max(waits)

        task = admin.call("GetDataCorrectTaskDetail", order_id=order_id)
        assert task.data_correct_task_detail.actual_affect_rows == ROWS
        jobs = admin.call(
            "ListDBTaskSQLJob", dbtask_group_id=task.data_correct_task_detail.dbtask_group_id
        )
        (job,) = jobs.dbtask_sqljob_list
        assert (job.status, job.job_type) == ("SUCCESS", "FREE_LOCK_DML")
        log = admin.call("GetDBTaskSQLJobLog", job_id=job.job_id).log
        assert "paused by" in log and "restarted by" in log, log
        # progress lines: one when another tenth is done since the last step, so a fast run
        # writes few; whatever the pace, they climb, and the last line is the total
        percents = [int(p) for p in re.findall(r"statement 1: (\d+)%: ", log)]
        assert percents and percents == sorted(percents), log
        assert log.rstrip().endswith(f"succeeded: {ROWS} rows"), log
        (row,) = admin.call("ListDBTaskSQLJobDetail", job_id=job.job_id).dbtask_sqljob_detail_list
        assert (row.status, row.affect_rows) == ("SUCCESS", ROWS)
