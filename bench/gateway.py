#!/usr/bin/env python3
"""Gateway throughput: signed GetUserActiveTenant through OpenDMS vs two bare ASGI endpoints.

Every server runs under the same uvicorn settings (h11, uvloop, N worker processes), one
at a time on this machine, loaded by the same asyncio client with C keep-alive connections.
OpenDMS does all of its per-request work: V3 signature check, nonce stored in the metadata
store, tenant and user state, RAM policy, the log line, the metrics. Its rate limit is raised
out of the way.

The client does the same work for every server: the requests are signed before the clock
starts (each with its own nonce and timestamp, well inside the allowed skew) and every server
is sent the same bytes, one request taken from a list at a time; the baselines read no header.
After each timed run the store is counted: one nonce (or baseline row) per request answered.

    python bench/gateway.py                      # both stores: PostgreSQL, then SQLite
    python bench/gateway.py --store sqlite       # the embedded default alone

Prints requests/s, p50 and p99 and who had the cores for each server, ours/constant and
ours/insert; the last lines are every store's figures and whether the targets are met:
ours >= 0.6 of the insert baseline's requests/s, and ours' p99 <= 2x the insert baseline's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
from bench.cpu import Meter, family, process_seconds  # noqa: E402
from opendms.gateway import signing  # noqa: E402

BIN = Path(sys.executable).parent
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
UVICORN_FLAGS = [
    "--http",
    "h11",
    "--loop",
    "uvloop",
    "--no-access-log",
    "--timeout-keep-alive",
    "30",
]


def opendms(*args: str, env: dict[str, str]) -> str:
    """An ``opendms`` command of this venv; its output, or the bench stops with its error."""
    done = subprocess.run(
        [str(BIN / "opendms"), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"opendms {' '.join(args)} failed: {done.stderr}{done.stdout}")
    return done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"server did not listen on {port} within {timeout}s")


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``cmd`` in a session of its own, its output appended to ``log``; it and its children
    get SIGTERM (then SIGKILL after 15 s) when the block ends."""
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=fh, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to ``proc``'s session (SIGKILL after 15 s); nothing if it is gone already."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextmanager
def server(
    cmd: list[str], env: dict[str, str], port: int, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with process(cmd, env, log) as proc:
        wait_port(port, proc)
        time.sleep(1.0)  # let every worker process finish starting
        yield proc


def v3_builder(access_key_id: str, secret: str, port: int) -> Callable[[], bytes]:
    host = f"127.0.0.1:{port}"

    def build() -> bytes:
        headers = {
            "host": host,
            "x-acs-version": "2018-11-01",
            "x-acs-action": "GetUserActiveTenant",
            "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "x-acs-signature-nonce": uuid.uuid4().hex,
            "accept": "application/json",
            "x-acs-content-sha256": signing.EMPTY_SHA256,
        }
        canonical = signing.v3_canonical_request(
            "POST", "/", (), headers, headers, signing.EMPTY_SHA256
        )
        headers["authorization"] = signing.v3_authorization(
            access_key_id, headers, signing.v3_signature(secret, canonical)
        )
        lines = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        return f"POST / HTTP/1.1\r\n{lines}content-length: 0\r\n\r\n".encode()

    return build


@contextmanager
def metadata_store(kind: str, work: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work / 'opendms.db'}"
        return
    name = f"opendms_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_baseline_table(url: str) -> None:
    """The baseline's table has the shape of OpenDMS's own nonce table."""
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as conn:
            conn.execute(
                "CREATE TABLE bench_baseline_nonce (access_key_id VARCHAR(64) DEFAULT 'k', "
                "nonce VARCHAR(128), expires_at DATETIME NOT NULL, "
                "PRIMARY KEY (access_key_id, nonce))"
            )
            conn.execute("CREATE INDEX ix_bench_expires ON bench_baseline_nonce (expires_at)")
        return
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE bench_baseline_nonce (LIKE request_nonces INCLUDING ALL)")
        conn.execute("ALTER TABLE bench_baseline_nonce ALTER access_key_id SET DEFAULT 'k'")


def count_rows(url: str, table: str) -> int:
    """Rows in ``table`` of the store: what a timed run must have written, checked after it."""
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split("///", 1)[1])) as conn:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        assert row is not None
        return int(row[0])


@dataclass
class Pool:
    """Requests signed before the clock starts, so that signing costs the load generator
    nothing while it measures. OpenDMS is sent each once (its own nonce); the baselines,
    which read no header, are sent the same requests in turn: every server gets the same
    bytes and the client does the same work for each (take the next request from a list)."""

    requests: list[bytes]
    sign_seconds: float
    build: Callable[[], bytes]
    signed_live: int = 0
    _next: int = 0

    @classmethod
    def signed(cls, build: Callable[[], bytes], count: int) -> Pool:
        began = time.perf_counter()
        requests = [build() for _ in range(count)]
        return cls(requests, time.perf_counter() - began, build)

    def once(self) -> bytes:
        """The next unused request; signed now (and counted) if the pool ran dry."""
        if self._next < len(self.requests):
            self._next += 1
            return self.requests[self._next - 1]
        self.signed_live += 1
        return self.build()

    def cycled(self) -> bytes:
        self._next = (self._next + 1) % len(self.requests)
        return self.requests[self._next]

    @property
    def sign_us(self) -> float:
        return self.sign_seconds / len(self.requests) * 1e6


