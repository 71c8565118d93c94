"""A schema design ticket (NDDL) on the SQLite demo target: what UpdateSchemaDesign refuses,
the comparison (the script tried in memory), the base stage's run, the submission gate,
stages from the rule set, and who may run or compare what."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from opendms.catalog import instances
from opendms.errors import DmsError
from opendms.identity.secrets import SecretBox
from opendms.rulebook import rule_sets
from opendms.store.models import Database, Instance, Order, SchemaDesign
from opendms.structure import design
from opendms.targets.base import TargetPolicy
from opendms.tickets import service as tickets
from tests.approval_world import World

DESIGN = (
    "ALTER TABLE customers ADD COLUMN nickname VARCHAR(100);\n"
    "CREATE INDEX idx_customers_nickname ON customers (nickname)"
)


@pytest.fixture
def world(world: World) -> World:
    world.set_env("dev")
    return world.free_of_approval("NDDL")


def _ticket(world: World, who: str = "alice", **param: object) -> int:
    with world.store.session() as s:
        given = {"Title": "emails", "DbId": world.db_id, **param}
        return tickets.create_order(s, world.as_(who), "NDDL", given, comment="d").order_id


def _update(world: World, order_id: int, script: str, who: str = "alice") -> None:
    with world.store.session() as s:
        design.update_design(s, world.as_(who), order_id, script)


def _states(world: World, order_id: int) -> list[str]:
    with world.store.session() as s:
        view = design.detail(s, world.as_("alice"), order_id)
        return [v.state for v in view.stages]


@pytest.mark.parametrize(
    ("script", "says"),
    [
        (
            "UPDATE customers SET name = 'x' WHERE id = 1",
            "is UPDATE: a schema design holds only DDL",
        ),
        ("ALTER TABLE main.customers ADD COLUMN x INT", "with its schema"),
        ("ALTER TABLE customers ADD COLUMN", "statement 1"),
        ("CREATE TABLE customers_copy AS SELECT * FROM customers", "CREATE_TABLE_AS_SELECT"),
    ],
)
def test_a_design_that_cannot_run_is_refused_naming_the_statement(
    world: World, script: str, says: str
) -> None:
    order_id = _ticket(world)
    with pytest.raises(DmsError, match=says):
        _update(world, order_id, script)
    with world.store.session() as s:
        assert s.get(SchemaDesign, order_id) is None  # nothing was saved


def test_only_the_committer_with_the_right_to_change_gives_the_design(world: World) -> None:
    order_id = _ticket(world)
    with pytest.raises(DmsError, match="Only the committer"):
        _update(world, order_id, DESIGN, who="dba")
    unprivileged = _ticket(world, who="carol")
    with pytest.raises(DmsError, match="CORRECT"):
        _update(world, unprivileged, DESIGN, who="carol")


def test_the_base_runs_first_then_the_ticket_goes_for_approval(world: World) -> None:
    order_id = _ticket(world)
    _update(world, order_id, DESIGN)
    assert _states(world, order_id) == ["COMPARING"]
    world.run_jobs()
    assert _states(world, order_id) == ["PENDING"]
    with pytest.raises(DmsError, match="base database"):
        world.submit(order_id)
    with world.store.session() as s:
        design.execute_stage(s, world.as_("alice"), order_id, world.db_id)
    world.run_jobs()
    assert _states(world, order_id) == ["EQUAL"]
    assert world.status(order_id) == "new"
    world.submit(order_id)
    # approved, with every stage (its base alone) having the design: nothing is left to run
    assert world.status(order_id) == "success"
    with world.store.session() as s, pytest.raises(DmsError, match="only a new ticket"):
        design.update_design(s, world.as_("alice"), order_id, DESIGN)


def test_a_statement_the_database_refuses_fails_the_comparison(world: World) -> None:
    order_id = _ticket(world)
    # SQLite adds no PRIMARY KEY column to a table
    _update(world, order_id, "ALTER TABLE customers ADD COLUMN nick INTEGER PRIMARY KEY")
    world.run_jobs()
    with world.store.session() as s:
        found = s.get_one(SchemaDesign, order_id)
        assert found.state == "FAILED"
        assert "statement 1" in found.message
    assert _states(world, order_id) == ["FAILED"]
    with world.store.session() as s, pytest.raises(DmsError, match="cannot run the design"):
        design.execute_stage(s, world.as_("alice"), order_id, world.db_id)


def _register(world: World, box: SecretBox, tmp_path: Path, env: str) -> int:
    """A copy of the demo file registered as an ``env`` instance: its one database (``main``,
    named as the world's) is the DbId returned."""
    path = tmp_path / "targets" / env / "demo.db"
    path.parent.mkdir(parents=True)
    with world.store.session() as s:
        base = s.get_one(Instance, world.instance_id)
        path.write_bytes(Path(base.host).read_bytes())
        spec = instances.InstanceSpec(
            instance_type="sqlite", host=str(path), env_type=env, alias=env
        )
        policy = TargetPolicy("", tmp_path / "targets")
        inst = instances.register_instance(s, box, policy, world.tid, spec, actor=None)
        db = s.scalars(select(Database).where(Database.instance_id == inst.instance_id)).one()
        return db.db_id


def test_later_environments_are_stages_as_the_rule_set_orders_them(
    world: World, box: SecretBox, tmp_path: Path
) -> None:
    world.means = replace(world.means, targets=TargetPolicy("", tmp_path / "targets"))
    world.rebuild_runner()
    product = _register(world, box, tmp_path, "product")
    test = _register(world, box, tmp_path, "test")
    _register(world, box, tmp_path, "pre")  # no stage of the default order
    order_id = _ticket(world)

    def stages() -> list[int]:
        with world.store.session() as s:
            order = s.get_one(Order, order_id)
            return [st.db.db_id for st in design.stages_of(s, order)]

    assert stages() == [world.db_id, test, product]
    with world.store.session() as s:
        rule_sets.load(
            s,
            world.tid,
            "free",
            "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
            "schema_design: {stages: [dev, product]}\n",
        )
    assert stages() == [world.db_id, product]
    _update(world, order_id, DESIGN)
    world.run_jobs()
    assert _states(world, order_id) == ["PENDING", "PENDING"]
    with world.store.session() as s, pytest.raises(DmsError, match="approved"):
        design.execute_stage(s, world.as_("alice"), order_id, product)
    with world.store.session() as s, pytest.raises(DmsError, match="not a stage"):
        design.execute_stage(s, world.as_("alice"), order_id, test)
