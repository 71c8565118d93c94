"""The progress of a chunked statement as the SQL-job reads show it: what a stride adds, the
chunk-time histogram and its p99, the rate and time left, and its JSON form (the wire's
fields are ``actions.data_correct.chunk_fields``, tested in tests/unit/actions)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from opendms.execution.chunked import BUCKET_MS, ChunkState, Progress, Stride
from opendms.execution.online import OnlineProgress, OnlineStatus, Strategy
from opendms.execution.walk import Position


def stride(
    rows: int,
    chunks: int,
    after: tuple[object, ...] | None = None,
    size: int = 500,
    ms: list[float] | None = None,
    done: bool = False,
    held: str | None = None,
    lost: str | None = None,
) -> Stride:
    """A stride whose chunks took ``ms`` milliseconds each (a little over, as timers go)."""
    seconds = [(m + 0.4) / 1000 for m in ms or []]
    return Stride(Position(after, rows, chunks, done), size, seconds, held, lost)


def with_chunks(*ms: float) -> Progress:
    progress = Progress()
    progress.add(stride(len(ms), len(ms), (len(ms),), ms=list(ms)))
    return progress


# ------------------------------------------------------------------ adding strides


def test_a_stride_sets_rows_chunks_and_key_from_the_targets_position() -> None:
    progress = Progress()
    progress.add(stride(1500, 3, (1500,), size=640, ms=[4, 12, 25]))
    assert (progress.rows, progress.chunks, progress.after, progress.size) == (
        1500,
        3,
        [1500],
        640,
    )
    assert progress.histogram == {"0": 1, "1": 1, "2": 1}
    assert (progress.busy_ms, progress.max_chunk_ms) == (41, 25)
    assert (progress.state, progress.why, progress.lost_locks) == ("RUNNING", "", 0)


def test_rows_come_from_the_position_while_times_add_up() -> None:
    progress = Progress()
    progress.add(stride(1000, 2, (1000,), ms=[5, 7]))
    # a later stride (perhaps another runner's, after a crash) knows the position, not a delta
    progress.add(stride(2600, 5, (2600,), ms=[33]))
    assert (progress.rows, progress.chunks, progress.after) == (2600, 5, [2600])
    assert progress.histogram == {"0": 2, "3": 1}
    assert (progress.busy_ms, progress.max_chunk_ms) == (45, 33)


def test_a_stride_without_chunks_keeps_the_times_seen_so_far() -> None:
    progress = with_chunks(15, 95)
    progress.add(stride(2, 2, (2,), held="busy"))
    assert progress.histogram == {"1": 1, "9": 1}
    assert (progress.busy_ms, progress.max_chunk_ms) == (110, 95)


def test_a_composite_key_and_odd_values_are_shown_as_json_friendly_values() -> None:
    progress = Progress()
    when = dt.datetime(2026, 1, 2, 3, 4, 5)
    progress.add(stride(1, 1, (7, "k", b"\x00\xff", when, None, 1.5)))
    assert progress.after == [7, "k", "0x00ff", "2026-01-02 03:04:05", None, 1.5]
    assert json.loads(json.dumps(progress.dump()))["after"] == progress.after


def test_a_finished_walk_is_done_whatever_else_happened() -> None:
    progress = Progress(state="THROTTLED", why="busy", lost_locks=2)
    progress.add(stride(90, 4, (90,), done=True, held="still busy"))
    assert (progress.state, progress.why, progress.lost_locks) == ("DONE", "", 0)


def test_holding_back_shows_throttled_with_the_reason() -> None:
    progress = Progress()
    progress.add(stride(10, 1, (10,), held="30 statements running on the target, more than 25"))
    assert progress.state == "THROTTLED"
    assert progress.why == "30 statements running on the target, more than 25"
    assert progress.lost_locks == 0


def test_lost_lock_fights_count_in_a_row_and_a_won_chunk_resets_them() -> None:
    progress = Progress()
    for n in (1, 2, 3):
        progress.add(stride(0, 0, lost="database is locked"))
        assert progress.lost_locks == n
    assert progress.state == "LOCK_WAIT"
    assert progress.why == "a chunk lost a lock wait: database is locked"
    progress.add(stride(500, 1, (500,), ms=[3]))
    assert (progress.state, progress.why, progress.lost_locks) == ("RUNNING", "", 0)


def test_holding_back_also_resets_lost_lock_fights() -> None:
    progress = Progress(lost_locks=5, state="LOCK_WAIT")
    progress.add(stride(0, 0, held="a replica lags"))
    assert (progress.state, progress.lost_locks) == ("THROTTLED", 0)


# ------------------------------------------------------------------ p99, rate, time left


def test_p99_of_nothing_is_zero() -> None:
    assert Progress().p99_ms == 0


def test_p99_ignores_the_slowest_percent() -> None:
    progress = with_chunks(*([5.0] * 99), 505.0)
    assert progress.max_chunk_ms == 505
    assert progress.p99_ms == 10  # the upper edge of the first bucket


def test_p99_includes_the_slowest_when_they_are_more_than_a_percent() -> None:
    progress = with_chunks(*([5.0] * 98), 505.0, 505.0)
    assert progress.p99_ms == 505  # the bucket's edge (510) capped by the slowest chunk seen


def test_p99_never_exceeds_the_slowest_chunk() -> None:
    assert with_chunks(3.0).p99_ms == 3


def test_p99_orders_buckets_as_numbers_not_as_text() -> None:
    # as text, bucket "10" and "200" would sort before "9"
    progress = with_chunks(*([95.0] * 99), 105.0, 2005.0)
    assert set(progress.histogram) == {"9", "10", "200"}
    assert progress.p99_ms == 110


def test_p99_counts_chunks_in_buckets_of_bucket_ms() -> None:
    progress = with_chunks(*([BUCKET_MS * 3 + 1.0] * 10))
    assert progress.histogram == {"3": 10}
    assert progress.p99_ms == BUCKET_MS * 3 + 1


def test_rows_per_second_is_rows_over_busy_time() -> None:
    assert Progress(rows=1000, busy_ms=2000).rows_per_second == 500.0
    assert Progress(rows=1000, busy_ms=0).rows_per_second == 0.0


def test_eta_is_none_without_an_estimate_or_a_rate() -> None:
    assert Progress(rows=1000, busy_ms=2000).eta_seconds is None
    assert Progress(rows=0, busy_ms=0, estimate=5000).eta_seconds is None


def test_eta_is_the_rows_left_at_the_rate_so_far() -> None:
    assert Progress(rows=1000, busy_ms=2000, estimate=5000).eta_seconds == 8
    assert Progress(rows=1000, busy_ms=3000, estimate=2000).eta_seconds == 3
    # more rows than the precheck counted (rows came in meanwhile): nothing left, not negative
    assert Progress(rows=6000, busy_ms=2000, estimate=5000).eta_seconds == 0


# ------------------------------------------------------------------ JSON and the wire


def test_progress_survives_its_json() -> None:
    progress = with_chunks(4, 18, 33)
    progress.estimate, progress.lost_locks = 5000, 2
    progress.state, progress.why = ChunkState.LOCK_WAIT, "a chunk lost a lock wait: x"
    stored = json.loads(json.dumps(progress.dump()))  # as the store's JSON column keeps it
    assert Progress.load(stored) == progress
    assert Progress.load(stored).state is ChunkState.LOCK_WAIT


def test_loading_ignores_keys_it_does_not_know() -> None:
    stored = {"rows": 3, "chunks": 1, "from_a_newer_version": True, "state": "DONE"}
    assert Progress.load(stored) == Progress(rows=3, chunks=1, state=ChunkState.DONE)


def test_a_loaded_progress_is_a_copy_of_what_was_stored() -> None:
    """Changing it must not change the document the session loaded: the session would
    then see nothing to write (store.columns.Json)."""
    stored = with_chunks(4, 18).dump()
    progress = Progress.load(stored)
    progress.add(stride(500, 3, (500,), ms=[25]))
    assert stored == with_chunks(4, 18).dump()


@pytest.mark.parametrize("stored", [None, {}])
def test_no_progress_yet_loads_as_waiting(stored: dict[str, object] | None) -> None:
    assert Progress.load(stored) == Progress()
    assert Progress.load(stored).state == ChunkState.WAITING
    assert Progress.of(stored) is None


def test_fresh_forgets_lost_fights_and_state_but_keeps_the_work_done() -> None:
    progress = with_chunks(4, 18)
    progress.lost_locks, progress.state, progress.why = 7, "LOCK_WAIT", "lost"
    again = progress.fresh()
    assert (again.lost_locks, again.state, again.why) == (0, "WAITING", "")
    assert (again.rows, again.chunks, again.after, again.histogram, again.busy_ms) == (
        progress.rows,
        progress.chunks,
        progress.after,
        progress.histogram,
        progress.busy_ms,
    )
    assert (progress.lost_locks, progress.state) == (7, "LOCK_WAIT")  # not changed in place


# ------------------------------------------------------------------ log milestones


def test_a_milestone_is_logged_each_tenth_of_the_estimate() -> None:
    progress = Progress(rows=1000, estimate=5000, chunks=2, after=[1000], busy_ms=1000)
    line = progress.milestone(900)
    assert line is not None and line.startswith("20%: 1,000 of 5,000 rows in 2 chunks")
    assert progress.milestone(1000) is None  # no new tenth since
    assert Progress(rows=1000, busy_ms=1).milestone(0) is None  # no estimate: no milestones


def test_a_ddl_statements_online_progress_is_no_chunked_progress() -> None:
    """DDL statements keep their online progress in the same column: the chunked reads
    (pause, restart, the SQL-job lists) pass it by instead of failing on its ``state``."""
    online = OnlineProgress(OnlineStatus.RUNNING, Strategy.SHADOW, 300_000, 1_000)
    online.state = {"phase": "COPY", "shadow": "_t_new"}
    assert Progress.of(online.dumps()) is None
    assert Progress.of({}) is None
    assert Progress.of(Progress(rows=5).dump()) == Progress(rows=5)
