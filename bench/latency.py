#!/usr/bin/env python3
"""Fixed cost per job (issue 23): a one-row DC_COMMON ticket, from ExecuteDataCorrect to
`success`, through a running ``opendms serve`` as it is deployed embedded (its runner
threads woken by the commit that queued the job), on MariaDB and PostgreSQL, with the SQLite
store (the embedded default) and the PostgreSQL store.

Each ticket is an UPDATE of one row by its key (``UPDATE t SET n = n + 1 WHERE id = k``),
prechecked and approved before the server starts (a rule set that needs no approval), then
started one at a time by a signed ExecuteDataCorrect (V3, signed before the clock starts,
ActionDetail ``{"backupData": true}``: the backup made as DMS users run it) over one
keep-alive HTTP connection. The server is left idle 50 ms between two tickets, so each one
meets runners waiting, as a lone ticket does.

No figure depends on how the bench waits: it reads the times the server itself recorded,
on this machine's one clock:

- sent: the bench's clock just before the request goes out;
- committed: the progress marker's time on the target, written in the change's own
  transaction (MariaDB: ``NOW(6)`` of the marker's INSERT, the statement before COMMIT;
  PostgreSQL: ``statement_timestamp()`` of the same INSERT);
- success: the ticket's ``updated_at``, stamped by its move to `success`; the unit of work
  that commits it ends right after (on the PostgreSQL store its last statements and commit
  are a few more round trips).

The bench waits for `success` by reading the store every 5 ms (read-only, outside any
transaction), which delays only when the next ticket goes; when it saw it is printed too,
an upper bound (the store's stamp is a lower one). Before the timed tickets, three
are run untimed (the first opens the target's OpenDMS schema). After each store and engine
the row's value and the backup tables are checked.

    python bench/latency.py [--tickets 100] [--engines mariadb,postgresql]
                            [--stores sqlite,postgresql] [--log-dir DIR] [--profile FILE]

Prints, per store and engine, the server's CPU time a ticket (all its threads, rests
included), the distribution (p50, p90, p99, max, ms) of the whole and of its two parts
(ExecuteDataCorrect -> committed on the target, committed -> `success`), and the steps
between: their medians and the slowest ticket's. The last lines: every engine's
p50/p90/p99/max and whether the target (p99 under 100 ms) is met. ``--profile`` samples the
server with py-spy (collapsed stacks, every thread, waits too) for where the time goes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.gateway import BIN, free_port, metadata_store, process, wait_port
from bench.signed import send, signed
from bench.sites import Engine, Site, mariadb, postgresql
from opendms.approvals import flow
from opendms.store.db import Store

ROOT = Path(__file__).resolve().parent.parent
TARGET_MS = 100.0
WARMUP = 3
IDLE_SECONDS = 0.05  # the server rests this long between two tickets
POLL_SECONDS = 0.005  # how often the bench reads the store for `success`


class Client:
    """Signed API requests (V3, as the official SDK signs them) on one keep-alive
    connection."""

    def __init__(self, port: int, access_key_id: str, secret: str) -> None:
        self.port, self.key, self.secret = port, access_key_id, secret
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def signed(self, action: str, params: dict[str, str]) -> tuple[str, dict[str, str]]:
        """The request's URL and headers, signed now (sent within the clock skew)."""
        return signed(self.port, self.key, self.secret, action, params)

    def send(self, url: str, headers: dict[str, str]) -> dict[str, Any]:
        return send(self.conn, url, headers)

    def close(self) -> None:
        self.conn.close()


@dataclass(frozen=True)
class Times:
    """One ticket's moments, seconds since the epoch (see the module)."""

    sent: float
    replied: float  # ExecuteDataCorrect's answer read
    queued: float  # the execute job's row made (in the request's unit of work)
    started: float  # the executor began the statement (its detail's started_at)
    committed: float  # the progress marker on the target
    recorded: float  # the statement recorded as done (its detail's ended_at)
    success: float  # the ticket moved to `success`
    seen: float  # the bench saw `success` committed, polling

    @property
    def total(self) -> float:
        return self.success - self.sent

    @property
    def to_commit(self) -> float:
        return self.committed - self.sent

    @property
    def after_commit(self) -> float:
        return self.success - self.committed


