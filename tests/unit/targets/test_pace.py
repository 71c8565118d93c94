"""How fast a chunked change goes: the chunk size against its time budget, the rest between
chunks, the limits an instance holds back at, and the gauge that reads the target's load at
most once a second."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from opendms.config import Settings
from opendms.means import Means
from opendms.targets import pace as pace_module
from opendms.targets.base import Endpoint, Load, TargetError
from opendms.targets.pace import Gauge, Limits, Pace, Sizer
from opendms.targets.registry import connector_for

# ------------------------------------------------------------------ Pace.next_size


AIM = pace_module.AIM * 0.1  # the chunk time sizes aim at, for a budget of 0.1 s


def test_a_chunk_on_its_aim_keeps_its_size() -> None:
    assert Pace(chunk_seconds=0.1).next_size(1000, AIM) == 1000


@pytest.mark.parametrize(
    ("times_the_aim", "size"),
    [
        (0.5, 2000),  # twice as fast as aimed: twice the keys
        (0.01, 2000),  # a hundred times faster: still at most double
        (1.25, 800),  # a bit slow: proportionally fewer
        (2.0, 500),  # twice the aim: half
        (300.0, 500),  # far over: still at least half
    ],
)
def test_the_next_size_follows_the_budget_at_most_doubling_or_halving(
    times_the_aim: float, size: int
) -> None:
    found = Pace(chunk_seconds=0.1).next_size(1000, AIM * times_the_aim)
    assert abs(found - size) <= 1  # int() of a float product


def test_a_slower_chunk_never_gets_a_bigger_successor() -> None:
    pace = Pace(chunk_seconds=0.1)
    sizes = [pace.next_size(1000, AIM * m) for m in (0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.5)]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == 2000 and sizes[-1] == 500


def test_a_chunk_that_took_no_measurable_time_doubles() -> None:
    assert Pace(chunk_seconds=0.1).next_size(300, 0.0) == 600


def test_the_next_size_never_drops_below_one_key() -> None:
    pace = Pace(chunk_seconds=0.1)
    assert pace.next_size(1, 60.0) == 1
    assert pace.next_size(3, 60.0) == 1


def test_the_next_size_never_exceeds_max_chunk_rows() -> None:
    pace = Pace(chunk_seconds=0.1, max_chunk_rows=5000)
    assert pace.next_size(4000, 0.0001) == 5000
    assert pace.next_size(5000, 0.0) == 5000
    assert pace.next_size(5000, AIM) == 5000
    assert pace.next_size(9000, AIM) == 5000  # a size from a bigger pace is brought down


@pytest.mark.parametrize("size", [1, 2, 7, 100, 999, 20_000])
@pytest.mark.parametrize("seconds", [0.0, 1e-6, 0.03, AIM, 0.1, 0.17, 0.5, 9.0])
def test_the_next_size_stays_between_half_and_double(size: int, seconds: float) -> None:
    pace = Pace(chunk_seconds=0.1, max_chunk_rows=50_000)
    found = pace.next_size(size, seconds)
    assert max(1, size // 2) <= found <= min(2 * size, 50_000)
    if seconds <= AIM:  # on the aim or faster never shrinks
        assert found >= size
    else:  # slower never grows
        assert found <= size


def test_a_shadow_copy_paces_its_chunks_by_the_copy_budget() -> None:
    pace = Pace(chunk_seconds=0.1, copy_seconds=0.4, max_chunk_rows=7777, sleep_ratio=0.5)
    copy = pace.for_copy()
    assert copy.chunk_seconds == 0.4
    assert (copy.max_chunk_rows, copy.sleep_ratio, copy.limits) == (7777, 0.5, pace.limits)
    # a chunk on the copy budget's aim keeps its size; under the DML budget it would shrink
    on_aim = pace_module.AIM * 0.4
    assert copy.next_size(1000, on_aim) == 1000
    assert pace.next_size(1000, on_aim) == 500


def test_the_copy_budget_is_a_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, ddl_chunk_ms=350, chunk_ms=80)
    pace = Means.from_settings(settings, b"k" * 32).pace
    assert (pace.chunk_seconds, pace.for_copy().chunk_seconds) == (0.08, 0.35)
    assert Settings(data_dir=tmp_path).ddl_chunk_ms == 200


def test_rest_is_the_sleep_ratio_of_the_chunk_time() -> None:
    assert Pace(sleep_ratio=0.5).rest(0.2) == pytest.approx(0.1)
    assert Pace(sleep_ratio=2.0).rest(0.25) == pytest.approx(0.5)
    assert Pace().rest(3.0) == 0.0  # by default no rest at all


# ------------------------------------------------------------------ Limits


LIMITS = Limits(max_running=25, max_lag_seconds=1.0)


def test_limits_hold_back_when_more_statements_run_than_allowed() -> None:
    assert LIMITS.why(26, None) == "26 statements running on the target, more than 25"
    assert LIMITS.why(25, None) is None  # at the limit is still fine


def test_limits_hold_back_when_a_replica_lags_more_than_allowed() -> None:
    assert LIMITS.why(None, 1.5) == "a replica lags: 1.5 s behind, more than 1 s allowed"
    assert Limits(max_lag_seconds=2.5).why(0, 3.04) == (
        "a replica lags: 3.0 s behind, more than 2.5 s allowed"
    )
    assert LIMITS.why(None, 1.0) is None


def test_infinite_lag_says_replication_is_stopped() -> None:
    why = LIMITS.why(None, math.inf)
    assert why == "a replica lags: replication is stopped, more than 1 s allowed"


@pytest.mark.parametrize(
    ("running", "lag"), [(None, None), (0, 0.0), (25, 1.0), (3, None), (None, 0.4)]
)
def test_limits_say_nothing_when_the_load_is_fine(running: int | None, lag: float | None) -> None:
    assert LIMITS.why(running, lag) is None


def test_running_over_the_limit_is_named_before_lag() -> None:
    assert LIMITS.why(30, 9.0) == "30 statements running on the target, more than 25"


def test_an_instances_throttle_overrides_only_the_keys_it_gives() -> None:
    base = Limits(max_running=3, max_lag_seconds=1.0)
    assert base.over({"max_lag_seconds": 5}) == Limits(3, 5, None)
    assert base.over({"replica_instance_id": 9}) == Limits(3, 1.0, 9)
    assert base.over({"max_running": 40, "max_lag_seconds": 0.5}) == Limits(40, 0.5, None)


def test_an_empty_or_foreign_throttle_leaves_the_limits_as_they_are() -> None:
    base = Limits(max_running=3, max_lag_seconds=2.0, replica_instance_id=4)
    assert base.over(None) == base
    assert base.over({}) == base
    assert base.over({"max_threads": 1, "lag": 9}) == base


# ------------------------------------------------------------------ Gauge


class FakeChange:
    """Stands in for a target's Change: only ``load`` is asked, and counted."""

    def __init__(self, load: Load) -> None:
        self.now = load
        self.reads = 0

    def load(self) -> Load:
        self.reads += 1
        return self.now


