"""Two API processes and two Celery workers on one PostgreSQL store (issue 22).

- 200 data changes from 32 concurrent SDK clients of 8 committers, each ticket filed through
  one API and followed through the other, all end ``success`` with their exact effects
  (Redis); a smaller run of the same on RabbitMQ.
- A scheduled cleanup firing every second, run by both workers while its messages are sent
  many times over and its schedule is made due again and again, fires each fire time once.
- A file uploaded through one API (fetched by a worker into the shared files directory), run
  by a worker and downloaded through the other API; and the other way round.

The Redis tests share one cluster (module scope, like the ``server`` fixture): starting one
costs 15-25 s on this machine. Each test reads only its own tickets' rows of the store.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from opendms.jobs.broker import TASK, Queues, celery_app
from tests.e2e.conftest import (
    SERVING_UPLOADS,
    Creds,
    Dms,
    file_change,
    grant_correct,
    register_target,
    serving,
    target_database,
)
from tests.e2e.scale.cluster import Broker, Cluster, cluster, wait_for

# one cluster on the shared PostgreSQL at a time (tests/e2e/scale/cluster.py): two at once
# come near its 100 connections
pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("shared-store-cluster")]

# Every kind filed here goes without approval (see register_target).
FREE = ("DC_COMMON", "DC_CRON_CLEAR")
# GetDataCorrectOrderDetail's Status while a precheck, and while an execution, is going on
PRECHECKING = ("new", "precheck")
RUNNING = ("Approved", "waiting", "processing")
SETTINGS = {
    **SERVING_UPLOADS,
    "OPENDMS_HEARTBEAT_SECONDS": "1",  # jobs_done per worker in the store soon after the fact
}
LOGS = (
    "CREATE TABLE logs (id INT PRIMARY KEY, created DATETIME NOT NULL, status VARCHAR(8) NOT NULL)"
)
OLD = "created < UTC_TIMESTAMP() - INTERVAL 30 DAY"
BATCHES = 5
NOTES = "CREATE TABLE notes (id INT PRIMARY KEY, body VARCHAR(32) NOT NULL)"


@dataclass(frozen=True)
class Topology:
    cluster: Cluster
    db_id: int  # the MariaDB target
    query: Any  # sql -> rows there, on the test's own connection (one thread at a time)

    def admin(self, api: int) -> Dms:
        return Dms(self.cluster.apis[api], self.cluster.admin, "v3")


@contextmanager
def topology(broker: Broker, rows: int) -> Iterator[Topology]:
    """A cluster (2 APIs, 2 workers of 4 threads: the jobs wait on the store and the target
    more than they compute) and a MariaDB target holding ``t`` (``rows`` rows of n = 0),
    ``logs`` and ``notes``. One engine: these tests are about the processes; registering
    a PostgreSQL server reads every database on it, seconds more on a busy one."""
    with (
        target_database(
            "mariadb",
            "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL)",
            f"INSERT INTO t SELECT seq, 0 FROM seq_1_to_{rows}",
            LOGS,
            NOTES,
        ) as (name, query, where),
        cluster(broker, concurrency=4, env=SETTINGS) as c,
    ):
        admin = Dms(c.apis[0], c.admin, "v3")
        yield Topology(c, register_target(c.apis[0], admin, name, where, "topo", *FREE), query)


@pytest.fixture(scope="module")
def topo() -> Iterator[Topology]:
    with topology("redis", rows=200) as found:
        yield found


# ------------------------------------------------------------------ many tickets at once


def status(dms: Dms, order_id: int) -> str:
    """The ticket's status as GetDataCorrectOrderDetail says (precheck_success, success…)."""
    resp = dms.call("GetDataCorrectOrderDetail", order_id=order_id)
    assert resp.success is True, dms.last_raw
    return str(resp.data_correct_order_detail.status)


def settled(dms: Dms, order_id: int, *passing: str) -> str:
    """The ticket's status once it is none of ``passing``."""
    return str(
        wait_for(
            f"ticket {order_id} to leave {passing}",
            lambda: s if (s := status(dms, order_id)) not in passing else None,
            timeout=240,
            every=0.5,
        )
    )


@dataclass(frozen=True)
class Change:
    db_id: int
    row: int

    @property
    def sql(self) -> str:
        return f"UPDATE t SET n = n + 1 WHERE id = {self.row}"


