"""A structure sync (TABLE_SYNC) through the official SDK against a real ``opendms serve``,
on MariaDB (two databases of the shared server) and PostgreSQL (two schemas of one catalog):
the target's table of 300,000 rows gets its columns widened (INT → BIGINT, VARCHAR(50) →
VARCHAR(300)) while a writer keeps updating, inserting and deleting single rows in it.

The target instance has DdlOnline 2, so the rewrite runs as OpenDMS's shadow copy; its
progress (GetOnlineDDLProgress) is watched move. The target's table ends with the source's
structure, every row as the writer left it (checked against the writer's own account of
what it wrote), no writer error, and nothing of the copy left on the target but the old
table it keeps by design (CleanStrategy NOTHING). The second test kills the server with
SIGKILL in the middle of the copy and starts it again: the copy resumes and ends exactly
the same.
"""

from __future__ import annotations

import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pymysql
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.conftest import mysql_database, pg_database
from tests.e2e.conftest import (
    Creds,
    Dms,
    Server,
    grant_correct,
    running_server,
    wait_for,
)
from tests.e2e.schema_support import (
    add_instance,
    approve,
    db_id,
    mariadb_tables,
    mariadb_triggers,
    pg_tables,
    pg_triggers,
    status_of,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

ROWS = 300_000
# Small chunks, each followed by twice its time at rest, so that the copy lasts several steps
# (watched rising, killed halfway) however fast the machine runs it;
# a short lease, so that the restarted server takes the killed one's job over soon.
ENV = {
    "OPENDMS_JOB_LEASE_SECONDS": "3",
    "OPENDMS_CHUNK_MAX_ROWS": "10000",
    "OPENDMS_CHUNK_SLEEP_RATIO": "2",
}
SOURCE = {
    "mariadb": [
        "CREATE TABLE {s}.t (id BIGINT NOT NULL PRIMARY KEY, n BIGINT NOT NULL, "
        "note VARCHAR(300) NOT NULL DEFAULT '', KEY idx_note (note)) ENGINE=InnoDB",
    ],
    "postgresql": [
        "CREATE TABLE {s}.t (id BIGINT PRIMARY KEY, n BIGINT NOT NULL, "
        "note VARCHAR(300) NOT NULL DEFAULT '')",
        "CREATE INDEX idx_note ON {s}.t (note)",
    ],
}
TARGET = {
    "mariadb": [
        "CREATE TABLE {s}.t (id BIGINT NOT NULL PRIMARY KEY, n INT NOT NULL, "
        "note VARCHAR(50) NOT NULL DEFAULT '', KEY idx_note (note)) ENGINE=InnoDB",
        f"INSERT INTO {{s}}.t SELECT seq, seq, CONCAT('n', seq) FROM seq_1_to_{ROWS}",
        "ANALYZE TABLE {s}.t",
    ],
    "postgresql": [
        "CREATE TABLE {s}.t (id BIGINT PRIMARY KEY, n INT NOT NULL, "
        "note VARCHAR(50) NOT NULL DEFAULT '')",
        f"INSERT INTO {{s}}.t SELECT g, g, 'n' || g FROM generate_series(1, {ROWS}) g",
        "CREATE INDEX idx_note ON {s}.t (note)",
        "VACUUM ANALYZE {s}.t",
    ],
}


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server(ENV) as s:
        yield s


@dataclass(frozen=True)
class People:
    admin: Dms
    dba: Creds  # the DBA of the instances: approves
    committer: Creds


@pytest.fixture(scope="module")
def people(server: Server) -> People:
    dba = server.create_user("DBA", nick="Dora DBA")
    committer = server.create_user("USER", nick="Cora Committer")
    return People(Dms(server, server.admin, "v3"), dba, committer)


# ------------------------------------------------------------------ the databases


@dataclass
class Pair:
    """A source and a target of one engine, registered: the target's table filled."""

    engine: str
    source: str  # its database (MariaDB) or schema (PostgreSQL)
    target: str
    source_db: int
    target_db: int
    query: Callable[[str], Any]  # on the shared server (MariaDB) or the catalog (PostgreSQL)
    connect: Callable[[], Any]  # a connection of its own, for the writer

    def quoted(self, name: str) -> str:
        return f"`{name}`" if self.engine == "mariadb" else f'"{name}"'

    @property
    def table(self) -> str:
        return f"{self.quoted(self.target)}.t"


@pytest.fixture(scope="module")
def mariadb_instance(people: People) -> Iterator[Callable[[], int]]:
    """The shared MariaDB server registered once for the module (DdlOnline 2), found again
    after each test's databases are made (SyncInstanceMeta)."""
    made: list[int] = []

    def synced() -> int:
        if not made:
            made.append(
                add_instance(
                    people.admin,
                    alias="sync-maria",
                    engine="mariadb",
                    port=3306,
                    user="root",
                    env="dev",
                    dba=people.dba,
                    ddl_online=2,
                )
            )
        resp = people.admin.call("SyncInstanceMeta", instance_id=str(made[0]), ignore_table=True)
        assert resp.success is True, people.admin.last_raw
        return made[0]

    yield synced


@contextmanager
def mariadb_pair(people: People, instance: Callable[[], int]) -> Iterator[Pair]:
    with mysql_database() as (source, conn):
        target = f"{source}_to"

        def query(sql: str) -> Any:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()

        query(f"CREATE DATABASE `{target}`")
        try:
            for statement in SOURCE["mariadb"]:
                query(statement.format(s=f"`{source}`"))
            for statement in TARGET["mariadb"]:
                query(statement.format(s=f"`{target}`"))
            instance_id = instance()
            yield Pair(
                "mariadb",
                source,
                target,
                db_id(people.admin, instance_id, source),
                db_id(people.admin, instance_id, target),
                query,
                lambda: pymysql.connect(
                    host="127.0.0.1", user="root", password="", database=target, autocommit=True
                ),
            )
        finally:
            query(f"DROP DATABASE IF EXISTS `{target}`")


@contextmanager
def postgres_pair(people: People) -> Iterator[Pair]:
    with pg_database() as (catalog, conn):

        def query(sql: str) -> Any:
            cur = conn.execute(sql)
            return cur.fetchall() if cur.description else []

        source, target = "sync_from", "sync_to"
        for schema, statements in ((source, SOURCE), (target, TARGET)):
            query(f"CREATE SCHEMA {schema}")
            for statement in statements["postgresql"]:
                query(statement.format(s=schema))
        instance_id = add_instance(
            people.admin,
            alias=f"sync-pg-{uuid.uuid4().hex[:6]}",
            engine="postgresql",
            port=5432,
            user="postgres",
            env="dev",
            dba=people.dba,
            sid=catalog,
            ddl_online=2,
        )
        yield Pair(
            "postgresql",
            source,
            target,
            db_id(people.admin, instance_id, source, catalog),
            db_id(people.admin, instance_id, target, catalog),
            query,
            lambda: psycopg.connect(
                f"host=127.0.0.1 port=5432 user=postgres dbname={catalog}", autocommit=True
            ),
        )


@pytest.fixture(params=["mariadb", "postgresql"])
def pair(
    request: pytest.FixtureRequest,
    people: People,
    mariadb_instance: Callable[[], int],
) -> Iterator[Pair]:
    if request.param == "mariadb":
        with mariadb_pair(people, mariadb_instance) as found:
            yield found
    else:
        with postgres_pair(people) as found:
            yield found


# ------------------------------------------------------------------ the writer


@dataclass
class Writer:
    """Single-row writes to the target's table on a connection of its own, as an application
    would keep doing during the change; it keeps its own account of what it wrote."""

    pair: Pair
    changed: dict[int, tuple[int, str]] = field(default_factory=dict)  # id -> (n, note)
    deleted: set[int] = field(default_factory=set)
    inserted: int = 0
    writes: int = 0
    errors: list[str] = field(default_factory=list)

    def run(self, stop: threading.Event) -> None:
        conn = self.pair.connect()
        rng = random.Random(21)
        table, mark = self.pair.table, "%s"
        try:
            cur = conn.cursor()
            while not stop.is_set():
                k = self.writes + 1
                roll = rng.random()
                try:
                    if roll < 0.15:
                        new_id = ROWS + k
                        cur.execute(
                            f"INSERT INTO {table} (id, n, note) VALUES ({mark}, {mark}, {mark})",
                            (new_id, -k, f"i{k}"),
                        )
                        self.changed[new_id] = (-k, f"i{k}")
                        self.inserted += 1
                    elif roll < 0.3:
                        gone = rng.randint(1, ROWS)
                        cur.execute(f"DELETE FROM {table} WHERE id = {mark}", (gone,))
                        self.deleted.add(gone)
                        self.changed.pop(gone, None)
                    else:
                        row = rng.randint(1, ROWS)
                        if row in self.deleted:
                            continue
                        cur.execute(
                            f"UPDATE {table} SET n = {mark}, note = {mark} WHERE id = {mark}",
                            (-k, f"w{k}", row),
                        )
                        self.changed[row] = (-k, f"w{k}")
                except Exception as exc:  # every error is a finding: the test reports them
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    if len(self.errors) > 20:
                        return
                self.writes += 1
                time.sleep(0.003)
        finally:
            conn.close()

    def check(self) -> None:
        """The table holds exactly the rows the writer leaves: every row it did not touch as
        loaded (n = id, note = 'n' || id), those it wrote as it wrote them, none it deleted."""
        query, table = self.pair.query, self.pair.table
        ((count,),) = query(f"SELECT COUNT(*) FROM {table}")
        assert count == ROWS - len(self.deleted) + self.inserted
        touched = {
            int(i): (int(n), str(note))
            for i, n, note in query(
                f"SELECT id, n, note FROM {table} WHERE n <> id OR note <> CONCAT('n', id)"
            )
        }
        assert touched == self.changed
        if self.deleted:
            ids = ", ".join(map(str, sorted(self.deleted)))
            assert list(query(f"SELECT id FROM {table} WHERE id IN ({ids})")) == []


@contextmanager
def writing(pair: Pair) -> Iterator[Writer]:
    writer = Writer(pair)
    stop = threading.Event()
    thread = threading.Thread(target=writer.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield writer
    finally:
        stop.set()
        thread.join(timeout=30)
        assert not thread.is_alive(), "the writer is stuck"


# ------------------------------------------------------------------ the ticket


@dataclass(frozen=True)
class Seen:
    status: str
    count: int
    total: int
    ratio: str


def file_sync(people: People, server: Server, pair: Pair) -> int:
    """CreateStructSyncOrder of table t, compared and prechecked, its analysis an
    ALTER_TABLE widening both columns, submitted and approved by the DBA; its OrderId."""
    committer = Dms(server, people.committer, "v3")
    # reading the source is enough there; the target is what the ticket changes
    grant_correct(people.admin, people.committer.user_id or 0, pair.source_db, perms="QUERY")
    grant_correct(people.admin, people.committer.user_id or 0, pair.target_db)
    param = dms_models.CreateStructSyncOrderRequestParam().from_map(
        {
            "Source": {"DbId": pair.source_db, "Logic": False},
            "Target": {"DbId": pair.target_db, "Logic": False},
            "TableInfoList": [{"SourceTableName": "t", "TargetTableName": "t"}],
            "IgnoreError": False,
        }
    )
    made = committer.call("CreateStructSyncOrder", param=param, comment="widen t")
    assert made.success is True, committer.last_raw
    (order_id,) = made.create_order_result

    def compared() -> Any:
        job = committer.call("GetStructSyncJobDetail", order_id=order_id).struct_sync_job_detail
        return job if job.job_status not in ("NEW", "COMPARING") else None

    job = wait_for("the comparison and its checks", compared, timeout=60)
    assert (job.job_status, job.table_count) == ("COMPARE_FINISH", 1), committer.last_raw
    ddl = committer.call("GetStructSyncExecSqlDetail", order_id=order_id, page_size=100)
    assert ddl.struct_sync_exec_sql_detail.total_sql_count == job.sql_count, committer.last_raw

    analysis = committer.call("GetStructSyncJobAnalyzeResult", order_id=order_id)
    assert analysis.success is True, committer.last_raw
    found = analysis.struct_sync_job_analyze_result
    assert {(s.compare_type, s.count) for s in found.summary_list} == {("ALTER_TABLE", 1)}
    (table,) = found.result_list
    assert (table.source_table_name, table.target_table_name) == ("t", "t")
    script = table.script.upper()
    assert "BIGINT" in script and "VARCHAR(300)" in script, table.script

    submitted = committer.call("SubmitStructSyncOrderApproval", order_id=order_id)
    assert submitted.success is True, committer.last_raw
    approve(committer, Dms(server, people.dba, "v3"), order_id)
    return order_id


def detail_id(committer: Dms, order_id: int) -> int:
    """The JobDetailId of the statement that rewrites the table (it makes a column BIGINT),
    once the execution started. (MariaDB changes both columns in one ALTER TABLE;
    PostgreSQL's comparison writes one statement per change.)"""

    def group() -> int | None:
        job = committer.call("GetStructSyncJobDetail", order_id=order_id).struct_sync_job_detail
        return job.dbtask_group_id

    group_id = wait_for("the execution", group, timeout=30)
    jobs = committer.call("ListDBTaskSQLJob", dbtask_group_id=group_id)
    assert jobs.success is True, committer.last_raw
    (sql_job,) = jobs.dbtask_sqljob_list
    details = committer.call("ListDBTaskSQLJobDetail", job_id=sql_job.job_id, page_size=100)
    (found,) = [d for d in details.dbtask_sqljob_detail_list if "BIGINT" in d.current_sql.upper()]
    assert found.sql_type == "ALTER", committer.last_raw
    return int(found.job_detail_id)


def progress(committer: Dms, job_detail_id: int) -> Seen:
    resp = committer.call("GetOnlineDDLProgress", job_detail_id=job_detail_id)
    assert resp.success is True, committer.last_raw
    d = resp.online_ddltask_detail
    return Seen(str(d.job_status), int(d.copy_count), int(d.copy_total), str(d.progress_ratio))


def watch(
    committer: Dms, job_detail_id: int, on_copy: Callable[[Seen], None] = lambda _: None
) -> list[Seen]:
    """Every progress seen until the statement ends; ``on_copy`` is told each one seen
    mid-copy (RUNNING, some rows copied, not all)."""
    seen: list[Seen] = []
    deadline = time.monotonic() + 240
    while True:
        now = progress(committer, job_detail_id)
        if not seen or now != seen[-1]:
            seen.append(now)
        if now.status in ("SUCCESS", "FAIL", "CANCELED", "UNSUPPORTED"):
            return seen
        if now.status == "RUNNING" and 0 < now.count < now.total:
            on_copy(now)
        assert time.monotonic() < deadline, seen[-10:]
        time.sleep(0.05)


def mid_copy(seen: list[Seen]) -> list[int]:
    return [s.count for s in seen if s.status == "RUNNING" and 0 < s.count < s.total]


def kept_table(committer: Dms, order_id: int, job_detail_id: int) -> str:
    """The old table the rewriting statement's log says it kept (CleanStrategy NOTHING:
    the old shape stays until someone drops it), without its schema."""
    job = committer.call("GetStructSyncJobDetail", order_id=order_id).struct_sync_job_detail
    (sql_job,) = committer.call(
        "ListDBTaskSQLJob", dbtask_group_id=job.dbtask_group_id
    ).dbtask_sqljob_list
    details = committer.call("ListDBTaskSQLJobDetail", job_id=sql_job.job_id, page_size=100)
    (found,) = [d for d in details.dbtask_sqljob_detail_list if d.job_detail_id == job_detail_id]
    assert found.status == "SUCCESS", committer.last_raw
    kept = re.search(r"the old table is kept as (\S+)", found.log or "")
    assert kept is not None, found.log
    return kept.group(1).rstrip(".").split(".")[-1]


def check_target(pair: Pair, writer: Writer, kept: str) -> None:
    """The target's table has the source's structure and the writer's rows; of the copy,
    only the old table it kept is left: no shadow table, no trigger, no trigger function."""
    assert writer.errors == [], writer.errors[:5]
    writer.check()
    if pair.engine == "mariadb":
        source = mariadb_tables(pair.query, pair.source)
        target = mariadb_tables(pair.query, pair.target)
        triggers = mariadb_triggers(pair.query, pair.target)
    else:
        conn = pair.connect()
        try:
            source = pg_tables(conn, pair.source)
            target = pg_tables(conn, pair.target)
            triggers = pg_triggers(conn, pair.target)
            # the copy's trigger function lives in OpenDMS's own schema: sync_<tag>
            triggers += [
                str(n)
                for (n,) in conn.execute(
                    "SELECT p.proname FROM pg_proc p JOIN pg_namespace n "
                    "ON n.oid = p.pronamespace "
                    "WHERE n.nspname = '_opendms' AND p.proname LIKE 'sync\\_%%'"
                )
            ]
        finally:
            conn.close()
    assert target["t"] == source["t"]
    assert sorted(target) == sorted(["t", kept]), sorted(target)
    assert triggers == [], triggers


@dataclass(frozen=True)
class Synced:
    seen: list[Seen]  # every progress of the rewriting statement, as it changed
    writer: Writer
    killed: Seen | None  # what was seen when the server was killed
    kept: str  # the old table kept on the target


def run_sync(people: People, server: Server, pair: Pair, *, kill: bool) -> Synced:
    """File, approve and execute the sync while the writer writes; with ``kill``, SIGKILL
    the server once a tenth of the rows are copied (and not all) and start it again."""
    order_id = file_sync(people, server, pair)
    committer = Dms(server, people.committer, "v3")
    killed: list[Seen] = []

    def kill_mid_copy(now: Seen) -> None:
        if kill and not killed and now.count >= now.total // 10:
            killed.append(now)
            server.kill_and_restart()

    with writing(pair) as writer:
        wait_for("the writer to start", lambda: writer.writes >= 20, timeout=30)
        executed = committer.call("ExecuteStructSync", order_id=order_id)
        assert executed.success is True, committer.last_raw
        job_detail_id = detail_id(committer, order_id)
        seen = watch(committer, job_detail_id, kill_mid_copy)
        assert seen[-1].status == "SUCCESS", (seen[-5:], committer.last_raw)
        wait_for(
            "the ticket's success", lambda: status_of(committer, order_id) == "success", timeout=60
        )
        # the table keeps taking writes after its swap
        after = writer.writes
        wait_for("writes after the swap", lambda: writer.writes >= after + 50, timeout=30)
    job = committer.call("GetStructSyncJobDetail", order_id=order_id).struct_sync_job_detail
    assert job.job_status == "DBTASK_SUCCESS", committer.last_raw
    assert job.execute_count == job.sql_count, committer.last_raw
    last = committer.call("GetOnlineDDLProgress", job_detail_id=job_detail_id)
    assert last.online_ddltask_detail.clean_strategy == "NOTHING", committer.last_raw
    kept = kept_table(committer, order_id, job_detail_id)
    return Synced(seen, writer, killed[0] if killed else None, kept)


def test_a_column_is_widened_under_live_writes(server: Server, people: People, pair: Pair) -> None:
    synced = run_sync(people, server, pair, kill=False)
    copied = mid_copy(synced.seen)
    assert len(copied) >= 2 and copied == sorted(copied), synced.seen  # it moved, forward
    last = synced.seen[-1]
    assert last.ratio == "1.0000" and last.count >= ROWS * 0.9, last
    check_target(pair, synced.writer, synced.kept)


def test_a_server_killed_mid_copy_resumes_it_exactly(
    server: Server, people: People, pair: Pair
) -> None:
    synced = run_sync(people, server, pair, kill=True)
    killed = synced.killed
    assert killed is not None, synced.seen
    assert killed.status == "RUNNING" and 0 < killed.count < killed.total, killed
    # resumed where it was, not started again: no count seen after the kill is below it
    after = synced.seen[synced.seen.index(killed) + 1 :]
    assert after and min(s.count for s in after) >= killed.count, synced.seen
    check_target(pair, synced.writer, synced.kept)
