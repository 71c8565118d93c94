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
