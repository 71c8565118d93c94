"""Exactly once through a crash: a real `opendms serve` is killed with SIGKILL in the middle of
a ticket of many `UPDATE t SET n = n + 1 WHERE id = k` statements, started again on the same
data directory, and the ticket ends `success` with every row incremented exactly once, on
MariaDB and on PostgreSQL. Everything goes through the official SDK."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import (
    Dms,
    file_change,
    prechecked,
    register_target,
    running_server,
    target_database,
    wait_for,
)

pytestmark = [pytest.mark.e2e]

ROWS = 400


@pytest.mark.parametrize("engine", ["mariadb", "postgresql"])
def test_a_killed_server_finishes_the_ticket_exactly_once(engine: str) -> None:
    env = {"OPENDMS_JOB_THREADS": "1", "OPENDMS_JOB_LEASE_SECONDS": "3"}
    setup = (
        [
            "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB",
            f"INSERT INTO t SELECT seq, 0 FROM seq_1_to_{ROWS}",
        ]
        if engine == "mariadb"
        else [
            "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL)",
            f"INSERT INTO t SELECT g, 0 FROM generate_series(1, {ROWS}) g",
        ]
    )
    with target_database(engine, *setup) as (name, query, where), running_server(env) as server:
        admin = Dms(server, server.admin, "v3")
        db_id = register_target(server, admin, name, where, f"crash-{engine}", "DC_COMMON")

        script = "\n".join(f"UPDATE t SET n = n + 1 WHERE id = {k};" for k in range(1, ROWS + 1))
        order_id = file_change(admin, db_id, script, ROWS, "crash test", ExecMode="COMMITOR")
        assert prechecked(admin, order_id).status == "precheck_success", admin.last_raw
        assert admin.call("SubmitOrderApproval", order_id=order_id).success is True
        executed = admin.call("ExecuteDataCorrect", order_id=order_id, action_detail={})
        assert executed.success is True, admin.last_raw

        # kill it half-way: some statements committed, others not yet
        def half_way() -> int:
            done = int(query("SELECT COUNT(*) FROM t WHERE n = 1")[0][0])
            return done if ROWS // 4 <= done <= ROWS * 3 // 4 else 0

        done_before = wait_for("the run to be half-way", half_way)
        server.kill_and_restart()

        status = wait_for("the ticket to finish", lambda: finished(admin, order_id))
        assert status == "SUCCESS", admin.last_raw
        counts = dict(query("SELECT n, COUNT(*) FROM t GROUP BY n"))
        assert counts == {1: ROWS}, counts  # every row once: none missed, none twice
        # the ticket's own status follows its last SQL job's at the runner's next step
        wait_for(
            "the ticket's success",
            lambda: (
                admin.call("GetOrderBaseInfo", order_id=order_id).order_base_info.status_code
                == "success"
            ),
        )
        assert done_before >= ROWS // 4
        check_details(admin, order_id)


def finished(admin: Dms, order_id: int) -> str | None:
    resp = admin.call("GetDataCorrectTaskDetail", order_id=order_id)
    assert resp.success is True, admin.last_raw
    status = resp.data_correct_task_detail.job_status
    return status if status in ("SUCCESS", "FAIL") else None


def check_details(admin: Dms, order_id: int) -> None:
    group = admin.call("GetDataCorrectTaskDetail", order_id=order_id).data_correct_task_detail
    assert group.actual_affect_rows == ROWS
    jobs = admin.call("ListDBTaskSQLJob", dbtask_group_id=group.dbtask_group_id)
    (job,) = jobs.dbtask_sqljob_list
    assert (job.status, job.transactional) == ("SUCCESS", False)
    seen = 0
    for page in range(1, ROWS // 100 + 1):
        details = admin.call(
            "ListDBTaskSQLJobDetail", job_id=job.job_id, page_number=page, page_size=100
        )
        for d in details.dbtask_sqljob_detail_list:
            assert (d.status, d.affect_rows, d.execute_count) == ("SUCCESS", 1, 1), d.to_map()
            seen += 1
    assert seen == ROWS
