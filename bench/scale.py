#!/usr/bin/env python3
"""Scale-out: API processes and Celery workers on one PostgreSQL store, measured in one run.

The cluster is what the README's production section sets up, on this machine: a fresh
PostgreSQL store database, the machine's Redis as the broker (queues under a prefix of this
run's own, deleted at the end), a MariaDB target database, API processes (`opendms serve`,
each with a data directory of its own holding the installation's master key) and workers
(`opendms worker`, 2 jobs at once each). Tickets are filed by several users, so that the
fair share (one running job per committer) does not serialise them.

1. Signed-request throughput, 1 API process vs 2: GetUserActiveTenant, signed (V3) ahead of
   the clock in two load processes of 32 keep-alive connections each (the signing rate is
   shown; a request signed after the pool ran dry is counted). With 2 API processes each
   load process talks to one of them, as a balancer would split the connections.
2. Ticket executions per minute, 1 worker vs 2: a batch of one-row DC_COMMON tickets,
   prechecked and submitted beforehand, timed from the first ExecuteDataCorrect to the last
   ticket's `success`; then the rows are checked (each ticket's row changed once, no other).
3. 100 official-SDK clients (threads of 4 processes) against 2 API processes and 2 workers
   for 60 s: 4 in 10 calls GetUserActiveTenant, 2 ListInstances, 3 GetOrderBaseInfo and 1
   CreateDataCorrectOrder. Every error is counted (the target is none); p50/p99; and the
   throughput against the insert-per-request baseline of bench/gateway.py (a bare ASGI
   endpoint inserting one row into the store per request, uvicorn with 2 worker processes),
   loaded by the same 100 SDK clients sending the same calls: the same client cost on both
   sides. Afterwards every filed ticket must have passed its precheck, the store must hold
   exactly the tickets the clients were told of, and the target must be untouched.

The model: API processes are stateless; they share nothing but the store (and Redis, where
rate limits are shared), so N of them serve N times the requests of one until the store
saturates. On this 2-core machine the load generator, the store, Redis and the API
processes compete for the same two cores: expect about 1x for API processes, and a gain
for workers only where one worker's threads wait on the databases.

    python bench/scale.py            # about 5 minutes
    python bench/scale.py --quick    # a smoke run: small batches, short runs

The last line (`scale: ...`) holds every figure, with its target and whether it was met.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import redis
import uvloop
from alibabacloud_dms_enterprise20181101 import models as dms
from alibabacloud_tea_openapi.exceptions import ServerException
from kombu import Connection

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen, sdkload  # noqa: E402
from bench.cpu import Meter, family  # noqa: E402
from bench.gateway import (  # noqa: E402
    BIN,
    UVICORN_FLAGS,
    create_baseline_table,
    free_port,
    metadata_store,
    process,
    stop,
    v3_builder,
    wait_port,
)
from bench.sites import Engine, Site, mariadb  # noqa: E402
from bench.together import Go, run_together  # noqa: E402
from opendms.catalog import permissions  # noqa: E402
from opendms.identity import service as identity  # noqa: E402
from opendms.precheck import service as precheck  # noqa: E402
from opendms.store.models import Order  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"
SETUP_ATTEMPTS = 5
WAIT_SECONDS = 600.0  # the longest any wait of the bench may take before it gives up
MIXED_COMMENT = "scale-mixed"
QUEUES = ("jobs", "uploads")
BINDINGS = ("binding", "binding_permanent")
TRACEBACK_END = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Timeout|Closed)\b: ")


@dataclass(frozen=True)
class Sizes:
    api_seconds: float
    api_warmup: float
    tickets: int  # per batch of the workers' measurement
    mixed_seconds: float
    mixed_warmup: float
    clients: int


FULL = Sizes(
    api_seconds=10, api_warmup=2, tickets=200, mixed_seconds=60, mixed_warmup=5, clients=100
)
QUICK = Sizes(api_seconds=3, api_warmup=1, tickets=20, mixed_seconds=8, mixed_warmup=2, clients=100)
LOAD_PROCESSES = 2  # for the signed-request throughput (64 connections in all)
CONNECTIONS = 32
SDK_PROCESSES = 4
COMMITTERS = 8


# ------------------------------------------------------------------ the cluster


@dataclass
class Cluster:
    """The processes of one run and what they share (see the module)."""

    root: Path
    store_url: str
    queue: str
    broker_url: str
    site: Site
    engine: Engine
    committers: list[sdkload.Caller]
    stack: ExitStack
    conn: psycopg.Connection[Any]
    apis: list[int] = field(default_factory=list)  # their ports
    procs: dict[str, list[subprocess.Popen[bytes]]] = field(
        default_factory=lambda: {"API": [], "workers": []}
    )

    @property
    def workers(self) -> int:
        return len(self.procs["workers"])

    def pids(self, apis: int | None = None) -> dict[str, list[int]]:
        """The processes' ids by role (only the first ``apis`` API processes, if given)."""
        return {
            role: [p.pid for p in procs[: apis if role == "API" else None]]
            for role, procs in self.procs.items()
        }

    def env(self, name: str) -> dict[str, str]:
        """A process's environment: the shared settings and a data directory of its own
        holding the installation's master key (as configuration management would put it)."""
        data_dir = self.root / name
        data_dir.mkdir(mode=0o700)
        shutil.copy2(self.root / "key" / "master.key", data_dir / "master.key")
        base = {k: v for k, v in os.environ.items() if not k.startswith("OPENDMS_")}
        return {
            **base,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "OPENDMS_DATA_DIR": str(data_dir),
            "OPENDMS_DATABASE_URL": self.store_url,
            "OPENDMS_BROKER_URL": self.broker_url,
            "OPENDMS_BROKER_QUEUE": self.queue,
            "OPENDMS_FILES_DIR": str(self.root / "files"),
            # the gateway bench's setting: the rate limit out of the way of the load
            "OPENDMS_RATE_LIMIT": "1000000000",
        }

    def add_api(self) -> int:
        name = f"api-{len(self.apis)}"
        port = free_port()
        cmd = [str(BIN / "opendms"), "serve", "--port", str(port)]
        proc = self.stack.enter_context(process(cmd, self.env(name), self.root / f"{name}.log"))
        wait_port(port, proc)
        self.apis.append(port)
        self.procs["API"].append(proc)
        return port

    def add_worker(self) -> None:
        name = f"worker-{self.workers}"
        log = self.root / f"{name}.log"
        cmd = [str(BIN / "opendms"), "worker", "--concurrency", "2"]
        proc = self.stack.enter_context(process(cmd, self.env(name), log))
        self.procs["workers"].append(proc)
        # ready: it beats in the store and its Celery consumer says so
        wait_for(
            f"{name} to be ready (see {log})",
            lambda: (
                proc.poll() is None
                and self.scalar("SELECT count(*) FROM processes WHERE role = 'worker'")
                >= self.workers
                and "ready" in log.read_text(errors="replace")
            ),
            lambda: proc.poll() is not None,
        )

    def stop_opendms(self) -> None:
        """Stop every API process and worker, and so let their store connections go."""
        for procs in self.procs.values():
            for proc in procs:
                stop(proc)

    def endpoint(self, i: int) -> str:
        return f"127.0.0.1:{self.apis[i % len(self.apis)]}"

    def failures(self, limit: int = 3) -> list[str]:
        """The distinct exceptions the processes' logs end a traceback with (why an answer
        was an error: the store out of connections is this machine's, not the bench's)."""
        found: list[str] = []
        for log in sorted(self.root.glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if TRACEBACK_END.match(line) and line[:160] not in found:
                    found.append(line[:160])
        return found[:limit]

    def scalar(self, sql: str, *params: Any) -> Any:
        """One value from the store, on one connection kept for the run (the machine's
        PostgreSQL is shared: the bench opens as few connections as it can)."""
        row = self.conn.execute(sql, params).fetchone()
        return row[0] if row else None

    def target_rows(self) -> dict[int, int]:
        """id → how much t.n differs from t_orig.n."""
        with self.engine.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT t.id, t.n - o.n FROM t JOIN t_orig o ON o.id = t.id")
            return {int(i): int(d) for i, d in cur.fetchall()}


def wait_for(
    what: str, done: Callable[[], bool], broken: Callable[[], bool] = lambda: False
) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not done():
        if broken():
            raise SystemExit(f"gave up waiting for {what}: a process exited")
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {WAIT_SECONDS:.0f} s")
        time.sleep(0.1)


def _delete_queues(url: str, prefix: str) -> None:
    with contextlib.suppress(Exception), Connection(url, connect_timeout=3) as conn:
        channel = conn.channel()
        for name in (f"{prefix}.{q}" for q in QUEUES):
            with contextlib.suppress(Exception):
                channel.queue_delete(name)
            with contextlib.suppress(Exception):
                channel.exchange_delete(name)
    if url.startswith(("redis://", "rediss://")):  # kombu leaves its binding sets behind
        with contextlib.suppress(Exception), redis.Redis.from_url(url) as r:
            r.delete(*(f"_kombu.{kind}.{prefix}.{q}" for kind in BINDINGS for q in QUEUES))


def _committers(site: Site, count: int) -> list[sdkload.Caller]:
    """``count`` users (role USER) with CORRECT on the site's database; their keys."""
    made = []
    with site.store.session() as s:
        target = permissions.resolve_target(s, site.tid, "DATABASE", db_id=site.db_id)
        for i in range(count):
            user = identity.register_user(
                s, None, site.tid, identity.new_uid(), nick_name=f"committer-{i}"
            )
            key, secret = identity.create_access_key(s, site.box, user.uid, actor=None)
            permissions.grant(s, site.tid, user.user_id, target, "CORRECT", datetime(2099, 1, 1))
            made.append(sdkload.Caller(key.access_key_id, secret, order_id=0))
    return made


@contextmanager
def cluster(rows: int, broker_url: str) -> Iterator[Cluster]:
    with ExitStack() as stack:
        root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="opendms-bench-scale-")))
        (root / "files").mkdir(mode=0o700)
        store_url = stack.enter_context(metadata_store("postgresql", root))
        engine = stack.enter_context(mariadb(rows))
        site = Site(engine, root / "key", store_url=store_url)
        stack.callback(site.store.dispose)
        queue = f"bench{uuid.uuid4().hex[:10]}"
        stack.callback(_delete_queues, broker_url, queue)
        callers = _committers(site, COMMITTERS)
        dsn = store_url.replace("postgresql+psycopg://", "postgresql://")
        conn = stack.enter_context(psycopg.connect(dsn, autocommit=True))
        yield Cluster(root, store_url, queue, broker_url, site, engine, callers, stack, conn)


