"""Operations on a real ``opendms serve``: JSON log lines that carry each request's RequestId
in every worker process, one /metrics view across those processes, the probes, and a
graceful stop (SIGTERM) in the middle of an execution that exits 0 and leaves the ticket to
finish, exactly once, after a restart."""

from __future__ import annotations

import json
import signal
import sqlite3
from contextlib import closing
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import (
    Dms,
    Server,
    file_change,
    prechecked,
    register_target,
    running_server,
    target_database,
    wait_for,
)
from tests.e2e.test_kill_restart import ROWS, check_details, finished

pytestmark = [pytest.mark.e2e]

REQUESTS = 6


def json_lines(server: Server) -> list[dict[str, Any]]:
    return [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]


def get(server: Server, path: str) -> httpx.Response:
    """A GET on a connection of its own: with several worker processes, any may answer."""
    return httpx.get(f"{server.base_url}{path}", timeout=30, trust_env=False)


def requests_counted(server: Server, action: str) -> float:
    resp = get(server, "/metrics")
    assert resp.status_code == 200, resp.text
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            if sample.name == "opendms_requests_total" and sample.labels == {
                "action": action,
                "code": "OK",
            }:
                return sample.value
    return 0.0


def test_json_logs_and_one_metrics_view_across_worker_processes() -> None:
    env = {"OPENDMS_LOG_FORMAT": "json", "OPENDMS_WORKERS": "2"}
    with running_server(env) as server:

        def started() -> bool:  # each worker process says so, in JSON
            said = [m for m in json_lines(server) if m["message"].startswith("Started server")]
            return len(said) == 2

        wait_for("both worker processes", started, timeout=60)
        signer = server.admin.signer(server)
        ids = []
        for _ in range(REQUESTS):
            resp = server.send(signer.v3("GetUserActiveTenant"))
            assert resp.status_code == 200, resp.text
            ids.append(resp.json()["RequestId"])

        def logged() -> dict[str, dict[str, Any]] | None:
            found = {line.get("request_id"): line for line in json_lines(server)}
            return found if all(i in found for i in ids) else None

        by_id = wait_for("each request's JSON line", logged, timeout=30)
        for request_id in ids:
            line = by_id[request_id]
            assert (line["logger"], line["action"], line["code"]) == (
                "opendms.gateway",
                "GetUserActiveTenant",
                "OK",
            )
        for _ in range(4):  # whichever process answers, it answers for both
            assert requests_counted(server, "GetUserActiveTenant") == REQUESTS
        assert get(server, "/healthz").json() == {"status": "ok"}
        ready = get(server, "/readyz")
        assert (ready.status_code, ready.json()) == (
            200,
            {"status": "ok", "checks": {"store": "ok"}},
        )


def recorded(server: Server, order_id: int) -> int:
    """Statements of the ticket the store records as done (read while no server runs)."""
    with closing(sqlite3.connect(server.data_dir / "opendms.db")) as db:
        (n,) = db.execute(
            "SELECT COUNT(*) FROM sql_job_details d JOIN sql_jobs j"
            " ON j.sql_job_id = d.sql_job_id WHERE j.order_id = ? AND d.status = 'SUCCESS'",
            (order_id,),
        ).fetchone()
    return int(n)


def test_sigterm_mid_execution_exits_0_and_the_ticket_finishes_after_a_restart() -> None:
    env = {"OPENDMS_JOB_THREADS": "1", "OPENDMS_JOB_LEASE_SECONDS": "3"}
    setup = [
        "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB",
        f"INSERT INTO t SELECT seq, 0 FROM seq_1_to_{ROWS}",
    ]
    with target_database("mariadb", *setup) as (name, query, where), running_server(env) as server:
        admin = Dms(server, server.admin, "v3")
        db_id = register_target(server, admin, name, where, "sigterm", "DC_COMMON")
        script = "\n".join(f"UPDATE t SET n = n + 1 WHERE id = {k};" for k in range(1, ROWS + 1))
        order_id = file_change(admin, db_id, script, ROWS, "sigterm test", ExecMode="COMMITOR")
        assert prechecked(admin, order_id).status == "precheck_success", admin.last_raw
        assert admin.call("SubmitOrderApproval", order_id=order_id).success is True
        assert admin.call("ExecuteDataCorrect", order_id=order_id, action_detail={}).success

        def under_way() -> int:
            done = int(query("SELECT COUNT(*) FROM t WHERE n = 1")[0][0])
            return done if 0 < done < ROWS // 2 else 0

        wait_for("the run to be under way", under_way)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(timeout=60) == 0, server.log()[-3000:]
        assert "Application shutdown complete" in server.log()
        # the step in progress ended and was recorded: nothing committed is left unrecorded
        done_at_stop = int(query("SELECT COUNT(*) FROM t WHERE n = 1")[0][0])
        assert 0 < done_at_stop < ROWS
        assert recorded(server, order_id) == done_at_stop

        server.kill_and_restart()  # it is stopped already: this starts it again
        status = wait_for("the ticket to finish", lambda: finished(admin, order_id))
        assert status == "SUCCESS", admin.last_raw
        assert dict(query("SELECT n, COUNT(*) FROM t GROUP BY n")) == {1: ROWS}
        wait_for(
            "the ticket's success",
            lambda: (
                admin.call("GetOrderBaseInfo", order_id=order_id).order_base_info.status_code
                == "success"
            ),
        )
        check_details(admin, order_id)  # each statement once: none run again after the stop
