"""The process's metrics: what each counting function adds, the exposition text, and the
counters several worker processes share."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

from prometheus_client.metrics_core import GaugeMetricFamily
from prometheus_client.parser import text_string_to_metric_families

from opendms.telemetry import metrics


def samples(text: bytes) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_request_is_counted_by_action_and_code_and_timed_by_action() -> None:
    action = f"Action{uuid.uuid4().hex[:8]}"  # the registry lives as long as the process
    metrics.request(action, "OK", 0.003)
    metrics.request(action, "OK", 0.2)
    metrics.request(action, "InvalidPageSize", 0.0005)
    found = samples(metrics.exposition())
    assert found[("opendms_requests_total", frozenset({("action", action), ("code", "OK")}))] == 2
    assert (
        found[
            ("opendms_requests_total", frozenset({("action", action), ("code", "InvalidPageSize")}))
        ]
        == 1
    )
    bucket = "opendms_request_seconds_bucket"
    assert found[(bucket, frozenset({("action", action), ("le", "0.001")}))] == 1
    assert found[(bucket, frozenset({("action", action), ("le", "0.005")}))] == 2
    assert found[(bucket, frozenset({("action", action), ("le", "10.0")}))] == 3
    assert found[("opendms_request_seconds_count", frozenset({("action", action)}))] == 3
    assert not any(name.endswith("_created") for name, _ in found)


def test_rows_and_steps_are_counted_and_nothing_is_no_change() -> None:
    kind = f"KIND_{uuid.uuid4().hex[:8]}"
    metrics.rows_changed(kind, 5)
    metrics.rows_changed(kind, 0)
    metrics.rows_changed(kind, -3)  # a recorded count that went down changed nothing
    metrics.job_step(kind, "done")
    assert value("opendms_rows_changed_total", kind=kind) == 5
    assert value("opendms_job_steps_total", kind=kind, outcome="done") == 1


def test_the_exposition_adds_the_families_a_caller_read() -> None:
    gauge = GaugeMetricFamily("opendms_test_gauge", "A family read at scrape time.", labels=["x"])
    gauge.add_metric(["y"], 4)
    text = metrics.exposition([gauge])
    assert samples(text)[("opendms_test_gauge", frozenset({("x", "y")}))] == 4
    for family in ("opendms_requests_total", "opendms_job_steps_total"):  # the process's own
        assert f"# TYPE {family} counter".encode() in text
    assert metrics.CONTENT_TYPE.startswith("text/plain")


COUNT = """
import sys
from opendms.telemetry import metrics
for _ in range(int(sys.argv[1])):
    metrics.request("Shared", "OK", 0.01)
metrics.rows_changed("DC", int(sys.argv[1]))
"""
SCRAPE = "from opendms.telemetry import metrics; print(metrics.exposition().decode())"


def test_worker_processes_share_their_counters_and_a_scrape_sums_them() -> None:
    with metrics.shared_between_processes():
        shared = os.environ["PROMETHEUS_MULTIPROC_DIR"]
        for n in ("2", "3"):  # two worker processes, each its own counters
            subprocess.run([sys.executable, "-c", COUNT, n], check=True)
        scraped = subprocess.run(
            [sys.executable, "-c", SCRAPE], check=True, capture_output=True
        ).stdout
    found = samples(scraped)
    assert found[("opendms_requests_total", frozenset({("action", "Shared"), ("code", "OK")}))] == 5
    assert found[("opendms_request_seconds_count", frozenset({("action", "Shared")}))] == 5
    assert found[("opendms_rows_changed_total", frozenset({("kind", "DC")}))] == 5
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert not os.path.exists(shared)