# ------------------------------------------------------------------ 1. API processes


@dataclass(frozen=True)
class SignedLoad:
    """One load process of the signed-request measurement."""

    port: int
    access_key_id: str
    secret: str
    presigned: int
    connections: int
    warmup: float
    seconds: float


@dataclass
class SignedResult:
    result: loadgen.Result
    sign_seconds: float  # spent signing the pool
    presigned: int
    signed_live: int
    cpu_seconds: float


def _signed_load(job: SignedLoad, go: Go) -> SignedResult:
    """A load process: its requests signed first, then sent from the common start."""
    build = v3_builder(job.access_key_id, job.secret, job.port)
    began = time.perf_counter()
    pool = [build() for _ in range(job.presigned)]
    sign_seconds = time.perf_counter() - began
    live = 0

    def next_request() -> bytes:
        nonlocal live
        if pool:
            return pool.pop()
        live += 1
        return build()

    go()
    cpu = time.process_time()
    result = uvloop.run(
        loadgen.run(
            "127.0.0.1",
            job.port,
            next_request,
            connections=job.connections,
            seconds=job.seconds,
            warmup=job.warmup,
        )
    )
    return SignedResult(result, sign_seconds, job.presigned, live, time.process_time() - cpu)


def signed_throughput(c: Cluster, apis: int, sizes: Sizes) -> float:
    """Requests/s of GetUserActiveTenant over the first ``apis`` API processes."""
    key, secret = c.site.admin.access_key_id, c.site.admin.access_key_secret
    # enough for 3,000 requests/s per load process through the warm-up and the run
    presigned = int(3000 * (sizes.api_seconds + sizes.api_warmup))
    jobs = [
        SignedLoad(
            c.apis[i % apis],
            key,
            secret,
            presigned,
            CONNECTIONS,
            sizes.api_warmup,
            sizes.api_seconds,
        )
        for i in range(LOAD_PROCESSES)
    ]
    meters: list[Meter] = []
    found = run_together(
        _signed_load, jobs, lambda: meters.append(Meter({"API": c.pids(apis)["API"]}))
    )
    calls = sum(len(f.result.latencies) for f in found)
    rps = calls / sizes.api_seconds
    latencies = sorted(x for f in found for x in f.result.latencies)
    errors = sum(n for f in found for s, n in f.result.statuses.items() if s != 200)
    sign_us = sum(f.sign_seconds for f in found) / sum(f.presigned for f in found) * 1e6
    live = sum(f.signed_live for f in found)
    cpu = sum(f.cpu_seconds for f in found)
    wall = sizes.api_seconds + sizes.api_warmup
    print(
        f"  {apis} API process{'es' if apis > 1 else ''}: {rps:7.0f} req/s   "
        f"p50 {pct(latencies, 50):6.2f} ms   p99 {pct(latencies, 99):6.2f} ms   "
        f"non-200: {errors}",
        flush=True,
    )
    print(f"    {meters[0].line({'load generator': cpu / wall})}")
    print(f"    signing {sign_us:.0f} us/request beforehand, {live} signed during the run")
    if errors:
        raise SystemExit(f"signed requests failed: {[f.result.statuses for f in found]}")
    return rps