class Watch:
    """When a ticket's precheck or execution job is over, as the store says: one thread reads
    it for every client, which then reads the ticket through the SDK. Two API processes on
    two cores cannot also answer 32 clients asking every half second."""

    def __init__(self, store_url: str) -> None:
        self._conn = psycopg.connect(store_url.replace("+psycopg", ""), autocommit=True)
        self._over: set[tuple[int, str]] = set()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        while not self._stop.wait(0.3):
            rows = self._conn.execute(
                "SELECT order_id, kind FROM jobs WHERE kind IN ('precheck', 'execute') "
                "AND state NOT IN ('queued', 'running')"
            ).fetchall()
            with self._changed:
                self._over = {(int(order_id), str(kind)) for order_id, kind in rows}
                self._changed.notify_all()

    def over(self, order_id: int, kind: str, timeout: float = 240.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: (order_id, kind) in self._over, timeout):
                pytest.fail(f"ticket {order_id}'s {kind} job not over after {timeout:.0f} s")

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._conn.close()


def one_client(
    c: Cluster, watch: Watch, creds: Creds, home: int, changes: list[Change]
) -> list[int]:
    """One SDK client's tickets: filed and executed through API ``home``; their precheck,
    submission and end read and done through the other API."""
    near = Dms(c.apis[home], creds, "v3")
    far = Dms(c.apis[1 - home], creds, "v3")
    orders = [file_change(near, ch.db_id, ch.sql) for ch in changes]
    for order_id in orders:
        watch.over(order_id, "precheck")
        assert status(far, order_id) == "precheck_success", far.last_raw
        assert far.call("SubmitOrderApproval", order_id=order_id).success is True, far.last_raw
        started = near.call("ExecuteDataCorrect", order_id=order_id, action_detail={})
        assert started.success is True, near.last_raw
    for order_id in orders:
        watch.over(order_id, "execute")
        assert status(far, order_id) == "success", far.last_raw
    return orders


