"""The PostgreSQL online engine's own rules that need no server: the cut-over window and the
records it keeps on the target."""

from __future__ import annotations

from datetime import datetime

import pytest

from opendms.execution.online import OnlineProgress
from opendms.execution.online_postgres import PostgresOnline
from opendms.execution.online_postgres_shadow import Made, Swapped, seconds_to_window
from opendms.execution.online_postgres_steps import lost_fight


@pytest.mark.parametrize(
    ("now", "start", "end", "wait"),
    [
        ("12:00:00", "00:00:00", "23:59:59", 0),
        ("01:30:00", "02:00:00", "03:00:00", 1800),
        ("03:00:01", "02:00:00", "03:00:00", 23 * 3600 - 1),
        ("23:30:00", "22:00:00", "02:00:00", 0),  # a window over midnight
        ("01:00:00", "22:00:00", "02:00:00", 0),
        ("12:00:00", "22:00:00", "02:00:00", 10 * 3600),
    ],
)
def test_the_cut_over_window(now: str, start: str, end: str, wait: float) -> None:
    at = datetime.combine(datetime(2026, 3, 1).date(), datetime.strptime(now, "%H:%M:%S").time())
    assert seconds_to_window(at, start, end) == wait


def test_what_the_target_keeps_reads_back() -> None:
    made = Made("s", "t", ("id",), ("id", "n"), (("t_pkey", "_t_x_new_pkey"),), 1000)
    assert Made.loads(made.dumps()) == made
    swapped = Swapped("_t_x_old", ("t_fk",))
    assert Swapped.loads(swapped.dumps()) == swapped


def test_lost_lock_fights_rest_longer_each_time_then_give_up() -> None:
    progress = OnlineProgress()
    waits = []
    for _ in range(3):
        outcome = lost_fight(progress, "lock timeout", 4, "validate")
        assert outcome is not None
        waits.append(outcome.wait_seconds)
    assert waits == sorted(waits) and waits[0] > 0
    assert "try 3 of 4" in progress.message
    assert lost_fight(progress, "lock timeout", 4, "validate") is None


def test_it_takes_only_postgresql_changes() -> None:
    class Other:
        pass

    with pytest.raises(TypeError, match="PostgreSQL"):
        PostgresOnline().step(Other(), None, OnlineProgress(), 0.0)  # type: ignore[arg-type]
