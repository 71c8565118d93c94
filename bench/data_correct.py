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
    python bench/data_correct.py --insert [--engines mariadb,postgresql]

``--insert`` (issue 17) measures instead one 10,000-row INSERT … VALUES into a table whose
key the database makes, through a ticket with backup against the same ticket without:
the keys recorded by RETURNING (MariaDB 10.5+, PostgreSQL), and on MariaDB also as a MySQL
would (RETURNING hidden: the run of keys from LAST_INSERT_ID(), copied on the server).

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


INSERTED = 10_000
AUTO_TABLE = {
    "MariaDB": "CREATE TABLE ins (id INT AUTO_INCREMENT PRIMARY KEY, n INT, name VARCHAR(64))"
    " ENGINE=InnoDB",
    "PostgreSQL": "CREATE TABLE ins (id SERIAL PRIMARY KEY, n INT, name VARCHAR(64))",
}


def _without_returning() -> None:
    """This process's MySQL targets report no RETURNING: keys come from LAST_INSERT_ID()."""
    from dataclasses import replace

    from opendms.targets import mysql

    real = mysql._insert_keys
    mysql._insert_keys = lambda cur: replace(real(cur), returning=False)  # type: ignore[assignment]


def measure_insert(engine: Engine, workdir: Path, repeat: int, label: str) -> float:
    engine.run("DROP TABLE IF EXISTS ins", AUTO_TABLE[engine.name])
    site = Site(engine, workdir)
    values = ", ".join(f"({i}, 'name-{i}')" for i in range(1, INSERTED + 1))
    insert = f"INSERT INTO ins (n, name) VALUES {values}"
    bare, backed = [], []
    for _ in range(repeat):
        for backup, into in ((False, bare), (True, backed)):
            engine.run("TRUNCATE TABLE ins")
            order_id = site.file(insert, INSERTED)
            site.prechecked(order_id)
            into.append(site.execute(order_id, backup=backup))
    engine.run(*(f"DROP TABLE IF EXISTS {table}" for table in site.backups()))
    b, t = statistics.median(bare), statistics.median(backed)
    print(
        f"{label}: INSERT of {INSERTED:,} rows through a ticket without backup {b:.3f} s, "
        f"with backup {t:.3f} s: ratio {t / b:.2f}"
    )
    return t / b


def main_insert(engines: list[str], repeat: int) -> None:
    makers = {"mariadb": mariadb, "postgresql": postgresql}
    ratios = []
    for name in engines:
        with makers[name](1000) as engine, tempfile.TemporaryDirectory() as tmp:
            ratios.append(
                (measure_insert(engine, Path(tmp), repeat, f"{engine.name} RETURNING"), name)
            )
    if "mariadb" in engines:
        _without_returning()
        with mariadb(1000) as engine, tempfile.TemporaryDirectory() as tmp:
            label = "MariaDB as MySQL (LAST_INSERT_ID run)"
            ratios.append((measure_insert(engine, Path(tmp), repeat, label), label))
    worst, where = max(ratios)
    print(f"ratio (INSERT with backup / without), worst: {where}: {worst:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--insert", action="store_true", help="INSERT with/without backup")
    args = parser.parse_args()
    if args.insert:
        main_insert(args.engines.split(","), args.repeat)
        return
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
