"""The models, spread over one module per domain, are what the migrations build: a table
whose module ``store.models`` forgot to import would be missing from the metadata alembic
compares against."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from opendms.store import models
from opendms.store.db import Store
from opendms.store.models import Base


def test_the_migrations_build_exactly_the_models_on_sqlite(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        store.migrate()
        tables = set(inspect(store.engine).get_table_names()) - {"alembic_version"}
        assert tables == set(Base.metadata.tables)
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            # tables, columns and their types, indexes, unique and foreign keys
            assert compare_metadata(context, Base.metadata) == []
    finally:
        store.dispose()


def test_every_model_is_importable_from_store_models() -> None:
    mapped = {m.class_.__name__: m.class_ for m in Base.registry.mappers}
    assert len(mapped) == len(Base.metadata.tables)
    for name, cls in mapped.items():
        assert getattr(models, name) is cls, name
        assert name in models.__all__, name