def _epoch(value: Any) -> float:
    """A store's naive UTC datetime (SQLite hands back text) as seconds since the epoch."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return float(value.replace(tzinfo=UTC).timestamp())


class Watcher:
    """Reads what the server recorded, outside any transaction (a SQLite store is never
    locked by it)."""

    def __init__(self, url: str, engine: Engine) -> None:
        self.store = Store(url, pool_size=1)
        self.conn = self.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.target = engine.connect()
        self.engine = engine

    def success(self, order_id: int, timeout: float = 30.0) -> float:
        """When the bench saw the ticket's `success` committed (within a poll)."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.conn.execute(
                text("SELECT status_code FROM orders WHERE order_id = :o"), {"o": order_id}
            ).scalar()
            if status == "success":
                return time.time()
            if status not in ("Approved", "processing") or time.monotonic() > deadline:
                raise SystemExit(f"ticket {order_id} ended {status}")
            time.sleep(POLL_SECONDS)

    def times(self, order_id: int, sent: float, replied: float, seen: float) -> Times:
        found = self.conn.execute(
            text(
                "SELECT o.updated_at, j.created_at, d.started_at, d.ended_at, s.token "
                "FROM orders o JOIN jobs j ON j.order_id = o.order_id AND j.kind = 'execute' "
                "JOIN sql_jobs s ON s.group_id = j.job_id "
                "JOIN sql_job_details d ON d.sql_job_id = s.sql_job_id "
                "WHERE o.order_id = :o"
            ),
            {"o": order_id},
        ).one()
        success, queued, started, recorded, token = found
        return Times(
            sent,
            replied,
            _epoch(queued),
            _epoch(started),
            self.marker(f"{token}:1"),
            _epoch(recorded),
            _epoch(success),
            seen,
        )

    def marker(self, key: str) -> float:
        """When the progress marker ``key`` was written, in seconds since the epoch."""
        mariadb = self.engine.name == "MariaDB"
        when = "UNIX_TIMESTAMP(done_at)" if mariadb else "extract(epoch FROM done_at)"
        with self.target.cursor() as cur:  # both drivers take %s
            cur.execute(f"SELECT {when} FROM _opendms.progress WHERE run_key = %s", (key,))
            row = cur.fetchone()
        if row is None:
            raise SystemExit(f"no progress marker {key} on the target")
        return float(row[0])

    def close(self) -> None:
        self.conn.close()
        self.store.dispose()
        self.target.close()


def prepare(site: Site, count: int) -> list[tuple[int, int]]:
    """``count`` approved one-row tickets: (ticket, the key of the row it updates)."""
    made = []
    for k in range(1, count + 1):
        order_id = site.file(f"UPDATE t SET n = n + 1 WHERE id = {k}", 1)
        site.prechecked(order_id)
        with site.store.session() as s:
            flow.submit(s, site.caller, order_id)
        made.append((order_id, k))
    return made


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p / 100))] * 1000


def spread(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 50):6.1f}  p90 {pct(values, 90):6.1f}  "
        f"p99 {pct(values, 99):6.1f}  max {max(values) * 1000:6.1f} ms"
    )


def median_ms(values: list[float]) -> float:
    return pct(values, 50)


@contextmanager
def serving(site_dir: Path, url: str, log: Path, profile: Path | None) -> Iterator[tuple[int, int]]:
    """``opendms serve`` (one process, its default runner threads) on the site's store;
    ``profile``: py-spy samples it meanwhile, every thread, waits too (collapsed stacks).
    Yields its port and process id."""
    env = {
        **os.environ,
        "OPENDMS_DATA_DIR": str(site_dir),
        "OPENDMS_DATABASE_URL": url,
        "OPENDMS_RATE_LIMIT": "1000000000",
        "OPENDMS_TARGET_HOSTS": "127.0.0.1",
        # This tree's code, whichever checkout's venv runs the bench.
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
    }
    port = free_port()
    cmd = [str(BIN / "opendms"), "serve", "--port", str(port), "--workers", "1"]
    with process(cmd, env, log) as proc:
        wait_port(port, proc)
        time.sleep(1.0)  # let it finish starting
        if profile is None:
            yield port, proc.pid
            return
        spy = [str(BIN / "py-spy"), "record", "--pid", str(proc.pid), "--rate", "500"]
        spy += ["--idle", "--threads", "--nonblocking", "--format", "raw"]
        spy += ["--output", str(profile)]
        with process(spy, env, log.with_suffix(".py-spy.log")) as sampler:
            time.sleep(1.0)
            yield port, proc.pid
            sampler.send_signal(signal.SIGINT)  # py-spy writes its samples on Ctrl-C
            sampler.wait(60)