def pct(ordered: list[float], p: float) -> float:
    """Milliseconds at percentile ``p`` of sorted seconds."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


# ------------------------------------------------------------------ 2. workers


def in_threads(work: Callable[[int], Any], rows: Iterable[int], threads: int = 8) -> list[Any]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(work, rows))


def sdk_call(c: Cluster, who: int, call: Callable[[Any], Any]) -> Any:
    """``call(client)`` as committer ``who`` (modulo their number) through API process
    ``who`` (likewise); its answer's body, which must say Success. Outside the measured
    load, an answer that the store is unavailable (the machine's PostgreSQL, shared with
    other work, out of connections) is retried a few times, as it says to."""
    caller = c.committers[who % len(c.committers)]
    sdk = sdkload.client(c.endpoint(who), caller)
    for attempt in range(1, SETUP_ATTEMPTS + 1):
        try:
            body = call(sdk)
        except ServerException as exc:
            if exc.code != "ServiceUnavailable" or attempt == SETUP_ATTEMPTS:
                raise SystemExit(f"a setup call failed: {exc}") from None
            time.sleep(attempt)
            continue
        if body.success is not True:
            raise SystemExit(f"a setup call failed: {body.to_map()}")
        return body
    raise AssertionError("unreachable")


def file_batch(c: Cluster, rows: range) -> dict[int, int]:
    """A one-row DC_COMMON ticket per row, filed by committer ``row``; row → its ticket."""

    def file(row: int) -> int:
        sql = f"UPDATE t SET n = n + 1 WHERE id = {row}"
        body = sdk_call(c, row, lambda sdk: sdkload.create_ticket(sdk, c.site.db_id, sql, "scale"))
        return sdkload.created_id(body)

    return dict(zip(rows, in_threads(file, rows), strict=True))


def prechecks_passed(c: Cluster, order_ids: list[int]) -> None:
    """Wait for the tickets' prechecks to end; each must have passed."""
    wait_for(
        f"the prechecks of {len(order_ids)} tickets",
        lambda: (
            c.scalar(
                "SELECT count(*) FROM jobs WHERE kind = 'precheck' AND order_id = ANY(%s) "
                "AND state IN ('queued', 'running')",
                order_ids,
            )
            == 0
        ),
    )
    with c.site.store.session() as s:
        for order_id in order_ids:
            short = precheck.shortfall(s, s.get_one(Order, order_id))
            if short is not None:
                raise SystemExit(f"ticket {order_id} did not pass its precheck: {short}")


