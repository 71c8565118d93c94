"""The MySQL/MariaDB online engine's decisions without a server: which ALGORITHM comes next
after which refusal (MySQL 8's error numbers are not MariaDB's), lost lock fights, a
statement that ran before a crash hid it, the cut-over window, and what makes a table unfit
for a shadow copy. A scripted change stands in for the server (there is no MySQL 8 here)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
import sqlglot

from opendms.execution.online import (
    Alteration,
    CutOver,
    OnlineProgress,
    OnlineStatus,
    Strategy,
)
from opendms.execution.online_mysql import (
    MysqlOnline,
    after_refusal,
    first_algorithm,
    refused,
)
from opendms.execution.online_mysql_plan import Moved, Phase, Plan, Record
from opendms.execution.online_mysql_shadow import table_refusal, window_wait
from opendms.schema.model import Column, Index, Table
from opendms.sql.shadow_mysql import shape_of
from opendms.sql.statements import render
from opendms.targets.base import StatementError
from opendms.targets.mysql import MysqlChange
from opendms.targets.mysql_facts import TableFacts

BEFORE = "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
AFTER = BEFORE.replace("PRIMARY KEY", "`c` int DEFAULT NULL,\n  PRIMARY KEY")


class Scripted(MysqlChange):
    """A change whose markers live in a dict (committed or rolled back like the server's)
    and whose DDL answers as ``answer`` says: an error to raise, or None (it ran)."""

    def __init__(self, answer: Callable[[str], StatementError | None]) -> None:
        self.answer = answer
        self.ran: list[str] = []
        self.create = BEFORE
        self.markers: dict[str, str] = {}
        self.pending: dict[str, str] = {}

    def begin(self) -> None:
        self.pending = dict(self.markers)

    def commit(self) -> None:
        self.markers = self.pending

    def rollback(self) -> None:
        self.pending = dict(self.markers)

    def close(self) -> None:
        pass

    def marker(self, key: str) -> str | None:
        return self.pending.get(key)

    def mark(self, key: str, result: str) -> None:
        if key in self.pending:
            raise StatementError(f"progress marker {key} is already recorded")
        self.pending[key] = result

    def move(self, key: str, result: str) -> None:
        self.pending[key] = result

    def rows(self, statement: str, args: Any = ()) -> list[tuple[Any, ...]]:
        if statement == "SELECT DATABASE()":
            return [("shop",)]
        if statement.startswith("SHOW CREATE TABLE"):
            return [("t", self.create)]
        raise AssertionError(f"unscripted read: {statement}")

    def ddl(self, statement: str, lock_seconds: int) -> None:
        self.ran.append(statement)
        error = self.answer(statement)
        if error is not None:
            raise error
        self.create = AFTER


def alteration(text: str, engine: str = "mysql", mode: int = 1, retries: int = 10) -> Alteration:
    node = sqlglot.parse_one(text, read="mysql")
    return Alteration(
        node, render(node, engine), "t", None, engine, mode, CutOver(retries=retries), key="k"
    )


def refusing(*codes: int) -> Callable[[str], StatementError | None]:
    """The server refuses INSTANT with ``codes[0]``, INPLACE with ``codes[1]``, …"""

    def answer(statement: str) -> StatementError | None:
        for algorithm, code in zip(("INSTANT", "INPLACE"), codes, strict=False):
            if f"ALGORITHM={algorithm}" in statement:
                return StatementError(f"({code}) refused", code=code)
        return None

    return answer


def step(change: Scripted, alt: Alteration, progress: OnlineProgress | None = None) -> Any:
    return MysqlOnline().step(change, alt, progress or OnlineProgress(), time.monotonic() + 5)


def test_what_the_server_cannot_do_instantly_it_is_asked_to_do_in_place() -> None:
    # MySQL 8: ER_INNODB_MAX_ROW_VERSION (4092), the instant column changes used up
    change = Scripted(refusing(4092))
    out = step(change, alteration("ALTER TABLE t ADD COLUMN c INT"))
    assert out.done and out.progress.strategy is Strategy.INPLACE
    assert change.ran == [
        "ALTER TABLE t ADD COLUMN c INT, ALGORITHM=INSTANT",
        "ALTER TABLE t ADD COLUMN c INT, ALGORITHM=INPLACE, LOCK=NONE",
    ]


@pytest.mark.parametrize("code", [1800, 1845, 1846])
def test_refusals_both_servers_share(code: int) -> None:
    for engine in ("mysql", "mariadb"):
        change = Scripted(refusing(code))
        assert step(change, alteration("ALTER TABLE t ADD COLUMN c INT", engine)).done
        assert len(change.ran) == 2


def test_error_numbers_mean_other_things_on_mariadb() -> None:
    assert refused("mysql", 4092) and refused("mysql", 4093)
    assert not refused("mariadb", 4092)  # ER_UNKNOWN_VIEW there
    # a MariaDB error that is not a refusal of the algorithm fails the statement as it is
    change = Scripted(refusing(4092))
    out = step(change, alteration("ALTER TABLE t ADD COLUMN c INT", "mariadb"))
    assert out.failure == "(4092) refused" and out.progress.status is OnlineStatus.FAIL
    assert len(change.ran) == 1


def test_a_statement_error_is_not_a_refusal() -> None:
    error = StatementError("(1060) Duplicate column name 'c'", code=1060)
    change = Scripted(lambda _: error)
    out = step(change, alteration("ALTER TABLE t ADD COLUMN c INT"))
    assert out.failure == error.message and len(change.ran) == 1


def test_the_order_of_ways_by_ddl_online() -> None:
    assert after_refusal(1, "INSTANT") == "INPLACE"
    assert after_refusal(1, "INPLACE") is None  # then the shadow copy
    assert after_refusal(2, "INSTANT") is None  # INPLACE cannot be paused or watched
    assert first_algorithm(alteration("ALTER TABLE t ADD COLUMN c INT")) == "INSTANT"
    assert first_algorithm(alteration("ALTER TABLE t ADD COLUMN c INT", mode=0)) == "WRITTEN"
    assert first_algorithm(alteration("ALTER TABLE t ADD c INT, ALGORITHM=COPY")) == "WRITTEN"
    assert first_algorithm(alteration("CREATE TABLE u (id INT)")) == "WRITTEN"
    assert first_algorithm(alteration("CREATE INDEX i ON t (a)")) == "INSTANT"


def test_a_statement_as_written_is_run_as_written() -> None:
    change = Scripted(lambda _: None)
    out = step(change, alteration("ALTER TABLE t ADD COLUMN c INT", mode=0))
    assert out.done and out.progress.strategy is Strategy.DIRECT
    assert change.ran == ["ALTER TABLE t ADD COLUMN c INT"]


def test_a_lost_lock_fight_rests_longer_each_time_then_fails() -> None:
    lost = StatementError("(1205) Lock wait timeout exceeded", lost_lock=True, code=1205)
    change = Scripted(lambda _: lost)
    alt = alteration("ALTER TABLE t ADD COLUMN c INT", retries=3)
    progress = OnlineProgress()
    waits = []
    for _ in range(2):
        out = step(change, alt, progress)
        assert out.failure is None and not out.done
        waits.append(out.wait_seconds)
    assert waits == [1.0, 2.0] and progress.cut_over_tries == 2
    out = step(change, alt, progress)
    assert out.failure is not None and "lost 3 lock fights" in out.failure
    assert all(s.endswith("ALGORITHM=INSTANT") for s in change.ran)  # never a slower way


def test_a_statement_that_ran_before_a_crash_hid_it_is_not_run_again() -> None:
    change = Scripted(lambda _: None)
    alt = alteration("ALTER TABLE t ADD COLUMN c INT")
    record = Record(change, alt.key)
    record.move(
        record.read(), Plan(Phase.NATIVE, "INSTANT", shape_of(BEFORE), "INSTANT", "shop", "t")
    )
    change.create = AFTER  # the ALTER ran; the record was not moved
    out = step(change, alt, OnlineProgress(status=OnlineStatus.RUNNING))
    assert out.done and change.ran == []


def test_an_ended_run_is_reported_to_a_lagging_caller_and_restarted_on_request() -> None:
    error = StatementError("(1060) Duplicate column name 'c'", code=1060)
    change = Scripted(lambda _: error)
    alt = alteration("ALTER TABLE t ADD COLUMN c INT")
    assert step(change, alt).failure is not None
    # the caller's stored progress still says RUNNING: the end is reported, nothing runs
    lagging = step(change, alt, OnlineProgress(status=OnlineStatus.RUNNING))
    assert lagging.failure == error.message and len(change.ran) == 1
    # a caller that saw the failure and asks again gets a new run
    change.answer = lambda _: None
    again = step(change, alt, OnlineProgress(status=OnlineStatus.FAIL))
    assert again.done and len(change.ran) == 2


def test_a_record_moved_by_another_runner_is_not_overwritten() -> None:
    change = Scripted(lambda _: None)
    record = Record(change, "k")
    seen = record.read()
    record.move(seen, Plan(Phase.NATIVE))
    with pytest.raises(Moved):
        record.move(seen, Plan(Phase.DONE))
    assert record.read().phase is Phase.NATIVE


def test_the_cut_over_window() -> None:
    day = CutOver(window_start="01:00:00", window_end="05:00:00")
    assert window_wait(day, datetime(2024, 5, 1, 3, 0)) == 0
    assert window_wait(day, datetime(2024, 5, 1, 0, 30)) == 1800
    assert window_wait(day, datetime(2024, 5, 1, 6, 0)) == 19 * 3600
    night = CutOver(window_start="22:00:00", window_end="02:00:00")
    assert window_wait(night, datetime(2024, 5, 1, 23, 0)) == 0
    assert window_wait(night, datetime(2024, 5, 1, 1, 0)) == 0
    assert window_wait(night, datetime(2024, 5, 1, 12, 0)) == 10 * 3600
    assert window_wait(CutOver(), datetime(2024, 5, 1, 23, 59, 59)) == 0


def facts(**changes: Any) -> TableFacts:
    table = Table("t", (Column("id", "int", nullable=False), Column("a", "int")), ("id",))
    return replace(TableFacts(table, BEFORE, "BASE TABLE", "innodb", 10, (), (), ()), **changes)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"kind": "VIEW"}, "is a view"),
        ({"engine": "myisam"}, "is a myisam table"),
        ({"triggers": ("audit",)}, "has triggers (audit)"),
        ({"referenced_by": ("child.fk_t",)}, "foreign keys of other tables name t (child.fk_t)"),
        ({"references": ("fk_parent",)}, "has foreign keys (fk_parent)"),
        (
            {"table": Table("t", (Column("a", "int"),), (), (Index("ua", ("a",), unique=True),))},
            "neither a primary key",
        ),
    ],
)
def test_tables_a_shadow_copy_refuses(changes: dict[str, Any], why: str) -> None:
    refusal = table_refusal(facts(**changes))
    assert refusal is not None and why in refusal


def test_a_plain_innodb_table_with_a_key_is_fit() -> None:
    assert table_refusal(facts()) is None


def test_the_engine_needs_a_mysql_change_and_a_key() -> None:
    out = MysqlOnline().step(
        object(),  # type: ignore[arg-type]
        alteration("ALTER TABLE t ADD COLUMN c INT"),
        OnlineProgress(),
        time.monotonic() + 1,
    )
    assert out.failure is not None and out.progress.status is OnlineStatus.FAIL
