#!/usr/bin/env python3
"""Gateway throughput: signed GetUserActiveTenant through OpenDMS vs two bare ASGI endpoints.

Every server runs under the same uvicorn settings (h11, uvloop, N worker processes), one
at a time on this machine, loaded by the same asyncio client with C keep-alive connections.
OpenDMS does all of its per-request work: V3 signature check, nonce stored in the metadata
store, tenant and user state, RAM policy, the log line. Its rate limit is raised out of the way.

    python bench/gateway.py                      # PostgreSQL metadata store (as deployed)
    python bench/gateway.py --store sqlite       # the embedded default
    python bench/gateway.py --store both

Prints requests/s and latency for each server, then ours/constant and, last, ours/insert.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
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
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import loadgen  # noqa: E402
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
def server(cmd: list[str], env: dict[str, str], port: int, log: Path) -> Iterator[None]:
    with process(cmd, env, log) as proc:
        wait_port(port, proc)
        time.sleep(1.0)  # let every worker process finish starting
        yield


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


def plain_builder(port: int) -> Callable[[], bytes]:
    request = f"POST / HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-length: 0\r\n\r\n".encode()
    return lambda: request


def measure(build: Callable[[], bytes], port: int, args: argparse.Namespace) -> loadgen.Result:
    return uvloop.run(
        loadgen.run(
            "127.0.0.1",
            port,
            build,
            connections=args.connections,
            seconds=args.seconds,
            warmup=args.warmup,
        )
    )


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


def report(name: str, r: loadgen.Result) -> None:
    errors = sum(n for s, n in r.statuses.items() if s != 200)
    print(
        f"  {name:<28} {r.rps:>9.0f} req/s   p50 {r.percentile(50) * 1000:6.2f} ms   "
        f"p99 {r.percentile(99) * 1000:6.2f} ms   non-200: {errors}",
        flush=True,
    )
    if errors:
        print(f"    statuses: {r.statuses}", flush=True)


def run_store(kind: str, args: argparse.Namespace) -> float:
    work = Path(tempfile.mkdtemp(prefix=f"opendms-bench-{kind}-"))
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
            f"(+{args.warmup:.0f}s warm-up)",
            flush=True,
        )

        port = free_port()
        with server(
            [str(BIN / "opendms"), "serve", "--port", str(port), "--workers", str(args.workers)],
            env,
            port,
            log,
        ):
            ours = measure(
                v3_builder(creds["AccessKeyId"], creds["AccessKeySecret"], port), port, args
            )
        report("OpenDMS GetUserActiveTenant", ours)

        results = {}
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
            with server(cmd, env, port, log):
                results[app] = measure(plain_builder(port), port, args)
            report(f"baseline {app}", results[app])

        if ours.ok == 0:
            print(f"  OpenDMS answered no request with 200; see {log}")
            return 0.0
        const_ratio = ours.rps / results["const_app"].rps
        insert_ratio = ours.rps / results["insert_app"].rps
        print(f"  ratio vs constant JSON:  {const_ratio:.3f}")
        print(f"  ratio vs insert baseline: {insert_ratio:.3f}   (target >= 0.5)", flush=True)
        return insert_ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", choices=["postgresql", "sqlite", "both"], default="postgresql")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    args = parser.parse_args()
    kinds = ["postgresql", "sqlite"] if args.store == "both" else [args.store]
    for kind in kinds:
        run_store(kind, args)


if __name__ == "__main__":
    main()