def executions_per_minute(c: Cluster, batch: dict[int, int]) -> float:
    """ExecuteDataCorrect on each ticket (by its committer, 8 at a time), timed to the last
    one's success."""
    order_ids = list(batch.values())

    def execute(row: int) -> None:
        request = dms.ExecuteDataCorrectRequest(order_id=batch[row], action_detail={})
        sdk_call(c, row, lambda sdk: sdk.execute_data_correct(request).body)

    meter = Meter({**c.pids(), "this process (the calls)": [os.getpid()]})
    began = time.perf_counter()
    in_threads(execute, batch)
    wait_for(
        f"{len(order_ids)} executions",
        lambda: (
            c.scalar(
                "SELECT count(*) FROM orders WHERE order_id = ANY(%s) AND status_code = 'success'",
                order_ids,
            )
            == len(order_ids)
        ),
        lambda: (
            c.scalar(
                "SELECT count(*) FROM jobs WHERE order_id = ANY(%s) AND state = 'failed'", order_ids
            )
            > 0
        ),
    )
    took = time.perf_counter() - began
    rate = len(order_ids) / took * 60
    print(
        f"  {c.workers} worker{'s' if c.workers > 1 else ''}: {len(order_ids)} tickets in "
        f"{took:.2f} s: {rate:,.0f} executions/min",
        flush=True,
    )
    print(f"    {meter.line()}")
    return rate