class FakeReplica:
    """Stands in for a replica's Connector: its lag, or the error reading it raises."""

    def __init__(self, lag: float | TargetError | None) -> None:
        self.lag = lag
        self.reads = 0

    def replica_lag(self) -> float | None:
        self.reads += 1
        if isinstance(self.lag, TargetError):
            raise self.lag
        return self.lag


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge(
    change: FakeChange, limits: Limits = LIMITS, replica: Any = None, clock: Clock | None = None
) -> Gauge:
    return Gauge(change, limits, replica, clock or Clock())  # type: ignore[arg-type]


def test_the_gauge_reads_the_load_at_most_once_a_second() -> None:
    change, clock = FakeChange(Load(running=2)), Clock()
    g = gauge(change, clock=clock)
    assert g.hold() is None
    assert change.reads == 1
    clock.now += 0.5
    change.now = Load(running=99)  # busy now, but the gauge does not look yet
    assert g.hold() is None
    clock.now += 0.49
    assert g.hold() is None
    assert change.reads == 1
    clock.now += 0.02  # a second after the last read
    assert g.hold() == "99 statements running on the target, more than 25"
    assert change.reads == 2


def test_the_gauge_repeats_a_reason_to_hold_until_it_looks_again() -> None:
    change, clock = FakeChange(Load(running=50)), Clock()
    g = gauge(change, clock=clock)
    why = "50 statements running on the target, more than 25"
    assert g.hold() == why
    change.now = Load(running=1)
    clock.now += pace_module.LOAD_EVERY_SECONDS / 2
    assert g.hold() == why  # not looked again: still the last answer
    clock.now += pace_module.LOAD_EVERY_SECONDS
    assert g.hold() is None
    assert change.reads == 2


