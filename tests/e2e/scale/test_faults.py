"""Faults of a scaled-out OpenDMS (issue 22): two API processes and two Celery workers on a
PostgreSQL store and a Redis broker, changing a MariaDB target, while a worker is killed with
SIGKILL mid-chunk, an API process is killed with SIGKILL mid-request, the store is restarted
mid-execution, the target database is restarted mid-run and the broker is stopped for 30 s.

Each fault ends with the exact final state: every row changed exactly once (none twice, none
skipped), every ticket ``success``, no job left queued or running. What a fault stops or
restarts is a private server of the test's own (``tests/e2e/pg_server.py``,
``redis_server.py``, ``mariadb_server.py``): the machine's shared services run other tests
side by side. One cluster takes the faults one after another, each on a ticket and table of
its own: starting a cluster costs more than most faults do.

Recovery is quick because the cluster is told to be: a lease of 3 s, a message resent after
2 s, and a job that lets its worker go after each second (a new message each time, as a long
ticket does every few seconds). Chunked tickets are slowed down (small chunks, a rest after
each) so that a fault lands in the middle of the run; every wait is bounded by a generous
deadline.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models
from alibabacloud_tea_openapi.exceptions import ServerException

from tests.e2e.conftest import Dms, file_change, prechecked, register_target
from tests.e2e.mariadb_server import MariadbServer, second_mariadb, started
from tests.e2e.pg_server import PgServer, private_postgres
from tests.e2e.redis_server import RedisServer, private_redis
from tests.e2e.scale.cluster import Cluster, Worker, cluster, wait_for

pytestmark = [pytest.mark.e2e]

SCHEMA = "faults"
CHUNK_ROWS = 3000  # a chunked ticket's table: chunks of at most 20 rows, a rest after each
STATEMENTS = 200  # a plain ticket of single-row statements
BROKER_DOWN_SECONDS = 30.0
ENV = {
    "OPENDMS_JOB_LEASE_SECONDS": "3",
    "OPENDMS_JOB_RESEND_SECONDS": "2",
    "OPENDMS_HEARTBEAT_SECONDS": "1",
    "OPENDMS_JOB_SLICE_SECONDS": "1",
    "OPENDMS_CHUNK_MAX_ROWS": "20",
    "OPENDMS_CHUNK_SLEEP_RATIO": "10",
}
# a table per fault, each of rows 1..n with n = 0
TABLES = {
    "worker_kill": CHUNK_ROWS,
    "api_kill": 200,
    "store_restart": STATEMENTS,
    "target_restart": CHUNK_ROWS,
    "broker_stop": CHUNK_ROWS,
    "broker_late": 1,
}


class Patient(Dms):
    """A client that does what ServiceUnavailable asks ("retry"): an API process answers
    it once for each of its pooled store connections that a store restart broke (it does
    not test every connection before use: a round trip per request)."""

    unavailable = 0  # answers seen, over every client

    def call(self, action: str, **params: Any) -> Any:
        for _ in range(20):
            try:
                return super().call(action, **params)
            except ServerException as exc:
                if exc.code != "ServiceUnavailable":
                    raise
                Patient.unavailable += 1
                time.sleep(0.1)
        return super().call(action, **params)


@dataclass
class Rig:
    """The cluster and the private servers it runs on; ``dms``: a client of each API."""

    c: Cluster
    store: PgServer
    broker: RedisServer
    target: MariadbServer
    db_id: int

    def dms(self, api: int = 0) -> Dms:
        return Patient(self.c.apis[api], self.c.admin, "v3")

    def target_query(self, sql: str) -> list[tuple[Any, ...]]:
        conn = self.target.connect(SCHEMA)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return list(cur.fetchall())
        finally:
            conn.close()

    def changed(self, table: str) -> int:
        """Rows of ``table`` changed so far (n = 1)."""
        return int(self.target_query(f"SELECT COUNT(*) FROM {table} WHERE n = 1")[0][0])

    def counts(self, table: str) -> dict[int, int]:
        """How many rows of ``table`` were changed how often: {times: rows}."""
        return {
            int(n): int(k)
            for n, k in self.target_query(f"SELECT n, COUNT(*) FROM {table} GROUP BY n")
        }


@contextmanager
def rig() -> Iterator[Rig]:
    with contextlib.ExitStack() as stack:
        store = started(stack, "A private PostgreSQL server", private_postgres())
        broker = started(stack, "A private Redis server", private_redis())
        target = started(stack, "A private MariaDB server", second_mariadb())
        store.create_database("opendms")
        conn = target.connect()
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {SCHEMA}")
            cur.execute(f"USE {SCHEMA}")  # where seq_1_to_N is found
            for table, rows in TABLES.items():
                cur.execute(f"CREATE TABLE {table} (id INT PRIMARY KEY, n INT NOT NULL)")
                cur.execute(f"INSERT INTO {table} SELECT seq, 0 FROM seq_1_to_{rows}")
        conn.close()
        # a worker that loses its broker while it holds a message dumps the message to a
        # file of TMPDIR (kombu's "emergency dump"): here, the test's own
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="opendms-faults-"))
        env = {**ENV, "TMPDIR": tmp}
        c = stack.enter_context(cluster(store=store.url("opendms"), broker_at=broker.url, env=env))
        where = {"instance_type": "mariadb", "port": target.port, "database_user": "root"}
        admin = Dms(c.apis[0], c.admin, "v3")
        db_id = register_target(c.apis[0], admin, SCHEMA, where, "faults", "DC_COMMON, DC_CHUNK")
        yield Rig(c, store, broker, target, db_id)


# ------------------------------------------------------------------ tickets


def file_chunked(dms: Dms, db_id: int, table: str) -> int:
    """A DC_CHUNK ticket that adds 1 to every row of ``table``; its OrderId."""
    param = dms_models.CreateFreeLockCorrectOrderRequestParam().from_map(
        {
            "DbItemList": [{"DbId": db_id, "Logic": False}],
            "SqlType": "TEXT",
            "ExecSQL": f"UPDATE {table} SET n = n + 1 WHERE 1=1",
            "ExecMode": "COMMITOR",
        }
    )
    created = dms.call("CreateFreeLockCorrectOrder", param=param, comment=f"chunks of {table}")
    assert created.success is True, dms.last_raw
    (order_id,) = created.create_order_result
    return int(order_id)


def file_rows(dms: Dms, db_id: int, table: str, ids: range, comment: str = "") -> int:
    """A DC_COMMON ticket of one ``UPDATE`` per row of ``ids``; its OrderId."""
    script = "\n".join(f"UPDATE {table} SET n = n + 1 WHERE id = {k};" for k in ids)
    return file_change(
        dms, db_id, script, len(ids), comment or f"rows of {table}", ExecMode="COMMITOR"
    )


def execute(dms: Dms, order_id: int) -> None:
    """Precheck passed, submitted (no approval needed here), executed."""
    assert prechecked(dms, order_id, timeout=120).status == "precheck_success", dms.last_raw
    assert dms.call("SubmitOrderApproval", order_id=order_id).success is True, dms.last_raw
    executed = dms.call("ExecuteDataCorrect", order_id=order_id, action_detail={})
    assert executed.success is True, dms.last_raw


def precheck_status(dms: Dms, order_id: int) -> str:
    found = dms.call("GetDataCorrectOrderDetail", order_id=order_id)
    assert found.success is True, dms.last_raw
    return str(found.data_correct_order_detail.status)


def sql_job_log(dms: Dms, order_id: int) -> str:
    """The log of the ticket's (one) SQL job."""
    task = dms.call("GetDataCorrectTaskDetail", order_id=order_id)
    assert task.success is True, dms.last_raw
    group = task.data_correct_task_detail.dbtask_group_id
    (job,) = dms.call("ListDBTaskSQLJob", dbtask_group_id=group).dbtask_sqljob_list
    return str(dms.call("GetDBTaskSQLJobLog", job_id=job.job_id).log)


