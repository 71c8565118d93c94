"""DC_CHUNK tickets on real MariaDB and PostgreSQL databases, end to end through the services:
a chunked UPDATE of 100,000 rows under a steady stream of single-row writes (every row changed
exactly once, the writes never stalled for long), composite and unique-but-not-primary keys,
the keys that cannot be walked, backups whose rollback script restores the table row for row,
a chunk that loses a lock fight, a sparse DELETE, an INSERT … SELECT, and the load a chunked
change reads between chunks."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest
from sqlalchemy import select

from opendms.execution import files
from opendms.execution import service as execution
from opendms.execution.chunked import Progress
from opendms.identity.secrets import SecretBox
from opendms.precheck import service as precheck
from opendms.sql.script import split
from opendms.store.db import Store
from opendms.store.models import Job, Order, SqlJob, SqlJobDetail
from opendms.targets.base import Endpoint
from opendms.targets.pace import Gauge, Limits, Pace
from opendms.targets.registry import connector_for
from tests.approval_world import World
from tests.integration.server_db import ServerDb
from tests.integration.sql.test_backup_servers import NASTY, rows_of

pytestmark = pytest.mark.integration

# Small chunks, so that a table of a few hundred rows takes many of them; 37 is prime, so
# chunk ends fall on every position of a composite key's second column.
SMALL = Pace(first_chunk_rows=37, max_chunk_rows=37)


@dataclass
class Server(ServerDb):
    """A fresh database on one engine, an autocommit connection to it, and a World whose
    tickets need no approval."""

    @property
    def where(self) -> tuple[str, str]:
        return ("def", self.name) if self.engine == "mariadb" else (self.name, "public")

    @property
    def endpoint(self) -> Endpoint:
        if self.engine == "mariadb":
            return Endpoint("mariadb", "127.0.0.1", 3306, "root")
        return Endpoint("postgresql", "127.0.0.1", 5432, "postgres", database=self.name)

    def connect(self) -> Any:
        """Another autocommit connection to the database."""
        if self.engine == "mariadb":
            return pymysql.connect(
                host="127.0.0.1", user="root", database=self.name, autocommit=True
            )
        return psycopg.connect(
            f"host=127.0.0.1 port=5432 user=postgres dbname={self.name}", autocommit=True
        )

    def dicts(self, query: str) -> list[dict[str, Any]]:
        with self.conn.cursor() as cur:
            return rows_of(cur, query)

    def apply(self, script: str) -> None:
        with self.conn.cursor() as cur:
            for piece in split(script, self.engine):
                cur.execute(piece.text)

    def pace(self, pace: Pace) -> None:
        self.world.means = dataclasses.replace(self.world.means, pace=pace)
        self.world.rebuild_runner()

    def file(self, sql: str) -> int:
        """A DC_CHUNK ticket, prechecked."""
        return self.world.file(sql, kind="DC_CHUNK")

    def start(self, order_id: int, backup: bool = False) -> int:
        """Submit (no approval needed) and start the ticket; its execute job, not yet run."""
        w = self.world
        with w.store.session() as s:
            order = s.get_one(Order, order_id)
            assert precheck.shortfall(s, order) is None, precheck.steps(s, order_id)
        w.submit(order_id)
        assert w.status(order_id) == "Approved"
        with w.store.session() as s:
            return execution.execute(
                s, w.as_("alice"), order_id, execution.ExecutionPlan(backup=backup)
            ).job_id

    def finish(self, job_id: int, seconds: float = 30.0) -> str:
        """Run jobs in this thread until the execute job is over (its state) or time is up;
        steps that wait (a held-back or lost chunk) are picked up again when they are due."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.world.runner.run_once():
                continue
            with self.world.store.session() as s:
                state = s.get_one(Job, job_id).state
            if state in ("succeeded", "failed", "paused"):
                return state
            time.sleep(0.05)
        return "timeout"

    def run(self, sql: str, backup: bool = False) -> int:
        """File, start and run a DC_CHUNK ticket to its end; its order id."""
        order_id = self.file(sql)
        state = self.finish(self.start(order_id, backup))
        detail = self.detail(order_id)
        assert state == "succeeded", (state, detail.log, self.sql_job(order_id).log)
        assert self.world.status(order_id) == "success"
        return order_id

    def sql_job(self, order_id: int) -> SqlJob:
        with self.world.store.session() as s:
            return s.scalars(select(SqlJob).where(SqlJob.order_id == order_id)).one()

    def detail(self, order_id: int) -> SqlJobDetail:
        return self.world.only_detail(order_id)


