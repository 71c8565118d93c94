#!/usr/bin/env python3
"""Regular data change: a 200,000-row UPDATE through a ticket, with backup, vs the same
UPDATE run directly on the database, on MariaDB and PostgreSQL; and the precheck's rate on a
10,000-statement INSERT script.

The ticket side is everything ExecuteDataCorrect sets off: the backup table made and filled
in the change's transaction, the progress marker, the metadata records and the audit row,
until the ticket is `success`. The direct side is one client sending the UPDATE and COMMIT.
Both start from the same fresh copy of the table, in the same run; each is the median of
five runs (the UPDATE alone varies by about 10% between runs here).

    python bench/data_correct.py [--rows 200000] [--engines mariadb,postgresql]

The last line is the key figure: the slower engine's ticket/direct time ratio (target: at
most 2.0).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sites import Engine, Site, mariadb, postgresql

UPDATE = "UPDATE t SET n = n + 1, amount = amount * 2 WHERE id > 0"


def direct(engine: Engine) -> float:
    with engine.connect() as conn, conn.cursor() as cur:
        cur.execute("BEGIN")
        began = time.perf_counter()
        cur.execute(UPDATE)
        cur.execute("COMMIT")
        return time.perf_counter() - began


def measure(engine: Engine, rows: int, workdir: Path, repeat: int) -> float:
    site = Site(engine, workdir)
    bare, ticket = [], []
    for _ in range(repeat):
        engine.run(*engine.fresh)
        bare.append(direct(engine))
        engine.run(*engine.fresh)
        order_id = site.file(UPDATE, rows)
        site.prechecked(order_id)
        ticket.append(site.execute(order_id, backup=True))
    engine.run(*(f"DROP TABLE IF EXISTS {table}" for table in site.backups()))
    d, t = statistics.median(bare), statistics.median(ticket)
    print(
        f"{engine.name}: UPDATE of {rows:,} rows directly {d:.2f} s, through a ticket with "
        f"backup {t:.2f} s: ratio {t / d:.2f}"
    )

    script = "\n".join(f"INSERT INTO t (id, n) VALUES ({rows + i}, {i});" for i in range(1, 10_001))
    order_id = site.file(script, 10_000)
    began = time.perf_counter()
    site.prechecked(order_id)
    took = time.perf_counter() - began
    print(
        f"{engine.name}: precheck of a 10,000-statement INSERT script {took:.2f} s "
        f"({10_000 / took:,.0f} statements/s)"
    )
    return t / d


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="mariadb,postgresql")
    args = parser.parse_args()
    makers = {"mariadb": mariadb, "postgresql": postgresql}
    ratios = []
    for name in args.engines.split(","):
        with makers[name](args.rows) as engine, tempfile.TemporaryDirectory() as tmp:
            ratios.append((measure(engine, args.rows, Path(tmp), args.repeat), engine.name))
    worst, where = max(ratios)
    print(
        f"ratio (ticket with backup / direct UPDATE), worst engine {where}: {worst:.2f} "
        "(target <= 2.0)"
    )


if __name__ == "__main__":
    main()
