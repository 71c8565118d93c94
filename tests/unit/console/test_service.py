"""The SQL console on the SQLite demo target: permissions, the row cap, masking, where it may
change, all-or-nothing scripts, timeouts and the audit log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from opendms.catalog.sensitive import set_mask
from opendms.console.service import StatementResult, execute_script
from opendms.errors import DmsError
from opendms.rulebook import rule_sets
from opendms.store.models import Instance, SqlAudit
from opendms.store.states import ExecState
from tests.approval_world import World


def run(world: World, who: str, script: str) -> list[StatementResult]:
    with world.store.session() as s:
        return execute_script(s, world.means, world.as_(who), world.db_id, script)


def audit(world: World) -> list[SqlAudit]:
    with world.store.session() as s:
        rows = s.scalars(select(SqlAudit).order_by(SqlAudit.audit_id)).all()
        s.expunge_all()
        return list(rows)


def target(world: World) -> Path:
    with world.store.session() as s:
        return Path(s.get_one(Instance, world.instance_id).host)


@pytest.fixture
def world(world: World) -> World:
    world.may("QUERY", "alice")
    return world


def test_a_read_answers_rows_as_objects_and_is_audited(world: World) -> None:
    (r,) = run(world, "alice", "SELECT id, name FROM customers WHERE id <= 3 ORDER BY id")
    assert r.success and r.columns == ["id", "name"]
    assert r.rows == [{"id": i, "name": f"customer {i}"} for i in (1, 2, 3)]
    assert r.row_count == 3 and r.message == ""
    (line,) = audit(world)
    assert line.user_id == world.id("alice") and line.order_id is None
    assert line.exec_state == ExecState.SUCCESS and line.affect_rows == 3
    assert line.sql_text.startswith("SELECT id, name FROM customers") and line.sql_type == "SELECT"


def test_without_query_permission_nothing_runs(world: World) -> None:
    results = run(world, "carol", "SELECT 1; SELECT name FROM customers")
    assert [r.success for r in results] == [False, False]
    assert "QUERY permission on customers" in results[1].message
    assert all(line.exec_state == ExecState.FAIL for line in audit(world))


def test_the_instance_dba_and_administrators_read_without_a_grant(world: World) -> None:
    for who in ("dba", "admin"):
        (r,) = run(world, who, "SELECT count(*) AS n FROM orders")
        assert r.success and r.rows == [{"n": 5000}]


def test_results_stop_at_the_rule_sets_row_cap_and_say_so(world: World) -> None:
    with world.store.session() as s:
        rule_sets.load(
            s,
            world.tid,
            "small",
            "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
            "console: {max_rows: 10}\n",
        )
        rule_sets.assign(s, world.tid, world.instance_id, "small")
    (r,) = run(world, "alice", "SELECT id FROM orders ORDER BY id")
    assert r.success and len(r.rows) == 10 and r.truncated
    assert "truncated" in r.message
    (r,) = run(world, "alice", "SELECT id FROM orders ORDER BY id LIMIT 10")
    assert len(r.rows) == 10 and not r.truncated


def test_sensitive_columns_come_back_masked_as_in_exports(world: World) -> None:
    with world.store.session() as s:
        set_mask(s, world.tid, world.db_id, "customers", "email", "FULL", None)
    (r,) = run(world, "alice", "SELECT name, upper(email) AS e FROM customers WHERE id = 1")
    assert r.rows == [{"name": "customer 1", "e": "******"}]
    assert r.masked == ["e"] and "masked" in r.message


def test_changes_on_product_are_refused_with_the_ticket_to_file_and_nothing_runs(
    world: World,
) -> None:
    world.set_env("product")
    results = run(world, "alice", "SELECT 1; UPDATE orders SET status = 'x' WHERE id = 1")
    assert not any(r.success for r in results)
    assert "DC_COMMON" in results[1].message and "product" in results[1].message
    assert "statement 2 was refused" in results[0].message
    with sqlite3.connect(target(world)) as conn:
        assert conn.execute("SELECT status FROM orders WHERE id = 1").fetchone() != ("x",)


def test_changes_run_on_dev_and_commit(world: World) -> None:
    world.set_env("dev")
    (r,) = run(world, "alice", "UPDATE orders SET status = 'x' WHERE id <= 2")
    assert r.success and r.affected == 2 and r.row_count == 2
    with sqlite3.connect(target(world)) as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE status = 'x'").fetchone() == (2,)


def test_a_failed_statement_rolls_back_the_scripts_changes(world: World) -> None:
    world.set_env("dev")
    results = run(
        world,
        "alice",
        "UPDATE orders SET status = 'y' WHERE id = 1;"
        "INSERT INTO customers (id, name, email, created_at) VALUES (1, 'a', 'b', 'c');"
        "SELECT 1",
    )
    assert [r.success for r in results] == [False, False, False]
    assert results[0].message == "rolled back: statement 2 failed"
    assert "UNIQUE" in results[1].message
    assert results[2].message == "not run: statement 2 failed"
    with sqlite3.connect(target(world)) as conn:
        assert conn.execute("SELECT status FROM orders WHERE id = 1").fetchone() != ("y",)


def test_changes_need_the_correct_permission(world: World) -> None:
    world.set_env("dev")
    world.may("QUERY", "carol")
    (r,) = run(world, "carol", "DELETE FROM orders WHERE id = 1")
    assert not r.success and "CORRECT permission on orders" in r.message


def test_a_query_past_the_instances_timeout_is_stopped(world: World) -> None:
    with world.store.session() as s:
        s.get_one(Instance, world.instance_id).query_timeout = 1
    (r,) = run(
        world,
        "alice",
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    )
    assert not r.success and "QueryTimeout (1 s)" in r.message


@pytest.mark.parametrize(
    ("script", "words"),
    [
        ("PRAGMA table_info(orders)", "not PRAGMA"),
        ("SELECT load_extension('x')", "load_extension"),
        ("ATTACH DATABASE 'x' AS y", "not ATTACH"),
        ("VACUUM", "cannot check"),
    ],
)
def test_what_the_console_does_not_run_is_refused_by_name(
    world: World, script: str, words: str
) -> None:
    (r,) = run(world, "admin", script)
    assert not r.success and words in r.message


def test_an_unsplittable_script_is_an_invalid_parameter(world: World) -> None:
    with pytest.raises(DmsError) as caught:
        run(world, "alice", "SELECT 'open")
    assert caught.value.code.value == "InvalidParameter"


def test_a_remembered_mask_plan_follows_the_flags_as_they_change(world: World) -> None:
    one = "SELECT name, email FROM customers WHERE id = 1"
    joined = (
        "SELECT c.email, o.status FROM customers c JOIN orders o ON o.customer_id = c.id LIMIT 1"
    )
    assert run(world, "alice", one)[0].masked == []
    with world.store.session() as s:
        set_mask(s, world.tid, world.db_id, "customers", "email", "FULL", None)
    assert run(world, "alice", one)[0].masked == ["email"]
    assert run(world, "alice", joined)[0].masked == ["email"]
    with world.store.session() as s:
        set_mask(s, world.tid, world.db_id, "customers", "name", "FULL", None)
        set_mask(s, world.tid, world.db_id, "customers", "email", None, None)
    (r,) = run(world, "alice", one)
    assert r.masked == ["name"] and r.rows == [{"name": "******", "email": "c1@example.com"}]
    assert run(world, "alice", joined)[0].masked == []
