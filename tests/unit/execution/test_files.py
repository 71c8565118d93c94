"""The files of a data-change ticket on the SQLite demo target: backups taken in the change's
own transaction, the rollback script written from them, and the submitter's scripts."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.errors import DmsError, ErrorCode
from opendms.execution import files, run_statements
from opendms.identity.secrets import SecretBox
from opendms.sql.script import split
from opendms.store.db import Store
from opendms.store.models import PrecheckStatement, SqlJob, SqlJobDetail
from opendms.targets.base import StatementError
from opendms.targets.demo import ensure_demo_target
from opendms.targets.sqlite import SqliteChange
from tests.approval_world import World
from tests.unit.execution.test_run import free_rules, sql_jobs, start, step_by_hand

CHANGES = (
    "UPDATE customers SET name = 'renamed' WHERE id IN (1, 2, 3);\n"
    "DELETE FROM orders WHERE id IN (10, 11);\n"
    "INSERT INTO customers (name, email, created_at) VALUES ('new', 'n@x', '2026-01-01')"
)


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets")


def backup_tables(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        found = db.execute(
            "SELECT name FROM sqlite_master WHERE name LIKE '\\_opendms\\_b%' ESCAPE '\\'"
        ).fetchall()
    return [name for (name,) in found]


def snapshot(path: Path) -> list[list[tuple[Any, ...]]]:
    with closing(sqlite3.connect(path)) as db:
        return [
            db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("customers", "orders")
        ]


def run_with_backup(world: World, transaction: bool) -> int:
    """CHANGES filed, approved without a rule and run to its end with backup; its id."""
    free_rules(world)
    order_id = world.file(CHANGES, EstimateAffectRows=6)
    world.submit(order_id)
    start(world, order_id, backup=True, transaction=transaction)
    world.run_jobs()
    assert world.status(order_id) == "success"
    return order_id


@pytest.mark.parametrize("transaction", [False, True], ids=["each", "all"])
def test_the_rollback_script_restores_the_demo_database(
    world: World, tmp_path: Path, transaction: bool
) -> None:
    target = ensure_demo_target(tmp_path / "targets")
    before = snapshot(target)
    order_id = run_with_backup(world, transaction)
    assert snapshot(target) != before
    with world.store.session() as s:
        (job,) = s.scalars(select(SqlJob).where(SqlJob.order_id == order_id))
        saved = [
            d.backup
            for d in s.scalars(
                select(SqlJobDetail).where(SqlJobDetail.sql_job_id == job.sql_job_id)
            )
        ]
    assert all(saved)  # each statement says where its backup is
    assert len(backup_tables(target)) == 3
    script = "".join(files.rollback_script(world.store, world.means, job.sql_job_id))
    assert script.index("statement 3") < script.index("statement 2") < script.index("statement 1")
    with closing(sqlite3.connect(target, isolation_level=None)) as db:
        for piece in split(script, "sqlite"):
            db.execute(piece.text)
    assert snapshot(target) == before


def test_without_a_primary_key_an_update_cannot_be_started_with_backup(
    world: World, tmp_path: Path
) -> None:
    """The precheck names the statement (before approval); ExecuteDataCorrect with
    backupData is refused before anything is queued; without it the ticket runs."""
    target = ensure_demo_target(tmp_path / "targets")
    with closing(sqlite3.connect(target)) as db, db:
        db.execute("CREATE TABLE notes (body TEXT)")
        db.execute("INSERT INTO notes VALUES ('a'), ('b')")
    from opendms.catalog import sync

    with world.store.session() as s:
        sync.sync_database(s, world.means.secrets, world.means.targets, world.tid, world.db_id)
    free_rules(world)
    order_id = world.file("UPDATE notes SET body = 'c' WHERE body = 'a'")
    with world.store.session() as s:
        (found,) = s.scalars(
            select(PrecheckStatement).where(PrecheckStatement.order_id == order_id)
        )
        (finding,) = [f for f in found.findings if f["code"] == "NO_BACKUP"]
    assert finding["level"] == "WARNING"
    assert "table notes has no primary key" in finding["message"]
    world.submit(order_id)
    with pytest.raises(DmsError) as err:
        start(world, order_id, backup=True)
    assert err.value.code == ErrorCode.INVALID_PARAMETER
    assert "statement 1 in main: It cannot be backed up: table notes has no primary key" in (
        err.value.message
    )
    assert world.status(order_id) == "Approved" and not sql_jobs(world, order_id)
    with closing(sqlite3.connect(target)) as db:
        assert db.execute("SELECT body FROM notes ORDER BY body").fetchall() == [("a",), ("b",)]
    start(world, order_id)
    world.run_jobs()
    assert world.status(order_id) == "success"


def test_the_submitters_scripts_are_served_as_filed(world: World) -> None:
    order_id = world.file(
        "DELETE FROM orders WHERE id = 1",
        RollbackSqlType="TEXT",
        RollbackSQL="INSERT INTO orders VALUES (1)",
    )
    sql = files.download(world.store, world.means, "sql", order_id)
    rollback = files.download(world.store, world.means, "rollback", order_id)
    assert sql is not None and sql.text == "DELETE FROM orders WHERE id = 1"
    assert rollback is not None and rollback.text == "INSERT INTO orders VALUES (1)"
    assert files.download(world.store, world.means, "backup", 999) is None
    other = world.file("DELETE FROM orders WHERE id = 2")
    assert files.download(world.store, world.means, "rollback", other) is None


def test_an_attempt_that_fails_leaves_no_backup_table(world: World, tmp_path: Path) -> None:
    """The backup table of an attempt that rolls back is dropped: only a committed change's
    marker names a backup."""
    target = ensure_demo_target(tmp_path / "targets")
    free_rules(world)
    clash = "UPDATE customers SET email = 'same@x' WHERE id IN (1, 2)"  # email is UNIQUE
    order_id = world.file(clash, EstimateAffectRows=2)
    world.submit(order_id)
    start(world, order_id, backup=True)
    world.run_jobs()
    with world.store.session() as s:
        (job,) = s.scalars(select(SqlJob).where(SqlJob.order_id == order_id))
    assert job.status == "FAIL" and "UNIQUE" in job.log
    assert backup_tables(target) == []


def crash_at_statement(monkeypatch: pytest.MonkeyPatch, number: int) -> None:
    """The process dies right after statement ``number`` ran with its backup, before the
    commit: its backup table (made outside the transaction) stays, the change does not (on
    MariaDB the Aria table even keeps the rows copied into it)."""
    real = run_statements.apply
    calls = iter(range(1, 100))

    def dying(*args: Any) -> Any:
        done = real(*args)
        if next(calls) == number:
            raise RuntimeError("the server died")
        return done

    monkeypatch.setattr(run_statements, "apply", dying)


def marked_tables(world: World, order_id: int) -> tuple[SqlJob, list[str]]:
    """The SQL job, and the backup table each statement's record names (unquoted)."""
    with world.store.session() as s:
        (job,) = s.scalars(select(SqlJob).where(SqlJob.order_id == order_id))
        records = s.scalars(
            select(SqlJobDetail.backup)
            .where(SqlJobDetail.sql_job_id == job.sql_job_id)
            .order_by(SqlJobDetail.number)
        ).all()
    return job, [r["table"].strip('"') for r in records if r]