@pytest.fixture(params=["mariadb", "postgresql"])
def server(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[Server]:
    with World.on_server(request.param, store, box, tmp_path) as (world, name, conn):
        yield Server(request.param, name, conn, world.free_of_approval("DC_CHUNK"), box)


# ------------------------------------------------------------ 1. under load

ORIGINAL = 100_000
WRITER_N = 100  # what the writer's rows start with; the chunked UPDATE makes it 101
WRITE_EVERY = 0.005
LATENCY_BOUND = 1.5


@dataclass
class Writer:
    """Single-row writes on a connection of its own, one every ``WRITE_EVERY`` seconds:
    by turns an UPDATE of a random original row and an INSERT of a new row above them all
    (with n = WRITER_N). Each write's latency is kept."""

    connect: Callable[[], Any]
    latencies: list[float] = field(default_factory=list)
    inserted: list[int] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="steady-writer", daemon=True)

    def _loop(self) -> None:
        rng = random.Random(7)
        try:
            conn = self.connect()
            with conn, conn.cursor() as cur:
                next_id, turn, due = ORIGINAL + 1, 0, time.perf_counter()
                while not self.stop.is_set():
                    began = time.perf_counter()
                    if turn % 2:
                        cur.execute(
                            "UPDATE t SET pad = %s WHERE id = %s",
                            (f"w{turn}", rng.randint(1, ORIGINAL)),
                        )
                    else:
                        cur.execute(
                            "INSERT INTO t (id, n, pad) VALUES (%s, %s, 'new')",
                            (next_id, WRITER_N),
                        )
                        self.inserted.append(next_id)
                        next_id += 1
                    self.latencies.append(time.perf_counter() - began)
                    turn += 1
                    due = max(due + WRITE_EVERY, time.perf_counter())
                    time.sleep(max(0.0, due - time.perf_counter()))
        except BaseException as exc:  # surfaced in the test's thread
            self.errors.append(exc)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)

    @property
    def worst(self) -> float:
        return max(self.latencies)

    @property
    def p99(self) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, int(len(ordered) * 0.99) - 1)]


