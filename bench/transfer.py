#!/usr/bin/env python3
"""Getting data out of (and into) production through tickets vs the databases' own clients,
on MariaDB and PostgreSQL, in the same run (exports of a 2,000,000-row table by default).

Import: a DC_BIG_FILE ticket loading a CSV of 200,000 and of 1,000,000 rows vs the native
bulk load of the same file into an empty copy of the table (``LOAD DATA LOCAL INFILE``
through the mariadb client, ``psql \\copy … FROM … CSV HEADER``), two figures each: the
execution alone (from ExecuteDataCorrect until the ticket is ``success``: blocks of the file
loaded by the database's own loader, each committed with its position on the target) and
the ticket end to end (from CreateDataImportOrder, the file uploaded: the precheck reading
the whole file, submission, execution). The upload (the file copied into the store) is
printed beside them. Medians of five runs (the native load first in every other one), on a
site that has imported the file once before, untimed: a running server's, its connections
and compiled statements warm. Every timed load starts on a settled server (Engine.settle:
what the load before left dirty in memory written out), so neither side pays for the other.
Targets: execution at least 0.9 at 1,000,000 rows and 0.8 at 200,000; end to end at least
0.75. Every run's table is counted afterwards.

Export: a DATA_EXPORT ticket's CSV in its zip vs the native client writing the same rows to
a file (``mariadb --batch --quick -e``, ``psql -c "\\copy (…) TO … CSV HEADER"``), timed two
ways: the execution (from ExecuteDataExport until the ticket is ``success``: the read from a
read-only snapshot, the CSV, the zip) and end to end (from the ticket's creation: its
precheck, which counts the query's rows on the database, included), in rounds of both
(the native client first in every other one) after one untimed round that warms the
table's pages. Every file's rows are counted after its run. Target: the execution at
least 0.8 of the native client on both engines.

Ratios are native time over ticket time (1.0: as fast as the native client).

    python bench/transfer.py [--import-rows 200000,1000000] [--rows 2000000]
                             [--engines mariadb,postgresql] [--runs 3] [--import-runs 5]
                             [--only import|export]

The last lines are the key figures: every engine's import and export ratios, with their
targets.
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
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sites import Engine, Imported, Site, mariadb, postgresql

QUERY = "SELECT id, n, name, amount, created FROM t_orig"


def _timed(run: Callable[[], object]) -> float:
    began = time.perf_counter()
    run()
    return time.perf_counter() - began


def client(engine: Engine, statement: str) -> list[str]:
    """The engine's own command-line client running ``statement`` in the bench database."""
    if engine.name == "MariaDB":
        return ["mariadb", "--local-infile=1", "--batch", "--quick", "-h", "127.0.0.1",
                "-u", "root", engine.where[1], "-e", statement]  # fmt: skip
    return ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", engine.where[0], "-c", statement]


def native_export(engine: Engine, out: Path) -> float:
    """The native client writing the query's rows to ``out`` (a header and a line per row:
    the bench's values hold no line break); its seconds."""
    if engine.name == "MariaDB":
        with out.open("wb") as sink:
            return _timed(lambda: subprocess.run(client(engine, QUERY), stdout=sink, check=True))
    command = client(engine, f"\\copy ({QUERY}) TO '{out}' CSV HEADER")
    return _timed(lambda: subprocess.run(command, stdout=subprocess.DEVNULL, check=True))


def native_rows(path: Path) -> int:
    with path.open("rb") as lines:
        return sum(1 for _ in lines) - 1


def export_rows(path: Path) -> int:
    with zipfile.ZipFile(path) as zf, zf.open(zf.namelist()[0]) as entry:
        return sum(1 for _ in entry) - 1


def write_csv(path: Path, rows: int) -> None:
    """The bench's rows as a CSV with a header, a name quoted now and then."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("id,n,name,amount,created\n")
        for start in range(1, rows + 1, 100_000):
            out.write(
                "".join(
                    f'{i},{i % 100},"name-{i}, the {i % 7}th",{i / 7:.2f},'
                    f"2026-01-01 {i % 24:02d}:{i % 60:02d}:{i % 60:02d}\n"
                    for i in range(start, min(start + 100_000, rows + 1))
                )
            )


def native_import(engine: Engine, path: Path) -> float:
    """The database's own bulk load of the CSV into the empty t_in; its seconds."""
    if engine.name == "MariaDB":
        command = client(
            engine,
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE t_in FIELDS TERMINATED BY ',' "
            "OPTIONALLY ENCLOSED BY '\"' LINES TERMINATED BY '\\n' IGNORE 1 LINES",
        )
    else:
        command = client(engine, f"\\copy t_in FROM '{path}' CSV HEADER")
    return _timed(lambda: subprocess.run(command, check=True, stdout=subprocess.DEVNULL))