def interrupted(world: World, tmp_path: Path, transaction: bool) -> tuple[int, Path, list[str]]:
    """A backed-up ticket whose first attempt died at statement 2: (ticket, target, the
    backup tables that attempt left behind)."""
    target = ensure_demo_target(tmp_path / "targets")
    free_rules(world)
    order_id = world.file(CHANGES, EstimateAffectRows=6)
    world.submit(order_id)
    job_id = start(world, order_id, backup=True, transaction=transaction)
    with pytest.MonkeyPatch.context() as m:
        crash_at_statement(m, 2)
        with pytest.raises(RuntimeError):
            step_by_hand(world, order_id, job_id)
    _, committed = marked_tables(world, order_id)
    orphans = sorted(set(backup_tables(target)) - set(committed))
    # each statement on its own: statement 1 committed, 2's table is left; all in one: the
    # three tables were made before the transaction, nothing committed
    assert len(orphans) == (3 if transaction else 1)
    return order_id, target, orphans


@pytest.mark.parametrize("transaction", [False, True], ids=["each", "all"])
def test_the_backup_tables_of_an_interrupted_attempt_are_dropped_when_its_successor_commits(
    world: World, tmp_path: Path, transaction: bool
) -> None:
    pristine = snapshot(ensure_demo_target(tmp_path / "pristine"))
    order_id, target, orphans = interrupted(world, tmp_path, transaction)
    world.run_jobs()
    assert world.status(order_id) == "success"
    job, committed = marked_tables(world, order_id)
    assert len(committed) == 3
    assert sorted(backup_tables(target)) == sorted(committed)  # the orphans are gone
    for orphan in orphans:
        assert f'"{orphan}"' in job.log
    assert "backup tables of interrupted attempts" in job.log
    assert snapshot(target) != pristine
    script = "".join(files.rollback_script(world.store, world.means, job.sql_job_id))
    with closing(sqlite3.connect(target, isolation_level=None)) as db:
        for piece in split(script, "sqlite"):
            db.execute(piece.text)
    assert snapshot(target) == pristine  # the committed backups restore every statement