def test_a_chunked_update_changes_every_row_once_while_single_row_writes_go_on(
    server: Server, record_property: Callable[[str, object], None]
) -> None:
    started = time.monotonic()
    pad = "REPEAT('p', 40)" if server.engine == "mariadb" else "repeat('p', 40)"
    server.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0, pad VARCHAR(100))"
        + (" ENGINE=InnoDB" if server.engine == "mariadb" else ""),
        f"INSERT INTO t (id, pad) SELECT i, {pad} FROM ({server.series(ORIGINAL)}) s",
    )
    if server.engine == "postgresql":
        server.sql("ANALYZE t")
    server.sync()
    order_id = server.file("UPDATE t SET n = n + 1 WHERE 1=1")
    job_id = server.start(order_id)

    with Writer(server.connect) as writer:
        time.sleep(0.2)  # the writer's own pace before the chunks start
        walked = time.monotonic()
        state = server.finish(job_id, 35)
        walk_seconds = time.monotonic() - walked
        writes_during_walk = len(writer.latencies)
        time.sleep(0.2)  # and after: rows inserted past the walk's end keep WRITER_N

    assert not writer.errors, writer.errors
    detail = server.detail(order_id)
    assert state == "succeeded", (state, detail.log)
    assert server.world.status(order_id) == "success"

    counts = dict(server.rows(f"SELECT n, COUNT(*) FROM t WHERE id <= {ORIGINAL} GROUP BY n"))
    assert counts == {1: ORIGINAL}, counts  # none missed, none twice
    mine = dict(server.rows(f"SELECT n, COUNT(*) FROM t WHERE id > {ORIGINAL} GROUP BY n"))
    assert set(mine) <= {WRITER_N, WRITER_N + 1}, mine
    assert sum(mine.values()) == len(writer.inserted)
    # The walk counted exactly the rows it changed: every original row, and the writer's
    # rows that were there before the walk passed them.
    assert detail.affect_rows == ORIGINAL + mine.get(WRITER_N + 1, 0)
    progress = Progress.load(detail.progress)
    assert progress.state == "DONE" and progress.chunks > 1

    worst, p99 = writer.worst, writer.p99
    report = (
        f"{server.engine}: {len(writer.latencies)} writes ({writes_during_walk} before the walk "
        f"ended, walk {walk_seconds:.1f} s), worst {worst * 1000:.1f} ms, p99 "
        f"{p99 * 1000:.1f} ms; {progress.chunks} chunks, chunk p99 {progress.p99_ms} ms, "
        f"max {progress.max_chunk_ms} ms; test {time.monotonic() - started:.1f} s"
    )
    print(report)
    record_property("writer_latency", report)
    assert writes_during_walk > 50, report  # the writes did go on while the chunks ran
    assert worst < LATENCY_BOUND, report


# ------------------------------------------------------------ 2. keys to walk

B_VALUES = ["it's", "back\\slash", "new\nline", "中文", "%_;--", "x", "Y", 'quote"d'] + [
    f"k{j:02d}" for j in range(12)
]


def test_a_composite_primary_key_is_walked_column_by_column(server: Server) -> None:
    server.pace(SMALL)
    server.sql(
        "CREATE TABLE ck (a INT NOT NULL, b VARCHAR(20) NOT NULL, n INT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (a, b))"
    )
    with server.conn.cursor() as cur:
        for a in range(1, 31):
            for b in B_VALUES:
                cur.execute("INSERT INTO ck (a, b) VALUES (%s, %s)", (a, b))
    server.sync()
    order_id = server.run("UPDATE ck SET n = n + 1 WHERE a % 3 = 0 OR b = 'it''s'")

    after = server.rows("SELECT a, b, n FROM ck")
    assert len(after) == 30 * len(B_VALUES)
    wrong = [(a, b, n) for a, b, n in after if n != (1 if a % 3 == 0 or b == "it's" else 0)]
    assert not wrong, wrong[:10]
    detail = server.detail(order_id)
    assert detail.affect_rows == 10 * len(B_VALUES) + 20
    assert Progress.load(detail.progress).chunks >= len(after) // 37


def test_a_unique_not_null_key_is_walked_when_there_is_no_primary_key(server: Server) -> None:
    server.pace(SMALL)
    server.sql(
        "CREATE TABLE uk (code VARCHAR(20) NOT NULL, region INT NOT NULL, alt INT NULL,"
        " n INT NOT NULL DEFAULT 0, CONSTRAINT uk_alt UNIQUE (alt),"
        " CONSTRAINT uk_rc UNIQUE (region, code))"
    )
    with server.conn.cursor() as cur:
        for region in range(1, 16):
            for j, code in enumerate(B_VALUES):
                alt = None if j % 2 else region * 100 + j  # its only one-column key is nullable
                cur.execute(
                    "INSERT INTO uk (code, region, alt) VALUES (%s, %s, %s)", (code, region, alt)
                )
    server.sync()
    order_id = server.run("UPDATE uk SET n = n + 1 WHERE region % 2 = 1")

    after = server.rows("SELECT region, code, n FROM uk")
    assert len(after) == 15 * len(B_VALUES)
    wrong = [r for r in after if r[2] != (1 if r[0] % 2 == 1 else 0)]
    assert not wrong, wrong[:10]
    assert server.detail(order_id).affect_rows == 8 * len(B_VALUES)