def status(dms: Dms, order_id: int) -> str:
    found = dms.call("GetOrderBaseInfo", order_id=order_id)
    assert found.success is True, dms.last_raw
    return str(found.order_base_info.status_code)


def ends_in_success(r: Rig, order_id: int, timeout: float = 120.0) -> None:
    """The ticket ends ``success``, and none of its jobs is left queued or running."""
    dms = r.dms(1)
    ended = wait_for(
        f"ticket {order_id} to end",
        lambda: s if (s := status(dms, order_id)) in ("success", "closed", "reject") else None,
        timeout=timeout,
    )
    assert ended == "success", (ended, r.c.logs())
    # the ticket succeeds with its last statement; its job records its end a moment later
    wait_for(
        f"the jobs of ticket {order_id} to end",
        lambda: (
            not r.c.store_query(
                "SELECT 1 FROM jobs WHERE order_id = %s AND state IN ('queued', 'running')",
                order_id,
            )
        ),
        timeout=30,
    )


def execute_job(r: Rig, order_id: int) -> tuple[str | None, int, str]:
    """The ticket's execute job: (its lease owner, its claims so far, its state)."""
    found = r.c.store_query(
        "SELECT lease_owner, attempts, state FROM jobs WHERE order_id = %s AND kind = 'execute'",
        order_id,
    )
    assert len(found) == 1, found
    owner, attempts, state = found[0]
    return owner, int(attempts), str(state)