def worker_scaling(c: Cluster, sizes: Sizes) -> float:
    """Both batches filed and prechecked with one worker; the first executed by it, the
    second once a second worker runs beside it; then the target's rows checked."""
    n = sizes.tickets
    c.add_worker()
    first, second = file_batch(c, range(1, n + 1)), file_batch(c, range(n + 1, 2 * n + 1))
    tickets = {**first, **second}
    prechecks_passed(c, list(tickets.values()))

    def submit(row: int) -> None:
        request = dms.SubmitOrderApprovalRequest(order_id=tickets[row])
        sdk_call(c, row, lambda sdk: sdk.submit_order_approval(request).body)

    in_threads(submit, tickets)
    # the mixed load's GetOrderBaseInfo reads a ticket of its caller's
    theirs = {row % len(c.committers): order_id for row, order_id in tickets.items()}
    c.committers = [
        sdkload.Caller(k.access_key_id, k.secret, theirs[i]) for i, k in enumerate(c.committers)
    ]
    one = executions_per_minute(c, first)
    c.add_worker()
    two = executions_per_minute(c, second)
    changed = {row: d for row, d in c.target_rows().items() if d}
    if changed != dict.fromkeys(tickets, 1):
        wrong = sorted(set(changed.items()) ^ {(row, 1) for row in tickets})[:10]
        raise SystemExit(f"the tickets' rows are not each changed once: (row, change) {wrong}")
    print(f"  rows checked: each of the {len(tickets)} tickets' rows changed once, no other row")
    return two / one


# ------------------------------------------------------------------ 3. 100 SDK clients