def many_tickets(topo: Topology, *, tickets: int, clients: int, committers: int) -> None:
    """``tickets`` changes (each +1 on a row of its own) filed by
    ``clients`` concurrent SDK clients of ``committers`` users, through both APIs; every one
    ends ``success`` having changed its row once, and every job of theirs is over and let go.

    Several committers, because a committer has one job running at a time
    (OPENDMS_JOBS_PER_USER): with one, the workers would run these tickets one by one."""
    c = topo.cluster
    admin = topo.admin(0)
    users = [c.apis[0].create_user("USER", nick=f"committer {i}") for i in range(committers)]
    for user in users:
        assert user.user_id is not None
        grant_correct(admin, user.user_id, topo.db_id)
    changes = [Change(topo.db_id, row) for row in range(1, tickets + 1)]
    # client i: committer i % committers, filing through API (i // committers) % 2, so every
    # committer files through both
    with Watch(c.store_url) as watch, ThreadPoolExecutor(max_workers=clients) as pool:
        running = [
            pool.submit(
                one_client,
                c,
                watch,
                users[i % committers],
                (i // committers) % 2,
                changes[i::clients],
            )
            for i in range(clients)
        ]
        orders = [order_id for done in running for order_id in done.result()]

    assert len(set(orders)) == tickets
    changed = [tuple(r) for r in topo.query("SELECT id, n FROM t ORDER BY id")]
    assert changed == [(row, 1) for row in range(1, tickets + 1)]  # each row +1, once
    jobs = c.store_query(
        "SELECT order_id, kind, state, lease_owner, lease_until FROM jobs WHERE order_id = ANY(%s)",
        orders,
    )
    assert Counter((kind, state) for _, kind, state, _, _ in jobs) == {
        ("precheck", "succeeded"): tickets,
        ("execute", "succeeded"): tickets,
    }, c.logs()
    assert {(owner, until) for *_, owner, until in jobs} == {(None, None)}
    assert c.store_query(
        "SELECT DISTINCT status_code FROM orders WHERE order_id = ANY(%s)", orders
    ) == [("success",)]

    def each_worker_ended_some() -> bool:
        # between them, the workers ended each job of the store once (heartbeats lag a beat)
        done = [
            n for (n,) in c.store_query("SELECT jobs_done FROM processes WHERE role = 'worker'")
        ]
        (ended,) = c.store_query(
            "SELECT count(*) FROM jobs WHERE state IN ('succeeded', 'failed', 'paused')"
        )
        return len(done) == 2 and min(done) > 0 and sum(done) == ended[0]

    wait_for("the workers' heartbeats to count every ended job", each_worker_ended_some, 30)


def test_200_tickets_from_32_clients_through_two_apis_and_two_workers(topo: Topology) -> None:
    many_tickets(topo, tickets=200, clients=32, committers=8)


def test_tickets_from_concurrent_clients_on_rabbitmq() -> None:
    with topology("amqp", rows=16) as found:
        many_tickets(found, tickets=16, clients=4, committers=2)


# ------------------------------------------------------------------ a schedule, once per fire


def test_a_scheduled_cleanup_fires_once_per_fire_time_across_workers(topo: Topology) -> None:
    """Every second a fire time; meanwhile the schedule job is made due ten times a second
    (its run_after set to now in the store) and every job of the ticket is told "has work"
    three times over through the broker. Each fire time makes one run, each run one
    execution, each old row is deleted and counted once."""
    c = topo.cluster
    near, far = topo.admin(0), topo.admin(1)
    query = topo.query
    param = dms_models.CreateDataCronClearOrderRequestParam().from_map(
        {
            "DbItemList": [{"DbId": topo.db_id, "Logic": False}],
            "CronClearItemList": [
                {
                    "TableName": "logs",
                    "ColumnName": "created",
                    "RemainDays": 30,
                    "FilterSQL": "status = 'done'",
                }
            ],
            "CronFormat": "* * * * * ?",
            "specifyDuration": False,
        }
    )
    created = near.call("CreateDataCronClearOrder", param=param, comment="purge every second")
    assert created.success is True, near.last_raw
    (order_id,) = created.create_order_result
    assert settled(far, order_id, *PRECHECKING) == "precheck_success", far.last_raw
    assert far.call("SubmitOrderApproval", order_id=order_id).success is True, far.last_raw
    ((schedule,),) = wait_for(
        "the armed schedule",
        lambda: c.store_query(
            "SELECT job_id FROM jobs WHERE order_id = %s AND kind = 'cron'", order_id
        ),
    )

    app = celery_app(c.broker_url, Queues(c.queue))
    stop = threading.Event()

    def hammer() -> None:
        with psycopg.connect(c.store_url.replace("+psycopg", ""), autocommit=True) as store:
            while not stop.wait(0.1):
                store.execute(
                    "UPDATE jobs SET run_after = timezone('utc', now()) "
                    "WHERE job_id = %s AND state = 'queued'",
                    (schedule,),
                )
                latest = store.execute(  # the latest run's execution, or the schedule
                    "SELECT max(job_id) FROM jobs WHERE order_id = %s", (order_id,)
                ).fetchone()
                for job_id in {schedule, latest[0] if latest else schedule}:
                    for _ in range(2):
                        app.send_task(TASK, args=[job_id], queue=Queues(c.queue).jobs)

    # rows 40 days old, done (they go) or open (they stay), and done rows of today (they stay)
    fed: Counter[str] = Counter()
    runs_sql = "SELECT fire_at, job_id FROM cron_runs WHERE order_id = %s ORDER BY fire_at"
    hammering = threading.Thread(target=hammer, daemon=True)
    hammering.start()
    try:
        for batch in range(BATCHES):  # each batch once the one before it is gone
            base = batch * 30
            query(
                f"INSERT INTO logs SELECT {base} + seq, UTC_TIMESTAMP() - INTERVAL 40 DAY, "
                "IF(seq % 3 = 0, 'open', 'done') FROM seq_1_to_20"
            )
            query(
                f"INSERT INTO logs SELECT {base} + seq, UTC_TIMESTAMP(), 'done' FROM seq_21_to_30"
            )
            fed.update(done=14, open=6, new=10)
            wait_for(
                f"batch {batch}'s old done rows to go",
                lambda: not query(f"SELECT 1 FROM logs WHERE status = 'done' AND {OLD}"),
                timeout=60,
            )
    finally:
        stop.set()
        hammering.join(10)
        app.close()
    closed = far.call("CloseOrder", order_id=order_id, close_reason="enough")
    assert closed.success is True, far.last_raw
    wait_for(
        "the ticket's jobs to end",
        lambda: (
            not c.store_query(
                "SELECT 1 FROM jobs WHERE order_id = %s AND state IN ('queued', 'running')",
                order_id,
            )
        ),
        timeout=60,
    )

    runs = c.store_query(runs_sql, order_id)
    executions = c.store_query(
        "SELECT job_id, state, lease_owner FROM jobs WHERE order_id = %s AND kind = 'execute'",
        order_id,
    )
    # one execution per fire time that ran, none without one
    assert sorted(j for _, j in runs if j is not None) == sorted(j for j, _, _ in executions)
    # the close calls off a run that had just fired (it had nothing left to delete)
    assert {state for _, state, _ in executions} <= {"succeeded", "cancelled"}, c.logs()
    assert {owner for *_, owner in executions} == {None}
    ((attempts,),) = c.store_query("SELECT attempts FROM jobs WHERE job_id = %s", schedule)
    assert len([j for _, j in runs if j is not None]) >= 2
    assert attempts > len(runs), (attempts, runs)  # the schedule ran more often than it fired

    left = Counter(
        str(state) if old else "new" for state, old in query(f"SELECT status, {OLD} FROM logs")
    )
    assert left == {"open": fed["open"], "new": fed["new"]}
    history = far.call("GetDataCronClearTaskDetailList", order_id=order_id, page_size=1000)
    assert history.success is True, far.last_raw
    assert len(history.data_cron_clear_task_detail_list) == len(runs)
    deleted = sum(r.actual_affect_rows or 0 for r in history.data_cron_clear_task_detail_list)
    assert deleted == fed["done"]


# ------------------------------------------------------------------ files on a shared directory


def test_files_uploaded_through_one_api_run_by_a_worker_downloaded_through_the_other(
    topo: Topology,
) -> None:
    """One SQL file fetched from a URL (CreateUploadFileJob through API 0: a worker fetches
    it into the shared directory), one sent in the request body (UploadFile through API 1:
    that process writes it); each is a ticket's SQL, run by a worker, and read back
    through the API it was not uploaded to."""
    c = topo.cluster
    apis = [topo.admin(0), topo.admin(1)]
    fetched_sql = b"INSERT INTO notes VALUES (1, 'fetched');\n"
    sent_sql = b"INSERT INTO notes VALUES (2, 'sent');\n"

    with tempfile.TemporaryDirectory(prefix="opendms-topo-") as tmp:
        (Path(tmp) / "fetched.sql").write_bytes(fetched_sql)
        with serving(Path(tmp)) as url:
            job = apis[0].call(
                "CreateUploadFileJob",
                file_name="fetched.sql",
                file_source="datacorrect",
                upload_url=f"{url}/fetched.sql",
            )
            assert job.success is True, apis[0].last_raw
            detail = wait_for(
                "the upload",
                lambda: (
                    d
                    if (
                        d := apis[1]
                        .call("GetUserUploadFileJob", job_key=job.job_key)
                        .upload_file_job_detail
                    ).job_status
                    in ("SUCCESS", "FAIL")
                    else None
                ),
                timeout=60,
            )
    assert detail.job_status == "SUCCESS", detail.to_map()
    fetched_key = str(detail.attachment_key)

    api1 = c.apis[1]
    upload = api1.admin.signer(api1).v3("UploadFile", {"FileName": "sent.sql"}, raw_body=sent_sql)
    answer = api1.send(upload)
    assert answer.status_code == 200, answer.text
    sent_key = str(answer.json()["AttachmentKey"])

    # both files are in the shared directory, none in a process's own data directory
    stored = {p.name for p in (c.root / "files").rglob("*") if p.is_file()}
    assert {hashlib.sha256(b).hexdigest() for b in (fetched_sql, sent_sql)} <= stored
    homes = [p.data_dir for p in (*c.apis, *c.workers)]
    assert not [p for home in homes for p in (home / "files").rglob("*") if p.is_file()]

    for via, key, body in ((0, fetched_key, fetched_sql), (1, sent_key, sent_sql)):
        filer, other = apis[via], apis[1 - via]
        param = dms_models.CreateDataCorrectOrderRequestParam().from_map(
            {
                "DbItemList": [{"DbId": topo.db_id, "Logic": False}],
                "EstimateAffectRows": 1,
                "SqlType": "ATTACHMENT",
                "AttachmentName": key,
            }
        )
        made = filer.call(
            "CreateDataCorrectOrder", param=param, comment="from a file", attachment_key=key
        )
        assert made.success is True, filer.last_raw
        (order_id,) = made.create_order_result
        assert settled(other, order_id, *PRECHECKING) == "precheck_success", other.last_raw
        assert other.call("SubmitOrderApproval", order_id=order_id).success is True
        assert filer.call("ExecuteDataCorrect", order_id=order_id, action_detail={}).success
        assert settled(other, order_id, *RUNNING) == "success", other.last_raw

        link = other.call("GetOrderAttachmentFile", order_id=order_id).file_url
        parts = urlsplit(str(link))
        assert f"{parts.scheme}://{parts.netloc}" == c.apis[1 - via].base_url, link
        got = httpx.get(str(link), trust_env=False, timeout=30)
        assert got.status_code == 200, got.text
        assert got.content == body

    assert [tuple(r) for r in topo.query("SELECT id, body FROM notes ORDER BY id")] == [
        (1, "fetched"),
        (2, "sent"),
    ]
