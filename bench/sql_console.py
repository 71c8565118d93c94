#!/usr/bin/env python3
"""The SQL console: ExecuteScript over signed HTTP against a running ``opendms serve`` vs the
same query through the database driver directly (PyMySQL, psycopg; the connection kept
open), on MariaDB and PostgreSQL, in the same run.

(a) Latency: a one-row SELECT by primary key, one request at a time on one keep-alive
    connection (every request newly signed, V3). OpenDMS does all of its work: the
    signature, the nonce, RAM, reading the script, the permission and rule set, the pooled
    connection's transaction, the audit row. Reported: p50 and p99 of each and what OpenDMS
    adds (target: at most 3 ms added at p50), and a signed GetUserActiveTenant's p50: what
    the gateway costs any request, so what the console itself adds can be told apart.
(b) Throughput: a 1,000-row result with a column marked sensitive (HASH, keyed), as JSON
    rows: OpenDMS's rows/s over the driver's own rate fetching the same rows (target: at
    least 0.5).

    python bench/sql_console.py [--engines mariadb,postgresql] [--requests 2000] [--wide 200]

The last line is the key figure: the worse engine's added p50 and the lower rows/s ratio.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.gateway import BIN, free_port, opendms, server
from bench.signed import send, signed
from bench.sites import Engine, mariadb, postgresql
from opendms.catalog import queries
from opendms.store.db import Store

ONE = "SELECT id, n, name, amount FROM t_orig WHERE id = 42"
WIDE = "SELECT id, n, name, amount, created FROM t_orig ORDER BY id LIMIT 1000"


class Client:
    """Signed ExecuteScript requests on one keep-alive connection."""

    def __init__(self, port: int, creds: dict[str, str], db_id: int) -> None:
        self.port, self.creds, self.db_id = port, creds, db_id
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def execute(self, script: str) -> dict[str, Any]:
        body = self.call(
            "ExecuteScript", {"DbId": str(self.db_id), "Logic": "false", "Script": script}
        )
        (result,) = body["Results"]
        if not result["Success"]:
            raise SystemExit(f"the script failed: {result['Message']}")
        return dict(result)

    def call(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        url, headers = signed(
            self.port, self.creds["AccessKeyId"], self.creds["AccessKeySecret"], action, params
        )
        return send(self.conn, url, headers)


def timed(run: Callable[[], object], count: int) -> list[float]:
    """Seconds of each of ``count`` runs, after a tenth as many unmeasured."""
    for _ in range(max(1, count // 10)):
        run()
    out = []
    for _ in range(count):
        began = time.perf_counter()
        run()
        out.append(time.perf_counter() - began)
    return out


def p(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] * 1000


def measure(engine: Engine, args: argparse.Namespace) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="opendms-bench-console-"))
    env = {
        **os.environ,
        "OPENDMS_DATA_DIR": str(work),
        "OPENDMS_RATE_LIMIT": "1000000000",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent.parent / "src")]),
    }
    creds = json.loads(opendms("init", "--json", env=env))
    spec = engine.spec
    register = ["instance", "register", "--type", spec.instance_type, "--host", spec.host]
    register += ["--port", str(spec.port), "--user", spec.database_user or "", "--env", "dev"]
    register += ["--sid", spec.sid] if spec.sid else []
    instance = json.loads(opendms(*register, env=env))
    store = Store(f"sqlite:///{work / 'opendms.db'}")
    with store.session() as s:
        found = queries.list_databases(s, int(creds["Tid"]), instance["InstanceId"], size=100)
        (db_id,) = [d.db_id for d in found.items if (d.catalog_name, d.schema_name) == engine.where]
    store.dispose()
    opendms("column", "mask", str(db_id), "t_orig", "name", "HASH", env=env)

    direct = engine.connect()

    def driver(sql: str) -> list[Any]:
        with direct.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    port = free_port()
    with server(
        [str(BIN / "opendms"), "serve", "--port", str(port), "--workers", "1"],
        env,
        port,
        work / "server.log",
    ):
        client = Client(port, creds, db_id)
        assert client.execute(ONE)["RowCount"] == 1
        wide = client.execute(WIDE)
        assert wide["RowCount"] == 1000 and wide["Rows"][0]["name"] != "name-1", wide["Message"]
        ours_one = timed(lambda: client.execute(ONE), args.requests)
        bare_one = timed(lambda: driver(ONE), args.requests)
        # what any signed request costs here (the gateway's share, not the console's)
        floor = timed(lambda: client.call("GetUserActiveTenant", {}), args.requests)
        ours_wide = timed(lambda: client.execute(WIDE), args.wide)
        bare_wide = timed(lambda: driver(WIDE), args.wide)
    direct.close()

    added = p(ours_one, 50) - p(bare_one, 50)
    print(
        f"{engine.name}: one-row SELECT  driver p50 {p(bare_one, 50):.2f} ms "
        f"p99 {p(bare_one, 99):.2f} ms; ExecuteScript p50 {p(ours_one, 50):.2f} ms "
        f"p99 {p(ours_one, 99):.2f} ms: added p50 {added:.2f} ms, "
        f"p99 {p(ours_one, 99) - p(bare_one, 99):.2f} ms",
        flush=True,
    )
    print(
        f"{engine.name}: a signed GetUserActiveTenant p50 {p(floor, 50):.2f} ms: the console's "
        f"own share of the added p50 {p(ours_one, 50) - p(floor, 50):.2f} ms",
        flush=True,
    )
    ours_rate = 1000 / statistics.median(ours_wide)
    bare_rate = 1000 / statistics.median(bare_wide)
    print(
        f"{engine.name}: 1,000 rows, one column masked (HASH)  driver {bare_rate:,.0f} rows/s, "
        f"ExecuteScript {ours_rate:,.0f} rows/s: ratio {ours_rate / bare_rate:.2f}",
        flush=True,
    )
    return added, ours_rate / bare_rate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--wide", type=int, default=200)
    args = parser.parse_args()
    makers = {"mariadb": mariadb, "postgresql": postgresql}
    figures = []
    for name in args.engines.split(","):
        with makers[name](1000) as engine:
            figures.append(measure(engine, args))
    worst_added = max(a for a, _ in figures)
    worst_ratio = min(r for _, r in figures)
    print(
        f"worst added p50 {worst_added:.2f} ms (target <= 3.0); "
        f"lowest rows/s ratio {worst_ratio:.2f} (target >= 0.5)"
    )


if __name__ == "__main__":
    main()
