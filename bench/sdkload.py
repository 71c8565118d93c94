"""Load from the official SDK (``alibabacloud_dms_enterprise20181101``, V3 signing): clients
on threads of several processes, each client a ``DmsClient`` of its own sending a weighted mix
of reads and ticket creation, one call after another, until a common stop time. Every call is
kept: its latency (when it started inside the measured window) and, if it failed, why.

A failed call is any exception the SDK raises (an error answer, a refused connection, a
timeout) or an answer whose ``Success`` is not true. Against a bare baseline endpoint
(``ours=False``) the same calls are sent and only ``Success`` is read.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alibabacloud_dms_enterprise20181101 import models as dms
from alibabacloud_dms_enterprise20181101.client import Client as DmsClient
from alibabacloud_tea_openapi.utils_models import Config

from bench.together import run_together

# The mix: weights out of 10. Reads dominate, as they do for people watching tickets; one call
# in ten files a ticket (its precheck then runs on a worker).
MIX: tuple[tuple[str, int], ...] = (
    ("GetUserActiveTenant", 4),
    ("ListInstances", 2),
    ("GetOrderBaseInfo", 3),
    ("CreateDataCorrectOrder", 1),
)
KEPT_MESSAGES = 5


@dataclass(frozen=True)
class Caller:
    """An access key, and a ticket of its user's that GetOrderBaseInfo reads."""

    access_key_id: str
    secret: str
    order_id: int


def client(endpoint: str, caller: Caller) -> DmsClient:
    return DmsClient(
        Config(
            access_key_id=caller.access_key_id,
            access_key_secret=caller.secret,
            endpoint=endpoint,
            protocol="http",
            read_timeout=60_000,
            connect_timeout=5_000,
        )
    )


def create_ticket(sdk: DmsClient, db_id: int, sql: str, comment: str) -> Any:
    """CreateDataCorrectOrder of a one-row DC_COMMON change; the answer's body."""
    param = dms.CreateDataCorrectOrderRequestParam().from_map(
        {
            "DbItemList": [{"DbId": db_id, "Logic": False}],
            "EstimateAffectRows": 1,
            "SqlType": "TEXT",
            "ExecSQL": sql,
        }
    )
    request = dms.CreateDataCorrectOrderRequest(param=param, comment=comment)
    return sdk.create_data_correct_order(request).body


def created_id(body: Any) -> int:
    """The OrderId a CreateDataCorrectOrder answer names."""
    (order_id,) = body.create_order_result
    return int(order_id)


@dataclass(frozen=True)
class Plan:
    """What one load process does. Client ``i`` of the process is number ``first + i`` of
    the whole load: it talks to ``endpoints[n % len]`` as ``callers[n % len]``."""

    endpoints: tuple[str, ...]
    callers: tuple[Caller, ...]
    clients: int
    first: int
    db_id: int
    rows: int  # a filed ticket updates one row of 1..rows
    warmup: float  # seconds of calls, from the common start, that are not measured
    seconds: float  # seconds of measured calls after the warm-up
    comment: str  # every filed ticket's comment, to find them afterwards
    ours: bool  # the answers are OpenDMS's: a filed ticket's answer must name it