@dataclass
class Measured:
    name: str
    result: loadgen.Result
    cores: str  # who had the cores (bench/cpu.py)
    # CPU microseconds per request answered (warm-up included) of the server's processes
    # and the store's backends: what a request costs, which sharing the cores moves less
    # than requests/s
    cpu_us: float

    @property
    def p50(self) -> float:
        return self.result.percentile(50) * 1000

    @property
    def p99(self) -> float:
        return self.result.percentile(99) * 1000


def store_backends(url: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the store's database (on these
    two cores they compete with the servers); nothing for SQLite, which runs in the servers."""
    if url.startswith("sqlite"):
        return {}
    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid: process_seconds(pid) for (pid,) in rows}


def store_cores(url: str, before: dict[int, float], wall: float) -> dict[str, float]:
    if url.startswith("sqlite"):
        return {}
    after = store_backends(url)
    used = sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
    return {"PostgreSQL backends": used / wall}


@contextmanager
def py_spy(
    proc: subprocess.Popen[bytes], out: Path | None, name: str, seconds: float
) -> Iterator[None]:
    """With ``--py-spy DIR``: each of the server's processes sampled by py-spy from outside
    over the block, as collapsed stacks (``DIR/<name>-<pid>.txt``: one line per stack and its
    count, which speedscope or flamegraph.pl draw, and grep reads)."""
    if out is None:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    spies = [
        subprocess.Popen(
            [
                str(BIN / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--nonblocking",
                "--duration",
                str(int(seconds) + 1),
                "--format",
                "raw",
                "--output",
                str(out / f"{name}-{pid}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in family(proc.pid)[1:] or [proc.pid]  # the workers, when there are any
    ]
    try:
        yield
    finally:
        for spy in spies:
            spy.wait()
        for empty in (f for f in out.glob(f"{name}-*.txt") if f.stat().st_size == 0):
            empty.unlink()  # a process that ran no Python while sampled (none was idle-sampled)


def measure(
    name: str,
    proc: subprocess.Popen[bytes],
    next_request: Callable[[], bytes],
    port: int,
    url: str,
    args: argparse.Namespace,
) -> Measured:
    wall = args.seconds + args.warmup
    backends = store_backends(url)
    meter = Meter({"server": family(proc.pid)})
    cpu = time.process_time()
    kind = "sqlite" if url.startswith("sqlite") else "postgresql"
    with py_spy(proc, args.py_spy, f"{kind}-{name.rsplit(maxsplit=1)[-1]}", wall):
        result = uvloop.run(
            loadgen.run(
                "127.0.0.1",
                port,
                next_request,
                connections=args.connections,
                seconds=args.seconds,
                warmup=args.warmup,
            )
        )
    others = {
        "load generator": (time.process_time() - cpu) / wall,
        **store_cores(url, backends, wall),
    }
    cores = meter.cores()
    answered = sum(result.answered.values())
    spent = (cores["server"] + others.get("PostgreSQL backends", 0.0)) * wall
    found = Measured(name, result, meter.line(others), spent / answered * 1e6 if answered else 0)
    report(found)
    return found


def report(m: Measured) -> None:
    r = m.result
    errors = sum(n for s, n in r.statuses.items() if s != 200)
    print(
        f"  {m.name:<28} {r.rps:>9.0f} req/s   p50 {m.p50:7.2f} ms   p99 {m.p99:7.2f} ms   "
        f"non-200: {errors}",
        flush=True,
    )
    print(f"    {m.cores}", flush=True)
    print(f"    CPU per request (server and store): {m.cpu_us:.0f} us", flush=True)
    if errors:
        print(f"    statuses: {r.statuses}", flush=True)


def check_rows(url: str, table: str, before: int, m: Measured) -> None:
    """Each request answered 200 wrote exactly one row (the warm-up's too), none lost."""
    written = count_rows(url, table) - before
    ok = m.result.answered.get(200, 0)
    if written != ok:
        raise SystemExit(f"{m.name}: {ok} requests answered 200 but {written} rows in {table}")
    print(f"    rows checked: {written} in {table}, one per request answered", flush=True)


@dataclass
class StoreFigures:
    kind: str
    ours: Measured
    const: Measured
    insert: Measured

    @property
    def ratio(self) -> float:
        return self.ours.result.rps / self.insert.result.rps

    @property
    def p99_ratio(self) -> float:
        return self.ours.p99 / self.insert.p99


def run_store(kind: str, args: argparse.Namespace) -> StoreFigures:
    """Every server on a fresh store of ``kind``; its directory (the store, the servers' log)
    is removed afterwards, unless ``--keep`` or the run failed."""
    work = Path(tempfile.mkdtemp(prefix=f"opendms-bench-{kind}-"))
    try:
        figures = _run_store(kind, work, args)
    except BaseException:
        print(f"  the servers' log and the store are kept in {work}", flush=True)
        raise
    if args.keep:
        print(f"  the servers' log and the store are in {work}", flush=True)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return figures


def _run_store(kind: str, work: Path, args: argparse.Namespace) -> StoreFigures:
    log = work / "servers.log"
    with metadata_store(kind, work) as url:
        env = {
            **os.environ,
            "OPENDMS_DATA_DIR": str(work),
            "OPENDMS_DATABASE_URL": url,
            "OPENDMS_RATE_LIMIT": "1000000000",
            "BENCH_DB_URL": url,
            # This tree's code, whichever checkout's venv runs the bench.
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        }
        creds = json.loads(
            subprocess.run(
                [str(BIN / "opendms"), "init", "--json"], env=env, check=True, capture_output=True
            ).stdout
        )
        create_baseline_table(url)
        print(
            f"\n{kind} metadata store, {args.workers} worker processes, "
            f"{args.connections} connections, {args.seconds:.0f}s per server "
            f"(+{args.warmup:.0f}s warm-up); load average {os.getloadavg()[0]:.2f}",
            flush=True,
        )

        port = free_port()
        pool = Pool.signed(
            v3_builder(creds["AccessKeyId"], creds["AccessKeySecret"], port),
            int(args.presign_rate * (args.seconds + args.warmup)),
        )
        print(
            f"  {len(pool.requests)} requests signed beforehand, {pool.sign_us:.0f} us each",
            flush=True,
        )
        before = count_rows(url, "request_nonces")
        opendms_cmd = [
            str(BIN / "opendms"),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(args.workers),
        ]
        with server(opendms_cmd, env, port, log) as proc:
            ours = measure("OpenDMS GetUserActiveTenant", proc, pool.once, port, url, args)
        if pool.signed_live:
            print(
                f"    {pool.signed_live} requests signed during the run (the pool ran dry): "
                "raise --presign-rate",
                flush=True,
            )
        check_rows(url, "request_nonces", before, ours)

        baselines = {}
        for app in ("const_app", "insert_app"):
            port = free_port()
            cmd = [
                str(BIN / "python"),
                "-m",
                "uvicorn",
                f"bench.baseline_app:{app}",
                "--factory",
                "--port",
                str(port),
                "--workers",
                str(args.workers),
                *UVICORN_FLAGS,
            ]
            before = count_rows(url, "bench_baseline_nonce")
            with server(cmd, env, port, log) as proc:
                baselines[app] = measure(f"baseline {app}", proc, pool.cycled, port, url, args)
            if app == "insert_app":
                check_rows(url, "bench_baseline_nonce", before, baselines[app])

        if ours.result.ok == 0:
            raise SystemExit(f"OpenDMS answered no request with 200; see {log}")
        figures = StoreFigures(kind, ours, baselines["const_app"], baselines["insert_app"])
        print(f"  ratio vs constant JSON:   {ours.result.rps / figures.const.result.rps:.3f}")
        print(
            f"  ratio vs insert baseline: {figures.ratio:.3f}   p99 ratio {figures.p99_ratio:.2f}"
        )
        return figures


TARGET_RATIO = 0.6  # ours / the insert baseline, requests per second
TARGET_P99 = 2.0  # ours / the insert baseline, 99th percentile latency


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def summary(found: list[StoreFigures]) -> None:
    """The last lines: every server's figures per store, and the targets."""
    print(f"\nsummary (load average {os.getloadavg()[0]:.2f} at the end)")
    print(f"  {'store':<11}{'server':<9}{'req/s':>8}{'p50 ms':>10}{'p99 ms':>10}{'CPU us/req':>12}")
    for f in found:
        for name, m in (("OpenDMS", f.ours), ("const", f.const), ("insert", f.insert)):
            store = f.kind if m is f.ours else ""
            print(
                f"  {store:<11}{name:<9}{m.result.rps:>8.0f}{m.p50:>10.2f}{m.p99:>10.2f}"
                f"{m.cpu_us:>12.0f}"
            )
    for f in found:
        print(
            f"  {f.kind:<10} ours/insert {f.ratio:.3f} (target >= {TARGET_RATIO}: "
            f"{met(f.ratio >= TARGET_RATIO)}); p99 ours/insert {f.p99_ratio:.2f} "
            f"(target <= {TARGET_P99:.0f}: {met(f.p99_ratio <= TARGET_P99)}); "
            f"CPU per request insert/ours {f.insert.cpu_us / f.ours.cpu_us:.2f}"
        )
    every = all(f.ratio >= TARGET_RATIO and f.p99_ratio <= TARGET_P99 for f in found)
    print(f"  targets on {' and '.join(f.kind for f in found)}: {met(every)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument(
        "--presign-rate",
        type=float,
        default=10_000,
        help="requests/s to sign beforehand for OpenDMS (times warm-up and run)",
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="record a flame graph of every server process during its timed run into DIR",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep each store's directory and the servers' log"
    )
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.store == "both" else [args.store]
    summary([run_store(kind, args) for kind in kinds])


if __name__ == "__main__":
    main()
