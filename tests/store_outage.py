"""The metadata store going away in the middle of a job's step, for crash tests: hand the
executor a ``Work`` over a ``LostStore`` and it gets as far as the store lets it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from opendms.store.db import Store


class LostStore(Store):
    """``store`` as seen by a step during which the metadata store goes away: its first
    ``answered`` sessions work, and every one after fails with ``error`` before it reaches
    the database. A step reads its work in its first session and records what the target
    did in later ones, so ``answered=1`` loses everything after the target committed."""

    def __init__(self, store: Store, answered: int, error: Exception) -> None:
        # no engine of its own: the sessions that work are the real store's
        self.url, self.engine, self.real = store.url, store.engine, store
        self.left, self.error = answered, error
        self.refused = 0  # sessions that failed

    @contextmanager
    def session(self) -> Iterator[Session]:
        if self.left <= 0:
            self.refused += 1
            raise self.error
        self.left -= 1
        with self.real.session() as s:
            yield s
