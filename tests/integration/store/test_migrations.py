"""The same migrations build the same schema on SQLite and PostgreSQL, idempotently."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from opendms.store.db import Store, StoreUnavailable
from opendms.store.models import Base

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


def test_sqlite_table_copies_keep_the_rows_that_refer_to_them(tmp_path) -> None:
    """0012 copies the jobs table on SQLite; with foreign keys on, dropping the old copy
    would have deleted every export file row (ON DELETE CASCADE)."""
    from opendms.identity import service as identity
    from opendms.store.models import ExportFile, Job, Order

    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.migrate("0011")
        with store.session() as s:
            tid = identity.create_tenant(s, "t").tid
            user = identity.register_user(s, None, tid, "1", roles="USER")
            order = Order(
                tid=tid, plugin_type="DATA_EXPORT", committer_id=user.user_id, params="{}"
            )
            s.add(order)
            s.flush()
            job = Job(order_id=order.order_id, kind="export")
            s.add(job)
            s.flush()
            s.add(
                ExportFile(
                    job_id=job.job_id,
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
            s.add(Job(order_id=None, kind="upload"))  # what 0012 is for
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.dispose()
