"""Alembic environment: runs on the connection handed over by opendms.store.db.Store."""

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from opendms.store.models import Base

config = context.config
connection = config.attributes.get("connection")


def _run(conn: Connection) -> None:
    context.configure(
        connection=conn,
        target_metadata=Base.metadata,
        render_as_batch=True,  # SQLite can only ALTER through table copies
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:  # `alembic` command line, for writing new revisions: sqlalchemy.url from alembic.ini
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
