"""Admissions in batches (``identity.credentials``): how requests are grouped, what a failing
or cancelled one does to the others, and SQLite's processes taking turns. The statements
themselves run on both stores in tests/integration/store/test_credentials.py."""

from __future__ import annotations

import asyncio
import fcntl
import os
from datetime import datetime

import pytest

from opendms.identity import service
from opendms.identity.credentials import (
    MAX_BATCH,
    Admission,
    Ask,
    SqliteCredentials,
    _Batches,
)
from opendms.identity.secrets import SecretBox
from opendms.store.db import Store

LATER = datetime(2099, 1, 1)


class Recorder:
    """An admit function that records each batch and answers when the test lets it."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()

    async def __call__(self, asks: list[Ask]) -> list[Admission | None]:
        self.batches.append([a.nonce for a in asks])
        await self.release.wait()
        if "boom" in self.batches[-1]:
            raise ConnectionError("store gone")
        return [None for _ in asks]


def _ask(nonce: str) -> Ask:
    return Ask("AK", nonce, LATER, None)


def test_an_idle_store_gets_a_request_at_once_and_the_rest_wait_together() -> None:
    async def main() -> None:
        rec = Recorder()
        batches = _Batches(rec, in_flight=1)
        first = asyncio.create_task(batches.ask(_ask("1")))
        await asyncio.sleep(0.01)
        assert rec.batches == [["1"]]  # sent without waiting for company
        rest = [asyncio.create_task(batches.ask(_ask(str(i)))) for i in range(2, 6)]
        await asyncio.sleep(0.01)
        assert rec.batches == [["1"]]  # one batch under way at a time
        rec.release.set()
        await asyncio.gather(first, *rest)
        assert rec.batches == [["1"], ["2", "3", "4", "5"]]

    asyncio.run(main())


def test_batches_in_flight_and_their_size_are_bounded() -> None:
    async def main() -> None:
        rec = Recorder()
        batches = _Batches(rec, in_flight=2)
        asks = [asyncio.create_task(batches.ask(_ask(str(i)))) for i in range(MAX_BATCH + 10)]
        await asyncio.sleep(0.01)
        assert [len(b) for b in rec.batches] == [1, 1]
        rec.release.set()
        await asyncio.gather(*asks)
        assert [len(b) for b in rec.batches] == [1, 1, MAX_BATCH, 8]

    asyncio.run(main())


def test_a_failed_batch_fails_its_requests_and_the_next_batch_still_goes() -> None:
    async def main() -> None:
        rec = Recorder()
        batches = _Batches(rec, in_flight=1)
        sent = [asyncio.create_task(batches.ask(_ask(n))) for n in ("a", "b", "boom", "c")]
        await asyncio.sleep(0.01)
        rec.release.set()
        results = await asyncio.gather(*sent, return_exceptions=True)
        assert rec.batches == [["a"], ["b", "boom", "c"]]
        assert [type(r).__name__ for r in results] == ["NoneType", *["ConnectionError"] * 3]
        assert await batches.ask(_ask("after")) is None

    asyncio.run(main())


def test_a_request_cancelled_while_waiting_leaves_the_others_their_answers() -> None:
    async def main() -> None:
        rec = Recorder()
        batches = _Batches(rec, in_flight=1)
        gone = asyncio.create_task(batches.ask(_ask("gone")))
        kept = asyncio.create_task(batches.ask(_ask("kept")))
        await asyncio.sleep(0.01)
        gone.cancel()
        rec.release.set()
        assert await kept is None
        with pytest.raises(asyncio.CancelledError):
            await gone

    asyncio.run(main())


def test_sqlite_processes_take_turns_through_a_lock_file(store: Store, box: SecretBox) -> None:
    """A batch waits while another process holds the turn, and goes the moment it is let go
    (flock: another open of the file is another holder, as another process's would be)."""
    with store.session() as s:
        tid = service.create_tenant(s, "t").tid
        user = service.register_user(s, None, tid, "11", roles="ADMIN")
        key, _secret = service.create_access_key(s, box, user.uid, actor=None)
    creds = SqliteCredentials(store.engine, box)
    path = f"{store.engine.url.database}-admissions.lock"

    async def main() -> None:
        other = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(other, fcntl.LOCK_EX)
            waiting = asyncio.create_task(creds.admit(key.access_key_id, "n", LATER, None))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            fcntl.flock(other, fcntl.LOCK_UN)
            admission = await asyncio.wait_for(waiting, 5)
            assert admission is not None and admission.fresh_nonce
        finally:
            os.close(other)
            await creds.close()

    asyncio.run(main())