def mid_run(r: Rig, table: str, rows: int) -> Callable[[], bool]:
    """Whether some but not most of ``table`` is done."""
    return lambda: rows // 10 <= r.changed(table) <= rows // 2


def exactly_once(r: Rig, table: str, rows: int) -> None:
    counts = r.counts(table)
    assert counts == {1: rows}, counts  # every row once: none skipped, none twice


# ------------------------------------------------------------------ faults


def worker_killed_mid_chunk(r: Rig) -> None:
    """SIGKILL the worker running a chunked ticket; another claim takes it over (the other
    worker or the one restarted), and it resumes after the last chunk that committed."""
    dms = r.dms()
    order_id = file_chunked(dms, r.db_id, "worker_kill")
    execute(dms, order_id)
    wait_for("the chunked run to be under way", mid_run(r, "worker_kill", CHUNK_ROWS))
    killed, claims = _kill_holder(r, order_id)
    assert r.changed("worker_kill") < CHUNK_ROWS, "the run ended before the kill"
    killed.start_again()
    ends_in_success(r, order_id)
    exactly_once(r, "worker_kill", CHUNK_ROWS)
    _, claimed, _ = execute_job(r, order_id)
    assert claimed > claims, (claimed, claims)  # taken over after the kill


def _kill_holder(r: Rig, order_id: int) -> tuple[Worker, int]:
    """SIGKILL the worker that holds the ticket's execute job (a slice may end and the job
    move between the look and the kill: then the next holder is killed instead); the worker
    killed and the claims of the job by then."""
    for _ in range(5):
        owner, _, _ = wait_for(
            "a worker to hold the job",
            lambda: found if (found := execute_job(r, order_id))[2] == "running" else None,
            timeout=30,
        )
        assert owner is not None
        pid = int(owner.split(":")[-2])
        (holder,) = [w for w in r.c.workers if w.proc.pid == pid]
        holder.kill()
        still, claims_after, _ = execute_job(r, order_id)
        if still == owner:  # killed while it held the job: nobody else took it meanwhile
            return holder, claims_after
        holder.start_again()
    pytest.fail("the job kept moving between workers; could not kill its holder")


def api_killed_mid_request(r: Rig) -> None:
    """SIGKILL an API process while tickets are being filed through it at once: each ticket
    is whole or absent (one transaction: ticket, database, precheck job), the other API
    serves meanwhile, the restarted one serves the same store, and every ticket it accepted
    runs to success."""
    api = r.c.apis[0]
    clients, per_client = 6, 4
    filed: dict[int, int] = {}  # row id -> OrderId, as answered
    broken: list[str] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        dms = Dms(api, r.c.admin, "v3")
        for k in range(per_client):
            row = n * per_client + k + 1
            try:
                order_id = file_rows(
                    dms, r.db_id, "api_kill", range(row, row + 1), f"api-kill {row}"
                )
            except Exception as exc:  # the process died under it: whatever the SDK raises
                with lock:
                    broken.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            with lock:
                filed[row] = order_id

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    wait_for(
        "a few tickets filed",
        lambda: len(r.c.store_query("SELECT 1 FROM orders WHERE comment LIKE 'api-kill %%'")) >= 3,
        timeout=60,
        every=0.02,
    )
    api.kill()
    for t in threads:
        t.join(timeout=120)
    assert broken, "the kill cut no request short"

    # the other API serves meanwhile, and sees the same tickets
    other = r.dms(1)
    for order_id in filed.values():
        assert status(other, order_id) in ("new", "precheck", "precheck_success"), other.last_raw

    api.serve_again()
    again = r.dms(0)
    stored = {
        int(comment.split()[1]): int(order_id)
        for order_id, comment in r.c.store_query(
            "SELECT order_id, comment FROM orders WHERE comment LIKE 'api-kill %%'"
        )
    }
    for row, order_id in filed.items():  # an answered ticket was committed
        assert stored.get(row) == order_id, (row, order_id, stored)
    for order_id in stored.values():  # each is whole: its database and its precheck job
        parts = r.c.store_query(
            "SELECT (SELECT COUNT(*) FROM order_databases d WHERE d.order_id = o.order_id), "
            "(SELECT COUNT(*) FROM jobs j WHERE j.order_id = o.order_id AND j.kind = 'precheck') "
            "FROM orders o WHERE o.order_id = %s",
            order_id,
        )
        assert parts == [(1, 1)], (order_id, parts)
        execute(again, order_id)
    for order_id in stored.values():
        ends_in_success(r, order_id)
    done = {int(k) for (k,) in r.target_query("SELECT id FROM api_kill WHERE n = 1")}
    assert done == set(stored), (sorted(done), sorted(stored))
    assert r.counts("api_kill").keys() <= {0, 1}


