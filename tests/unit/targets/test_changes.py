"""Keeping job steps' write sessions (``targets.changes``): which are kept, for how long,
how many, and which are closed."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest

from opendms.targets.base import Endpoint, StatementError, TargetError
from opendms.targets.changes import ChangePools

WHERE = ("db", "public")


class FakeChange:
    """What the pools use of a ``Change``."""

    def __init__(self, resettable: bool = True) -> None:
        self.resettable = resettable
        self.resets: list[tuple[tuple[str, str], int]] = []
        self.closed = False
        self.gone = False  # the server closed it meanwhile

    def reset(self, where: tuple[str, str], lock_wait_seconds: int) -> None:
        if self.gone:
            raise TargetError("the connection to the database broke")
        self.resets.append((where, lock_wait_seconds))

    def rollback(self) -> None:
        if self.gone:
            raise TargetError("the connection to the database broke")

    def close(self) -> None:
        self.closed = True


class FakeConnector:
    def __init__(self, resettable: bool = True, host: str = "db1") -> None:
        self.endpoint = Endpoint("postgresql", host, 5432, "u", "secret")
        self.resettable = resettable
        self.made: list[FakeChange] = []

    def change(self, where: tuple[str, str], lock_wait_seconds: int) -> Any:
        self.made.append(FakeChange(self.resettable))
        return self.made[-1]


def lend(pools: ChangePools, connector: FakeConnector, lock_wait: int = 5) -> Any:
    with pools.lend(connector, WHERE, lock_wait) as change:  # type: ignore[arg-type]
        return change


def test_a_session_is_reset_and_lent_again() -> None:
    pools, connector = ChangePools(), FakeConnector()
    first = lend(pools, connector)
    assert lend(pools, connector, 9) is first and not first.closed
    assert first.resets == [(WHERE, 9)]
    assert len(connector.made) == 1
    pools.close()
    assert first.closed


def test_a_session_without_a_reset_is_closed_after_its_step() -> None:
    pools, connector = ChangePools(), FakeConnector(resettable=False)
    first = lend(pools, connector)
    assert first.closed and lend(pools, connector) is not first


def test_a_step_that_fails_closes_its_session() -> None:
    pools, connector = ChangePools(), FakeConnector()
    with pytest.raises(RuntimeError), pools.lend(connector, WHERE, 5) as change:  # type: ignore[arg-type]
        raise RuntimeError("the step broke")
    assert change.closed
    assert lend(pools, connector) is not change


def test_a_session_the_server_closed_is_replaced() -> None:
    pools, connector = ChangePools(), FakeConnector()
    first = lend(pools, connector)
    first.gone = True
    second = lend(pools, connector)
    assert second is not first and first.closed and not second.closed


def test_sessions_of_another_endpoint_or_password_are_not_lent() -> None:
    pools, one, other = ChangePools(), FakeConnector(host="db1"), FakeConnector(host="db2")
    first = lend(pools, one)
    assert lend(pools, other) is not first
    assert lend(pools, one) is first


def test_idle_sessions_expire_and_few_are_kept() -> None:
    pools, connector = ChangePools(keep_seconds=0.2, per_key=2), FakeConnector()
    changes = []
    for _ in range(3):  # three steps at once: three sessions, two kept
        changes.append(pools.lend(connector, WHERE, 5))  # type: ignore[arg-type]
    lent = [c.__enter__() for c in changes]
    for c in changes:
        c.__exit__(None, None, None)
    assert [c.closed for c in lent] == [True, False, False]
    time.sleep(0.3)
    assert pools.expire() is False
    assert all(c.closed for c in lent)
    assert lend(pools, connector) not in lent


def test_the_reaper_closes_what_expires_by_itself() -> None:
    pools, connector = ChangePools(keep_seconds=0.2), FakeConnector()
    first = lend(pools, connector)
    deadline = time.monotonic() + 5
    while not first.closed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.closed


def test_a_session_that_refuses_its_reset_is_replaced_and_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pools, connector = ChangePools(), FakeConnector()
    first = lend(pools, connector)

    def refuse(where: tuple[str, str], lock_wait_seconds: int) -> None:
        raise StatementError('prepared statement "_pg3_0" does not exist')

    first.reset = refuse
    with caplog.at_level(logging.WARNING, "opendms.targets"):
        assert lend(pools, connector) is not first
    assert first.closed
    assert "could not be reset" in caplog.text and "_pg3_0" in caplog.text
