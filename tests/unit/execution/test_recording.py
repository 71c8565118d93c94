"""What recording an execution counts in /metrics: the rows a ticket's statements changed,
by ticket kind, once each, whether they ran whole, in chunks, or committed before a crash."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from opendms.identity.secrets import SecretBox
from opendms.store.db import Store
from opendms.store.models import Order
from opendms.targets.demo import ensure_demo_target
from opendms.targets.pace import Pace
from opendms.telemetry import metrics
from tests.approval_world import World
from tests.unit.execution import test_chunked_run as chunked
from tests.unit.execution import test_run as run


@pytest.fixture
def world(store: Store, box: SecretBox, tmp_path: Path) -> World:
    return World.build(store, box, tmp_path / "targets")


@pytest.fixture
def target(world: World, tmp_path: Path) -> Path:
    return ensure_demo_target(tmp_path / "targets")  # made by the world: only its path


def changed(kind: str) -> float:
    return metrics.REGISTRY.get_sample_value("opendms_rows_changed_total", {"kind": kind}) or 0.0


def plugin_type(world: World, order_id: int) -> str:
    with world.store.session() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return order.plugin_type


def test_the_rows_of_each_statement_are_counted_by_ticket_kind(world: World) -> None:
    order_id = run.approved(world, run.TWO, EstimateAffectRows=3)
    kind = plugin_type(world, order_id)
    before = changed(kind)
    run.start(world, order_id)
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert changed(kind) - before == 3


def test_a_statement_committed_before_a_crash_is_counted_once(world: World) -> None:
    order_id = run.approved(world, run.BUMP)
    kind = plugin_type(world, order_id)
    before = changed(kind)
    job_id = run.start(world, order_id)
    with pytest.raises(RuntimeError):  # committed on the target, never recorded
        run.step_by_hand(world, order_id, job_id, run.lost_after_reading(world))
    assert changed(kind) == before
    world.run_jobs()  # recorded from its marker
    assert changed(kind) - before == 1


def test_a_chunked_statement_counts_each_row_once_across_its_chunks(
    world: World, target: Path
) -> None:
    world.means = dataclasses.replace(world.means, pace=Pace(first_chunk_rows=7, max_chunk_rows=7))
    world.rebuild_runner()
    rows = len(chunked.query(target, "SELECT id FROM orders"))
    order_id = chunked.approved(world, chunked.BUMP_ALL)
    kind = plugin_type(world, order_id)
    before = changed(kind)
    chunked.start(world, order_id)
    world.run_jobs()
    assert world.status(order_id) == "success"
    assert chunked.the_detail(world, order_id).affect_rows == rows > 7  # many chunks
    assert changed(kind) - before == rows
