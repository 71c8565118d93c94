"""The same migrations build the same schema on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

from datetime import datetime

import pytest
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Text, column, insert, inspect, select, table, text
from sqlalchemy.orm import Session

from opendms.catalog import dba
from opendms.identity import service as identity
from opendms.store.db import MIGRATIONS, Store, StoreUnavailable
from opendms.store.models import Account, Base, Instance, Tenant, User

pytestmark = pytest.mark.integration


def test_migrations_create_the_model_schema(any_store_url: str) -> None:
    store = Store(any_store_url)
    try:
        store.migrate()
        store.migrate()  # running again is a no-op
        insp = inspect(store.engine)
        tables = set(insp.get_table_names()) - {"alembic_version"}
        assert tables == set(Base.metadata.tables)
        for name, table in Base.metadata.tables.items():
            assert {c["name"] for c in insp.get_columns(name)} == {c.name for c in table.columns}
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        store.dispose()


def test_sqlite_pragmas(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    store.dispose()


def test_unreachable_store_is_one_clear_line() -> None:
    store = Store("postgresql+psycopg://nobody:secretpw@127.0.0.1:1/none")
    with pytest.raises(StoreUnavailable) as info:
        store.migrate()
    message = str(info.value)
    assert "cannot open the metadata store" in message
    assert "secretpw" not in message
    assert "\n" not in message


def _old_user(s: Session, uid: str, roles: str) -> tuple[int, int]:
    """A tenant and one user of it, written as every revision since 0001 knew the identity
    tables: Core inserts of the columns they have always had (the models have grown since,
    e.g. 0016's password, which an ORM insert would name)."""
    tid = s.execute(insert(Tenant.__table__).values(name="t")).inserted_primary_key[0]
    s.execute(insert(Account.__table__).values(uid=uid))
    user_id = s.execute(
        insert(User.__table__).values(tid=tid, uid=uid, roles=roles)
    ).inserted_primary_key[0]
    return int(tid), int(user_id)


def test_0012_leaves_earlier_dba_assignments_unproven(any_store_url: str) -> None:
    """Who named an instance's DBA was not recorded before 0012, and a DBA could name itself:
    the upgrade keeps the DBA shown but gives them no DBA rights (catalog/dba.py)."""
    store = Store(any_store_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0011")
        with store.session() as s:  # what 0011 knew: no dba_assigned_by yet
            tid, dba_id = _old_user(s, "7", "DBA")
            s.execute(
                insert(Instance.__table__).values(
                    tid=tid, alias="old", instance_type="sqlite", host="/old", dba_user_id=dba_id
                )
            )
        store.migrate()
        with store.session() as s:
            inst = s.scalars(select(Instance)).one()
            assert (inst.dba_user_id, inst.dba_assigned_by) == (dba_id, None)
            assert dba.dba_of(inst) is None
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0011")
        assert "dba_assigned_by" not in {
            c["name"] for c in inspect(store.engine).get_columns("instances")
        }
    finally:
        store.dispose()


def test_sqlite_table_copies_keep_the_rows_that_refer_to_them(tmp_path) -> None:
    """0013 copies the jobs table on SQLite; with foreign keys on, dropping the old copy
    would have deleted every export file row (ON DELETE CASCADE)."""
    from opendms.store.models import ExportFile, Job, Order

    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.migrate("0012")
        with store.session() as s:
            tid, user_id = _old_user(s, "1", "USER")
            order = Order(tid=tid, plugin_type="DATA_EXPORT", committer_id=user_id, params="{}")
            s.add(order)
            s.flush()
            # Core, not the model: 0012's jobs table has fewer columns than today's.
            now = datetime(2026, 1, 1)
            s.execute(
                text(
                    "INSERT INTO jobs (order_id, kind, spec, state, checkpoint, attempts, "
                    "run_after, created_at, updated_at) "
                    "VALUES (:o, 'export', '{}', 'queued', '{}', 0, :t, :t, :t)"
                ),
                {"o": order.order_id, "t": now},
            )
            job_id = s.execute(text("SELECT max(job_id) FROM jobs")).scalar_one()
            s.add(
                ExportFile(
                    job_id=job_id,
                    order_id=order.order_id,
                    path="exports/1.zip",
                    file_name="x.zip",
                    file_type="CSV",
                    encoding="UTF8",
                    rows=1,
                    size_bytes=1,
                )
            )
        store.migrate()
        with store.session() as s:
            assert s.query(ExportFile).count() == 1
            s.add(Job(order_id=None, kind="upload"))  # what 0013 is for
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.dispose()


def test_0015_keeps_index_columns_as_a_list(any_store_url: str) -> None:
    """Before 0015 an index's columns were joined by commas; after it they are a JSON list
    in key order, and a downgrade joins them again."""
    from opendms.store.models import Database, DbIndex, DbTable

    store = Store(any_store_url)
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    # as 0014 knew the table: plain text, whatever the model says now
    indexes = table(
        "db_indexes",
        column("table_id"),
        column("name"),
        column("index_type"),
        column("columns", Text()),
        column("comment"),
    )
    try:
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0014")
        with store.session() as s:
            tid = identity.create_tenant(s, "t").tid
            inst_id = s.execute(
                insert(Instance.__table__).values(
                    tid=tid, alias="i", instance_type="sqlite", host="/x"
                )
            ).inserted_primary_key[0]
            db_id = s.execute(
                insert(Database.__table__).values(
                    instance_id=inst_id, tid=tid, catalog_name="c", schema_name="s"
                )
            ).inserted_primary_key[0]
            table_id = s.execute(
                insert(DbTable.__table__).values(db_id=db_id, name="t")
            ).inserted_primary_key[0]
            s.execute(
                insert(indexes),
                [
                    {
                        "table_id": table_id,
                        "name": "PRIMARY",
                        "index_type": "PRIMARY",
                        "columns": "b, a",
                        "comment": "",
                    },
                    {
                        "table_id": table_id,
                        "name": "empty",
                        "index_type": "NORMAL",
                        "columns": "",
                        "comment": "",
                    },
                ],
            )
        store.migrate()
        with store.session() as s:
            stored = {i.name: i.columns for i in s.scalars(select(DbIndex))}
            assert stored == {"PRIMARY": ["b", "a"], "empty": []}
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0014")
        with store.engine.connect() as conn:
            raw = {n: c for n, c in conn.execute(select(indexes.c.name, indexes.c.columns))}
            assert raw == {"PRIMARY": "b,a", "empty": ""}
    finally:
        store.dispose()
