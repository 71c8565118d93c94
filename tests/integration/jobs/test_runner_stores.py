"""The runner's look for work (``Store.reading``) and its claim on each metadata store: a
look takes no lock and leaves the pooled connection as it found it; a claim leases the job
and hands it back as the update left it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from opendms.jobs.runner import Checkpoint, Runner, Step, Work
from opendms.store.db import Store
from opendms.store.models import Job

pytestmark = pytest.mark.integration


@pytest.fixture
def store(any_store_url: str) -> Iterator[Store]:
    found = Store(any_store_url, pool_size=1)  # one connection: what a look leaves, the next gets
    found.migrate()
    yield found
    found.dispose()


def test_a_look_reads_what_is_committed_and_a_session_after_it_still_rolls_back(
    store: Store,
) -> None:
    with store.session() as s:
        s.add(Job(kind="count"))
    with store.reading() as r:
        assert r.scalar(select(func.count()).select_from(Job)) == 1
    with pytest.raises(RuntimeError), store.session() as s:
        s.add(Job(kind="count"))
        s.flush()
        raise RuntimeError("the unit of work fails")
    with store.reading() as r:
        assert r.scalar(select(func.count()).select_from(Job)) == 1  # it rolled back


def test_a_runner_claims_steps_and_ends_a_job(store: Store) -> None:
    seen: list[tuple[int, int]] = []

    def count(work: Work, checkpoint: Checkpoint) -> Step:
        n = checkpoint.get("n", 0) + 1
        seen.append((work.attempt, n))
        return Step({"n": n}, done=n >= 2)

    with store.session() as s:
        job = Job(kind="count")
        s.add(job)
        s.flush()
        job_id = job.job_id
    runner = Runner(store, {"count": count}, owner="A")
    assert runner.run_once() is True
    assert runner.run_once() is False
    assert seen == [(1, 1), (1, 2)]
    with store.session() as s:
        done = s.get_one(Job, job_id)
        assert (done.state, done.attempts, done.checkpoint, done.lease_owner) == (
            "succeeded",
            1,
            {"n": 2},
            None,
        )