def empty_copy(engine: Engine) -> None:
    if engine.name == "MariaDB":
        engine.run("DROP TABLE IF EXISTS t_in", "CREATE TABLE t_in LIKE t_orig")
    else:
        engine.run("DROP TABLE IF EXISTS t_in", "CREATE TABLE t_in (LIKE t_orig INCLUDING ALL)")


def loaded(engine: Engine) -> int:
    with engine.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM t_in")
        return int(cur.fetchone()[0])


@dataclass(frozen=True)
class ImportFigures:
    engine: str
    rows: int
    execution: float  # native time / the ticket's execution (ExecuteDataCorrect to success)
    ticket: float  # native time / the ticket end to end (precheck included)

    def line(self) -> str:
        target = IMPORT_TARGETS[self.rows >= 1_000_000]
        return (
            f"{self.engine} {self.rows:,} rows: execution {self.execution:.2f} "
            f"(>= {target}: {_met(self.execution >= target)}), end to end {self.ticket:.2f} "
            f"(>= 0.75: {_met(self.ticket >= 0.75)})"
        )


def _met(yes: bool) -> str:
    return "met" if yes else "NOT met"


EXPORT_TARGET = 0.8  # of the native client, the execution
# execution at least 0.8 of native under a million rows, 0.9 from there; end to end 0.75
IMPORT_TARGETS = {False: 0.8, True: 0.9}


def measure_import(engine: Engine, rows: int, runs: int) -> ImportFigures:
    """``runs`` imports of the same file, each beside a native load of it, after one
    untimed import: the site is a running server's, its connections and compiled
    statements warm, as they are for every import but a server's first (that one's
    figures are printed, not counted)."""
    with tempfile.TemporaryDirectory() as tmp:
        csv_path = Path(tmp) / "rows.csv"
        write_csv(csv_path, rows)
        site = Site(engine, Path(tmp) / "site")

        def ticket() -> Imported:
            empty_copy(engine)
            site.sync()  # t_in made anew: the catalog learns it, as a user's sync would
            engine.settle()
            done = site.import_csv(csv_path, "t_in")
            if loaded(engine) != rows:
                raise SystemExit(f"{engine.name}: the import holds {loaded(engine)} rows")
            return done

        first = ticket()
        print(
            f"  {engine.name} import warm-up (not in the medians): execution "
            f"{first.execution:.2f} s, end to end {first.ticket:.2f} s",
            flush=True,
        )
        done: list[Imported] = []
        native = []

        def native_run() -> None:
            empty_copy(engine)
            engine.settle()
            native.append(native_import(engine, csv_path))
            if loaded(engine) != rows:
                raise SystemExit(f"{engine.name}: the native load holds {loaded(engine)} rows")

        for run in range(runs):  # the native load first in every other run
            if run % 2 == 0:
                native_run()
                done.append(ticket())
            else:
                done.append(ticket())
                native_run()
            print(
                f"  {engine.name} import run {run + 1}: native {native[-1]:.2f} s, ticket "
                f"execution {done[-1].execution:.2f} s, end to end {done[-1].ticket:.2f} s",
                flush=True,
            )
        n = statistics.median(native)
        execution = statistics.median(d.execution for d in done)
        ticket_seconds = statistics.median(d.ticket for d in done)
        upload = statistics.median(d.upload for d in done)
        print(
            f"{engine.name} import of {rows:,} CSV rows: native {n:.2f} s; ticket: execution "
            f"{execution:.2f} s ({rows / execution:,.0f} rows/s, ratio {n / execution:.2f}), "
            f"end to end {ticket_seconds:.2f} s (ratio {n / ticket_seconds:.2f}); "
            f"upload {upload:.2f} s",
            flush=True,
        )
        return ImportFigures(engine.name, rows, n / execution, n / ticket_seconds)