def mixed_load(
    c: Cluster, endpoints: tuple[str, ...], sizes: Sizes, servers: dict[str, list[int]], name: str
) -> sdkload.Tally:
    """The SDK clients' mixed load on ``endpoints`` (OpenDMS's when ``servers`` holds its
    workers); shown as ``name``, with the cores each of ``servers`` used."""
    ours = "workers" in servers

    def plan_for(first: int, count: int) -> sdkload.Plan:
        return sdkload.Plan(
            endpoints,
            tuple(c.committers),
            count,
            first,
            c.site.db_id,
            2 * sizes.tickets,
            sizes.mixed_warmup,
            sizes.mixed_seconds,
            MIXED_COMMENT,
            ours,
        )

    meters: list[Meter] = []
    t = sdkload.load(plan_for, SDK_PROCESSES, sizes.clients, lambda: meters.append(Meter(servers)))
    wall = sizes.mixed_seconds + sizes.mixed_warmup
    print(
        f"  {name:<30} {t.calls / sizes.mixed_seconds:7.0f} calls/s   "
        f"p50 {t.percentile(50) * 1000:7.2f} ms   p99 {t.percentile(99) * 1000:7.2f} ms   "
        f"errors {t.error_count}",
        flush=True,
    )
    print(f"    {meters[0].line({'SDK clients': t.cpu_seconds / wall})}")
    for message in t.messages:
        print(f"    error: {message}")
    return t


