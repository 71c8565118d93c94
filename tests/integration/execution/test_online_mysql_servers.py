"""Lock-free DDL on a real MariaDB: what the server can do it is asked (INSTANT, INPLACE), the
rest is a shadow copy kept current by triggers while a writer changes rows throughout, with
no writer error or deadlock and a table exactly as the writer left it; a run abandoned
mid-copy and resumed from an older stored progress ends exact; cancel and refusals leave
the table as it was; the swap waits for its window and for its lock."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pymysql
import pytest
import sqlglot

from opendms.execution import online_mysql_shadow as shadow
from opendms.execution.online import (
    Alteration,
    CutOver,
    OnlineProgress,
    OnlineStatus,
    Outcome,
    Strategy,
)
from opendms.execution.online_mysql import MysqlOnline
from opendms.execution.online_mysql_plan import Phase, Plan, Record
from opendms.execution.walk import Position
from opendms.sql.shadow_mysql import ShadowCopy, shape_of
from opendms.sql.statements import render
from opendms.targets.base import Change, Endpoint
from opendms.targets.mysql import MysqlChange
from opendms.targets.mysql_facts import create_text
from opendms.targets.pace import Pace
from opendms.targets.registry import connector_for
from tests.conftest import mysql_database

pytestmark = pytest.mark.integration

ENDPOINT = Endpoint("mariadb", "127.0.0.1", 3306, "root")
ROWS = 30_000
# small chunks, so that a copy takes many of them and writers interleave with it
PACE = Pace(copy_seconds=0.02, first_chunk_rows=300, max_chunk_rows=2_000)


def alteration(text: str, mode: int = 1, cut: CutOver | None = None, key: str = "") -> Alteration:
    node = sqlglot.parse_one(text, read="mysql")
    return Alteration(
        node,
        render(node, "mariadb"),
        "t",
        None,
        "mariadb",
        mode,
        cut or CutOver(lock_seconds=1, retries=10),
        key or f"online-{uuid.uuid4().hex}",
    )


def drive(
    engine: MysqlOnline,
    change: Change,
    alt: Alteration,
    progress: OnlineProgress,
    *,
    between: Callable[[OnlineProgress], None] | None = None,
    budget: float = 0.05,
) -> Outcome:
    """Step until the statement ends, calling ``between`` after each step. A step's
    ``budget`` of 0 copies one chunk."""
    outcome = Outcome(progress)
    for _ in range(10_000):
        outcome = engine.step(change, alt, progress, time.monotonic() + budget)
        if outcome.done or outcome.failure is not None:
            return outcome
        if between is not None:
            between(outcome.progress)
        time.sleep(min(outcome.wait_seconds, 0.2))
    return outcome


def make_table(cur: Any, rows: int = ROWS) -> None:
    cur.execute(
        "CREATE TABLE t (id INT AUTO_INCREMENT PRIMARY KEY, a INT NOT NULL, b VARCHAR(40), "
        "pad CHAR(40) NOT NULL DEFAULT '') ENGINE=InnoDB"
    )
    cur.execute(f"INSERT INTO t (a, b) SELECT seq, CONCAT('b', seq) FROM seq_1_to_{rows}")


def rows_of(cur: Any, table: str = "t") -> dict[int, tuple[Any, ...]]:
    cur.execute(f"SELECT id, a, b FROM `{table}`")
    return {int(r[0]): (int(r[1]), r[2]) for r in cur.fetchall()}


def leftovers(cur: Any, name: str) -> tuple[list[str], list[str]]:
    cur.execute(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s", (name,)
    )
    triggers = [r[0] for r in cur.fetchall()]
    cur.execute(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_NAME LIKE '\\_t%%'",
        (name,),
    )
    return triggers, [r[0] for r in cur.fetchall()]


@dataclass
class Writer:
    """Single-row UPDATE, INSERT, DELETE and key-moving UPDATE statements in autocommit, one
    after another, and what the table must hold after each (``model``)."""

    name: str
    model: dict[int, tuple[int, str | None]]
    errors: list[str] = field(default_factory=list)
    done: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = random.Random(21)
        moved_to = 0  # keys moved to go below zero, out of AUTO_INCREMENT's way
        last = max(self.model)
        conn = pymysql.connect(host="127.0.0.1", user="root", database=self.name, autocommit=True)
        with conn, conn.cursor() as cur:
            while not self.stop.is_set():
                # rows of the table's start, and rows inserted just now (ahead of the copy)
                ids = rng.choice([rng.randint(1, last), rng.randint(max(1, last - 50), last)])
                kind = rng.random()
                try:
                    if kind < 0.1:
                        cur.execute("INSERT INTO t (a, b) VALUES (%s, %s)", (-1, "new"))
                        last = int(cur.lastrowid)
                        self.model[last] = (-1, "new")
                    elif ids not in self.model:
                        continue
                    elif kind < 0.2:
                        cur.execute("DELETE FROM t WHERE id = %s", (ids,))
                        del self.model[ids]
                    elif kind < 0.25:
                        moved_to -= 1
                        cur.execute("UPDATE t SET id = %s WHERE id = %s", (moved_to, ids))
                        self.model[moved_to] = self.model.pop(ids)
                    else:
                        cur.execute("UPDATE t SET a = a + 1, b = 'upd' WHERE id = %s", (ids,))
                        a, _ = self.model[ids]
                        self.model[ids] = (a + 1, "upd")
                except pymysql.err.MySQLError as exc:
                    self.errors.append(str(exc))
                self.done += 1

    def wait_for(self, more: int) -> None:
        """Until the writer has made ``more`` further statements (or failed)."""
        target = self.done + more
        while self.done < target and not self.errors:
            time.sleep(0.001)


@contextmanager
def writing(name: str, cur: Any) -> Iterator[Writer]:
    writer = Writer(name, rows_of(cur))  # type: ignore[arg-type]
    thread = threading.Thread(target=writer.run)
    thread.start()
    try:
        writer.wait_for(50)
        yield writer
    finally:
        writer.stop.set()
        thread.join(30)


def test_the_server_runs_what_it_can_itself() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 2_000)
        engine = MysqlOnline(PACE)
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            added = drive(
                engine,
                change,
                alt := alteration("ALTER TABLE t ADD COLUMN c INT DEFAULT 7"),
                OnlineProgress(),
            )
            assert added.done and added.progress.strategy is Strategy.INSTANT, added
            # an index cannot be INSTANT on MariaDB: INPLACE with LOCK=NONE can
            indexed = drive(
                engine, change, alteration("ALTER TABLE t ADD INDEX ia (a)"), OnlineProgress()
            )
            assert indexed.done and indexed.progress.strategy is Strategy.INPLACE, indexed
            # DdlOnline 2 does not run INPLACE (it cannot be paced): a shadow copy instead
            shadowed = drive(
                engine, change, alteration("CREATE INDEX ib ON t (b)", mode=2), OnlineProgress()
            )
            assert shadowed.done and shadowed.progress.strategy is Strategy.SHADOW, shadowed
            assert shadowed.progress.old_table == "_t_old"
            # the same statement stepped again is done, not run again
            again = drive(engine, change, alt, OnlineProgress())
            assert again.done and again.progress.strategy is Strategy.INSTANT
        cur.execute("SELECT COUNT(*), SUM(c) FROM t")
        assert cur.fetchone() == (2_000, 14_000)
        cur.execute("SHOW INDEX FROM t")
        assert {r[2] for r in cur.fetchall()} == {"PRIMARY", "ia", "ib"}
        assert leftovers(cur, name) == ([], ["_t_old"])


def test_a_shadow_copy_under_a_writer_has_no_writer_error_and_ends_exact() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur)
        engine = MysqlOnline(PACE)
        # a type change: neither INSTANT nor INPLACE, so DdlOnline 1 ends in a shadow copy
        alt = alteration("ALTER TABLE t MODIFY a BIGINT NOT NULL, MODIFY b VARCHAR(60)")
        phases: list[str] = []
        with (
            writing(name, cur) as writer,
            connector_for(ENDPOINT).change(("def", name), 2) as change,
        ):

            def interleave(progress: OnlineProgress) -> None:
                phases.append(progress.state["phase"])
                writer.wait_for(20)  # every step of the copy has writes beside it
                if len(phases) == 10:  # a pause: no step while the writer goes on
                    writer.wait_for(2_000)

            done = drive(engine, change, alt, OnlineProgress(), between=interleave, budget=0)
            writer.wait_for(50)  # and after the swap, into the new table
            # no unique key of the new shape is new to the table: no row counts were read
            assert isinstance(change, MysqlChange)
            assert Record(change, alt.key).read().counted is False
        assert writer.errors == []  # no deadlock, no lock wait timeout, nothing
        assert done.done and done.progress.strategy is Strategy.SHADOW, done
        assert phases.count("COPY") >= ROWS // PACE.max_chunk_rows  # a step per chunk
        # keys walked: the writer's deletes and key moves ahead of the copy are not walked,
        # its inserts at the end are
        assert ROWS // 2 < done.progress.copy_count <= done.progress.copy_total
        cur.execute("SELECT id, a, b FROM t")
        final = {int(r[0]): (int(r[1]), r[2]) for r in cur.fetchall()}
        assert final == writer.model
        cur.execute("SHOW CREATE TABLE t")
        shown = cur.fetchone()[1]
        assert "`a` bigint(20) NOT NULL" in shown and "`b` varchar(60)" in shown
        assert leftovers(cur, name) == ([], ["_t_old"])


def test_a_run_abandoned_mid_copy_resumes_from_an_older_progress_and_ends_exact() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur)
        alt = alteration("ALTER TABLE t MODIFY a BIGINT NOT NULL", mode=2)
        connector = connector_for(ENDPOINT)
        stored: list[dict[str, Any]] = []
        with writing(name, cur) as writer:
            # the first runner copies part of the table, then its process is gone
            with connector.change(("def", name), 2) as first:
                progress = OnlineProgress()
                while progress.copy_count < ROWS // 4:
                    out = MysqlOnline(PACE).step(first, alt, progress, time.monotonic() + 0.01)
                    assert out.failure is None, out
                    stored.append(out.progress.dumps())
                    writer.wait_for(20)
            cur.execute(
                f"SELECT result FROM _opendms.progress WHERE run_key = '{alt.key}:mysql:copy'"
            )
            copied = cur.fetchone()[0]
            assert '"done": false' in copied and '"chunks": 0' not in copied
            writer.wait_for(500)
            # another runner starts from a progress stored well before the first one stopped
            older = OnlineProgress.loads(stored[len(stored) // 2])
            with connector.change(("def", name), 2) as second:
                done = drive(
                    MysqlOnline(PACE), second, alt, older, between=lambda _: writer.wait_for(20)
                )
        assert done.done and writer.errors == []
        assert rows_of(cur) == writer.model
        assert leftovers(cur, name) == ([], ["_t_old"])


def test_cancel_mid_copy_leaves_the_table_as_it_was() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 20_000)
        cur.execute("SHOW CREATE TABLE t")
        before = cur.fetchone()[1]
        alt = alteration("ALTER TABLE t MODIFY a BIGINT NOT NULL", mode=2)
        engine = MysqlOnline(PACE)
        with (
            writing(name, cur) as writer,
            connector_for(ENDPOINT).change(("def", name), 2) as change,
        ):
            progress = OnlineProgress()
            while not progress.copy_count:
                engine.step(change, alt, progress, time.monotonic() + 0.01)
            assert progress.state["phase"] == "COPY" and progress.copy_count < 20_000
            assert leftovers(cur, name)[0] != []  # the triggers are there
            engine.cancel(change, alt, progress)
            assert progress.status is OnlineStatus.CANCELED
            writer.wait_for(100)
        assert writer.errors == []
        assert leftovers(cur, name) == ([], [])
        cur.execute("SHOW CREATE TABLE t")
        assert shape_of(cur.fetchone()[1]) == shape_of(before)  # the writer moved the counter
        assert rows_of(cur) == writer.model
        # a run asked for again after the cancel starts over and finishes
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            again = drive(engine, change, alt, progress)
        assert again.done and again.progress.strategy is Strategy.SHADOW
        assert rows_of(cur) == writer.model


@pytest.mark.parametrize(
    ("setup", "statement", "why"),
    [
        (
            "ALTER TABLE t MODIFY id INT NOT NULL, DROP PRIMARY KEY, ADD UNIQUE KEY (b)",
            "ALTER TABLE t MODIFY a BIGINT NOT NULL",
            "neither a primary key",
        ),
        (
            "CREATE TRIGGER mine AFTER INSERT ON t FOR EACH ROW SET @x = 1",
            "ALTER TABLE t MODIFY a BIGINT NOT NULL",
            "has triggers (mine)",
        ),
        (
            "CREATE TABLE child (id INT PRIMARY KEY, t_id INT, "
            "FOREIGN KEY (t_id) REFERENCES t (id)) ENGINE=InnoDB",
            "ALTER TABLE t MODIFY a BIGINT NOT NULL",
            "foreign keys of other tables",
        ),
        ("", "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, a)", "no longer a unique key"),
        (
            "",
            "ALTER TABLE t MODIFY a BIGINT NOT NULL, ADD COLUMN c INT NOT NULL",
            "NOT NULL without a DEFAULT",
        ),
        ("", "ALTER TABLE t RENAME TO u, MODIFY a BIGINT", "renames the table"),
    ],
)
def test_what_a_shadow_copy_cannot_do_safely_is_refused_and_leaves_nothing(
    setup: str, statement: str, why: str
) -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 500)
        if setup:
            cur.execute(setup)
        cur.execute("SHOW CREATE TABLE t")
        before = cur.fetchone()[1]
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            out = drive(MysqlOnline(PACE), change, alteration(statement, mode=2), OnlineProgress())
        assert out.failure is not None and why in out.failure, out
        assert out.progress.status is OnlineStatus.UNSUPPORTED
        cur.execute("SHOW CREATE TABLE t")
        assert cur.fetchone()[1] == before
        triggers, tables = leftovers(cur, name)
        assert [t for t in triggers if t != "mine"] == [] and tables == []


def test_a_chunk_that_loses_a_lock_fight_is_tried_again_smaller() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 3_000)
        alt = alteration("ALTER TABLE t MODIFY a BIGINT NOT NULL", mode=2)
        engine = MysqlOnline(PACE)
        holder = pymysql.connect(host="127.0.0.1", user="root", database=name, autocommit=False)
        with (
            holder,
            holder.cursor() as held,
            connector_for(ENDPOINT).change(("def", name), 1) as change,
        ):
            progress = OnlineProgress()
            first = engine.step(change, alt, progress, time.monotonic())  # to the copy
            assert first.failure is None and progress.state["phase"] == "COPY"
            copied = progress.copy_count
            # a writer holds the next chunk's first row (only a transaction that began
            # after the triggers were made: an older one would have held them off)
            held.execute(f"SELECT a FROM t WHERE id = {copied + 1} FOR UPDATE")
            sizes = [progress.chunk_size or PACE.first_chunk_rows]
            for tries in (1, 2):
                out = engine.step(change, alt, progress, time.monotonic() + 0.05)
                assert out.failure is None and "lost a lock fight" in progress.message, out
                assert progress.state["lost_locks"] == tries
                assert out.wait_seconds == 0.25 * 2**tries
                sizes.append(progress.chunk_size)
            assert sizes == [sizes[0], sizes[0] // 2, sizes[0] // 4]
            assert progress.copy_count == copied
            holder.rollback()
            done = drive(engine, change, alt, progress)
        assert done.done and done.progress.copy_count == 3_000
        assert progress.state["lost_locks"] == 0


def test_a_row_the_new_shape_refuses_fails_the_copy_and_leaves_nothing() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 1_000)
        cur.execute("UPDATE t SET b = 'same' WHERE id IN (10, 900)")
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            out = drive(
                MysqlOnline(PACE),
                change,
                alteration("ALTER TABLE t ADD UNIQUE KEY ub (b)", mode=2),
                OnlineProgress(),
            )
        assert out.progress.status is OnlineStatus.FAIL
        assert out.failure is not None
        assert "the new shape refuses rows of key (id) 900: a duplicate" in out.failure
        assert leftovers(cur, name) == ([], [])
        assert len(rows_of(cur)) == 1_000


def test_a_renamed_column_keeps_its_values_and_the_old_table_can_go() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 3_000)
        cut = CutOver(lock_seconds=1, keep_old=False)
        alt = alteration("ALTER TABLE t CHANGE a amount BIGINT NOT NULL, DROP COLUMN pad", 2, cut)
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            out = drive(MysqlOnline(PACE), change, alt, OnlineProgress())
        assert out.done and out.progress.old_table == ""
        cur.execute("SELECT COUNT(*), SUM(amount), SUM(id) FROM t")
        assert cur.fetchone() == (3_000, 3_000 * 3_001 // 2, 3_000 * 3_001 // 2)
        assert leftovers(cur, name) == ([], [])


class Clock:
    def __init__(self, at: str) -> None:
        self.at = datetime.fromisoformat(f"2024-05-01 {at}")

    def __call__(self) -> datetime:
        return self.at


def until_copied(engine: MysqlOnline, change: Change, alt: Alteration) -> OnlineProgress:
    """Steps until the copy is done and the swap waits for its window (closed by the
    engine's clock)."""
    progress = OnlineProgress()
    for _ in range(1_000):
        out = engine.step(change, alt, progress, time.monotonic() + 0.05)
        assert out.failure is None, out
        if progress.status is OnlineStatus.WAITING_CUTOVER:
            assert progress.state["phase"] == "SWAP"
            return progress
    raise AssertionError(f"never copied: {progress}")


def test_the_swap_waits_for_its_window_while_the_triggers_keep_the_copy_current() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 2_000)
        clock = Clock("12:00:00")
        cut = CutOver(lock_seconds=1, window_start="01:00:00", window_end="02:00:00")
        alt = alteration("ALTER TABLE t MODIFY a BIGINT NOT NULL", 2, cut)
        engine = MysqlOnline(PACE, clock=clock)
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            progress = until_copied(engine, change, alt)
            out = engine.step(change, alt, progress, time.monotonic() + 0.05)
            assert progress.status is OnlineStatus.WAITING_CUTOVER
            assert out.wait_seconds == 300.0  # 13 h to the window: looked at again in 5 min
            cur.execute("UPDATE t SET a = 99 WHERE id = 5")
            cur.execute("DELETE FROM t WHERE id = 6")
            clock.at = datetime.fromisoformat("2024-05-02 01:30:00")
            done = drive(engine, change, alt, progress)
        assert done.done
        cur.execute("SELECT a FROM t WHERE id IN (5, 6)")
        assert cur.fetchall() == ((99,),)