def store_restarted_mid_execution(r: Rig) -> None:
    """Restart the PostgreSQL store while a ticket's statements run: the steps that lose it
    go back to the queue, and every statement is recorded once."""
    dms = r.dms()
    order_id = file_rows(dms, r.db_id, "store_restart", range(1, STATEMENTS + 1))
    execute(dms, order_id)
    wait_for("the statements to be under way", mid_run(r, "store_restart", STATEMENTS))
    r.store.stop("fast")
    assert r.changed("store_restart") < STATEMENTS, "the run ended before the store went"
    time.sleep(2)  # steps meanwhile find no store at all, not only a broken connection
    r.store.start()
    ends_in_success(r, order_id)
    exactly_once(r, "store_restart", STATEMENTS)
    details = r.c.store_query(
        "SELECT d.status, d.affect_rows, d.execute_count, COUNT(*) FROM sql_job_details d "
        "JOIN sql_jobs s ON s.sql_job_id = d.sql_job_id "
        "JOIN jobs j ON j.job_id = s.group_id WHERE j.order_id = %s "
        "GROUP BY d.status, d.affect_rows, d.execute_count",
        order_id,
    )
    assert details == [("SUCCESS", 1, 1, STATEMENTS)], details


def target_restarted_mid_run(r: Rig) -> None:
    """Restart the target database while a chunked ticket runs: the chunk cut off rolls
    back, and the run resumes after the last chunk that committed."""
    dms = r.dms()
    order_id = file_chunked(dms, r.db_id, "target_restart")
    execute(dms, order_id)
    wait_for("the chunked run to be under way", mid_run(r, "target_restart", CHUNK_ROWS))
    r.target.stop()
    r.target.start()
    assert r.changed("target_restart") < CHUNK_ROWS, "the run ended before the restart"
    ends_in_success(r, order_id)
    exactly_once(r, "target_restart", CHUNK_ROWS)
    log = sql_job_log(dms, order_id)
    assert "trying again" in log, log  # the restart cut a step off, and it was tried again


def broker_stopped(r: Rig) -> None:
    """Stop the broker for 30 s while a chunked ticket runs, and file another ticket
    meanwhile: the messages lost or never sent are sent again once it is back (workers
    reconnect by themselves), and both tickets end ``success``."""
    dms = r.dms()
    order_id = file_chunked(dms, r.db_id, "broker_stop")
    execute(dms, order_id)
    wait_for("the chunked run to be under way", mid_run(r, "broker_stop", CHUNK_ROWS))
    r.broker.stop()
    stopped = time.monotonic()
    assert r.changed("broker_stop") < CHUNK_ROWS, "the run ended before the broker stopped"
    late = file_rows(dms, r.db_id, "broker_late", range(1, 2))  # its precheck waits
    time.sleep(max(0.0, BROKER_DOWN_SECONDS - (time.monotonic() - stopped)))
    # nothing went on without the broker: the run let its worker go and waits for its
    # message, the new ticket's precheck for its own
    assert r.changed("broker_stop") < CHUNK_ROWS, "the run did not need its broker"
    assert precheck_status(dms, late) in ("new", "precheck"), dms.last_raw
    r.broker.start()
    execute(dms, late)
    ends_in_success(r, order_id)
    ends_in_success(r, late)
    exactly_once(r, "broker_stop", CHUNK_ROWS)
    exactly_once(r, "broker_late", 1)
    assert all(w.proc.poll() is None for w in r.c.workers), r.c.logs()  # reconnected


FAULTS = [
    worker_killed_mid_chunk,
    api_killed_mid_request,
    store_restarted_mid_execution,
    target_restarted_mid_run,
    broker_stopped,
]


def test_faults_end_in_the_exact_final_state() -> None:
    with rig() as r:
        for fault in FAULTS:
            began = time.monotonic()
            fault(r)
            print(f"{fault.__name__}: {time.monotonic() - began:.1f}s")
        print(f"ServiceUnavailable answers retried: {Patient.unavailable}")
        stuck = r.c.store_query(
            "SELECT job_id, kind, state FROM jobs WHERE state IN ('queued', 'running')"
        )
        assert stuck == [], stuck
        assert all(w.proc.poll() is None for w in r.c.workers), r.c.logs()
        assert all(a.proc.poll() is None for a in r.c.apis), r.c.logs()
