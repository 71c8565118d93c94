"""OptimizeSqlByMetaAgent without a model on the SQLite demo target: the plan is read
through the SQL console (permission, audit), with index suggestions and review findings."""

from __future__ import annotations

from sqlalchemy import select

from opendms.assistant import service
from opendms.assistant.optimize import full_scans, optimize
from opendms.store.models import SqlAudit
from opendms.store.states import ExecState
from tests.approval_world import World
from tests.unit.assistant.conftest import grant_tables, scope


def content(world: World, who: str, sql: str) -> str:
    with world.store.session() as s:
        return service.optimize_sql(s, world.means, world.as_(who), world.db_id, sql).content


def audited(world: World) -> list[tuple[str, ExecState]]:
    with world.store.session() as s:
        return [
            (a.sql_text, a.exec_state)
            for a in s.scalars(select(SqlAudit).order_by(SqlAudit.audit_id))
        ]


def test_the_plan_comes_from_the_live_database_through_the_console(world: World) -> None:
    world.may("QUERY", "alice")
    with world.store.session() as s:
        report = optimize(
            s,
            world.means,
            world.as_("alice"),
            scope(world, "alice"),
            "SELECT id FROM orders WHERE status = 'x'",
        )
    (st,) = report.statements
    assert st.plan is not None and st.plan.ran and st.plan.scans == ["orders"]
    assert [(a.table, a.columns) for a in st.indexes] == [("orders", ("status",))]
    assert audited(world) == [
        ("EXPLAIN QUERY PLAN SELECT id FROM orders WHERE status = 'x'", ExecState.SUCCESS)
    ]


def test_the_answer_shows_plan_suggestion_and_findings(world: World) -> None:
    world.may("QUERY", "alice")
    text = content(world, "alice", "SELECT id FROM orders WHERE status = 'x' ORDER BY id")
    assert "### Plan" in text and "SCAN orders" in text
    assert "The plan reads all of orders." in text
    assert "CREATE INDEX ix_orders_status_id ON orders (status, id)" in text
    assert "## SQL review" in text


def test_without_query_permission_the_plan_is_refused_and_nothing_is_shown(world: World) -> None:
    grant_tables(world, "carol", "customers")
    text = content(world, "carol", "SELECT id FROM orders WHERE status = 'x'")
    assert "The plan was not read: you lack the QUERY permission on orders" in text
    assert "CREATE INDEX" not in text
    assert audited(world)[0][1] == ExecState.FAIL


def test_a_data_change_is_explained_without_running(world: World) -> None:
    world.may("QUERY", "alice")
    text = content(world, "alice", "UPDATE orders SET status = 'y' WHERE amount_cents = 5")
    assert "### Plan" in text and "CREATE INDEX ix_orders_amount_cents" in text
    with world.store.session() as s:
        assert s.scalar(select(SqlAudit.sql_type).order_by(SqlAudit.audit_id.desc())) == "EXPLAIN"


def test_a_statement_that_does_not_parse_points_to_fix(world: World) -> None:
    world.may("QUERY", "alice")
    text = content(world, "alice", "SELECT id FROM orders WHERE")
    assert "Does not parse" in text and "FixSqlByMetaAgent" in text
    assert audited(world) == []


def test_schema_changes_are_not_explained(world: World) -> None:
    world.may("QUERY", "alice")
    assert "Not explained" in content(world, "alice", "CREATE INDEX ix ON orders (status)")
    assert audited(world) == []


def test_full_scans_read_from_each_engines_plan() -> None:
    assert full_scans(
        "mysql", [{"table": "o", "type": "ALL"}, {"table": "c", "type": "eq_ref"}]
    ) == ["o"]
    assert full_scans(
        "postgresql",
        [{"QUERY PLAN": "Hash Join"}, {"QUERY PLAN": "  ->  Seq Scan on orders o"}],
    ) == ["orders"]
    assert full_scans(
        "sqlite",
        [{"detail": "SCAN orders"}, {"detail": "SCAN c USING INDEX ix"}, {"detail": "SEARCH x"}],
    ) == ["orders"]