def test_the_gauge_holds_for_the_primarys_own_lag() -> None:
    g = gauge(FakeChange(Load(running=0, lag_seconds=4.0)))
    assert g.hold() == "a replica lags: 4.0 s behind, more than 1 s allowed"


def test_a_replica_that_cannot_be_read_holds_the_change_back() -> None:
    replica = FakeReplica(TargetError("connection refused"))
    clock = Clock()
    g = gauge(FakeChange(Load(running=0, lag_seconds=0.0)), replica=replica, clock=clock)
    assert g.hold() == "the replica cannot be read: connection refused"
    clock.now += 0.3
    assert g.hold() == "the replica cannot be read: connection refused"
    assert replica.reads == 1  # the reason is kept for a second like any other


def test_a_replica_that_replicates_from_nothing_holds_the_change_back() -> None:
    g = gauge(FakeChange(Load(running=0)), replica=FakeReplica(None))
    assert g.hold() == "the configured replica is not replicating from anything"


@pytest.mark.parametrize(
    ("primary", "replica", "shown"),
    [
        (0.5, 3.0, "3.0"),  # the replica lags more
        (4.0, 2.0, "4.0"),  # the primary knows of a worse lag
        (None, 2.5, "2.5"),  # only the replica knows
    ],
)
def test_the_gauge_takes_the_worse_of_primary_and_replica_lag(
    primary: float | None, replica: float, shown: str
) -> None:
    g = gauge(FakeChange(Load(running=0, lag_seconds=primary)), replica=FakeReplica(replica))
    assert g.hold() == f"a replica lags: {shown} s behind, more than 1 s allowed"


def test_a_stopped_replica_holds_the_change_back() -> None:
    g = gauge(FakeChange(Load(running=0, lag_seconds=0.1)), replica=FakeReplica(math.inf))
    assert g.hold() == "a replica lags: replication is stopped, more than 1 s allowed"


def test_a_replica_within_the_limit_lets_the_change_go_on() -> None:
    replica = FakeReplica(0.2)
    g = gauge(FakeChange(Load(running=1, lag_seconds=0.3)), replica=replica)
    assert g.hold() is None
    assert replica.reads == 1


def test_a_sqlite_target_knows_no_load_and_never_holds_back(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    sqlite3.connect(path).close()
    with connector_for(Endpoint("sqlite", str(path))).change(("main", "main"), 1) as change:
        assert change.load() == Load()
        assert Gauge(change, Limits(max_running=0, max_lag_seconds=0.0)).hold() is None


# ------------------------------------------------------------------ Sizer


def test_a_slower_chunk_cuts_the_next_at_once_a_faster_one_grows_it_slowly() -> None:
    pace = Pace(chunk_seconds=0.1, max_chunk_rows=10**6)
    sizer = Sizer(pace, 1000)
    steady = sizer.took(AIM)  # on the aim: the size stays
    assert steady == 1000
    fast = sizer.took(AIM / 4)  # four times faster, once: a fifth of that counts
    assert 1000 < fast < 1300
    slow = sizer.took(2 * AIM * fast / 1000)  # twice the aim: halved at once
    assert slow == fast // 2
