"""Issue 17: every statement kind a data change runs, with and without backupData, on
MariaDB (as itself, as a MySQL without RETURNING under autoinc lock modes 1 and 2) and
PostgreSQL. Each either runs, and with a backup its rollback script restores the table
exactly, or the precheck names it as one that cannot be backed up (NO_BACKUP, before
approval) and ExecuteDataCorrect with backupData refuses the ticket before anything is
queued. No case fails after it was accepted for execution."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from opendms.errors import DmsError, ErrorCode
from opendms.execution import files
from opendms.execution import service as execution
from opendms.precheck import service as precheck
from opendms.store.models import Order, PrecheckStatement, SqlJob
from tests.integration.execution.test_execute_servers import Target, _fill, target

pytestmark = pytest.mark.integration
__all__ = ["target"]  # the fixture, shared with test_execute_servers

UPSERT = {
    "mariadb": "INSERT INTO acct (id, n) VALUES (1, 9) ON DUPLICATE KEY UPDATE n = 9",
    "postgresql": "INSERT INTO acct (id, n) VALUES (1, 9) ON CONFLICT (id) DO UPDATE SET n = 9",
}
# kind -> (statement, the rows it changes); acct holds ids 1..7
STATEMENTS = {
    "insert-auto-keys": ("INSERT INTO acct (note, n) VALUES ('a', 1), ('b', 2)", 2),
    "insert-given-keys": ("INSERT INTO acct (id, note, n) VALUES (100, 'x', 1), (101, 'y', 2)", 2),
    "insert-select": ("INSERT INTO acct (note, n) SELECT note, n + 10 FROM acct WHERE id <= 3", 3),
    "update": ("UPDATE acct SET note = 'changed', n = n + 1 WHERE id % 2 = 0", 3),
    "delete": ("DELETE FROM acct WHERE id > 5", 2),
    "upsert": ("", 1),
    "replace": ("REPLACE INTO acct (id, note, n) VALUES (1, 'r', 5)", 1),
}
# What cannot be backed up, per way of seeing the server
REFUSED = {
    "mariadb": {"upsert", "replace"},
    "mysql-range": {"upsert", "replace"},
    "mysql-interleaved": {"upsert", "replace", "insert-auto-keys", "insert-select"},
    "postgresql": {"upsert"},
}


def _reset(t: Target) -> None:
    with t.conn.cursor() as cur:
        cur.execute("DELETE FROM acct")
        _fill(cur, "%s")


def _case(t: Target, kind: str, backup: bool) -> None:
    sql, rows = STATEMENTS[kind]
    sql = sql or UPSERT[t.engine]
    w, before = t.world, t.rows()
    order_id = w.file(sql, EstimateAffectRows=rows)
    with w.store.session() as s:
        order = s.get_one(Order, order_id)
        assert precheck.shortfall(s, order) is None, (kind, precheck.steps(s, order_id))
        (found,) = s.scalars(
            select(PrecheckStatement).where(PrecheckStatement.order_id == order_id)
        )
        named = [f for f in found.findings if f["code"] == "NO_BACKUP"]
    refused = kind in REFUSED[t.variant]
    assert bool(named) == refused, (kind, named)
    w.submit(order_id)
    assert w.status(order_id) == "Approved"
    plan = execution.ExecutionPlan(backup=backup)
    if refused and backup:
        with pytest.raises(DmsError) as err, w.store.session() as s:
            execution.execute(s, w.as_("alice"), order_id, plan)
        assert err.value.code == ErrorCode.INVALID_PARAMETER
        assert "backupData: statement 1 in " in err.value.message, err.value.message
        assert w.status(order_id) == "Approved" and t.rows() == before
        return
    with w.store.session() as s:
        execution.execute(s, w.as_("alice"), order_id, plan)
    w.run_jobs()
    with w.store.session() as s:
        job = s.scalars(select(SqlJob).where(SqlJob.order_id == order_id)).one()
    assert (w.status(order_id), job.status) == ("success", "SUCCESS"), (kind, job.log)
    assert t.rows() != before, kind
    if backup:
        script = "".join(files.rollback_script(w.store, w.means, job.sql_job_id))
        t.apply(script)
        assert t.rows() == before, (kind, script)
    else:
        _reset(t)
        assert t.rows() == before


@pytest.mark.parametrize("target", sorted(REFUSED), indirect=True)
def test_every_statement_kind_runs_and_rolls_back_or_is_refused_before_approval(
    target: Target,
) -> None:
    kinds = [k for k in STATEMENTS if target.engine == "mariadb" or k != "replace"]
    for kind in kinds:
        for backup in (True, False):
            _case(target, kind, backup)
