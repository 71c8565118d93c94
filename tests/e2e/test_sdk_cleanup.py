"""A historical-data cleanup through the official SDK against real `opendms serve`
processes: a CreateDataCronClearOrder ticket with a Quartz cron firing every four seconds
deletes the old rows its FilterSQL matches on schedule; a second server on the same data
directory never runs a fire time twice; a server killed while fire times pass runs the
missed ones once when it comes back; the run history and the schedule read back through the
SDK; CloseOrder stops it."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.e2e.conftest import (
    OPENDMS,
    Dms,
    free_port,
    prechecked,
    register_target,
    running_server,
    stop_server,
    target_database,
    wait_for,
    wait_until_listening,
)

pytestmark = [pytest.mark.e2e]

EVERY = 4  # seconds between fire times
# 200 rows a day apart going back from now; every other one is 'done'. With RemainDays 30
# and FilterSQL status = 'done', the done rows 30 days old and older go.
SETUP = [
    "CREATE TABLE logs (id INT PRIMARY KEY, created DATETIME NOT NULL, status VARCHAR(8) NOT NULL)"
    " ENGINE=InnoDB",
    "INSERT INTO logs SELECT seq, UTC_TIMESTAMP() - INTERVAL seq DAY, "
    "IF(seq % 2 = 0, 'done', 'open') FROM seq_1_to_200",
]


def history(
    admin: Dms, order_id: int
) -> list[dms_models.GetDataCronClearTaskDetailListResponseBodyDataCronClearTaskDetailList]:
    resp = admin.call("GetDataCronClearTaskDetailList", order_id=order_id, page_size=100)
    assert resp.success is True, admin.last_raw
    return list(resp.data_cron_clear_task_detail_list)


def fire_times(data_dir: Path, order_id: int) -> list[datetime]:
    with closing(sqlite3.connect(data_dir / "opendms.db")) as db:
        rows = db.execute(
            "SELECT fire_at FROM cron_runs WHERE order_id = ? ORDER BY fire_at", (order_id,)
        ).fetchall()
    return [datetime.fromisoformat(r[0]) for r in rows]


def test_a_cleanup_runs_on_schedule_once_per_fire_time(tmp_path: Path) -> None:
    env = {"OPENDMS_JOB_THREADS": "2", "OPENDMS_JOB_LEASE_SECONDS": "3"}
    with target_database("mariadb", *SETUP) as (name, query, where), running_server(env) as server:
        admin = Dms(server, server.admin, "v3")
        db_id = register_target(server, admin, name, where, "cleanup", "DC_CRON_CLEAR")

        param = dms_models.CreateDataCronClearOrderRequestParam().from_map(
            {
                "DbItemList": [{"DbId": db_id, "Logic": False}],
                "CronClearItemList": [
                    {
                        "TableName": "logs",
                        "ColumnName": "created",
                        "RemainDays": 30,
                        "FilterSQL": "status = 'done'",
                    }
                ],
                "CronFormat": f"*/{EVERY} * * * * ?",
                "specifyDuration": False,
            }
        )
        created = admin.call("CreateDataCronClearOrder", param=param, comment="purge old logs")
        assert created.success is True, admin.last_raw
        (order_id,) = created.create_order_result
        detail = prechecked(admin, order_id)
        assert detail.status == "precheck_success", admin.last_raw
        assert admin.call("SubmitOrderApproval", order_id=order_id).success is True

        def gone() -> bool:
            left = {int(i) for (i,) in query("SELECT id FROM logs")}
            return left == {i for i in range(1, 201) if i < 30 or i % 2}

        wait_for("the first run", gone, timeout=30)

        def first_run_recorded() -> list[Any] | None:  # rows go before the run records itself
            ran = [r for r in history(admin, order_id) if r.actual_affect_rows]
            return ran if ran and all(r.job_status == "SUCCESS" for r in ran) else None

        (first,) = wait_for("the first run's success", first_run_recorded, timeout=30)
        assert first.actual_affect_rows == 86  # 30..200 even

        # a second server on the same data directory: two schedulers from now on
        port = free_port()
        log = tmp_path / "second.log"
        with log.open("wb") as err:
            second = subprocess.Popen(
                [OPENDMS, "serve", "--data-dir", str(server.data_dir), "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=server.env,
            )
        try:
            wait_until_listening(second, port, log)
            query(
                "INSERT INTO logs SELECT 1000 + seq, UTC_TIMESTAMP() - INTERVAL 40 DAY, 'done' "
                "FROM seq_1_to_50"
            )
            wait_for(
                "the new old rows to go",
                lambda: not query("SELECT id FROM logs WHERE id > 1000"),
                timeout=30,
            )
            time.sleep(2 * EVERY)  # more fire times with both schedulers awake
        finally:
            stop_server(second)

        # down while fire times pass: they run once when the server is back
        server.proc.kill()
        server.proc.wait(timeout=10)
        before = fire_times(server.data_dir, order_id)
        time.sleep(3 * EVERY)
        server.kill_and_restart()
        wait_for(
            "the catch-up run", lambda: len(fire_times(server.data_dir, order_id)) > len(before)
        )
        time.sleep(0.5)
        caught_up = fire_times(server.data_dir, order_id)[len(before) :]
        assert len(caught_up) == 1, caught_up  # three or so missed: one run

        fires = fire_times(server.data_dir, order_id)
        assert len(fires) == len(set(fires))
        span = (fires[-1] - fires[0]).total_seconds()
        assert len(fires) <= span / EVERY + 1  # never more runs than fire times
        runs = history(admin, order_id)
        assert len(runs) == len(fires)
        assert all(r.job_status in ("SUCCESS", "RUNNING", "INIT") for r in runs), admin.last_raw
        assert sum(r.actual_affect_rows or 0 for r in runs) == 86 + 50

        config = admin.call("GetDataCronClearConfig", order_id=order_id)
        assert config.success is True, admin.last_raw
        shown = config.data_cron_clear_config
        assert shown.cron_format == f"*/{EVERY} * * * * ?"
        assert int(shown.cron_call_times) >= len(fires) - 1
        assert shown.cron_status in ("SUCCESS", "WAITING")
        assert shown.cron_next_call_time and shown.duration == "0"
        order = admin.call("GetDataCorrectOrderDetail", order_id=order_id).data_correct_order_detail
        assert order.config_detail.detail_type == "CRON_CLEAR_DATA"
        assert order.config_detail.cron_format == f"*/{EVERY} * * * * ?"

        closed = admin.call("CloseOrder", order_id=order_id, close_reason="done with it")
        assert closed.success is True, admin.last_raw
        time.sleep(0.5)
        settled = len(fire_times(server.data_dir, order_id))
        time.sleep(2 * EVERY)
        assert len(fire_times(server.data_dir, order_id)) == settled  # the schedule stopped