@dataclass(frozen=True)
class ExportRatios:
    execution: float  # native / ExecuteDataExport until success
    end_to_end: float  # native / creation (precheck included) until success


def export_round(
    engine: Engine, site: Site, rows: int, tmp: Path, *, native_first: bool
) -> tuple[float, float, float]:
    """The native client's export and the ticket's, each file's rows counted: the native
    seconds, the ticket's execution and end-to-end seconds."""

    def native() -> float:
        out = tmp / "native.out"
        took = native_export(engine, out)
        if native_rows(out) != rows:
            raise SystemExit(f"{engine.name}: the native client wrote {native_rows(out)} rows")
        out.unlink()
        return took

    def ticket() -> tuple[float, float]:
        took, total, path = site.export(QUERY, rows)
        if export_rows(path) != rows:
            raise SystemExit(f"{engine.name}: the export holds {export_rows(path)} rows")
        path.unlink()  # counted; the next runs need not share the disk with it
        return took, total

    if native_first:
        first = native()
        return (first, *ticket())
    took, total = ticket()
    return native(), took, total


def measure_export(engine: Engine, rows: int, runs: int) -> ExportRatios:
    """One untimed round, then ``runs`` rounds, the native client first in every other one.
    The table was written just before (and the import's tables after it), so the first scans
    read it from disk (MariaDB's buffer pool reads with O_DIRECT; at 2,000,000 rows the
    table is most of its 128 MB) or set its hint bits (PostgreSQL), and the writes left
    behind are still being flushed: whichever side comes first would pay for that. The
    warm-up round's figures are printed to show that cost."""
    with tempfile.TemporaryDirectory() as tmp:
        site = Site(engine, Path(tmp))
        native, took, total = export_round(engine, site, rows, Path(tmp), native_first=True)
        print(
            f"  {engine.name} export warm-up (not in the medians): native client {native:.2f} s, "
            f"ticket execution {took:.2f} s, end to end {total:.2f} s",
            flush=True,
        )
        natives, ours, whole = [], [], []
        for run in range(1, runs + 1):
            native, took, total = export_round(
                engine, site, rows, Path(tmp), native_first=run % 2 == 0
            )
            natives.append(native)
            ours.append(took)
            whole.append(total)
            print(
                f"  {engine.name} export run {run}: native client {native:.2f} s, "
                f"ticket execution {took:.2f} s, end to end {total:.2f} s",
                flush=True,
            )
        o, w, n = statistics.median(ours), statistics.median(whole), statistics.median(natives)
        print(
            f"{engine.name} export of {rows} rows to CSV: native client {n:.2f} s, "
            f"ticket execution {o:.2f} s ({rows / o:,.0f} rows/s), ratio {n / o:.2f}; "
            f"end to end with the precheck {w:.2f} s, ratio {n / w:.2f}",
            flush=True,
        )
        return ExportRatios(n / o, n / w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--import-rows", default="200000,1000000")
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--runs", type=int, default=3, help="export rounds")
    parser.add_argument(
        "--import-runs",
        type=int,
        default=5,
        help="imports of each size (the disk's fsyncs spread one import's time by a third)",
    )
    parser.add_argument("--only", choices=("import", "export"), help="measure just one half")
    args = parser.parse_args()
    imports: list[ImportFigures] = []
    exports: dict[str, ExportRatios] = {}
    sizes = [int(n) for n in args.import_rows.split(",") if n]
    for name in args.engines.split(","):
        make = {"mariadb": mariadb, "postgresql": postgresql}[name]
        with make(args.rows) as engine:
            if args.only != "export":
                imports += [measure_import(engine, rows, args.import_runs) for rows in sizes]
            if args.only != "import":
                exports[engine.name] = measure_export(engine, args.rows, args.runs)
    print("ratios, native/ticket:")
    if imports:
        print("import: " + "; ".join(f.line() for f in imports))
    if exports:
        print(
            f"export of {args.rows:,} rows (target: execution 0.8): "
            + ", ".join(
                f"{k} {v.execution:.2f} ({_met(v.execution >= EXPORT_TARGET)};"
                f" end to end {v.end_to_end:.2f})"
                for k, v in exports.items()
            )
        )


if __name__ == "__main__":
    main()
