"""Sweeping the backup tables of interrupted attempts: exactly the earlier attempts at one
statement are dropped, never the table its marker names, a chunked statement's table or
another statement's."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from sqlglot import exp

from opendms.execution.backups import attempt_table, plan_for, sweep
from opendms.sql.backup import FEW_ROWS
from opendms.sql.tables import TableShape
from opendms.targets.base import Endpoint, InsertKeys
from opendms.targets.sqlite import SqliteConnector

BASE = "b0123456789ab_1"


def test_only_other_attempts_at_the_same_statement_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    kept, orphan = attempt_table(BASE), attempt_table(BASE)
    others = [
        BASE,  # a chunked statement's one table
        "b0123456789ab_12_cccccccc",  # statement 12
        "b0123456789ab_1_notahex1",
        "b0123456789ab_1_aaaaaaaa_x",
        "bffffffffffff_1_aaaaaaaa",  # another SQL job
    ]
    with closing(sqlite3.connect(path)) as db, db:
        for name in (kept, orphan, *others):
            db.execute(f'CREATE TABLE "_opendms_{name}" (id INTEGER PRIMARY KEY)')
    with SqliteConnector(Endpoint("sqlite", str(path))).change(("main", "main"), 1) as change:
        swept = sweep(change, BASE, f'"_opendms_{kept}"', "sqlite")
    assert (swept.dropped, swept.left, swept.why) == ([f'"_opendms_{orphan}"'], [], None)
    with closing(sqlite3.connect(path)) as db:
        left = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert left == {f"_opendms_{n}" for n in (kept, *others)} | {"_opendms_progress"}


ACCT = TableShape(frozenset({"id", "n"}), ("id",), "innodb", walk_key=("id",), auto_increment="id")


def _plan(statement: str, engine: str = "mariadb", rows: int | None = None) -> tuple[str, int]:
    """The statement's backup table's CREATE, and how often the server was asked how it
    tells an INSERT's new keys (a round trip to it)."""
    asked: list[int] = []

    def keys() -> InsertKeys:
        asked.append(1)
        return InsertKeys(returning=True, autoinc_lock_mode=1, server="MariaDB 10.11")

    plan = plan_for(statement, engine, exp.to_table("_opendms.b"), ACCT, keys, rows=rows)
    return plan.create, len(asked)


def test_the_server_is_asked_for_insert_keys_only_by_an_insert_whose_keys_it_must_tell() -> None:
    assert _plan("UPDATE acct SET n = n + 1 WHERE id = 1")[1] == 0
    assert _plan("DELETE FROM acct WHERE id = 1")[1] == 0
    assert _plan("INSERT INTO acct (id, n) VALUES (7, 1)")[1] == 0  # it names its keys
    assert _plan("INSERT INTO acct (n) VALUES (1)")[1] == 1
    assert _plan("INSERT IGNORE INTO acct (id, n) VALUES (7, 1)")[1] == 1


def test_a_backup_the_precheck_expects_to_be_small_is_an_innodb_table_on_mariadb() -> None:
    """Making an Aria table costs more than its faster copy saves on a few rows."""
    update = "UPDATE acct SET n = n + 1 WHERE id = 1"
    assert "ENGINE=InnoDB" in _plan(update, rows=1)[0]
    assert "ENGINE=InnoDB" in _plan(update, rows=FEW_ROWS)[0]
    assert "ENGINE=Aria" in _plan(update, rows=FEW_ROWS + 1)[0]
    assert "ENGINE=Aria" in _plan(update, rows=None)[0]  # not known: rows could be many
    assert "ENGINE=InnoDB" in _plan(update, "mysql", rows=FEW_ROWS + 1)[0]
    assert "ENGINE" not in _plan(update, "postgresql", rows=1)[0]