def test_the_swap_gives_up_its_lock_wait_and_tries_again() -> None:
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 2_000)
        cut = CutOver(lock_seconds=1, retries=5, window_start="01:00:00", window_end="02:00:00")
        alt = alteration("ALTER TABLE t MODIFY a BIGINT NOT NULL", 2, cut)
        clock = Clock("12:00:00")
        engine = MysqlOnline(PACE, clock=clock)
        reader = pymysql.connect(host="127.0.0.1", user="root", database=name, autocommit=False)
        with reader, connector_for(ENDPOINT).change(("def", name), 2) as change:
            progress = until_copied(engine, change, alt)
            clock.at = datetime.fromisoformat("2024-05-02 01:30:00")
            with reader.cursor() as held:
                held.execute("SELECT COUNT(*) FROM t")  # an open transaction holds t's MDL
                out = engine.step(change, alt, progress, time.monotonic() + 0.05)
                assert out.failure is None and out.wait_seconds > 0, out
                assert progress.cut_over_tries == 1 and "lost a lock fight" in progress.message
                assert progress.state["phase"] == "SWAP"
            reader.rollback()
            done = drive(engine, change, alt, progress)
        assert done.done
        assert leftovers(cur, name) == ([], ["_t_old"])


def test_a_record_behind_the_target_is_read_from_the_target() -> None:
    """A crash between a DDL statement and the record of it: the table says it ran."""
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 1_000)
        engine = MysqlOnline(PACE)
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            assert isinstance(change, MysqlChange)
            # the native ALTER ran, its record still says NATIVE: not run twice
            alt = alteration("ALTER TABLE t ADD COLUMN c INT")
            record = Record(change, alt.key)
            shape = shape_of(create_text(change, name, "t"))
            record.move(record.read(), Plan(Phase.NATIVE, "INSTANT", shape, "INSTANT", name, "t"))
            cur.execute("ALTER TABLE t ADD COLUMN c INT")
            out = drive(engine, change, alt, OnlineProgress(status=OnlineStatus.RUNNING))
            assert out.done and out.progress.strategy is Strategy.INSTANT, out
            # the swap ran, its record still says SWAP: finished, not swapped back
            cut = CutOver(lock_seconds=1, window_start="01:00:00", window_end="02:00:00")
            alt = alteration("ALTER TABLE t MODIFY a BIGINT NOT NULL", 2, cut)
            progress = until_copied(MysqlOnline(PACE, clock=Clock("12:00:00")), change, alt)
            cur.execute("RENAME TABLE t TO _t_old, _t_new TO t")
            out = drive(engine, change, alt, progress)
        assert out.done and out.progress.old_table == "_t_old"
        assert leftovers(cur, name) == ([], ["_t_old"])
        cur.execute("SHOW CREATE TABLE t")
        assert "`a` bigint(20) NOT NULL" in cur.fetchone()[1]


