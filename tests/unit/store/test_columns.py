"""The store's column types on SQLite: states stored as their exact values and read back as
enum members, JSON documents written compact and read back as dicts and lists."""

from __future__ import annotations

import pytest
from sqlalchemy import String, select, text

from opendms.identity import service as identity
from opendms.store.columns import State
from opendms.store.db import Store
from opendms.store.models import Base, Job, Order, SqlJob, SqlJobDetail
from opendms.store.states import JobState, OrderStatus


def raw(store: Store, sql: str) -> object:
    with store.engine.connect() as c:
        return c.execute(text(sql)).scalar()


@pytest.fixture
def order_id(store: Store) -> int:
    """A bare ticket row (no catalog behind it)."""
    with store.session() as s:
        tid = identity.create_tenant(s, "t").tid
        user = identity.register_user(s, None, tid, "1", roles="ADMIN")
        order = Order(tid=tid, plugin_type="DC_COMMON", committer_id=user.user_id, params="{}")
        s.add(order)
        s.flush()
        return order.order_id


# ------------------------------------------------------------------ states


def test_a_state_is_stored_as_its_exact_value_and_read_back_as_the_member(
    store: Store, order_id: int
) -> None:
    with store.session() as s:
        assert s.get_one(Order, order_id).status_code is OrderStatus.NEW  # the default
        s.get_one(Order, order_id).status_code = OrderStatus.APPROVED
    assert raw(store, f"SELECT status_code FROM orders WHERE order_id = {order_id}") == "Approved"
    with store.session() as s:
        found = s.scalars(select(Order).where(Order.status_code == OrderStatus.APPROVED)).one()
        assert found.status_code is OrderStatus.APPROVED
        assert f"{found.status_code}" == "Approved"


def test_a_filter_on_a_value_never_stored_matches_nothing(store: Store, order_id: int) -> None:
    with store.session() as s:  # the wire may ask for a state OpenDMS never writes
        assert s.scalars(select(Order).where(Order.status_code == "NOEXE")).all() == []
        assert s.scalars(select(Order).where(Order.status_code == "new")).one()


def test_a_stored_value_no_version_wrote_fails_loudly(store: Store, order_id: int) -> None:
    with store.engine.begin() as c:
        c.execute(text(f"UPDATE orders SET status_code = 'lost' WHERE order_id = {order_id}"))
    with store.session() as s, pytest.raises(ValueError, match="'lost' is not a valid"):
        s.get_one(Order, order_id)


def test_every_state_column_holds_every_value_of_its_enum() -> None:
    typed = [
        (table.name, column.name, column.type)
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, State)
    ]
    assert len(typed) >= 12
    for table, column, kind in typed:
        assert isinstance(kind.impl_instance, String)
        longest = max(len(member.value) for member in kind.enum)
        assert longest <= (kind.impl_instance.length or 0), (table, column)


# ------------------------------------------------------------------ JSON


def test_json_round_trips_and_is_stored_compact(store: Store, order_id: int) -> None:
    spec = {"start": None, "by": 7, "note": "größer", "keys": [1, "a", [2.5, True]]}
    with store.session() as s:
        job = Job(order_id=order_id, kind="execute", spec=spec)
        s.add(job)
        s.flush()
        job_id = job.job_id
    stored = raw(store, f"SELECT spec FROM jobs WHERE job_id = {job_id}")
    assert stored == '{"start":null,"by":7,"note":"größer","keys":[1,"a",[2.5,true]]}'
    assert raw(store, f"SELECT checkpoint FROM jobs WHERE job_id = {job_id}") == "{}"
    with store.session() as s:
        job = s.get_one(Job, job_id)
        assert (job.spec, job.checkpoint, job.state) == (spec, {}, JobState.QUEUED)


def test_json_written_by_hand_before_reads_the_same(store: Store, order_id: int) -> None:
    """Rows written while the columns were plain TEXT (spaced, ASCII-escaped) read as they
    always did."""
    with store.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO jobs (order_id, kind, spec, state, checkpoint, attempts, run_after,"
                " created_at, updated_at) VALUES (:o, 'reclaim', '{\"group\": 5}', 'queued',"
                " '{\"failure\": \"gr\\u00f6\\u00dfer\"}', 0, '2026-01-01', '2026-01-01',"
                " '2026-01-01')"
            ),
            {"o": order_id},
        )
    with store.session() as s:
        job = s.scalars(select(Job).where(Job.kind == "reclaim")).one()
        assert (job.spec, job.checkpoint) == ({"group": 5}, {"failure": "größer"})


def test_a_new_value_is_written_and_none_is_null(store: Store, order_id: int) -> None:
    with store.session() as s:
        sql_job = SqlJob(order_id=order_id, group_id=1, db_id=1, position=1, token="t")
        s.add(sql_job)
        s.flush()
        detail = SqlJobDetail(
            sql_job_id=sql_job.sql_job_id, number=1, sql_id=1, sql_text="x", sql_type="DELETE"
        )
        s.add(detail)
        s.flush()
        detail_id = detail.detail_id
    assert raw(store, f"SELECT backup IS NULL FROM sql_job_details WHERE detail_id = {detail_id}")
    with store.session() as s:
        detail = s.get_one(SqlJobDetail, detail_id)
        assert (detail.backup, detail.progress) == (None, {})
        detail.progress = {**detail.progress, "rows": 3}
        detail.backup = {"table": "b", "rows": 1}
    with store.session() as s:
        detail = s.get_one(SqlJobDetail, detail_id)
        assert (detail.backup, detail.progress) == ({"table": "b", "rows": 1}, {"rows": 3})
