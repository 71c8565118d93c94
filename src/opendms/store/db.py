"""Engine, transactions and schema migrations of the metadata store."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from alembic import command
from alembic.config import Config as AlembicConfig
from psycopg_pool import PoolTimeout
from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).parent / "migrations"
# An execution option of the connections ``Store.reading`` lends: their transactions only read.
_READING = "opendms_reading"


class StoreUnavailable(Exception):
    """The metadata database cannot be reached or opened."""


# What the drivers raise when the metadata store is down, locked or out of connections.
STORE_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    sqlite3.OperationalError,
    psycopg.OperationalError,
    PoolTimeout,
)


def _sqlite_setup(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions start (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=10000")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        if options.get(_READING):
            # A transaction that only reads takes no lock: one snapshot of the database (WAL),
            # from its first read on, while writers go on.
            conn.exec_driver_sql("BEGIN DEFERRED")
            return
        # IMMEDIATE takes the write lock up front: a deferred transaction that reads and then
        # writes can fail at once with SQLITE_BUSY when another writer got there first,
        # whatever the busy timeout says.
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str, *, pool_size: int = 16) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            parsed,
            connect_args={"check_same_thread": False, "timeout": 10},
            pool_size=pool_size,
            max_overflow=pool_size,
        )
        _sqlite_setup(engine)
        return engine
    return create_engine(
        parsed,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it would add a round trip to every request. A connection that broke is
        # invalidated when it fails, and the request answers ServiceUnavailable.
        pool_recycle=3600,
    )


class Store:
    """One metadata database: its engine and a factory of unit-of-work sessions."""

    def __init__(self, url: str, *, pool_size: int = 16) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def sessions(self) -> sessionmaker[Session]:
        """The session factory, for listeners on every unit of work (``jobs.dispatch``)."""
        return self._sessions

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A transaction: committed when the block ends normally, rolled back otherwise."""
        with self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """Reads that take no lock, for a look that must not wait (``session`` takes
        SQLite's write lock at once): a look for work neither waits for a writer nor holds
        one up, and waiting for that lock costs more than the wait itself (SQLite's busy
        handler sleeps 1, 2, 5, 10… ms between its tries). On SQLite one transaction that
        only reads (writing in it may fail with SQLITE_BUSY); elsewhere each statement on
        its own, as READ COMMITTED would see it, without a BEGIN and a ROLLBACK to send."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(**{_READING: True})
            else:
                conn.execution_options(isolation_level="AUTOCOMMIT")
            with self._sessions(bind=conn) as session:
                yield session

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision``, by default the newest (idempotent)."""
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.connect() as conn:
                sqlite = self.dialect == "sqlite"
                if sqlite:
                    _sqlite_foreign_keys(conn, on=False)
                try:
                    with conn.begin():
                        cfg.attributes["connection"] = conn
                        command.upgrade(cfg, revision)
                        if sqlite:
                            _check_foreign_keys(conn)
                finally:
                    if sqlite:
                        _sqlite_foreign_keys(conn, on=True)
        except Exception as exc:
            raise StoreUnavailable(describe_failure(self.url, exc)) from exc

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_foreign_keys(conn: Connection, *, on: bool) -> None:
    """SQLite changes a table's columns by copying it (alembic's batch mode), and dropping the
    old copy with foreign keys on would delete the rows that refer to it (ON DELETE CASCADE).
    The pragma only takes effect outside a transaction, hence on the driver's connection."""
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    cur = dbapi.cursor()
    try:
        cur.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cur.close()


def _check_foreign_keys(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(
            f"the migration left rows whose foreign keys point nowhere: {broken[:5]}"
        )


def describe_failure(url: str, exc: BaseException) -> str:
    """One line naming the store (without its password) and the first line of the cause."""
    safe = make_url(url).render_as_string(hide_password=True)
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"cannot open the metadata store {safe}: {cause[0] if cause else type(exc).__name__}"