def cpu_seconds(pid: int) -> float:
    """The CPU time process ``pid`` used so far (user and system; Linux's /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    """One store and engine's tickets: their times, and the server's CPU time a ticket."""

    times: list[Times]
    cpu_ms: float


def measure(engine: Engine, store_kind: str, args: argparse.Namespace) -> Run:
    with tempfile.TemporaryDirectory(prefix="opendms-bench-latency-") as tmp:
        return _measure(engine, store_kind, args, Path(tmp))


def _measure(engine: Engine, store_kind: str, args: argparse.Namespace, work: Path) -> Run:
    with metadata_store(store_kind, work) as url:
        site = Site(engine, work, store_url=url)
        tickets = prepare(site, WARMUP + args.tickets)
        key, secret = site.admin.access_key_id, site.admin.access_key_secret
        site.store.dispose()
        watcher = Watcher(url, engine)
        found: list[Times] = []
        log = (
            args.log_dir / f"server-{engine.name}-{store_kind}.log"
            if args.log_dir
            else work / "server.log"
        )
        try:
            profile = args.profile
            if profile is not None:
                profile = profile.with_name(f"{profile.stem}-{engine.name}-{store_kind}.txt")
            with serving(work, url, log, profile) as (port, pid):
                client = Client(port, key, secret)
                try:
                    for i, (order_id, _) in enumerate(tickets):
                        if i == WARMUP:
                            cpu = cpu_seconds(pid)
                        request = client.signed(
                            "ExecuteDataCorrect",
                            {
                                "OrderId": str(order_id),
                                "ActionDetail": json.dumps({"backupData": True}),
                            },
                        )
                        time.sleep(IDLE_SECONDS)
                        sent = time.time()
                        client.send(*request)
                        replied = time.time()
                        seen = watcher.success(order_id)
                        if i >= WARMUP:
                            found.append(watcher.times(order_id, sent, replied, seen))
                    # the rests between tickets, and the bench's reads, are in it too: it
                    # is what a ticket costs the server's cores all told
                    cpu = cpu_seconds(pid) - cpu
                finally:
                    client.close()
            check(engine, watcher, site, tickets)
        finally:
            watcher.close()
            engine.run(*(f"DROP TABLE IF EXISTS {table}" for table in site.backups()))
    return Run(found, cpu * 1000 / len(found))


def check(engine: Engine, watcher: Watcher, site: Site, tickets: list[tuple[int, int]]) -> None:
    """Every ticket changed its one row once, and backed it up."""
    with watcher.target.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t JOIN t_orig o ON o.id = t.id WHERE t.n = o.n + 1")
        changed = cur.fetchone()[0]
        cur.execute("SELECT COUNT(*) FROM t JOIN t_orig o ON o.id = t.id WHERE t.n <> o.n")
        differ = cur.fetchone()[0]
    backups = site.backups()
    if changed != len(tickets) or differ != len(tickets) or len(backups) != len(tickets):
        raise SystemExit(
            f"{engine.name}: {changed} rows changed once, {differ} differ, {len(backups)} "
            f"backups; expected {len(tickets)} of each"
        )


STEPS: list[tuple[str, Callable[[Times], float]]] = [
    ("request answered", lambda t: t.replied - t.sent),
    ("sent -> job queued", lambda t: t.queued - t.sent),
    ("job queued -> statement started", lambda t: t.started - t.queued),
    ("statement started -> committed", lambda t: t.committed - t.started),
    ("committed -> statement recorded", lambda t: t.recorded - t.committed),
    ("statement recorded -> success", lambda t: t.success - t.recorded),
]


def report(label: str, run: Run) -> None:
    found = run.times
    print(f"{label}: {len(found)} tickets, server CPU {run.cpu_ms:.1f} ms a ticket", flush=True)
    print(f"  ExecuteDataCorrect -> success      {spread([t.total for t in found])}")
    print(f"  ExecuteDataCorrect -> committed    {spread([t.to_commit for t in found])}")
    print(f"  committed -> success               {spread([t.after_commit for t in found])}")
    seen = [t.seen - t.sent for t in found]
    print(f"  (success seen by a {POLL_SECONDS * 1000:.0f} ms poll   {spread(seen)})")
    medians = "; ".join(f"{n} {median_ms([s(t) for t in found]):.1f}" for n, s in STEPS)
    print(f"  medians: {medians} ms")
    worst = max(found, key=lambda t: t.total)
    print("  slowest: " + "; ".join(f"{n} {s(worst) * 1000:.1f}" for n, s in STEPS) + " ms")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100)
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--stores", default="sqlite,postgresql")
    parser.add_argument("--log-dir", type=Path, help="keep the servers' logs there")
    parser.add_argument(
        "--profile",
        type=Path,
        help="py-spy the server into PROFILE-<engine>-<store>.txt (collapsed stacks)",
    )
    args = parser.parse_args()
    makers = {"mariadb": mariadb, "postgresql": postgresql}
    results = []
    load = os.getloadavg()
    for store_kind in args.stores.split(","):
        for name in args.engines.split(","):
            with makers[name](max(1000, WARMUP + args.tickets)) as engine:
                run = measure(engine, store_kind, args)
            label = f"{engine.name} target, {store_kind} store"
            report(label, run)
            results.append((label, run.times))
    print(f"\nload average at start {load[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
    met = True
    for label, found in results:
        totals = [t.total for t in found]
        met = met and pct(totals, 99) < TARGET_MS
        print(f"{label:<34} ExecuteDataCorrect -> success {spread(totals)}")
    print(
        f"target: a one-row ticket in under {TARGET_MS:.0f} ms (p99): {'met' if met else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
