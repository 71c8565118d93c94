"""``/healthz``, ``/readyz`` and ``/metrics``: what balancers and Prometheus ask, unsigned;
a store or broker that cannot be reached is named, and a scrape answers all the same."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from opendms.app import create_app
from opendms.config import Settings
from opendms.operations import SingleFlight
from opendms.store.models import Job, Process, utcnow
from opendms.store.states import JobState
from tests.conftest import MASTER_KEY, Api
from tests.local_servers import closed_port

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient) -> Samples:
    resp = client.get("/metrics")
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def unreachable_store(tmp_path: Path) -> TestClient:
    """The app on a PostgreSQL store nothing listens for (its lifespan, which would open
    it, does not run: the probes are what is asked)."""
    url = f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/none"
    settings = Settings(data_dir=tmp_path, database_url=url, secret_key=MASTER_KEY)
    return TestClient(create_app(settings))


def test_healthz_says_the_process_is_alive(api: Api) -> None:
    resp = api.client.get("/healthz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok"})


def test_the_operations_paths_answer_get_only(api: Api) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        resp = api.client.post(path)
        assert resp.status_code == 404, resp.text
        assert resp.json()["Code"] == "InvalidAction.NotFound"


def test_readyz_is_ready_when_the_store_answers(api: Api) -> None:
    resp = api.client.get("/readyz")
    assert (resp.status_code, resp.json()) == (200, {"status": "ok", "checks": {"store": "ok"}})


def test_readyz_names_the_store_when_it_cannot_be_reached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = unreachable_store(tmp_path)
    with caplog.at_level(logging.WARNING, logger="opendms.operations"):
        resp = client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "unavailable", "checks": {"store": "unreachable"}}
    assert "not ready: the store cannot be reached: " in caplog.text  # why, for the operator
    assert client.get("/healthz").status_code == 200  # alive all the same


@pytest.mark.parametrize("scheme", ["redis://127.0.0.1:{}/0", "amqp://guest:guest@127.0.0.1:{}//"])
def test_readyz_names_the_broker_when_it_cannot_be_reached(
    make_api: Callable[..., Api], scheme: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = make_api(broker_url=scheme.format(closed_port()))
    with caplog.at_level(logging.WARNING, logger="opendms.operations"):
        resp = api.client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {
        "status": "unavailable",
        "checks": {"store": "ok", "broker": "unreachable"},
    }
    assert "not ready: the broker cannot be reached: " in caplog.text
    assert "guest:guest" not in caplog.text


def test_metrics_count_requests_with_their_labels(api: Api) -> None:
    key = ("opendms_requests_total", frozenset({("action", "ListUsers"), ("code", "OK")}))
    bad = ("opendms_requests_total", frozenset({("action", "-"), ("code", "MissingAction")}))
    before = scrape(api.client)
    api.call("ListUsers")
    api.call("ListUsers")
    api.client.post("/")
    after = scrape(api.client)
    assert after[key] - before.get(key, 0) == 2
    assert after[bad] - before.get(bad, 0) == 1
    count = ("opendms_request_seconds_count", frozenset({("action", "ListUsers")}))
    assert after[count] - before.get(count, 0) == 2
    assert not any("healthz" in str(labels) or "metrics" in str(labels) for _, labels in after)


def test_metrics_read_jobs_and_process_heartbeats_from_the_store(api: Api) -> None:
    now = utcnow()
    with api.store.session() as s:
        s.add(
            Process(
                name="host-a:12:abcd",
                role="worker",
                host="host-a",
                pid=12,
                started_at=now - timedelta(minutes=5),
                seen_at=now - timedelta(seconds=30),
                jobs_running=2,
                jobs_done=17,
            )
        )
        s.add(Job(kind="precheck", state=JobState.QUEUED))
        s.add(Job(kind="precheck", state=JobState.SUCCEEDED))  # over: not a gauge's
    found = scrape(api.client)
    who = frozenset({("name", "host-a:12:abcd"), ("role", "worker")})
    assert found[("opendms_store_up", frozenset())] == 1
    assert found[("opendms_jobs", frozenset({("kind", "precheck"), ("state", "queued")}))] == 1
    assert found[("opendms_jobs", frozenset({("kind", "precheck"), ("state", "running")}))] == 0
    # a kind with no job at all still has its series
    assert found[("opendms_jobs", frozenset({("kind", "export"), ("state", "queued")}))] == 0
    assert 30 <= found[("opendms_process_heartbeat_age_seconds", who)] < 3600
    assert found[("opendms_process_jobs_running", who)] == 2
    assert found[("opendms_process_jobs_done_total", who)] == 17


def test_a_scrape_answers_while_the_store_is_down(tmp_path: Path) -> None:
    client = unreachable_store(tmp_path)
    client.post("/")  # a request counted all the same
    found = scrape(client)
    assert found[("opendms_store_up", frozenset())] == 0
    assert (
        found[("opendms_requests_total", frozenset({("action", "-"), ("code", "MissingAction")}))]
        >= 1
    )
    assert not any(name.startswith("opendms_process_") for name, _ in found)


def test_a_check_that_hangs_is_given_up_on_and_not_started_twice() -> None:
    release = threading.Event()
    started: list[int] = []

    def hangs() -> str:
        started.append(1)
        release.wait(30)
        return "answered"

    async def main() -> None:
        flight = SingleFlight(hangs, seconds=0.05)
        for _ in range(2):  # the second caller waits for the first call, starts none
            with pytest.raises(TimeoutError):
                await flight()
        assert len(started) == 1
        release.set()
        flight.seconds = 30
        assert await flight() == "answered"  # the one under way, or one after it
        assert len(started) <= 2

    asyncio.run(main())
