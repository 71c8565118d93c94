"""DC_CHUNK tickets on the SQLite demo target: precheck, execution chunk by chunk, progress,
pause and restart, windows, and what a crash between chunks leaves."""

from __future__ import annotations

import dataclasses
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.execution import service as execution
from opendms.execution.chunked import Progress
from opendms.identity.secrets import SecretBox
from opendms.precheck import service as precheck
from opendms.store.db import Store
from opendms.store.models import Job, Order, SqlJob
from opendms.targets.demo import ensure_demo_target
from opendms.targets.pace import Pace
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World
from tests.unit.execution.test_chunked_steer import the_detail

BUMP_ALL = "UPDATE orders SET amount_cents = amount_cents + 1 WHERE 1=1"


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    w = World.build(store, box, tmp_path / "targets")
    # tiny chunks, so a demo table takes many
    w.means = dataclasses.replace(w.means, pace=Pace(first_chunk_rows=7, max_chunk_rows=7))
    w.rebuild_runner()
    return w


@pytest.fixture
def target(world: World, tmp_path: Path) -> Path:
    return ensure_demo_target(tmp_path / "targets")


def query(target: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(target)) as db:
        return db.execute(sql).fetchall()


def approved(world: World, sql: str) -> int:
    order_id = world.file(sql, kind="DC_CHUNK")
    wf = world.submit(order_id)
    world.act(wf, "owen", "AGREE")
    world.act(wf, "dba", "AGREE")
    assert world.status(order_id) == "Approved"
    return order_id


def start(world: World, order_id: int, **plan: Any) -> int:
    with world.store.session() as s:
        return execution.execute(
            s, world.as_("alice"), order_id, execution.checked_plan(**plan)
        ).job_id


def test_a_chunked_update_changes_every_row_once(world: World, target: Path) -> None:
    before = query(target, "SELECT id, amount_cents FROM orders ORDER BY id")
    order_id = approved(world, BUMP_ALL)
    start(world, order_id)
    world.run_jobs()
    after = query(target, "SELECT id, amount_cents FROM orders ORDER BY id")
    assert after == [(i, a + 1) for i, a in before]
    assert world.status(order_id) == "success"
    detail = the_detail(world, order_id)
    progress = Progress.load(detail.progress)
    assert detail.affect_rows == len(before)
    assert progress.state == "DONE"
    assert progress.chunks >= len(before) // 7
    with world.store.session() as s:
        job = s.scalars(select(SqlJob).where(SqlJob.order_id == order_id)).one()
        assert job.job_type == "FREE_LOCK_DML"
        assert job.status == "SUCCESS"


def test_the_precheck_refuses_what_cannot_be_chunked(world: World) -> None:
    order_id = world.file(
        "UPDATE orders SET status = 'x' WHERE id IN (SELECT id FROM customers)", kind="DC_CHUNK"
    )
    with world.store.session() as s:
        steps = {v.step: v for v in precheck.steps(s, order_id)}
    assert steps["SQL_TYPE_CHECK"].status == "FAIL"
    assert "NOT_CHUNKABLE" in steps["SQL_TYPE_CHECK"].tip


def test_a_paused_execution_says_so_and_closing_the_ticket_cancels_it(world: World) -> None:
    order_id = approved(world, BUMP_ALL)
    job_id = start(world, order_id)
    with world.store.session() as s:
        execution.pause(s, world.as_("alice"), order_id, "ALL", None)
    world.run_jobs()
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None and tickets.status_desc(s, order) == "Execution paused"
        lifecycle.close(s, world.as_("alice"), order_id, "not needed after all")
    with world.store.session() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.state == "cancelled"
