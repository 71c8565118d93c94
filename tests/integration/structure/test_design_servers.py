"""A schema design (NDDL) carried from a dev database to a product one through the services,
on PostgreSQL (two catalogs registered as a dev and a product instance, each with its
``public``): the design is refused when it is not DDL, tried and compared, run on its base,
refused on product before approval, run there after it; both end with the design's shape."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from opendms.catalog import instances
from opendms.errors import DmsError
from opendms.identity.secrets import SecretBox
from opendms.schema import render
from opendms.store.db import Store
from opendms.store.models import Database, Instance
from opendms.structure import design
from opendms.tickets import service as tickets
from tests.approval_world import SERVERS, World
from tests.conftest import PG_ADMIN

pytestmark = pytest.mark.integration

TABLES = [
    "CREATE TABLE acct (id BIGSERIAL PRIMARY KEY, note VARCHAR(50) NOT NULL DEFAULT '')",
    "INSERT INTO acct (note) SELECT 'n' || g FROM generate_series(1, 500) g",
]
DESIGN = (
    "ALTER TABLE acct ADD COLUMN email VARCHAR(100);\n"
    "CREATE INDEX ix_acct_email ON acct (email);\n"
    "COMMENT ON COLUMN acct.email IS 'where to write';\n"
    "CREATE TABLE acct_tag (id BIGINT PRIMARY KEY, acct_id BIGINT NOT NULL, tag TEXT NOT NULL)"
)


@dataclass
class Stages:
    world: World
    base_db: int
    product_db: int
    base: Any
    product: Any


@pytest.fixture
def stages(store: Store, box: SecretBox, tmp_path: Path) -> Iterator[Stages]:
    product_name = f"opendms_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{product_name}"')
    try:
        with (
            psycopg.connect(
                f"host=127.0.0.1 port=5432 user=postgres dbname={product_name}", autocommit=True
            ) as product,
            World.on_server("postgresql", store, box, tmp_path, _made) as (world, _, base),
        ):
            _made(product)
            world.set_env("dev")
            world.free_of_approval("NDDL")
            with store.session() as s:
                spec = instances.InstanceSpec(
                    instance_type="postgresql",
                    host="127.0.0.1",
                    port=5432,
                    sid=product_name,
                    database_user="postgres",
                    env_type="product",
                    alias="product",
                    dba_user_id=world.users["dba"].user_id,
                )
                inst = instances.register_instance(s, box, SERVERS, world.tid, spec, actor=None)
                found = s.query(Database).filter_by(
                    instance_id=inst.instance_id, catalog_name=product_name, schema_name="public"
                )
                product_db = found.one().db_id
            yield Stages(world, world.db_id, product_db, base, product)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{product_name}" WITH (FORCE)')


def _made(conn: Any) -> None:
    for statement in TABLES:
        conn.execute(statement)


def _ticket(st: Stages) -> int:
    with st.world.store.session() as s:
        param = {"Title": "emails", "DbId": st.base_db}
        return tickets.create_order(s, st.world.as_("alice"), "NDDL", param, comment="d").order_id


def _stage_states(st: Stages, order_id: int) -> dict[int, str]:
    with st.world.store.session() as s:
        view = design.detail(s, st.world.as_("alice"), order_id)
        return {v.stage.db.db_id: v.state for v in view.stages}


def _definitions(st: Stages, db_id: int) -> dict[str, Any]:
    with st.world.store.session() as s:
        db = s.get_one(Database, db_id)
        inst = s.get_one(Instance, db.instance_id)
    return st.world.means.connector(inst).definitions((db.catalog_name, db.schema_name))


def test_a_design_goes_from_dev_to_product(stages: Stages) -> None:
    st, alice = stages, stages.world.as_("alice")
    order_id = _ticket(st)
    with st.world.store.session() as s, pytest.raises(DmsError, match=r"statement 2.*UPDATE"):
        design.update_design(
            s, alice, order_id, "ALTER TABLE acct ADD x INT;\nUPDATE acct SET note = ''"
        )
    with st.world.store.session() as s:
        design.update_design(s, alice, order_id, DESIGN)
    st.world.run_jobs()
    assert _stage_states(st, order_id) == {st.base_db: "PENDING", st.product_db: "PENDING"}
    with st.world.store.session() as s, pytest.raises(DmsError, match="base database"):
        st.world.submit(order_id)
    with st.world.store.session() as s, pytest.raises(DmsError, match="approved"):
        design.execute_stage(s, st.world.as_("admin"), order_id, st.product_db)
    with st.world.store.session() as s:
        design.execute_stage(s, alice, order_id, st.base_db)
    st.world.run_jobs()
    assert _stage_states(st, order_id) == {st.base_db: "EQUAL", st.product_db: "PENDING"}
    st.world.submit(order_id)
    assert st.world.status(order_id) == "Approved"
    with st.world.store.session() as s:
        design.execute_stage(s, alice, order_id, st.product_db)
    st.world.run_jobs()
    assert st.world.status(order_id) == "success"
    base, product = _definitions(st, st.base_db), _definitions(st, st.product_db)
    assert sorted(base) == sorted(product) == ["acct", "acct_tag"]
    for name in base:
        assert render.differences(base[name], product[name], "postgresql") == []
    assert product["acct"].column("email") is not None


def test_a_stage_that_drifted_runs_only_what_it_lacks(stages: Stages) -> None:
    st, alice = stages, stages.world.as_("alice")
    st.product.execute("ALTER TABLE acct ADD COLUMN email VARCHAR(100)")  # done by hand
    order_id = _ticket(st)
    with st.world.store.session() as s:
        design.update_design(s, alice, order_id, DESIGN)
    st.world.run_jobs()
    assert _stage_states(st, order_id)[st.product_db] == "DRIFT"
    with st.world.store.session() as s:
        view = design.detail(s, alice, order_id)
        (product,) = [v for v in view.stages if v.stage.db.db_id == st.product_db]
        assert product.plan is not None
        lacking = " ".join(product.plan.statements)
    assert "ADD COLUMN" not in lacking and "ix_acct_email" in lacking


def test_a_statement_the_server_refuses_fails_the_design_naming_it(stages: Stages) -> None:
    st, alice = stages, stages.world.as_("alice")
    order_id = _ticket(st)
    with st.world.store.session() as s:
        design.update_design(
            s,
            alice,
            order_id,
            "ALTER TABLE acct ADD COLUMN n INT;\nALTER TABLE acct ADD COLUMN n INT",
        )
    st.world.run_jobs()
    with st.world.store.session() as s:
        view = design.detail(s, alice, order_id)
        assert view.design is not None
        assert view.design.state == "FAILED"
        assert "statement 2" in view.design.message and "already exists" in view.design.message
    # nothing was left behind on the base: the try ran in a schema rolled back
    left = st.base.execute(
        "SELECT count(*) FROM pg_namespace WHERE nspname LIKE '\\_opendms\\_try\\_%'"
    ).fetchone()
    assert left == (0,)
    assert _definitions(st, st.base_db)["acct"].column("n") is None
