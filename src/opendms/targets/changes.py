"""The write sessions of job steps (``Change``), kept a while between steps where the engine
can make a used one as good as new (``Change.reset``).

A step of a small ticket is mostly fixed cost, and opening its session is much of it: on
PostgreSQL a new backend (a process forked, its catalog caches empty) and the session's
settings, several milliseconds; resetting one kept from an earlier step is two round trips.
A session is lent to one step at a time. Before it is lent again it is reset, which also
tells whether the connection still lives (one the server closed meanwhile is dropped and a
new one opened); what a ticket's statements may have left in it never reaches the next.

Where the engine has no such reset (MySQL and MariaDB through PyMySQL, which cannot send
COM_RESET_CONNECTION; SQLite, a file opened at no cost) every step opens its own session,
as before. Sessions idle longer than ``keep_seconds`` are closed, by a thread that runs
while any are kept.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from opendms.targets.base import Change, Connector, Endpoint, StatementError, TargetError

log = logging.getLogger("opendms.targets")
_Key = tuple[Endpoint, tuple[str, str]]


class ChangePools:
    def __init__(self, keep_seconds: float = 30.0, per_key: int = 2, most: int = 16) -> None:
        self.keep_seconds = keep_seconds
        self.per_key = per_key  # sessions kept for one database of one endpoint
        self.most = most  # sessions kept in all
        self._idle: dict[_Key, list[tuple[Change, float]]] = {}  # newest last
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None

    @contextmanager
    def lend(
        self, connector: Connector, where: tuple[str, str], lock_wait_seconds: int
    ) -> Iterator[Change]:
        """A write session in ``where``, as ``connector.change`` opens one: a kept one reset,
        else a new one. It is kept again if the block ends normally and its transaction
        could be rolled back; closed otherwise."""
        key = (connector.endpoint, where)
        change = self._reused(key, where, lock_wait_seconds)
        if change is None:
            change = connector.change(where, lock_wait_seconds)
        try:
            yield change
        except BaseException:
            change.close()
            raise
        self._give_back(key, change)

    def _reused(self, key: _Key, where: tuple[str, str], lock_wait_seconds: int) -> Change | None:
        while True:
            with self._lock:
                kept = self._idle.get(key)
                if not kept:
                    return None
                change, since = kept.pop()
            if time.monotonic() - since > self.keep_seconds:
                change.close()
                continue
            try:
                change.reset(where, lock_wait_seconds)
            except TargetError:
                change.close()  # gone (the server restarted, closed it idle, killed it)
                continue
            except StatementError as exc:  # alive but refusing: a new one, and say so
                log.warning("a kept session to %s could not be reset: %s", where[0], exc.message)
                change.close()
                continue
            return change

    def _give_back(self, key: _Key, change: Change) -> None:
        if not change.resettable:
            change.close()
            return
        try:
            change.rollback()  # a step leaves no transaction open; if one did, it ends here
        except (TargetError, StatementError):
            change.close()
            return
        dropped: list[Change] = []
        with self._lock:
            kept = self._idle.setdefault(key, [])
            kept.append((change, time.monotonic()))
            if len(kept) > self.per_key:
                dropped.append(kept.pop(0)[0])
            while sum(len(k) for k in self._idle.values()) > self.most:
                oldest = min((k for k in self._idle.values() if k), key=lambda k: k[0][1])
                dropped.append(oldest.pop(0)[0])
            if self._reaper is None:
                self._reaper = threading.Thread(
                    target=_reap, args=(weakref.ref(self),), name="opendms-changes", daemon=True
                )
                self._reaper.start()
        for old in dropped:
            old.close()

    def expire(self) -> bool:
        """Close the sessions idle longer than ``keep_seconds``; whether any are kept still."""
        now, expired = time.monotonic(), []
        with self._lock:
            for key, kept in list(self._idle.items()):
                expired += [c for c, since in kept if now - since > self.keep_seconds]
                kept[:] = [(c, since) for c, since in kept if now - since <= self.keep_seconds]
                if not kept:
                    del self._idle[key]
            left = bool(self._idle)
            if not left:
                self._reaper = None
        for change in expired:
            with suppress(Exception):
                change.close()
        return left

    def close(self) -> None:
        with self._lock:
            kept = [c for k in self._idle.values() for c, _ in k]
            self._idle.clear()
        for change in kept:
            with suppress(Exception):
                change.close()


def _reap(pools: weakref.ref[ChangePools]) -> None:
    """Close idle sessions as they expire, until none are kept (or the pools are gone)."""
    while True:
        found = pools()
        if found is None:
            return
        every = found.keep_seconds / 2
        del found  # not held while asleep
        time.sleep(every)
        found = pools()
        if found is None or not found.expire():
            return
        del found
