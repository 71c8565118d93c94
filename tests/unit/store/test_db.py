"""The metadata store's transactions on SQLite: those that write take the lock at once,
those that only read (``Store.reading``) take none."""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event, func, select

from opendms.store.db import Store
from opendms.store.models import Job


def _holding_the_write_lock(store: Store) -> tuple[threading.Event, threading.Thread]:
    """A thread in a writing transaction (SQLite's lock taken at its start) until the
    returned event is set."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.session() as s:
            s.execute(select(func.count()).select_from(Job))
            taken.set()
            release.wait(30)

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    return release, thread


def test_a_reading_transaction_does_not_wait_for_a_writer(store: Store) -> None:
    release, thread = _holding_the_write_lock(store)
    try:
        began = time.monotonic()
        with store.reading() as r:
            assert r.scalar(select(func.count()).select_from(Job)) == 0
        # a writing transaction would have waited for the lock (busy timeout: 10 s)
        assert time.monotonic() - began < 2
    finally:
        release.set()
        thread.join()


def test_a_reading_transaction_leaves_the_connection_writing_as_before(store: Store) -> None:
    """The pooled connection it used begins its next transactions by taking the lock."""
    begun: list[str] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _seen(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        if statement.startswith("BEGIN"):
            begun.append(statement)

    for _ in range(2):
        with store.reading() as r:
            r.scalar(select(func.count()).select_from(Job))
        with store.session() as s:
            s.scalar(select(func.count()).select_from(Job))
    assert begun == ["BEGIN DEFERRED", "BEGIN IMMEDIATE"] * 2