def _counted_looks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """What a step asks before a backup: each look at a marker ("peek") and each sweep of
    earlier attempts' tables ("sweep"), in order."""
    looks: list[str] = []
    peek, sweep = run_statements._peek, run_statements.sweep

    def peeking(*args: Any) -> Any:
        looks.append("peek")
        return peek(*args)

    def sweeping(*args: Any) -> Any:
        looks.append("sweep")
        return sweep(*args)

    monkeypatch.setattr(run_statements, "_peek", peeking)
    monkeypatch.setattr(run_statements, "sweep", sweeping)
    return looks


@pytest.mark.parametrize("transaction", [False, True], ids=["each", "all"])
def test_a_first_step_looks_for_no_marker_before_its_backups_and_sweeps_nothing(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transaction: bool
) -> None:
    """Nothing of a SQL job reached the target before its first step: its backup tables
    are made without a look at the markers first (a transaction each), and nothing is
    swept."""
    looks = _counted_looks(monkeypatch)
    target = ensure_demo_target(tmp_path / "targets")
    run_with_backup(world, transaction)
    assert looks == []
    assert len(backup_tables(target)) == 3


@pytest.mark.parametrize("transaction", [False, True], ids=["each", "all"])
def test_the_step_after_an_interrupted_attempt_looks_for_markers_and_sweeps(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transaction: bool
) -> None:
    order_id, target, orphans = interrupted(world, tmp_path, transaction)
    looks = _counted_looks(monkeypatch)
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert looks[0] == "peek" and "sweep" in looks
    assert not set(orphans) & set(backup_tables(target))


def _refuse_drops(real: Callable[[SqliteChange, str], None]) -> Callable[[SqliteChange, str], None]:
    def setup(self: SqliteChange, statement: str) -> None:
        if statement.startswith("DROP TABLE"):
            raise StatementError("not authorized")
        real(self, statement)

    return setup


def _refuse_listing(self: SqliteChange, prefix: str) -> list[str]:
    raise StatementError("not authorized")


@pytest.mark.parametrize("refused", ["drop", "list"])
def test_backup_tables_that_cannot_be_dropped_are_named_in_the_sql_job_log(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refused: str
) -> None:
    order_id, target, orphans = interrupted(world, tmp_path, transaction=False)
    if refused == "drop":
        monkeypatch.setattr(SqliteChange, "setup", _refuse_drops(SqliteChange.setup))
    else:
        monkeypatch.setattr(SqliteChange, "own_tables", _refuse_listing)
    world.run_jobs()
    assert world.status(order_id) == "success"  # committed is committed
    job, committed = marked_tables(world, order_id)
    assert sorted(backup_tables(target)) == sorted([*committed, *orphans])
    (orphan,) = orphans
    if refused == "drop":
        assert (
            "statement 2: 1 backup tables of interrupted attempts are left on the target: "
            f'"{orphan}" (dropping failed: not authorized)' in job.log
        )
    else:
        base = orphan.removeprefix("_opendms_")[: -len("_12345678")]
        assert (
            "statement 2: backup tables of interrupted attempts may be left: listing the "
            f"tables {base}_* of OpenDMS's space failed: not authorized" in job.log
        )
