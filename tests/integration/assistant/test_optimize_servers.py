"""OptimizeSqlByMetaAgent on real MariaDB and PostgreSQL: the plan comes from the live
server through the SQL console (refused without QUERY permission, audited), full scans are
read from each engine's plan, and the suggested index is one the server accepts and then
uses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.assistant import service
from opendms.assistant.optimize import optimize
from opendms.assistant.scope import scope_of
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import SqlAudit
from opendms.store.states import ExecState
from tests.approval_world import World

pytestmark = pytest.mark.integration

QUERY = "SELECT id, total FROM purchases WHERE buyer = 7 ORDER BY id"


def _fill(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE purchases (id INT PRIMARY KEY, buyer INT NOT NULL, total INT)")
        cur.executemany(
            "INSERT INTO purchases VALUES (%s, %s, %s)",
            [(i, i % 500, i * 3) for i in range(1, 5001)],
        )


@pytest.fixture(params=["mariadb", "postgresql"])
def world(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[tuple[World, Any]]:
    with World.on_server(request.param, store, box, tmp_path, _fill) as (world, _name, conn):
        if request.param == "postgresql":
            with conn.cursor() as cur:
                cur.execute("ANALYZE purchases")
        world.sync()
        yield world, conn


def report(world: World, who: str, sql: str = QUERY) -> Any:
    with world.store.session() as s:
        scope = scope_of(s, world.as_(who), world.db_id)
        return optimize(s, world.means, world.as_(who), scope, sql)


def test_the_live_plan_shows_the_full_scan_and_the_index_fixes_it(
    world: tuple[World, Any],
) -> None:
    w, conn = world
    w.may("QUERY", "alice")
    (st,) = report(w, "alice").statements
    assert st.plan is not None and st.plan.ran, st.plan
    assert st.plan.scans == ["purchases"], st.plan.rows
    (advice,) = st.indexes
    assert advice.columns == ("buyer", "id")
    with conn.cursor() as cur:
        cur.execute(advice.ddl)  # the server takes the suggestion as written
        if "psycopg" in type(conn).__module__:
            cur.execute("ANALYZE purchases")
    w.sync()
    (again,) = report(w, "alice").statements
    assert again.plan is not None and again.plan.scans == [], again.plan.rows
    assert again.indexes == []


def test_the_plan_is_read_as_the_caller_and_audited(world: tuple[World, Any]) -> None:
    w, _conn = world
    (st,) = report(w, "carol").statements
    assert st.plan is not None and not st.plan.ran
    assert "QUERY permission on purchases" in st.plan.message
    w.may("QUERY", "carol")
    with w.store.session() as s:
        text = service.optimize_sql(s, w.means, w.as_("carol"), w.db_id, QUERY).content
    assert "### Plan" in text and "CREATE INDEX" in text
    with w.store.session() as s:
        audit = [(a.sql_text, a.exec_state) for a in s.scalars(select(SqlAudit))]
    assert audit == [(f"EXPLAIN {QUERY}", ExecState.FAIL), (f"EXPLAIN {QUERY}", ExecState.SUCCESS)]
