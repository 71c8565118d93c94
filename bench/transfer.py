#!/usr/bin/env python3
"""Getting data out of (and into) production through tickets vs the databases' own clients,
on MariaDB and PostgreSQL, in the same run on the same 1,000,000-row table.

Export: a DATA_EXPORT ticket's CSV (from ExecuteDataExport until the ticket is ``success``:
the read from a read-only snapshot, the CSV, the zip) vs the native client writing the same
rows to a file (``mariadb --batch --quick -e``, ``psql -c "\\copy (…) TO … CSV HEADER"``).
Ratios are native time over ticket time (1.0: as fast as the native client). Targets: at
least 0.7 on PostgreSQL, 0.5 on MariaDB.

    python bench/transfer.py [--rows 1000000] [--engines mariadb,postgresql] [--runs 3]

The last line is the key figure: the export ratios of both engines.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sites import Engine, Site, mariadb, postgresql

QUERY = "SELECT id, n, name, amount, created FROM t_orig"


def _timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def native_export(engine: Engine, out: Path) -> float:
    """The native client writing the query's rows to ``out``; its seconds."""
    if engine.name == "MariaDB":
        command = [
            "mariadb",
            "--batch",
            "--quick",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            engine.where[1],
            "-e",
            QUERY,
        ]
    else:
        command = [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            engine.where[0],
            "-c",
            f"\\copy ({QUERY}) TO '{out}' CSV HEADER",
        ]
    with out.open("wb") as sink:
        return _timed(lambda: subprocess.run(command, stdout=sink, check=True))


def export_rows(path: Path) -> int:
    with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as entry:
        return sum(1 for _ in entry) - 1


def measure_export(engine: Engine, rows: int, runs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        site = Site(engine, Path(tmp))
        ours, native = [], []
        for i in range(runs):
            native.append(native_export(engine, Path(tmp) / f"native-{i}.out"))
            took, path = site.export(QUERY, rows)
            if export_rows(path) != rows:
                raise SystemExit(f"{engine.name}: the export holds {export_rows(path)} rows")
            ours.append(took)
        o, n = statistics.median(ours), statistics.median(native)
        print(
            f"{engine.name} export of {rows} rows to CSV: native client {n:.2f} s, "
            f"ticket {o:.2f} s ({rows / o:,.0f} rows/s), ratio {n / o:.2f}",
            flush=True,
        )
        return n / o


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ratios = {}
    for name in args.engines.split(","):
        make = {"mariadb": mariadb, "postgresql": postgresql}[name]
        with make(args.rows) as engine:
            ratios[engine.name] = measure_export(engine, args.rows, args.runs)
    print("export ratio (native/ticket): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