def test_a_value_the_new_shape_would_cut_fails_the_copy_and_changes_nothing() -> None:
    """The fast copy (INSERT IGNORE) turns what strict mode refuses into a warning; the chunk
    reads its warnings and fails on it, as the strict statement would have."""
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 1_000)
        cur.execute("UPDATE t SET a = 70000 WHERE id = 700")
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            out = drive(
                MysqlOnline(PACE),
                change,
                alteration("ALTER TABLE t MODIFY a SMALLINT NOT NULL", mode=2),
                OnlineProgress(),
            )
        assert out.failure is not None and out.progress.status is OnlineStatus.FAIL
        assert "a row cannot be copied into the new shape" in out.failure
        assert "Out of range value for column 'a'" in out.failure and "1264" in out.failure
        assert leftovers(cur, name) == ([], [])
        assert rows_of(cur)[700] == (70000, "b700")


@pytest.mark.parametrize("kept", [65_535, 2], ids=["fast", "more-warnings-than-kept"])
def test_rows_the_triggers_wrote_are_kept_by_the_copy(
    kept: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk meeting rows the triggers wrote ahead of it keeps theirs (newer), whether the
    fast statement copies it or, when its warnings overflow what the server keeps, the
    strict one does it again."""
    monkeypatch.setattr(shadow, "WARNINGS_KEPT", kept)
    with mysql_database() as (name, conn), conn.cursor() as cur:
        make_table(cur, 100)
        cur.execute("CREATE TABLE _t_new LIKE t")
        cur.execute(
            "INSERT INTO _t_new (id, a, b) VALUES (3, 33, 'w3'), (5, 55, 'w5'), (9, 9, 'w9')"
        )
        copy = ShadowCopy(name, "t", "_t_new", (("id", "id"), ("a", "a"), ("b", "b")), ("id",))
        key = f"copy-test-{uuid.uuid4().hex}"
        with connector_for(ENDPOINT).change(("def", name), 2) as change:
            assert isinstance(change, MysqlChange)
            change.begin()
            change.mark(key, Position().dumps())
            change.commit()
            change.execute(f"SET SESSION max_error_count = {kept}")
            walks = (copy.chunking(), copy.shadow_range())
            moved = shadow.copy_chunk(change, key, copy, walks, 50, "READ COMMITTED")
        assert (moved.after, moved.rows, moved.chunks, moved.done) == ((50,), 50, 1, False)
        copied = rows_of(cur, "_t_new")
        assert len(copied) == 50
        assert (copied[3], copied[5], copied[9], copied[4]) == (
            (33, "w3"),
            (55, "w5"),
            (9, "w9"),
            (4, "b4"),
        )