def test_a_table_whose_only_unique_key_is_nullable_is_refused_by_the_precheck(
    server: Server,
) -> None:
    server.sql(
        "CREATE TABLE nk (code VARCHAR(20) NULL, n INT NOT NULL DEFAULT 0,"
        " CONSTRAINT nk_code UNIQUE (code))",
        "INSERT INTO nk (code) VALUES ('a'), (NULL), (NULL)",
    )
    server.sync()
    order_id = server.file("UPDATE nk SET n = n + 1 WHERE 1=1")
    with server.world.store.session() as s:
        views = {v.step: v for v in precheck.steps(s, order_id)}
    assert views["SQL_TYPE_CHECK"].status == "FAIL"
    assert "NOT_CHUNKABLE" in views["SQL_TYPE_CHECK"].tip
    assert "neither a primary key nor a unique key of NOT NULL columns" in (
        views["SQL_TYPE_CHECK"].tip
    )
    assert server.rows("SELECT n FROM nk") == [(0,)] * 3


# ------------------------------------------------------------ 3. backups

ACCT_ROWS = 200
SNAPSHOT = "SELECT * FROM acct ORDER BY id"


def _acct(server: Server) -> None:
    if server.engine == "mariadb":
        server.sql(
            "CREATE TABLE acct (id INT PRIMARY KEY, note VARCHAR(100), amount DECIMAL(12,3),"
            " at DATETIME(6), raw BLOB, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB"
        )
    else:
        server.sql(
            "CREATE TABLE acct (id INT PRIMARY KEY, note TEXT, amount NUMERIC(12,3),"
            " at TIMESTAMP, raw BYTEA, n INT NOT NULL DEFAULT 0)"
        )
    with server.conn.cursor() as cur:
        for i in range(1, ACCT_ROWS + 1):
            note = NASTY[i % len(NASTY)]
            cur.execute(
                "INSERT INTO acct (id, note, amount, at, raw, n) VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    i,
                    note,
                    f"{i}.345" if note else None,
                    f"2026-01-{i % 28 + 1:02d} 10:11:12.{i:06d}",
                    bytes([0, 255, 39, 92, i % 256]),
                    i,
                ),
            )
    server.sync()


