"""The process's Prometheus metrics, each defined here once, on a registry of OpenDMS's own
(the library's global one collects whatever any import put there).

The layers above count what they do through the functions below; ``exposition`` renders
these counters with the families a caller read at scrape time (``opendms.operations``:
jobs and worker heartbeats, read from the store).

One ``opendms serve`` with several worker processes shares one port: a scrape reaches any
of them, so each must answer for all. ``shared_between_processes`` (around uvicorn) gives
them a directory in which each keeps its counters (prometheus_client's multiprocess mode)
and a scrape sums them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

CONTENT_TYPE = CONTENT_TYPE_LATEST
# prometheus_client reads it once, when it is first imported: so do we.
_SHARED_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_SHARED_DIR = os.environ.get(_SHARED_DIR_ENV)

# A ``*_created`` series beside every counter doubles the text for nothing Prometheus needs.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "opendms_requests",
    "API requests answered, by action ('-' when unknown) and code ('OK' or the error code).",
    ["action", "code"],
    registry=REGISTRY,
)
# 1 ms (a cached read) .. 10 s (a handler waiting on a slow target)
REQUEST_SECONDS = Histogram(
    "opendms_request_seconds",
    "Time to answer an API request, by action.",
    ["action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)
ROWS_CHANGED = Counter(
    "opendms_rows_changed",
    "Rows changed on target databases by ticket executions, by ticket kind.",
    ["kind"],
    registry=REGISTRY,
)
JOB_STEPS = Counter(
    "opendms_job_steps",
    "Steps of background jobs run by this process, by job kind and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)


# Each request's series, found once: ``labels()`` takes a lock and checks the names on every
# call, which the API's hottest path need not repeat. Actions and codes are fixed sets.
_request_counts: dict[tuple[str, str], Counter] = {}
_request_seconds: dict[str, Histogram] = {}


def request(action: str, code: str, seconds: float) -> None:
    """One API request answered."""
    count = _request_counts.get((action, code))
    if count is None:
        count = _request_counts[(action, code)] = REQUESTS.labels(action, code)
    count.inc()
    took = _request_seconds.get(action)
    if took is None:
        took = _request_seconds[action] = REQUEST_SECONDS.labels(action)
    took.observe(seconds)


def rows_changed(kind: str, rows: int) -> None:
    """Rows a ticket of ``kind`` changed, as recorded (nothing for none)."""
    if rows > 0:
        ROWS_CHANGED.labels(kind).inc(rows)


def job_step(kind: str, outcome: str) -> None:
    """One step of a job of ``kind`` ended with ``outcome``."""
    JOB_STEPS.labels(kind, outcome).inc()


class _Families:
    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterable[Metric]:
        return self.families


def exposition(extra: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text of this process's metrics (of every process sharing them) and
    ``extra``, families read at scrape time by a layer that may read what they count.

    They are handed over per scrape rather than registered for good: a collector registered
    on a registry that lives as long as the process would outlive what it reads (a store
    disposed, an app of a test torn down) and two apps would report the same names twice."""
    registry = CollectorRegistry()
    if _SHARED_DIR:
        MultiProcessCollector(registry, path=_SHARED_DIR)  # type: ignore[no-untyped-call]
    else:
        registry.register(REGISTRY)
    registry.register(_Families(extra))
    return generate_latest(registry)


@contextmanager
def shared_between_processes() -> Iterator[None]:
    """For the block, child processes started meanwhile keep their metrics in one directory
    of their own, and each sums all of them when scraped; removed afterwards. Start no
    metric of this process in it: it read its mode when it was imported."""
    path = tempfile.mkdtemp(prefix="opendms-metrics-")
    saved = os.environ.get(_SHARED_DIR_ENV)
    os.environ[_SHARED_DIR_ENV] = path
    try:
        yield
    finally:
        if saved is None:
            del os.environ[_SHARED_DIR_ENV]
        else:
            os.environ[_SHARED_DIR_ENV] = saved
        shutil.rmtree(path, ignore_errors=True)


def serve(host: str, port: int) -> None:
    """This process's metrics on ``http://host:port/metrics`` from a thread of its own: a
    worker, which has no HTTP server, shows what it ran (job steps, rows changed)."""
    start_http_server(port, addr=host, registry=REGISTRY)