def mixed(c: Cluster, sizes: Sizes) -> tuple[sdkload.Tally, sdkload.Tally]:
    """The mixed run on 2 API processes and 2 workers and its checks, then the baseline's."""
    before = c.target_rows()
    ours = mixed_load(
        c, (c.endpoint(0), c.endpoint(1)), sizes, c.pids(), "OpenDMS, 2 API + 2 workers"
    )
    for action, _ in sdkload.MIX:
        print(
            f"    {action:<24} {len(ours.latencies.get(action, [])):7d} calls   "
            f"p50 {ours.percentile(50, action) * 1000:7.2f} ms   "
            f"p99 {ours.percentile(99, action) * 1000:7.2f} ms"
        )
    held = c.scalar("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
    print(f"    store connections held by the cluster afterwards: {held}")
    if ours.error_count:
        for line in c.failures():
            print(f"    in the processes' logs: {line}")
    prechecks_passed(c, ours.created)
    filed = c.scalar("SELECT count(*) FROM orders WHERE comment = %s", MIXED_COMMENT)
    if filed != len(ours.created) or len(set(ours.created)) != len(ours.created):
        raise SystemExit(
            f"the store holds {filed} tickets of the mixed load; its clients were told of "
            f"{len(ours.created)} ({len(set(ours.created))} distinct)"
        )
    if c.target_rows() != before:
        raise SystemExit("the mixed load changed the target, though it executed no ticket")
    print(f"  checked: {filed} tickets filed, each prechecked; the target untouched", flush=True)
    # the baseline runs alone, as OpenDMS did: the machine's PostgreSQL has connections for
    # one of them at a time beside other work
    c.stop_opendms()

    create_baseline_table(c.store_url)
    port = free_port()
    env = {**c.env("baseline"), "BENCH_DB_URL": c.store_url}
    cmd = [str(BIN / "python"), "-m", "uvicorn", "bench.baseline_app:insert_app", "--factory"]
    cmd += ["--port", str(port), "--workers", "2", *UVICORN_FLAGS]
    with process(cmd, env, c.root / "baseline.log") as proc:
        wait_port(port, proc)
        time.sleep(1.0)  # let both worker processes finish starting
        base = mixed_load(
            c,
            (f"127.0.0.1:{port}",),
            sizes,
            {"baseline": family(proc.pid)},
            "insert-per-request baseline",
        )
    if base.error_count:
        raise SystemExit("the baseline answered with errors")
    return ours, base


# ------------------------------------------------------------------ the run


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


API_MODEL = """\
  model: API processes are stateless and share nothing but the store (and Redis, for rate
  limits); each is one Python process, so at most about one core. Here the load generator,
  PostgreSQL, Redis and the API processes share the machine's cores: where they are all
  busy a second API process only takes cores from the others (about 1x); where other work
  keeps them busy too, a second process also wins a second share of the cores from it
  (above 1x, for that reason only). With cores to spare, N processes serve about N times
  one, until the store saturates."""

WORKER_MODEL = """\
  model: a worker runs 2 jobs at once on threads; a one-row ticket is mostly round trips to
  the store and the target, so one worker is bounded by those waits and by its one core. A
  second worker adds both, until the store, the target or the machine's cores saturate."""


def run(args: argparse.Namespace) -> None:
    sizes = QUICK if args.quick else FULL
    load = os.getloadavg()
    print(
        f"scale bench{' (quick)' if args.quick else ''}: {os.cpu_count()} cores, load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start (other work on the machine "
        "shares the cores)",
        flush=True,
    )
    with cluster(rows=4 * sizes.tickets, broker_url=args.redis) as c:
        c.add_api()
        c.add_api()
        print(
            f"\n1. signed GetUserActiveTenant, {LOAD_PROCESSES} load processes x {CONNECTIONS} "
            f"connections, {sizes.api_seconds:.0f} s (+{sizes.api_warmup:.0f} s warm-up)",
            flush=True,
        )
        one = signed_throughput(c, 1, sizes)
        two = signed_throughput(c, 2, sizes)
        api_ratio = two / one
        print(f"  ratio 2/1 API processes: {api_ratio:.2f}\n{API_MODEL}", flush=True)

        print(
            f"\n2. ticket executions, {sizes.tickets} one-row DC_COMMON tickets per batch, "
            f"{COMMITTERS} committers, 2 jobs at once per worker",
            flush=True,
        )
        worker_ratio = worker_scaling(c, sizes)
        print(f"  ratio 2/1 workers: {worker_ratio:.2f}\n{WORKER_MODEL}", flush=True)

        print(
            f"\n3. {sizes.clients} SDK clients ({SDK_PROCESSES} processes), "
            f"{sizes.mixed_seconds:.0f} s (+{sizes.mixed_warmup:.0f} s warm-up)",
            flush=True,
        )
        ours, base = mixed(c, sizes)
    rate = ours.calls / sizes.mixed_seconds
    vs_base = ours.calls / base.calls
    print(f"  ratio to the baseline: {vs_base:.2f}")
    load = os.getloadavg()
    print(f"\nload average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(
        f"scale: API 2/1 {api_ratio:.2f}x (reported; ~1x expected on {os.cpu_count()} cores); "
        f"workers 2/1 {worker_ratio:.2f}x (reported); "
        f"{sizes.clients} SDK clients {sizes.mixed_seconds:.0f} s: errors {ours.error_count} "
        f"(target 0: {met(ours.error_count == 0)}), p50 {ours.percentile(50) * 1000:.1f} ms, "
        f"p99 {ours.percentile(99) * 1000:.1f} ms, {rate:.0f} calls/s = {vs_base:.2f}x the "
        f"insert baseline (target >= 0.5: {met(vs_base >= 0.5)})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run of seconds")
    parser.add_argument("--redis", default=REDIS_URL, help="the broker (default %(default)s)")
    args = parser.parse_args()
    for name in ("no_proxy", "NO_PROXY"):  # the SDK honours proxies; loopback never takes one
        os.environ[name] = ",".join(filter(None, [os.environ.get(name, ""), "127.0.0.1"]))
    try:
        run(args)
    except psycopg.OperationalError as exc:
        raise SystemExit(
            f"the bench lost PostgreSQL ({exc}); it is shared with other work on this "
            "machine: run again when it has connections to spare"
        ) from None


if __name__ == "__main__":
    main()
