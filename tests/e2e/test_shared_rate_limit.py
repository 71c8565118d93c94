"""Two ``opendms serve`` processes on one PostgreSQL store share one rate limit: a key that
hammers both is admitted the limit per clock second between them, not the limit in each."""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.cli_support import opendms
from tests.e2e.conftest import (
    LOOPBACK,
    OPENDMS,
    _child_env,
    free_port,
    stop_server,
    wait_until_listening,
)
from tests.signer import Signer

pytestmark = [pytest.mark.e2e]
RATE = 2
REQUESTS = 24


@contextmanager
def serving(data_dir: Path, env: dict[str, str], logs: Path) -> Iterator[int]:
    """One ``opendms serve`` on a free port, stopped when the block ends."""
    port = free_port()
    stderr = logs / f"serve-{port}.log"
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            [OPENDMS, "serve", "--data-dir", str(data_dir), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )
    try:
        wait_until_listening(proc, port, stderr)
        yield port
    finally:
        stop_server(proc)


def test_two_servers_on_one_store_admit_the_rate_between_them(pg_store_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="opendms-e2e-rate-") as tmp:
        data_dir = Path(tmp) / "data"
        init = json.loads(
            opendms("init", "--json", "--database-url", pg_store_url, data_dir=data_dir).stdout
        )
        env = _child_env({"OPENDMS_DATABASE_URL": pg_store_url, "OPENDMS_RATE_LIMIT": str(RATE)})
        with ExitStack() as stack:
            ports = [stack.enter_context(serving(data_dir, env, Path(tmp))) for _ in range(2)]

            def call(i: int) -> str:
                port = ports[i % 2]
                signer = Signer(init["AccessKeyId"], init["AccessKeySecret"], f"{LOOPBACK}:{port}")
                prepared = signer.v3("GetUser")
                with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", trust_env=False) as http:
                    resp = http.request(
                        prepared.method, prepared.url, headers=prepared.headers, content=b""
                    )
                body = resp.json()
                if resp.status_code == 200 and body.get("Success"):
                    return f"{port} admitted"
                assert (resp.status_code, body.get("Code")) == (400, "Throttling.User"), body
                return f"{port} throttled"

            with ThreadPoolExecutor(8) as pool:
                answers = Counter(pool.map(call, range(REQUESTS)))

    dsn = pg_store_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn) as conn:
        counts = [
            n
            for (n,) in conn.execute(
                "SELECT count FROM rate_windows WHERE access_key_id = %s AND action = 'GetUser'",
                (init["AccessKeyId"],),
            )
        ]
    admitted = sum(n for answer, n in answers.items() if answer.endswith("admitted"))
    # The store counted each request that asked it, in the second it came in, whichever
    # server took it (a server that saw a second spent refuses the rest of it without
    # asking); each second admitted its share and no more. Two servers counting apart would
    # have admitted up to twice that.
    assert 0 < sum(counts) <= REQUESTS, counts
    assert admitted == sum(min(n, RATE) for n in counts), (answers, counts)
    assert admitted < REQUESTS, answers  # the burst outran the limit: some were throttled
    assert {answer.split()[0] for answer in answers} == {str(p) for p in ports}  # both served