@dataclass
class Tally:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    created: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0

    def add(self, other: Tally) -> None:
        for action, found in other.latencies.items():
            self.latencies.setdefault(action, []).extend(found)
        for what, n in other.errors.items():
            self.errors[what] = self.errors.get(what, 0) + n
        self.messages += other.messages[: max(0, KEPT_MESSAGES - len(self.messages))]
        self.created += other.created
        self.cpu_seconds += other.cpu_seconds

    @property
    def calls(self) -> int:
        return sum(len(found) for found in self.latencies.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def percentile(self, p: float, action: str | None = None) -> float:
        """Seconds; over every action unless one is named."""
        found = sorted(
            self.latencies.get(action, [])
            if action
            else [x for xs in self.latencies.values() for x in xs]
        )
        if not found:
            return float("nan")
        return found[min(len(found) - 1, int(p / 100 * len(found)))]


def _call(sdk: DmsClient, action: str, plan: Plan, caller: Caller, rng: random.Random) -> Any:
    if action == "GetUserActiveTenant":
        return sdk.get_user_active_tenant(dms.GetUserActiveTenantRequest()).body
    if action == "ListInstances":
        return sdk.list_instances(dms.ListInstancesRequest(page_number=1, page_size=20)).body
    if action == "GetOrderBaseInfo":
        request = dms.GetOrderBaseInfoRequest(order_id=caller.order_id)
        return sdk.get_order_base_info(request).body
    row = rng.randint(1, plan.rows)
    return create_ticket(sdk, plan.db_id, f"UPDATE t SET n = n + 1 WHERE id = {row}", plan.comment)


@dataclass(frozen=True)
class Window:
    record_from: float  # time.time(): calls started from here on are measured
    stop_at: float  # no call starts after this


def _client_loop(
    plan: Plan, number: int, sdk: DmsClient, window: list[Window], tally: Tally, lock: Any
) -> None:
    """One client: calls until the window closes (``window[0]``, set once every process is
    ready; the thread is started after that)."""
    caller = plan.callers[number % len(plan.callers)]
    rng = random.Random(number)
    actions = [a for a, _ in MIX]
    weights = [w for _, w in MIX]
    mine = Tally()
    (when,) = window
    while (began := time.time()) < when.stop_at:
        action = rng.choices(actions, weights)[0]
        start = time.perf_counter()
        failure = None
        try:
            body = _call(sdk, action, plan, caller, rng)
            if body.success is not True:
                failure = (f"{action}: Success={body.success}", str(body.to_map())[:200])
            elif action == "CreateDataCorrectOrder" and plan.ours:
                mine.created.append(created_id(body))
        except Exception as exc:  # every failure is counted; none stops the load
            code = getattr(exc, "code", None) or type(exc).__name__
            failure = (f"{action}: {code}", str(exc)[:200])
        took = time.perf_counter() - start
        if failure is not None:
            what, message = failure
            mine.errors[what] = mine.errors.get(what, 0) + 1
            if len(mine.messages) < KEPT_MESSAGES:
                mine.messages.append(f"{what}: {message}")
        elif began >= when.record_from:
            mine.latencies.setdefault(action, []).append(took)
    with lock:
        tally.add(mine)


def run(plan: Plan, go: Callable[[], float]) -> Tally:
    """One load process: ``plan.clients`` clients on threads, started together with the
    other processes' (``go``); their tally."""
    numbers = range(plan.first, plan.first + plan.clients)
    sdks = [
        client(plan.endpoints[n % len(plan.endpoints)], plan.callers[n % len(plan.callers)])
        for n in numbers
    ]
    tally = Tally()
    lock = threading.Lock()
    window: list[Window] = []
    threads = [
        threading.Thread(target=_client_loop, args=(plan, n, sdk, window, tally, lock))
        for n, sdk in zip(numbers, sdks, strict=True)
    ]
    start = go()
    window.append(Window(start + plan.warmup, start + plan.warmup + plan.seconds))
    cpu = time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tally.cpu_seconds = time.process_time() - cpu
    return tally


def load(
    plan_for: Callable[[int, int], Plan],
    processes: int,
    clients: int,
    at_start: Callable[[], None] = lambda: None,
) -> Tally:
    """``clients`` clients spread over ``processes`` processes that start together
    (``at_start()`` is called just before); ``plan_for(first, count)`` is each process's
    plan."""
    share, extra = divmod(clients, processes)
    plans, first = [], 0
    for p in range(processes):
        count = share + (1 if p < extra else 0)
        plans.append(plan_for(first, count))
        first += count
    total = Tally()
    for found in run_together(run, plans, at_start):
        total.add(found)
    return total