@pytest.mark.parametrize(
    ("statement", "changed"),
    [
        (
            "UPDATE acct SET note = 'changed', n = n + 1, amount = NULL WHERE id % 3 = 0",
            ACCT_ROWS // 3,
        ),
        ("DELETE FROM acct WHERE id % 4 = 1", ACCT_ROWS // 4),
    ],
    ids=["update", "delete"],
)
def test_a_chunked_change_with_backup_is_undone_exactly_by_its_rollback_script(
    server: Server, statement: str, changed: int
) -> None:
    server.pace(SMALL)
    _acct(server)
    before = server.dicts(SNAPSHOT)
    order_id = server.run(statement, backup=True)

    after = server.dicts(SNAPSHOT)
    assert after != before
    detail = server.detail(order_id)
    assert detail.affect_rows == changed
    assert detail.backup is not None
    assert Progress.load(detail.progress).chunks > 1
    job = server.sql_job(order_id)
    script = "".join(files.rollback_script(server.world.store, server.world.means, job.sql_job_id))
    kind = statement.split(maxsplit=1)[0]
    assert f"undo {kind} of acct ({changed} rows)" in script, script[:500]
    server.apply(script)
    assert server.dicts(SNAPSHOT) == before


# ------------------------------------------------------------ 4. load and lag


def test_the_load_a_chunked_change_reads_and_no_replica_lag(server: Server) -> None:
    connector = connector_for(server.endpoint)
    with connector.change(server.where, 2) as change:
        load = change.load()
        assert isinstance(load.running, int)
        assert load.running >= (1 if server.engine == "mariadb" else 0)  # at least itself
        assert load.lag_seconds is None  # no replicas
        # Held back when more statements run than allowed; -1 so that even 0 is more.
        held = Gauge(change, Limits(max_running=-1)).hold()
        assert held is not None and "statements running on the target" in held
        # Not a replica: no lag to wait for.
        assert connector.replica_lag() is None


# ------------------------------------------------------------ 5. sparse DELETE, INSERT … SELECT


def test_a_chunked_delete_removes_exactly_the_sparse_rows_it_matches(server: Server) -> None:
    server.pace(Pace(first_chunk_rows=50, max_chunk_rows=50))
    server.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)",
        f"INSERT INTO t (id) SELECT i FROM ({server.series(3000)}) s",
    )
    server.sync()
    order_id = server.run("DELETE FROM t WHERE id % 7 = 0")

    left = [r[0] for r in server.rows("SELECT id FROM t ORDER BY id")]
    assert left == [i for i in range(1, 3001) if i % 7]
    detail = server.detail(order_id)
    assert detail.affect_rows == 3000 // 7
    assert Progress.load(detail.progress).chunks >= 3000 // 50


@pytest.mark.parametrize("backup", [False, True], ids=["plain", "backup"])
def test_a_chunked_insert_select_copies_each_matching_row_once(
    server: Server, backup: bool
) -> None:
    server.pace(SMALL)
    server.sql(
        "CREATE TABLE src (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)",
        "CREATE TABLE dst (id INT PRIMARY KEY, n INT NOT NULL)",
        "INSERT INTO dst (id, n) VALUES (-1, -1)",
        f"INSERT INTO src (id, n) SELECT i, i FROM ({server.series(1000)}) s",
    )
    server.sync()
    order_id = server.run(
        "INSERT INTO dst (id, n) SELECT id, n * 2 FROM src WHERE id % 5 = 0", backup=backup
    )

    copied = server.rows("SELECT id, n FROM dst ORDER BY id")
    assert copied == [(-1, -1)] + [(i, i * 2) for i in range(5, 1001, 5)]
    assert server.detail(order_id).affect_rows == 200
    if backup:  # the rollback script removes exactly the rows the chunks inserted
        job = server.sql_job(order_id)
        script = "".join(
            files.rollback_script(server.world.store, server.world.means, job.sql_job_id)
        )
        assert "undo INSERT of dst (200 rows)" in script
        server.apply(script)
        assert server.rows("SELECT id, n FROM dst") == [(-1, -1)]


# ------------------------------------------------------------ a lost lock fight


