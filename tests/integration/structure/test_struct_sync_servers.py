"""Structure sync (TABLE_SYNC) through the services on real MariaDB and PostgreSQL: the
precheck compares the live source and target and reviews the DDL, approval, execution on the
target, and the target's tables read back equal to the source's; a target changed after the
comparison is not changed blindly."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from opendms.actions import data_correct
from opendms.approvals import flow
from opendms.catalog import instances, permissions, queries
from opendms.errors import DmsError
from opendms.execution import run, run_ddl
from opendms.execution import service as execution
from opendms.execution.online import OnlineProgress, OnlineStatus
from opendms.identity.secrets import SecretBox
from opendms.schema import render
from opendms.store.db import Store
from opendms.store.models import (
    Database,
    Instance,
    PrecheckStep,
    SchemaPlan,
    SqlJob,
    SqlJobDetail,
    utcnow,
)
from opendms.store.states import JobState
from opendms.structure import service as structure
from opendms.targets.pace import Pace
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets
from tests.approval_world import World
from tests.unit.execution.test_run import step_by_hand

pytestmark = pytest.mark.integration

SOURCE = {
    "mariadb": [
        "CREATE TABLE acct (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200) NOT NULL "
        "DEFAULT '' COMMENT 'what it is', amount DECIMAL(12,2), KEY ix_note (note)) "
        "ENGINE=InnoDB COMMENT='accounts'",
        "CREATE TABLE audit (id BIGINT PRIMARY KEY, acct_id BIGINT, msg TEXT, "
        "CONSTRAINT fk_audit_acct FOREIGN KEY (acct_id) REFERENCES acct (id)) ENGINE=InnoDB",
    ],
    "postgresql": [
        "CREATE TABLE {s}.acct (id BIGSERIAL PRIMARY KEY, note VARCHAR(200) NOT NULL "
        "DEFAULT '', amount NUMERIC(12,2))",
        "CREATE INDEX ix_note ON {s}.acct (note)",
        "COMMENT ON COLUMN {s}.acct.note IS 'what it is'",
        "CREATE TABLE {s}.audit (id BIGINT PRIMARY KEY, acct_id BIGINT, msg TEXT, "
        "CONSTRAINT fk_audit_acct FOREIGN KEY (acct_id) REFERENCES {s}.acct (id))",
    ],
}
TARGET = {
    "mariadb": [
        "CREATE TABLE acct (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(50)) ENGINE=InnoDB",
        "INSERT INTO acct (note) VALUES ('a'), ('b'), ('c')",
    ],
    "postgresql": [
        "CREATE TABLE {s}.acct (id BIGSERIAL PRIMARY KEY, note VARCHAR(50))",
        "INSERT INTO {s}.acct (note) VALUES ('a'), ('b'), ('c')",
    ],
}


@dataclass
class Pair:
    world: World
    engine: str
    conn: Any
    source_db: int
    target_db: int
    target_schema: str

    def run(self, statements: list[str], schema: str) -> None:
        with self.conn.cursor() as cur:
            if self.engine == "mariadb":
                cur.execute(f"USE `{schema}`")
            for st in statements:
                cur.execute(st.format(s=schema))


@pytest.fixture(params=["mariadb", "postgresql"])
def pair(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[Pair]:
    engine = request.param
    other = f"opendms_t_{uuid.uuid4().hex[:12]}"

    def prepare(conn: Any) -> None:
        with conn.cursor() as cur:
            if engine == "mariadb":
                cur.execute(f"CREATE DATABASE `{other}`")
            else:
                cur.execute(f'CREATE SCHEMA "{other}"')

    with World.on_server(engine, store, box, tmp_path, prepare) as (world, name, conn):
        try:
            source_schema = name if engine == "mariadb" else "public"
            with store.session() as s:
                target_db = s.scalars(
                    select(Database.db_id).where(
                        Database.instance_id == world.instance_id, Database.schema_name == other
                    )
                ).one()
            found = Pair(world, engine, conn, world.db_id, target_db, other)
            found.run(SOURCE[engine], source_schema)
            found.run(TARGET[engine], other)
            world.may("CORRECT", "alice")
            with store.session() as s:
                permissions.grant(
                    s,
                    world.tid,
                    world.users["alice"].user_id,
                    permissions.GrantTarget("DATABASE", world.instance_id, target_db),
                    "CORRECT",
                    utcnow() + timedelta(days=1),
                )
            yield found
        finally:
            with conn.cursor() as cur:
                if engine == "mariadb":
                    cur.execute(f"DROP DATABASE IF EXISTS `{other}`")


def _file(p: Pair, **extra: Any) -> int:
    with p.world.store.session() as s:
        param = {"Source": {"DbId": p.source_db}, "Target": {"DbId": p.target_db}, **extra}
        order = tickets.create_order(s, p.world.as_("alice"), "TABLE_SYNC", param, comment="sync")
        order_id = order.order_id
    p.world.run_jobs()
    return order_id


def _steps(p: Pair, order_id: int) -> dict[str, tuple[str, str]]:
    with p.world.store.session() as s:
        return {
            st.step: (str(st.status), st.user_tip)
            for st in s.scalars(select(PrecheckStep).where(PrecheckStep.order_id == order_id))
        }


def _definitions(p: Pair, db_id: int) -> dict[str, Any]:
    with p.world.store.session() as s:
        db, inst = queries.get_database_on(s, p.world.tid, db_id)
    return p.world.means.connector(inst).definitions((db.catalog_name, db.schema_name))


def test_the_target_ends_equal_to_the_source(pair: Pair) -> None:
    order_id = _file(pair)
    steps = _steps(pair, order_id)
    assert all(status == "SUCCESS" for status, _ in steps.values()), steps
    with pair.world.store.session() as s:
        plan = s.scalars(select(SchemaPlan).where(SchemaPlan.order_id == order_id)).one()
        kinds = {t["target"]: t["compare_type"] for t in plan.tables}
    assert kinds == {"acct": "ALTER_TABLE", "audit": "CREATE_TABLE"}
    pair.world.free_of_approval("TABLE_SYNC")
    pair.world.execute(order_id)
    assert pair.world.status(order_id) == "success", _log(pair, order_id)
    # the reads of an execution (the console's, ListDBTaskSQLJobDetail's) take a DDL
    # statement's online progress for what it is, not for a chunked statement's
    with pair.world.store.session() as s:
        run = execution.progress(s, pair.world.as_("alice"), order_id)
        assert run is not None and run.done == run.statements > 0
        details = s.scalars(
            select(SqlJobDetail).join(SqlJob).where(SqlJob.order_id == order_id)
        ).all()
        assert all(OnlineProgress.stored(d.progress) for d in details)
        shown = [data_correct._detail(d, pair.target_db) for d in details]
        assert all("ChunkState" not in row and row["Status"] == "SUCCESS" for row in shown)
    source, target = _definitions(pair, pair.source_db), _definitions(pair, pair.target_db)
    assert sorted(target) == ["acct", "audit"]
    for name in source:
        assert render.differences(source[name], target[name], pair.engine) == []
    quote = "`" if pair.engine == "mariadb" else '"'
    with pair.conn.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {quote}{pair.target_schema}{quote}.acct")
        assert cur.fetchone()[0] == 3


def test_the_job_status_says_compared_only_once_the_precheck_ended(pair: Pair) -> None:
    """GetStructSyncJobDetail's COMPARE_FINISH is what a DMS client submits on: while the
    precheck still checks the compared DDL, a submission would be refused, so it says
    COMPARING until then."""
    order_id = _file(pair)
    alice = pair.world.as_("alice")
    with pair.world.store.session() as s:
        assert structure.sync_job(s, alice, order_id).status == "COMPARE_FINISH"
        job = tickets.latest_job(s, order_id, "precheck")
        assert job is not None
        job.state = JobState.RUNNING  # as it is between its comparison and its last check
    with pair.world.store.session() as s:
        assert structure.sync_job(s, alice, order_id).status == "COMPARING"
        with pytest.raises(DmsError, match="precheck is still running"):
            flow.submit(s, alice, order_id)


def test_a_target_changed_after_the_comparison_is_not_changed_blindly(pair: Pair) -> None:
    order_id = _file(pair)
    pair.world.free_of_approval("TABLE_SYNC")
    pair.world.submit(order_id)
    sneaky = "ALTER TABLE acct ADD COLUMN sneaky INT"
    pair.run(
        [sneaky if pair.engine == "mariadb" else sneaky.replace("acct", "{s}.acct")],
        pair.target_schema,
    )
    with pair.world.store.session() as s:
        execution.execute(s, pair.world.as_("alice"), order_id, execution.ExecutionPlan())
    pair.world.run_jobs()
    assert pair.world.status(order_id) == "processing"
    assert "changed since it was compared" in _log(pair, order_id)
    assert "sneaky" in _log(pair, order_id)


def _log(p: Pair, order_id: int) -> str:
    with p.world.store.session() as s:
        rows = s.scalars(
            select(SqlJobDetail.log)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(SqlJob.order_id == order_id)
        ).all()
        jobs = s.scalars(select(SqlJob.log).where(SqlJob.order_id == order_id)).all()
    return "\n".join([*rows, *jobs])


WIDEN = {
    "mariadb": (
        ["CREATE TABLE big (id INT PRIMARY KEY, n BIGINT NOT NULL, note VARCHAR(20))"],
        [
            "CREATE TABLE big (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(20)) ENGINE=InnoDB",
            "INSERT INTO big SELECT seq, seq * 7, 'r' FROM seq_1_to_20000",
        ],
    ),
    "postgresql": (
        ["CREATE TABLE {s}.big (id INT PRIMARY KEY, n BIGINT NOT NULL, note VARCHAR(20))"],
        [
            "CREATE TABLE {s}.big (id INT PRIMARY KEY, n INT NOT NULL, note VARCHAR(20))",
            "INSERT INTO {s}.big SELECT g, g * 7, 'r' FROM generate_series(1, 20000) g",
        ],
    ),
}


def _widening(pair: Pair) -> int:
    """A sync that widens big.n on 20,000 rows with a shadow copy (DdlOnline 2), approved and
    started, run until its copy is under way."""
    source, target = WIDEN[pair.engine]
    pair.run(source, "public" if pair.engine == "postgresql" else _source_schema(pair))
    pair.run(target, pair.target_schema)
    with pair.world.store.session() as s:
        inst = s.get_one(Instance, pair.world.instance_id)
        inst.ddl_online = 2
    pair.world.tune(step_seconds=0.02)
    pair.world.means = replace(
        pair.world.means, pace=Pace(first_chunk_rows=500, max_chunk_rows=500)
    )
    pair.world.rebuild_runner()
    order_id = _file(pair, TableInfoList=[{"SourceTableName": "big"}])
    pair.world.free_of_approval("TABLE_SYNC")
    pair.world.submit(order_id)
    with pair.world.store.session() as s:
        job = execution.execute(s, pair.world.as_("alice"), order_id, execution.ExecutionPlan())
        job_id = job.job_id
    for _ in range(200):  # step by step, as a runner would (a runner runs many at once)
        step_by_hand(pair.world, order_id, job_id)
        progress = _online(pair, order_id)
        if progress.copy_count > 0 and progress.status == OnlineStatus.RUNNING:
            return order_id
    raise AssertionError(f"the copy never got under way: {_online(pair, order_id)}")


def _source_schema(pair: Pair) -> str:
    with pair.world.store.session() as s:
        return s.get_one(Database, pair.source_db).schema_name


def _online(pair: Pair, order_id: int) -> OnlineProgress:
    with pair.world.store.session() as s:
        detail = s.scalars(
            select(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .where(SqlJob.order_id == order_id)
        ).one()
        return OnlineProgress.loads(detail.progress or None)


def _tables_and_triggers(pair: Pair) -> tuple[set[str], int]:
    with pair.conn.cursor() as cur:
        if pair.engine == "mariadb":
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (pair.target_schema,),
            )
            tables = {str(r[0]) for r in cur.fetchall()}
            cur.execute(
                "SELECT count(*) FROM information_schema.triggers WHERE event_object_schema = %s",
                (pair.target_schema,),
            )
        else:
            cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = %s", (pair.target_schema,)
            )
            tables = {str(r[0]) for r in cur.fetchall()}
            cur.execute(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = %s AND NOT t.tgisinternal",
                (pair.target_schema,),
            )
        return tables, int(cur.fetchone()[0])


def _n_type(pair: Pair) -> str:
    return _definitions(pair, pair.target_db)["big"].column("n").type  # type: ignore[union-attr]


def test_a_sync_pauses_between_chunks_and_goes_on_where_it_stopped(pair: Pair) -> None:
    order_id = _widening(pair)
    with pair.world.store.session() as s:
        execution.pause(s, pair.world.as_("alice"), order_id, "ALL", None)
    pair.world.run_jobs()
    paused = _online(pair, order_id)
    assert paused.copy_count < 20000 and pair.world.status(order_id) == "processing"
    assert _n_type(pair) in ("int", "integer")  # not swapped while paused
    with pair.world.store.session() as s:
        execution.restart(s, pair.world.as_("alice"), order_id, "ALL", None)
    pair.world.run_jobs()
    assert pair.world.status(order_id) == "success", _log(pair, order_id)
    assert _online(pair, order_id).status == OnlineStatus.SUCCESS
    assert _n_type(pair) == "bigint"
    quote = "`" if pair.engine == "mariadb" else '"'
    with pair.conn.cursor() as cur:
        cur.execute(f"SELECT count(*), sum(n) FROM {quote}{pair.target_schema}{quote}.big")
        assert tuple(map(int, cur.fetchone())) == (20000, 7 * 20000 * 20001 // 2)
    assert _tables_and_triggers(pair)[1] == 0


def test_a_sync_closed_mid_copy_leaves_the_target_as_it_was(pair: Pair) -> None:
    order_id = _widening(pair)
    tables_before = {"acct", "big"}
    with pair.world.store.session() as s:
        lifecycle.close(s, pair.world.as_("alice"), order_id, "not now")
    pair.world.run_jobs()
    assert pair.world.status(order_id) == "closed"
    assert _online(pair, order_id).status == OnlineStatus.CANCELED
    assert _tables_and_triggers(pair) == (tables_before, 0)
    assert _n_type(pair) in ("int", "integer")


def test_the_tables_are_read_when_a_statement_starts_not_at_every_step(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The drift check and a statement's plan read the live tables once, when the statement
    starts; the steps of a long copy go on from the engine's record on the target."""
    quote = "`" if pair.engine == "mariadb" else '"'
    with pair.conn.cursor() as cur:
        cur.execute(
            f"INSERT INTO {quote}{pair.target_schema}{quote}.acct (note) "
            "SELECT 'n' FROM generate_series(1, 2000)"
            if pair.engine == "postgresql"
            else f"INSERT INTO `{pair.target_schema}`.acct (note) SELECT 'n' FROM seq_1_to_2000"
        )
    world = pair.world
    with world.store.session() as s:
        instances.update_instance(
            s,
            world.means.secrets,
            world.means.targets,
            world.tid,
            world.instance_id,
            instances.InstanceSpec(ddl_online=2),
            actor=None,
        )
    # a chunk of 100 rows a step: a shadow copy (MariaDB, DdlOnline 2) takes many steps
    world.means = replace(world.means, pace=Pace(first_chunk_rows=100, max_chunk_rows=100))
    world.tune(step_seconds=0.0)
    reads: list[int] = []
    steps: list[int] = []
    real_read, real_stride = run_ddl._read, run.ddl_stride

    def read(means: Any, unit: Any, names: list[str]) -> Any:
        reads.append(unit.pending[0].number)
        return real_read(means, unit, names)

    def stride(work: Any, unit: Any, *rest: Any) -> Any:
        steps.append(unit.pending[0].number)
        return real_stride(work, unit, *rest)

    monkeypatch.setattr(run_ddl, "_read", read)
    monkeypatch.setattr(run, "ddl_stride", stride)
    # (audit's foreign key is no shadow copy's work)
    order_id = _file(pair, TableInfoList=[{"SourceTableName": "acct"}])
    world.free_of_approval("TABLE_SYNC")
    world.execute(order_id)
    for _ in range(200):  # steps that asked to wait (none should) are run when due
        if world.status(order_id) != "processing":
            break
        time.sleep(0.05)
        world.run_jobs()
    assert world.status(order_id) == "success", _log(pair, order_id)
    assert reads == sorted(set(steps))  # once per statement, at its first step
    if pair.engine == "mariadb":
        assert len(steps) > len(reads) + 10, steps  # the copy took many steps


def test_statements_that_end_quickly_run_in_one_step(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each statement that ends within the step's time is followed by the next on the same
    connection, not left for the runner's next turn."""
    pair.world.tune(step_seconds=60.0)
    strides: list[int] = []
    real_stride = run.ddl_stride

    def stride(work: Any, unit: Any, *rest: Any) -> Any:
        strides.append(len(unit.pending))
        return real_stride(work, unit, *rest)

    monkeypatch.setattr(run, "ddl_stride", stride)
    order_id = _file(pair)
    with pair.world.store.session() as s:
        statements = s.scalars(select(SchemaPlan).where(SchemaPlan.order_id == order_id)).one()
        count = len(statements.statements)
    pair.world.free_of_approval("TABLE_SYNC")
    pair.world.execute(order_id)
    assert pair.world.status(order_id) == "success", _log(pair, order_id)
    assert count > 1 and strides == [count]
