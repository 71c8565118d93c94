"""Load from several processes that start at the same moment: each is spawned (nothing of
the parent is inherited), gets ready at its own pace (imports, signing, clients) and says so;
once all are, the parent is told (to start its own meters) and lets them go."""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

J = TypeVar("J")
R = TypeVar("R")
Go = Callable[[], float]


def _child(
    target: Callable[[Any, Go], Any], job: Any, index: int, ready: Any, go: Any, results: Any
) -> None:
    def wait_for_all() -> float:
        """Say this process is ready, wait for the rest; the common start (``time.time()``)."""
        ready.put(index)
        go.wait()
        return time.time()

    results.put((index, target(job, wait_for_all)))


def _collect(found: Any, count: int, procs: list[Any]) -> list[Any]:
    """``count`` items from ``found``; a process that died first stops the bench."""
    items: list[Any] = []
    while len(items) < count:
        try:
            items.append(found.get(timeout=1.0))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead:
                raise SystemExit(f"a load process exited with {dead[0]}") from None
    return items


def run_together(
    target: Callable[[J, Go], R], jobs: Sequence[J], at_start: Callable[[], None] = lambda: None
) -> list[R]:
    """``target(job, go)`` in a process of its own per job, where ``go()`` returns once every
    process called it (``at_start()`` is called here just before); the results in the order
    of ``jobs``. ``target`` must be a function of an importable module."""
    ctx = multiprocessing.get_context("spawn")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=_child, args=(target, job, i, ready, go, results), daemon=True)
        for i, job in enumerate(jobs)
    ]
    for proc in procs:
        proc.start()
    _collect(ready, len(jobs), procs)
    at_start()
    go.set()
    found = dict(_collect(results, len(jobs), procs))
    for proc in procs:
        proc.join()
    return [found[i] for i in range(len(jobs))]