def test_a_chunk_that_loses_a_lock_fight_waits_then_goes_on_and_its_backup_stays_exact(
    server: Server,
) -> None:
    """A row held for longer than a chunk may wait (2 s): the chunk rolls back (its backup
    rows with it), the change waits and tries again, smaller, and finishes exactly."""
    server.sql(
        "CREATE TABLE t (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0, pad VARCHAR(20))",
        f"INSERT INTO t (id, pad) SELECT i, 'x' FROM ({server.series(3000)}) s",
    )
    server.sync()
    before = server.rows("SELECT id, n, pad FROM t ORDER BY id")
    order_id = server.file("UPDATE t SET n = n + 1, pad = 'y' WHERE id % 2 = 0")
    job_id = server.start(order_id, backup=True)

    locked, errors = threading.Event(), []

    def hold() -> None:
        try:
            with server.connect() as conn, conn.cursor() as cur:
                cur.execute("BEGIN")
                cur.execute("SELECT id FROM t WHERE id = 500 FOR UPDATE")
                locked.set()
                time.sleep(3.5)  # the first chunk (ids up to 1000) gives up after 2 s
                cur.execute("ROLLBACK")
        except BaseException as exc:  # surfaced in the test's thread
            errors.append(exc)
            locked.set()

    blocker = threading.Thread(target=hold)
    blocker.start()
    assert locked.wait(10)
    try:
        state = server.finish(job_id, 30)
    finally:
        blocker.join(10)
    assert not errors, errors
    detail = server.detail(order_id)
    assert state == "succeeded", (state, detail.log)
    assert "a chunk lost a lock wait" in detail.log, detail.log
    after = server.rows("SELECT id, n, pad FROM t ORDER BY id")
    assert after == [(i, n + 1, "y") if i % 2 == 0 else (i, n, p) for i, n, p in before]
    assert detail.affect_rows == 1500
    assert (detail.backup or {})["rows"] == 1500  # the lost attempt saved nothing
    job = server.sql_job(order_id)
    script = "".join(files.rollback_script(server.world.store, server.world.means, job.sql_job_id))
    server.apply(script)
    assert server.rows("SELECT id, n, pad FROM t ORDER BY id") == before


# ------------------------------------------------------------ keys of awkward types and names
# A chunk's end key is kept as JSON in the progress row on the target (execution.walk), and
# key columns are quoted as the database spells them (catalog.shapes).


def _walks_every_row(server: Server, table: str, count: int) -> None:
    order_id = server.file(f"UPDATE {table} SET n = n + 1 WHERE 1=1")
    job_id = server.start(order_id)
    state = server.finish(job_id)
    with server.world.store.session() as s:
        checkpoint = s.get_one(Job, job_id).checkpoint
    job = server.sql_job(order_id)
    assert state == "succeeded", (state, checkpoint, job.status, job.log)
    assert server.rows(f"SELECT n, COUNT(*) FROM {table} GROUP BY n") == [(1, count)]


def test_a_uuid_key_is_walked(server: Server) -> None:
    """PostgreSQL's driver reads a uuid as uuid.UUID, kept in the position as its text."""
    server.pace(SMALL)
    server.sql("CREATE TABLE u (id UUID PRIMARY KEY, n INT NOT NULL DEFAULT 0)")
    with server.conn.cursor() as cur:
        for i in range(200):
            cur.execute("INSERT INTO u (id) VALUES (%s)", (str(uuid.UUID(int=i * 7919 + 1)),))
    server.sync()
    _walks_every_row(server, "u", 200)


def test_a_key_with_a_time_column_is_walked(server: Server) -> None:
    """PyMySQL reads TIME as datetime.timedelta, kept in the position as HH:MM:SS."""
    server.pace(SMALL)
    server.sql(
        "CREATE TABLE slot (day DATE NOT NULL, at TIME NOT NULL, n INT NOT NULL DEFAULT 0,"
        " PRIMARY KEY (day, at))"
    )
    with server.conn.cursor() as cur:
        for i in range(200):
            cur.execute(
                "INSERT INTO slot (day, at) VALUES (%s, %s)",
                (f"2026-03-{i % 3 + 1:02d}", f"{i // 60:02d}:{i % 60:02d}:07"),
            )
    server.sync()
    _walks_every_row(server, "slot", 200)


def test_a_mixed_case_key_column_is_found(server: Server) -> None:
    """On PostgreSQL "id" is not the column "Id": the walk quotes the key as spelled."""
    server.pace(SMALL)
    q = '"' if server.engine == "postgresql" else "`"
    server.sql(
        f"CREATE TABLE mc ({q}Id{q} INT PRIMARY KEY, n INT NOT NULL DEFAULT 0)",
        f"INSERT INTO mc ({q}Id{q}) SELECT i FROM ({server.series(200)}) s",
    )
    server.sync()
    _walks_every_row(server, "mc", 200)
