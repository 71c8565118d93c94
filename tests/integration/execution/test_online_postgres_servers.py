"""Lock-free DDL on the real PostgreSQL: every kind of step, a shadow copy under a live writer,
a copy abandoned and resumed from older progress, cancels, refusals, and the planner's type
rules held to what the server does."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import psycopg
import pytest
import sqlglot
from sqlglot import exp

from opendms.execution.online import (
    Alteration,
    CutOver,
    OnlineProgress,
    OnlineStatus,
    Outcome,
    Strategy,
)
from opendms.execution.online_postgres import PostgresOnline
from opendms.schema.model import Column, Table
from opendms.sql.online_postgres import type_change_rewrites
from opendms.targets.base import Endpoint
from opendms.targets.pace import Pace
from opendms.targets.postgres import PostgresChange
from opendms.targets.registry import connector_for
from tests.conftest import pg_database

pytestmark = pytest.mark.integration

FAST = Pace(copy_seconds=0.05, first_chunk_rows=200, max_chunk_rows=2000)


@dataclass
class Db:
    name: str
    conn: psycopg.Connection[Any]  # autocommit

    def sql(self, *statements: str) -> None:
        for statement in statements:
            self.conn.execute(statement.encode())

    def one(self, query: str) -> Any:
        row = self.conn.execute(query.encode()).fetchone()
        return row[0] if row else None

    def rows(self, query: str) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.conn.execute(query.encode()).fetchall()]

    def change(self) -> PostgresChange:
        endpoint = Endpoint("postgresql", "127.0.0.1", 5432, "postgres", database=self.name)
        found = connector_for(endpoint).change((self.name, "public"), 5)
        assert isinstance(found, PostgresChange)
        return found

    def relfilenode(self, name: str) -> int:
        return int(self.one(f"SELECT relfilenode FROM pg_class WHERE oid = '{name}'::regclass"))

    def relations(self) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' ORDER BY 1"
            )
        ]

    def checks(self, table: str) -> int:
        return int(
            self.one(
                f"SELECT count(*) FROM pg_constraint WHERE conrelid = '{table}'::regclass "
                "AND contype = 'c'"
            )
        )

    def not_null(self, table: str, column: str) -> bool:
        return bool(
            self.one(
                "SELECT attnotnull FROM pg_attribute "
                f"WHERE attrelid = '{table}'::regclass AND attname = '{column}'"
            )
        )

    def constraints(self, table: str) -> list[tuple[Any, ...]]:
        return self.rows(
            "SELECT conname, contype::text FROM pg_constraint "
            f"WHERE conrelid = '{table}'::regclass ORDER BY 1"
        )

    def markers(self, key: str) -> list[str]:
        return [
            r[0]
            for r in self.rows(
                f"SELECT run_key FROM _opendms.progress WHERE run_key LIKE '{key}%' ORDER BY 1"
            )
        ]


@contextmanager
def database() -> Iterator[Db]:
    with pg_database() as (name, conn):
        yield Db(name, conn)


def alteration(
    text: str, before: Table | None = None, cut_over: CutOver | None = None, mode: int = 1
) -> Alteration:
    node = sqlglot.parse_one(text, read="postgres")
    table = node.this if isinstance(node, exp.Alter) else node.find(exp.Table)
    return Alteration(
        node,
        node.sql(dialect="postgres"),
        table.name if table is not None else "",
        before,
        "postgresql",
        mode,
        cut_over or CutOver(lock_seconds=1, retries=5),
        key=f"ddl-{uuid.uuid4().hex[:12]}",
    )


def drive(
    engine: PostgresOnline,
    change: PostgresChange,
    alter: Alteration,
    progress: OnlineProgress | None = None,
    *,
    steps: int = 10_000,
    step_seconds: float = 0.2,
    seen: list[OnlineProgress] | None = None,
    until: OnlineStatus | None = None,
) -> Outcome:
    """Steps until the statement is done or failed, or reaches status ``until`` (or
    ``steps`` ran), resting as each outcome asks, but never more than a tenth of a second
    (the waits' length is not what is tested)."""
    progress = progress or OnlineProgress()
    outcome = Outcome(progress)
    for _ in range(steps):
        outcome = engine.step(change, alter, progress, time.monotonic() + step_seconds)
        progress = OnlineProgress.loads(outcome.progress.dumps())  # as stored, then read
        if seen is not None:
            seen.append(progress)
        if outcome.done or outcome.failure is not None or progress.status is until:
            return outcome
        time.sleep(min(outcome.wait_seconds, 0.1))
    return outcome


def table_t(db: Db, rows: int) -> None:
    db.sql(
        "CREATE TABLE t (id bigserial PRIMARY KEY, n integer NOT NULL, "
        "label varchar(20), note text)",
        "CREATE INDEX t_n ON t (n)",
        f"INSERT INTO t (n, label, note) SELECT g, 'row ' || g, NULL "
        f"FROM generate_series(1, {rows}) g",
    )


BEFORE_T = Table(
    "t",
    (
        Column("id", "bigint", False),
        Column("n", "integer", False),
        Column("label", "character varying(20)"),
        Column("note", "text"),
    ),
    ("id",),
    "t_pkey",
)


# --- the lock-light steps ---------------------------------------------------------------


def test_create_index_runs_concurrently_and_a_rerun_from_old_progress_is_a_no_op() -> None:
    with database() as db, db.change() as change:
        table_t(db, 500)
        alter = alteration("CREATE INDEX t_label ON t (label)", BEFORE_T)
        done = drive(PostgresOnline(), change, alter)
        assert done.done and done.progress.strategy is Strategy.CONCURRENT
        assert db.one("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_label'::regclass")
        # a runner that resumes from progress stored before the build finds it built
        again = drive(PostgresOnline(), change, alter, OnlineProgress())
        assert again.done and again.failure is None
        assert db.relations().count("t_label") == 1


def test_a_build_left_invalid_is_dropped_and_built_again() -> None:
    with database() as db, db.change() as change:
        table_t(db, 200)
        db.sql("UPDATE t SET label = 'same' WHERE id <= 2")
        with pytest.raises(psycopg.errors.UniqueViolation):
            db.sql("CREATE UNIQUE INDEX CONCURRENTLY t_label_u ON t (label)")
        assert (
            db.one("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_label_u'::regclass")
            is False
        )
        db.sql("UPDATE t SET label = 'other' WHERE id = 2")
        alter = alteration("CREATE UNIQUE INDEX t_label_u ON t (label)", BEFORE_T)
        engine = PostgresOnline()
        # as if an earlier run had started this build and died during it
        plan = engine.plan_for(change, alter)
        change.claim(f"{alter.key}:step:0", "started")
        assert plan.steps[0].kind == "build_index"
        done = drive(engine, change, alter)
        assert done.done, done.failure
        assert db.one("SELECT indisvalid FROM pg_index WHERE indexrelid = 't_label_u'::regclass")


def test_an_invalid_index_of_someone_elses_is_not_dropped() -> None:
    with database() as db, db.change() as change:
        table_t(db, 100)
        db.sql("UPDATE t SET label = 'same' WHERE id <= 2")
        with pytest.raises(psycopg.errors.UniqueViolation):
            db.sql("CREATE UNIQUE INDEX CONCURRENTLY t_label_u ON t (label)")
        done = drive(PostgresOnline(), change, alteration("CREATE INDEX t_label_u ON t (n)"))
        assert done.progress.status is OnlineStatus.FAIL
        assert "already exists" in (done.failure or "")
        assert "t_label_u" in db.relations()


def test_a_unique_index_over_duplicates_fails_cleanly() -> None:
    with database() as db, db.change() as change:
        table_t(db, 300)
        db.sql("UPDATE t SET label = 'dup' WHERE id IN (5, 6)")
        alter = alteration("CREATE UNIQUE INDEX t_label_u ON t (label)", BEFORE_T)
        done = drive(PostgresOnline(), change, alter)
        assert done.progress.status is OnlineStatus.FAIL
        assert "t_label_u" not in db.relations()  # no invalid index left behind
        assert db.markers(alter.key) == []


def test_drop_index_runs_concurrently() -> None:
    with database() as db, db.change() as change:
        table_t(db, 100)
        alter = alteration("DROP INDEX t_n", BEFORE_T)
        assert drive(PostgresOnline(), change, alter).done
        assert "t_n" not in db.relations()
        assert drive(PostgresOnline(), change, alter, OnlineProgress()).done  # resumed: done


def test_add_column_with_a_constant_default_rewrites_nothing() -> None:
    with database() as db, db.change() as change:
        table_t(db, 1000)
        node = db.relfilenode("t")
        alter = alteration(
            "ALTER TABLE t ADD COLUMN flag int NOT NULL DEFAULT 7, "
            "ADD COLUMN at timestamptz DEFAULT now()",
            BEFORE_T,
        )
        done = drive(PostgresOnline(), change, alter)
        assert done.done and done.progress.strategy is Strategy.DIRECT
        assert db.relfilenode("t") == node
        assert db.rows("SELECT count(*), min(flag), max(flag), count(DISTINCT at) FROM t") == [
            (1000, 7, 7, 1)
        ]


def test_add_column_with_a_volatile_default_is_a_shadow_copy() -> None:
    with database() as db, db.change() as change:
        table_t(db, 2000)
        node = db.relfilenode("t")
        alter = alteration("ALTER TABLE t ADD COLUMN r float8 DEFAULT random()", BEFORE_T)
        done = drive(PostgresOnline(FAST), change, alter)
        assert done.done, done.failure
        assert done.progress.strategy is Strategy.SHADOW
        assert db.relfilenode("t") != node
        assert db.rows("SELECT count(*), count(DISTINCT r), sum(n) FROM t") == [
            (2000, 2000, 2000 * 2001 // 2)
        ]


def test_foreign_key_is_added_not_valid_then_validated() -> None:
    with database() as db, db.change() as change:
        table_t(db, 300)
        db.sql(
            "CREATE TABLE u (id int PRIMARY KEY)", "INSERT INTO u SELECT generate_series(1, 300)"
        )
        alter = alteration(
            "ALTER TABLE t ADD CONSTRAINT t_n_u FOREIGN KEY (n) REFERENCES u (id)", BEFORE_T
        )
        done = drive(PostgresOnline(), change, alter)
        assert done.done and done.progress.strategy is Strategy.CONCURRENT
        assert db.one("SELECT convalidated FROM pg_constraint WHERE conname = 't_n_u'") is True


def test_a_check_that_rows_break_fails_and_is_taken_away() -> None:
    with database() as db, db.change() as change:
        table_t(db, 300)
        alter = alteration("ALTER TABLE t ADD CONSTRAINT small CHECK (n < 100)", BEFORE_T)
        done = drive(PostgresOnline(), change, alter)
        assert done.progress.status is OnlineStatus.FAIL
        assert "validate constraint small" in (done.failure or "")
        assert db.one("SELECT count(*) FROM pg_constraint WHERE conname = 'small'") == 0
        assert db.markers(alter.key) == []


def test_set_not_null_goes_through_a_validated_check() -> None:
    with database() as db, db.change() as change:
        table_t(db, 300)
        alter = alteration("ALTER TABLE t ALTER COLUMN label SET NOT NULL", BEFORE_T)
        done = drive(PostgresOnline(), change, alter)
        assert done.done, done.failure
        assert db.not_null("t", "label")
        assert db.checks("t") == 0


def test_set_not_null_over_nulls_fails_and_leaves_no_check() -> None:
    with database() as db, db.change() as change:
        table_t(db, 300)
        done = drive(
            PostgresOnline(),
            change,
            alteration("ALTER TABLE t ALTER COLUMN note SET NOT NULL", BEFORE_T),
        )
        assert done.progress.status is OnlineStatus.FAIL
        assert (
            db.one("SELECT count(*) FROM pg_constraint WHERE conrelid = 't'::regclass") == 1
        )  # the key


def test_unique_constraint_and_primary_key_through_a_concurrent_index() -> None:
    with database() as db, db.change() as change:
        db.sql(
            "CREATE TABLE k (a int, b int)",
            "INSERT INTO k SELECT g, g FROM generate_series(1, 500) g",
        )
        engine = PostgresOnline()
        assert drive(engine, change, alteration("ALTER TABLE k ADD CONSTRAINT k_b UNIQUE (b)")).done
        assert drive(engine, change, alteration("ALTER TABLE k ADD PRIMARY KEY (a)")).done
        assert db.constraints("k") == [("k_b", "u"), ("k_pkey", "p")]
        assert db.not_null("k", "a")


def test_a_widening_type_change_runs_as_written() -> None:
    with database() as db, db.change() as change:
        table_t(db, 500)
        node = db.relfilenode("t")
        done = drive(
            PostgresOnline(),
            change,
            alteration("ALTER TABLE t ALTER COLUMN label TYPE varchar(64)"),
        )
        assert done.done and done.progress.strategy is Strategy.DIRECT
        assert db.relfilenode("t") == node


def test_every_statement_waits_for_its_lock_no_longer_than_the_cut_over_says() -> None:
    with database() as db, db.change() as change:
        table_t(db, 100)
        holder = psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db.name}")
        try:
            holder.execute("SELECT count(*) FROM t")  # ACCESS SHARE, held in its transaction
            alter = alteration(
                "ALTER TABLE t ADD COLUMN x int", BEFORE_T, CutOver(lock_seconds=1, retries=3)
            )
            engine = PostgresOnline()
            first = engine.step(change, alter, OnlineProgress(), time.monotonic() + 1)
            assert first.failure is None and not first.done and first.wait_seconds > 0
            assert "waiting for a lock" in first.progress.message
            holder.rollback()
            assert drive(engine, change, alter, first.progress).done
        finally:
            holder.close()


# --- the server's own rules ---------------------------------------------------------------


TYPE_CHANGES = [
    ("varchar(10)", "varchar(20)"),
    ("varchar(20)", "varchar(10)"),
    ("varchar(10)", "varchar"),
    ("varchar(10)", "text"),
    ("text", "varchar"),
    ("text", "varchar(30)"),
    ("numeric(10,2)", "numeric(12,2)"),
    ("numeric(10,2)", "numeric(12,3)"),
    ("numeric(10,2)", "numeric(8,2)"),
    ("numeric(10,2)", "numeric"),
    ("numeric", "numeric(10,2)"),
    ("timestamp(3)", "timestamp(6)"),
    ("timestamp(3)", "timestamp"),
    ("timestamp", "timestamp(3)"),
    ("timestamptz(2)", "timestamptz(4)"),
    ("time(1)", "time(3)"),
    ("timetz(1)", "timetz(3)"),
    ("integer", "bigint"),
    ("bigint", "integer"),
    ("smallint", "integer"),
    ("char(5)", "char(10)"),
    ("char(5)", "text"),
    ("xml", "text"),
    ("json", "jsonb"),
    ("real", "double precision"),
    ("integer", "integer"),
    ("timestamp", "timestamptz"),
    ("date", "timestamp"),
    ("uuid", "text"),
]


@pytest.mark.parametrize(("old", "new"), TYPE_CHANGES)
def test_type_rules_agree_with_the_server(old: str, new: str) -> None:
    """The planner's verdict is the server's: a rewrite gives the table a new file."""
    with database() as db:
        db.sql(f"CREATE TABLE r (c {old})", "INSERT INTO r VALUES (NULL)")
        spelled = db.one(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'r'::regclass AND attname = 'c'"
        )
        node = db.relfilenode("r")
        db.sql("SET TimeZone = 'Europe/Paris'", f"ALTER TABLE r ALTER COLUMN c TYPE {new}")
        rewrote = db.relfilenode("r") != node
        verdict = type_change_rewrites(spelled, exp.DataType.build(new, dialect="postgres"))
        # the planner may be more careful than the server (a needless copy), never less
        assert verdict or not rewrote, f"{old} -> {new}: the server rewrote it"
        assert verdict == rewrote, f"{old} -> {new}: planner {verdict}, server {rewrote}"


def test_volatility_is_the_servers() -> None:
    with database() as db, db.change() as change:
        table_t(db, 50)
        db.sql(
            "CREATE FUNCTION pick() RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT 3'",
            "CREATE FUNCTION roll() RETURNS int LANGUAGE sql VOLATILE AS 'SELECT 4'",
        )
        engine = PostgresOnline()
        calm = engine.plan_for(
            change, alteration("ALTER TABLE t ADD COLUMN p int DEFAULT pick()", BEFORE_T)
        )
        wild = engine.plan_for(
            change, alteration("ALTER TABLE t ADD COLUMN q int DEFAULT roll()", BEFORE_T)
        )
        assert (calm.strategy, wild.strategy) == ("DIRECT", "SHADOW")


# --- the shadow copy ----------------------------------------------------------------------


class Writer(threading.Thread):
    """One client doing single-row UPDATEs, INSERTs, DELETEs and key moves on ``t`` for as long
    as it is let, each in its own transaction, keeping what the table must hold in the end."""

    def __init__(self, db: Db, seed: int) -> None:
        super().__init__(daemon=True)
        self.db, self.random = db, random.Random(seed)
        self.expected = {row[0]: (row[1], row[2]) for row in db.rows("SELECT id, n, label FROM t")}
        self.live = list(self.expected)
        self.errors: list[BaseException] = []
        self.writes = 0
        self.stop = threading.Event()
        self.wrote = threading.Condition()

    def run(self) -> None:
        with psycopg.connect(
            f"host=127.0.0.1 port=5432 user=postgres dbname={self.db.name}", autocommit=True
        ) as conn:
            while not self.stop.is_set():
                try:
                    self._one(conn)
                except BaseException as exc:  # surfaced by the test
                    self.errors.append(exc)
                with self.wrote:
                    self.writes += 1
                    self.wrote.notify_all()

    def _forget(self, index: int) -> int:
        key = self.live[index]
        self.live[index] = self.live[-1]
        self.live.pop()
        del self.expected[key]
        return key

    def _one(self, conn: psycopg.Connection[Any]) -> None:
        pick = self.random.random()
        index = self.random.randrange(len(self.live))
        key = self.live[index]
        if pick < 0.6:
            n = self.random.randrange(1_000_000)
            conn.execute("UPDATE t SET n = %s, label = %s WHERE id = %s", (n, f"u{n}", key))
            self.expected[key] = (n, f"u{n}")
        elif pick < 0.8:
            n = self.random.randrange(1_000_000)
            row = conn.execute(
                "INSERT INTO t (n, label) VALUES (%s, %s) RETURNING id", (n, f"i{n}")
            ).fetchone()
            assert row is not None
            self.expected[row[0]] = (n, f"i{n}")
            self.live.append(row[0])
        elif pick < 0.95:
            conn.execute("DELETE FROM t WHERE id = %s", (key,))
            self._forget(index)
        else:  # the row moves to another key: the copy's old key must go
            moved = key + 10_000_000
            conn.execute("UPDATE t SET id = %s WHERE id = %s", (moved, key))
            values = self.expected[key]
            self._forget(self.live.index(key))
            self.expected[moved] = values
            self.live.append(moved)

    def wait_for(self, writes: int) -> None:
        with self.wrote:
            self.wrote.wait_for(lambda: self.writes >= writes or bool(self.errors), timeout=30)


def test_a_shadow_copy_under_a_live_writer_loses_nothing() -> None:
    with database() as db, db.change() as change:
        table_t(db, 30_000)
        alter = alteration("ALTER TABLE t ALTER COLUMN n TYPE bigint", BEFORE_T)
        engine = PostgresOnline(FAST)
        writer = Writer(db, seed=21)
        writer.start()
        progress, statuses, copying_writes = OnlineProgress(), set(), 0
        try:
            for _ in range(10_000):
                # writes land between every two steps: before, during and after the copy
                writer.wait_for(writer.writes + 3)
                outcome = engine.step(change, alter, progress, time.monotonic() + 0.05)
                progress = OnlineProgress.loads(outcome.progress.dumps())
                statuses.add(progress.status)
                if progress.status is OnlineStatus.RUNNING and progress.copy_count > 0:
                    copying_writes += 1
                if outcome.done or outcome.failure:
                    break
                time.sleep(min(outcome.wait_seconds, 0.05))
            writer.wait_for(writer.writes + 3)  # the writer goes on in the new table
        finally:
            writer.stop.set()
            writer.join(30)
        assert writer.errors == []
        assert outcome.done, outcome.failure
        assert progress.strategy is Strategy.SHADOW and progress.status is OnlineStatus.SUCCESS
        assert copying_writes > 3  # the writer wrote while chunks were being copied
        assert (
            db.one(
                "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                "WHERE attrelid = 't'::regclass AND attname = 'n'"
            )
            == "bigint"
        )
        found = {row[0]: (row[1], row[2]) for row in db.rows("SELECT id, n, label FROM t")}
        assert found == writer.expected
        assert progress.old_table == f"public.{_old_name(db)}"
        assert db.one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
        assert (
            db.one(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = '_opendms'"
            )
            == 0
        )
        assert {"t_pkey", "t_n", "t_id_seq"} <= set(db.relations())


def _old_name(db: Db) -> str:
    found = db.rows("SELECT relname FROM pg_class WHERE relkind = 'r' AND relname LIKE '\\_t\\_%'")
    assert len(found) == 1, found
    return str(found[0][0])


def test_an_abandoned_copy_resumes_from_older_progress_exactly() -> None:
    with database() as db:
        table_t(db, 20_000)
        alter = alteration("ALTER TABLE t ALTER COLUMN n TYPE bigint USING n * 2", BEFORE_T)
        seen: list[OnlineProgress] = []
        with db.change() as change:
            engine = PostgresOnline(FAST)
            progress = OnlineProgress()
            for _ in range(1000):
                outcome = engine.step(change, alter, progress, time.monotonic() + 0.02)
                progress = OnlineProgress.loads(outcome.progress.dumps())
                seen.append(progress)
                if progress.copy_count >= 8000:
                    break
            assert not outcome.done and outcome.failure is None
        # the runner is gone; the table's writers are not
        db.sql(
            "UPDATE t SET n = n + 1, label = 'later' WHERE id % 7 = 0",
            "DELETE FROM t WHERE id % 11 = 0",
            "INSERT INTO t (n, label) SELECT g, 'new' FROM generate_series(1, 500) g",
            "UPDATE t SET id = id + 100000 WHERE id % 13 = 0",
        )
        expected = db.rows("SELECT id, n * 2, label, note FROM t ORDER BY id")
        older = seen[1]
        assert older.copy_count < progress.copy_count
        with db.change() as fresh:
            done = drive(PostgresOnline(FAST), fresh, alter, older)
        assert done.done, done.failure
        assert db.rows("SELECT id, n, label, note FROM t ORDER BY id") == expected


def test_cancel_mid_copy_leaves_the_table_as_it_was() -> None:
    with database() as db, db.change() as change:
        table_t(db, 10_000)
        before = (db.relations(), db.relfilenode("t"), db.rows("SELECT * FROM t ORDER BY id"))
        alter = alteration("ALTER TABLE t ALTER COLUMN n TYPE bigint", BEFORE_T)
        engine = PostgresOnline(FAST)
        progress = OnlineProgress()
        for _ in range(100):
            progress = engine.step(change, alter, progress, time.monotonic() + 0.02).progress
            if progress.copy_count > 0:
                break
        assert progress.status is OnlineStatus.RUNNING and progress.copy_count < 10_000
        assert len(db.relations()) > len(before[0])  # the shadow is there
        engine.cancel(change, alter, progress)
        assert (
            db.relations(),
            db.relfilenode("t"),
            db.rows("SELECT * FROM t ORDER BY id"),
        ) == before
        assert db.one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
        assert db.markers(alter.key) == []
        db.sql("INSERT INTO t (n) VALUES (1)")  # writers are not hindered by anything left


def test_cancel_takes_back_what_the_first_steps_added() -> None:
    from opendms.execution.online_postgres_steps import run_step, step_key

    with database() as db, db.change() as change:
        table_t(db, 300)
        alter = alteration("ALTER TABLE t ALTER COLUMN label SET NOT NULL", BEFORE_T)
        engine = PostgresOnline()
        plan = engine.plan_for(change, alter)
        run_step(change, step_key(alter.key, 0), plan.steps[0], 1)  # the NOT VALID check
        assert db.checks("t") == 1
        engine.cancel(change, alter, OnlineProgress())
        assert db.checks("t") == 0
        assert db.markers(alter.key) == []


@pytest.mark.parametrize(
    ("setup", "named"),
    [
        ("CREATE TABLE child (t_id bigint REFERENCES t (id))", "constraint child_t_id_fkey"),
        ("CREATE VIEW v AS SELECT id, n FROM t", "view v"),
        (
            "CREATE FUNCTION f() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END'; "
            "CREATE TRIGGER touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION f()",
            "trigger touch",
        ),
        ("CREATE POLICY mine ON t USING (true)", "policy mine"),
        ("CREATE TABLE t2 (x t)", "column x of table t2"),
    ],
)
def test_a_table_a_rename_would_break_is_refused(setup: str, named: str) -> None:
    with database() as db, db.change() as change:
        table_t(db, 100)
        db.sql(setup)
        relations = db.relations()
        alter = alteration("ALTER TABLE t ALTER COLUMN n TYPE bigint", BEFORE_T)
        done = drive(PostgresOnline(FAST), change, alter)
        assert done.progress.status is OnlineStatus.UNSUPPORTED
        assert named in (done.failure or ""), done.failure
        assert db.relations() == relations
        assert db.markers(alter.key) == []


def test_a_table_without_a_primary_key_is_refused() -> None:
    with database() as db, db.change() as change:
        db.sql("CREATE TABLE nokey (a int)", "INSERT INTO nokey VALUES (1)")
        done = drive(
            PostgresOnline(), change, alteration("ALTER TABLE nokey ALTER COLUMN a TYPE bigint")
        )
        assert done.progress.status is OnlineStatus.UNSUPPORTED
        assert "no primary key" in (done.failure or "")


def test_what_it_cannot_read_is_refused_with_the_reason() -> None:
    with database() as db, db.change() as change:
        table_t(db, 10)
        done = drive(
            PostgresOnline(),
            change,
            alteration("ALTER TABLE t ALTER COLUMN n SET (n_distinct = 5)"),
        )
        assert done.progress.status is OnlineStatus.UNSUPPORTED
        assert "DdlOnline 0" in (done.failure or "")


def test_the_swap_waits_for_its_window_and_for_its_locks() -> None:
    with database() as db, db.change() as change:
        table_t(db, 3000)
        cut = CutOver(lock_seconds=1, retries=4, window_start="02:00:00", window_end="03:00:00")
        alter = alteration("ALTER TABLE t ALTER COLUMN n TYPE bigint", BEFORE_T, cut)
        noon = PostgresOnline(FAST, clock=lambda: datetime(2026, 1, 5, 12, 0, 0))
        waiting = drive(noon, change, alter, until=OnlineStatus.WAITING_CUTOVER)
        assert waiting.progress.status is OnlineStatus.WAITING_CUTOVER
        assert waiting.wait_seconds == 300 and waiting.progress.copy_count == 3000
        assert (
            db.one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 2
        )  # still kept current
        db.sql("UPDATE t SET label = 'while waiting' WHERE id = 10")
        night = PostgresOnline(FAST, clock=lambda: datetime(2026, 1, 5, 2, 30, 0))
        holder = psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db.name}")
        try:
            holder.execute("SELECT count(*) FROM t")  # its ACCESS SHARE lock stops the swap
            lost = night.step(change, alter, waiting.progress, time.monotonic() + 1)
            assert lost.progress.status is OnlineStatus.WAITING_CUTOVER
            assert lost.progress.cut_over_tries == 1 and lost.wait_seconds > 0
        finally:
            holder.close()
        done = drive(night, change, alter, lost.progress)
        assert done.done, done.failure
        assert db.one("SELECT label FROM t WHERE id = 10") == "while waiting"


