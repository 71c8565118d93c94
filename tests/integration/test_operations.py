"""``/readyz`` and ``/metrics`` on the real services: a PostgreSQL store, and a Redis or
RabbitMQ broker that answers."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta

import pytest

from opendms.store.models import Job, Process, utcnow
from opendms.store.states import JobState
from tests.conftest import Api, require_service
from tests.unit.test_operations import scrape

pytestmark = pytest.mark.integration

BROKERS = {
    "redis": ("redis://127.0.0.1:6379/0", 6379),
    "rabbitmq": ("amqp://guest:guest@127.0.0.1:5672//", 5672),
}


@pytest.mark.parametrize("broker", sorted(BROKERS))
def test_readyz_is_ready_on_postgresql_with_a_broker_that_answers(
    make_api: Callable[..., Api], pg_store_url: str, broker: str
) -> None:
    url, port = BROKERS[broker]
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except OSError as exc:
        require_service(broker, str(exc))
    api = make_api(pg_store_url, broker_url=url)
    resp = api.client.get("/readyz")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"status": "ok", "checks": {"store": "ok", "broker": "ok"}}


def test_the_store_gauges_on_postgresql(make_api: Callable[..., Api], pg_store_url: str) -> None:
    api = make_api(pg_store_url)
    now = utcnow()
    with api.store.session() as s:
        s.add(
            Process(name="api-1", role="api", host="h", pid=1, seen_at=now - timedelta(seconds=5))
        )
        s.add(Job(kind="execute", state=JobState.RUNNING, lease_until=now))
    found = scrape(api.client)
    assert found[("opendms_store_up", frozenset())] == 1
    assert found[("opendms_jobs", frozenset({("kind", "execute"), ("state", "running")}))] == 1
    who = frozenset({("name", "api-1"), ("role", "api")})
    assert found[("opendms_process_heartbeat_age_seconds", who)] >= 5
    assert found[("opendms_process_jobs_done_total", who)] == 0
