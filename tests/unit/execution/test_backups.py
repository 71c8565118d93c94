"""Sweeping the backup tables of interrupted attempts: exactly the earlier attempts at one
statement are dropped, never the table its marker names, a chunked statement's table or
another statement's."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

from opendms.execution.backups import attempt_table, sweep
from opendms.targets.base import Endpoint
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