def test_a_swap_that_keeps_losing_fails_and_leaves_nothing_working() -> None:
    with database() as db, db.change() as change:
        table_t(db, 500)
        relations = db.relations()
        cut = CutOver(lock_seconds=1, retries=1)
        alter = alteration("ALTER TABLE t ALTER COLUMN n TYPE bigint", BEFORE_T, cut)
        engine = PostgresOnline(FAST)
        holder = psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db.name}")
        try:
            holder.execute(
                "SELECT count(*) FROM t"
            )  # as a long report would: no swap, no DROP TRIGGER
            done = drive(engine, change, alter)
            assert done.progress.status is OnlineStatus.FAIL
            assert "the swap lost 1 lock fights" in (done.failure or "")
            assert "triggers, which now do nothing" in (done.failure or "")
            assert db.relations() == relations  # the shadow is gone
            db.sql("UPDATE t SET n = -1 WHERE id = 1")  # the disarmed trigger writes nowhere
        finally:
            holder.close()
        engine.cancel(change, alter, done.progress)
        assert db.one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
        assert (
            db.one(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE n.nspname = '_opendms'"
            )
            == 0
        )
        assert db.markers(alter.key) == []
        assert db.one("SELECT n FROM t WHERE id = 1") == -1


def test_a_failed_copy_run_again_drops_the_triggers_it_left() -> None:
    with database() as db, db.change() as change:
        table_t(db, 500)
        cut = CutOver(lock_seconds=1, retries=1)
        alter = alteration("ALTER TABLE t ALTER COLUMN n TYPE bigint", BEFORE_T, cut)
        holder = psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={db.name}")
        try:
            holder.execute("SELECT count(*) FROM t")
            assert drive(PostgresOnline(FAST), change, alter).progress.status is OnlineStatus.FAIL
        finally:
            holder.close()
        done = drive(PostgresOnline(FAST), change, alter)  # a restart of the statement
        assert done.done, done.failure
        assert db.one("SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal") == 0
        assert db.rows("SELECT count(*), sum(n) FROM t") == [(500, 500 * 501 // 2)]


def test_identity_serial_grants_comments_and_a_self_reference_come_across() -> None:
    role = f"opendms_t_{uuid.uuid4().hex[:8]}"
    with database() as db:
        db.sql(
            "CREATE TABLE p (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
            "parent int REFERENCES p (id), code serial, v int CONSTRAINT v_pos CHECK (v >= 0), "
            "UNIQUE (code))",
            "COMMENT ON TABLE p IS 'people'",
            "COMMENT ON COLUMN p.v IS 'a value'",
            f"CREATE ROLE {role}",
            f"GRANT SELECT ON p TO {role}",
            f"GRANT UPDATE (v) ON p TO {role}",
            "INSERT INTO p (parent, v) SELECT NULL, g FROM generate_series(1, 100) g",
            "UPDATE p SET parent = id - 1 WHERE id > 1",
        )
        try:
            cut = CutOver(lock_seconds=1, retries=5, keep_old=False)
            with db.change() as change:
                done = drive(
                    PostgresOnline(FAST),
                    change,
                    alteration("ALTER TABLE p ALTER COLUMN v TYPE bigint", cut_over=cut),
                )
            assert done.done, done.failure
            assert done.progress.old_table == ""
            assert db.relations() == ["p", "p_code_key", "p_code_seq", "p_id_seq", "p_pkey"]
            db.sql("INSERT INTO p (parent, v) VALUES (100, 5)")
            assert db.rows("SELECT id, code FROM p WHERE v = 5 AND parent = 100") == [(101, 101)]
            assert db.one("SELECT pg_get_serial_sequence('p', 'code')") == "public.p_code_seq"
            assert db.rows(
                "SELECT conname, contype::text, convalidated FROM pg_constraint "
                "WHERE conrelid = 'p'::regclass ORDER BY 1"
            ) == [
                ("p_code_key", "u", True),
                ("p_parent_fkey", "f", True),
                ("p_pkey", "p", True),
                ("v_pos", "c", True),
            ]
            assert db.one(f"SELECT has_table_privilege('{role}', 'p', 'SELECT')")
            assert db.one(f"SELECT has_column_privilege('{role}', 'p', 'v', 'UPDATE')")
            assert not db.one(f"SELECT has_column_privilege('{role}', 'p', 'parent', 'UPDATE')")
            assert db.one("SELECT obj_description('p'::regclass, 'pg_class')") == "people"
            assert db.one("SELECT col_description('p'::regclass, 4)") == "a value"
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                db.sql("UPDATE p SET parent = 999 WHERE id = 3")
        finally:
            db.sql(f"DROP OWNED BY {role}", f"DROP ROLE {role}")


def test_a_statement_that_changes_the_key_is_refused() -> None:
    with database() as db, db.change() as change:
        table_t(db, 50)
        done = drive(
            PostgresOnline(FAST),
            change,
            alteration(
                "ALTER TABLE t DROP CONSTRAINT t_pkey, ALTER COLUMN n TYPE bigint", BEFORE_T
            ),
        )
        assert done.progress.status is OnlineStatus.UNSUPPORTED
        assert "primary key" in (done.failure or "")
        assert [r for r in db.relations() if r.startswith("_")] == []


def test_a_composite_text_key_in_another_schema_is_copied_and_kept_current() -> None:
    with database() as db, db.change() as change:
        db.sql(
            "CREATE SCHEMA s",
            'CREATE TABLE s."Pairs" (a int, b text, v int NOT NULL, PRIMARY KEY (a, b))',
            "INSERT INTO s.\"Pairs\" SELECT g % 50, 'k''' || g, g FROM generate_series(1, 3000) g",
        )
        alter = alteration('ALTER TABLE s."Pairs" ALTER COLUMN v TYPE bigint USING v * 10')
        engine = PostgresOnline(replace(FAST, first_chunk_rows=50, max_chunk_rows=100))
        progress = OnlineProgress()
        for turn in range(10_000):
            db.sql(
                f"UPDATE s.\"Pairs\" SET v = v + 1 WHERE a = {turn % 50} AND b = 'k''{turn + 1}'",
                f"DELETE FROM s.\"Pairs\" WHERE a = {(turn * 7) % 50} AND b = 'k''{turn * 7 + 3}'",
                f"INSERT INTO s.\"Pairs\" VALUES ({turn % 50}, 'new''{turn}', {turn})",
            )
            outcome = engine.step(change, alter, progress, time.monotonic() + 0.01)
            progress = OnlineProgress.loads(outcome.progress.dumps())
            if outcome.done or outcome.failure:
                break
        assert outcome.done, outcome.failure
        assert turn > 5  # writes went on through the copy
        old = progress.old_table
        assert old.startswith("s._Pairs_")
        expected = db.rows(f'SELECT a, b, v * 10 FROM s."{old[2:]}" ORDER BY a, b')
        assert db.rows('SELECT a, b, v FROM s."Pairs" ORDER BY a, b') == expected
