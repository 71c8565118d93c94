"""The SQL console's connections to targets: pooled per endpoint and database, one
transaction per script.

A console query is small and frequent; opening a connection costs more than most of them
take (a TLS or password handshake, a PostgreSQL backend). The pools are SQLAlchemy's
``QueuePool`` over the drivers' own connections (replaced after a while; one the server
closed meanwhile is found by the script's first statement, BEGIN, and replaced). A pool's
key holds the endpoint's password: a changed password opens a new pool, and the least
recently used pools beyond ``keep`` are closed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import QueuePool

from opendms.targets.base import Connector, Endpoint, TargetError


@dataclass
class Outcome:
    """What one statement gave: its result's columns and at most ``max_rows`` rows (and
    whether more were there), or the rows a change touched."""

    columns: list[str] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    truncated: bool = False
    affected: int | None = None


class ConsoleSession:
    """One connection lent to one script, inside its transaction."""

    def __init__(self, connector: Connector, conn: Any) -> None:
        self.connector = connector
        self.conn = conn
        self.ended = False

    def run(self, statement: str, max_rows: int) -> Outcome:
        """Run ``statement``; raises :class:`StatementError` or :class:`TargetError`."""
        cur = self.conn.cursor()
        try:
            cur.execute(self.connector.console_text(statement))
            if cur.description is None:
                return Outcome(affected=max(cur.rowcount, 0))
            columns = [str(d[0]) for d in cur.description]
            rows = cur.fetchmany(max_rows + 1)
            return Outcome(columns, [tuple(r) for r in rows[:max_rows]], len(rows) > max_rows)
        except Exception as exc:
            raise self._failure(exc) from exc
        finally:
            cur.close()

    def end(self, *, commit: bool) -> None:
        try:
            self.connector.console_end(self.conn, commit=commit)
        except Exception as exc:
            raise self._failure(exc) from exc
        self.ended = True

    def _failure(self, exc: Exception) -> Exception:
        found = self.connector.console_failure(exc)
        return found if found is not None else exc


class ConsolePools:
    def __init__(self, size: int = 4, keep: int = 64, recycle_seconds: int = 300) -> None:
        self.size = size
        self.keep = keep
        self.recycle_seconds = recycle_seconds
        self._pools: OrderedDict[tuple[Endpoint, str], QueuePool] = OrderedDict()
        self._lock = threading.Lock()

    def _pool(self, connector: Connector, catalog: str) -> QueuePool:
        key = (connector.endpoint, catalog)
        with self._lock:
            pool = self._pools.get(key)
            if pool is None:
                pool = QueuePool(
                    lambda: connector.console_connect(catalog),
                    pool_size=self.size,
                    max_overflow=self.size,
                    timeout=connector.endpoint.connect_timeout,
                    recycle=self.recycle_seconds,
                    reset_on_return=None,  # session() ends every transaction it began
                )
                self._pools[key] = pool
                while len(self._pools) > self.keep:
                    _, old = self._pools.popitem(last=False)
                    old.dispose()
            self._pools.move_to_end(key)
            return pool

    def _begun(
        self, connector: Connector, where: tuple[str, str], read_only: bool, timeout: float
    ) -> tuple[Any, ConsoleSession]:
        """A pooled connection in a new transaction. The transaction's first statement is
        the check that the connection still lives: one the server closed since (restarted,
        idle timeout, killed) is dropped and a new one opened, once, instead of a round trip
        to ping every connection before it is lent."""
        for attempt in (1, 2):
            try:
                fairy = self._pool(connector, where[0]).connect()
            except TargetError:
                raise
            except SQLAlchemyError as exc:  # the pool's own wait for a connection ran out
                raise TargetError(
                    f"no connection to the database came free in time: {exc}"
                ) from exc
            session = ConsoleSession(connector, fairy.dbapi_connection)
            try:
                connector.console_begin(session.conn, where, read_only=read_only, timeout=timeout)
            except Exception as exc:
                failure = session._failure(exc)
                fairy.invalidate()
                fairy.close()
                if isinstance(failure, TargetError) and attempt == 1:
                    continue
                if isinstance(failure, TargetError):
                    raise failure from exc
                raise TargetError(f"the console's transaction did not open: {failure}") from exc
            return fairy, session
        raise AssertionError("unreachable")

    @contextmanager
    def session(
        self, connector: Connector, where: tuple[str, str], *, read_only: bool, timeout: float
    ) -> Iterator[ConsoleSession]:
        """A pooled connection in a new transaction; rolled back unless the caller ended
        it, and dropped from the pool when it broke."""
        fairy, session = self._begun(connector, where, read_only, timeout)
        broken = False
        try:
            yield session
        except TargetError:
            broken = True
            raise
        finally:
            if not broken and not session.ended:
                try:
                    connector.console_end(session.conn, commit=False)
                except Exception:  # noqa: BLE001 - a connection that cannot roll back is dropped
                    broken = True
            if broken:
                fairy.invalidate()
            fairy.close()

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.dispose()
            self._pools.clear()
