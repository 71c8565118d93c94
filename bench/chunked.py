#!/usr/bin/env python3
"""Lock-free batched change (DC_CHUNK): an UPDATE of every row of a 1,000,000-row table
through a ticket, chunk by chunk, vs the same UPDATE as one statement run directly, on
MariaDB and PostgreSQL, in the same run on fresh copies of the same table.

While each runs, a writer updates single random rows every 10 ms on its own connection;
its worst wait is printed for both: the single statement holds every row lock until it
commits, the chunks only theirs for one chunk. The ticket side is everything
ExecuteDataCorrect sets off (chunks with their progress markers, metadata records, audit)
until the ticket is ``success``; its chunk times come from the ticket's own progress.

Then a cleanup run (DC_CRON_CLEAR, its schedule fired by hand) deleting half of a fresh
copy, against one DELETE statement on both engines (medians of ``--repeat`` runs each), and
on MariaDB against Percona's ``pt-archiver --purge`` with its defaults and with
``--bulk-delete --limit 1000``, once each (Debian package percona-toolkit;
``--no-pt-archiver`` skips it, and its default mode, a row per transaction, takes minutes).

Every timed run is checked on the table afterwards: an UPDATE must have changed every row
exactly once, a cleanup or its baselines must have left exactly the newer half. A run that
left other rows stops the benchmark.

    python bench/chunked.py [--rows 1000000] [--repeat 5] [--engines mariadb,postgresql]
                            [--no-pt-archiver] [--cleanup-only]

The last lines give every engine's figures against the targets: DC_CHUNK throughput ratio,
direct time over ticket time (at least 0.7), and its p99 chunk time (under 100 ms); the
cleanup's ratio, one DELETE's time over the run's (PostgreSQL: at least 0.7; MariaDB: as
measured), and its p99 chunk time (under 100 ms); pt-archiver's times over the run's.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sites import Engine, Site, mariadb, postgresql
from opendms.execution.chunked import Progress
from opendms.store.models import SqlJob, SqlJobDetail

UPDATE = "UPDATE t SET n = n + 1, amount = amount * 2 WHERE 1=1"


@dataclass
class Writer:
    """Single-row UPDATEs of random rows every ``every`` seconds until stopped; each one's
    time from send to commit."""

    engine: Engine
    rows: int
    every: float = 0.01
    waits: list[float] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        with self.engine.connect() as conn, conn.cursor() as cur:
            while not self.stop.is_set():
                key = random.randint(1, self.rows)
                began = time.perf_counter()
                cur.execute(f"UPDATE t SET name = 'writer' WHERE id = {key}")
                self.waits.append(time.perf_counter() - began)
                time.sleep(self.every)

    def __enter__(self) -> Writer:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    @property
    def worst_ms(self) -> float:
        return max(self.waits, default=0.0) * 1000


def check(engine: Engine, what: str, query: str, expected: tuple[int, ...]) -> None:
    """Stop the benchmark, loudly, when ``what`` left other rows than it should have:
    ``query`` must give ``expected``."""
    with engine.connect() as conn, conn.cursor() as cur:
        cur.execute(query)
        found = tuple(int(v) if v is not None else -1 for v in cur.fetchone())
    if found != expected:
        raise SystemExit(
            f"{engine.name}: {what} left the wrong rows: {query} gives {found}, not {expected}"
        )


def check_updated(engine: Engine, rows: int, what: str) -> None:
    """Every row of ``t`` is there, its n and amount changed by UPDATE exactly once."""
    check(
        engine,
        what,
        "SELECT (SELECT COUNT(*) FROM t), (SELECT COUNT(*) FROM t JOIN t_orig o ON o.id = t.id"
        " WHERE t.n = o.n + 1 AND t.amount = o.amount * 2)",
        (rows, rows),
    )


def check_cleaned(engine: Engine, rows: int, what: str) -> None:
    """Exactly the newer half of ``t`` is left (its keys are unique: count and range say
    which rows)."""
    check(
        engine,
        what,
        "SELECT COUNT(*), MIN(id), MAX(id) FROM t",
        (rows - rows // 2, rows // 2 + 1, rows),
    )


def direct(engine: Engine, rows: int) -> tuple[float, float]:
    """The UPDATE as one statement: seconds, and the writer's worst wait (ms)."""
    with Writer(engine, rows) as writer, engine.connect() as conn, conn.cursor() as cur:
        time.sleep(0.2)  # the writer is going
        cur.execute("BEGIN")
        began = time.perf_counter()
        cur.execute(UPDATE)
        cur.execute("COMMIT")
        took = time.perf_counter() - began
    check_updated(engine, rows, "the UPDATE as one statement")
    return took, writer.worst_ms


def progress_of(site: Site, order_id: int) -> Progress:
    """The chunk progress of ticket ``order_id``'s one chunked statement."""
    with site.store.session() as s:
        detail = (
            s.query(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .filter(SqlJob.order_id == order_id)
            .one()
        )
        return Progress.load(detail.progress)


def ticket(site: Site, engine: Engine, rows: int) -> tuple[float, float, Progress]:
    """The UPDATE through a DC_CHUNK ticket: seconds from ExecuteDataCorrect to success, the
    writer's worst wait (ms), and the statement's progress (chunk times)."""
    order_id = site.file(UPDATE, None, "DC_CHUNK")
    site.prechecked(order_id)
    with Writer(engine, rows) as writer:
        time.sleep(0.2)
        took = site.execute(order_id, backup=False)
    progress = progress_of(site, order_id)
    if progress.rows != rows:
        raise SystemExit(f"the ticket changed {progress.rows} rows, not {rows}")
    check_updated(engine, rows, "the DC_CHUNK ticket")
    return took, writer.worst_ms, progress


def cleanup_run(site: Site, engine: Engine, rows: int) -> tuple[float, Progress]:
    """Seconds a cleanup ticket's run takes to delete the older half of ``t``, and its
    progress (chunk times)."""
    order_id = site.create(
        "DC_CRON_CLEAR",
        {
            "CronClearItemList": [
                {
                    "TableName": "t",
                    "ColumnName": "created",
                    "RemainDays": 0,
                    "FilterSQL": f"id <= {rows // 2}",
                }
            ],
            "CronFormat": "0 0 2 * * ?",
            "specifyDuration": False,
        },
    )
    site.prechecked(order_id)
    took = site.cleanup_run(order_id)
    check_cleaned(engine, rows, "the cleanup ticket's run")
    return took, progress_of(site, order_id)


def pt_archiver(engine: Engine, rows: int, *options: str) -> float:
    """Seconds ``pt-archiver --purge`` takes to delete the same half."""
    began = time.perf_counter()
    subprocess.run(
        [
            "pt-archiver",
            "--source",
            f"h=127.0.0.1,P=3306,u=root,A=utf8mb4,D={engine.where[1]},t=t",
            "--purge",
            "--where",
            f"id <= {rows // 2}",
            "--noversion-check",  # it would ask Percona's server for news otherwise
            *options,
        ],
        check=True,
    )
    took = time.perf_counter() - began
    check_cleaned(engine, rows, f"pt-archiver --purge {' '.join(options)}".strip())
    return took


def direct_delete(engine: Engine, rows: int) -> float:
    """Seconds one DELETE statement takes to delete the same half."""
    with engine.connect() as conn, conn.cursor() as cur:
        cur.execute("BEGIN")
        began = time.perf_counter()
        cur.execute(f"DELETE FROM t WHERE id <= {rows // 2}")
        cur.execute("COMMIT")
        took = time.perf_counter() - began
    check_cleaned(engine, rows, "one DELETE statement")
    return took


def merge(seen: Progress, progress: Progress) -> None:
    """Add a run's chunks to ``seen``, for a p99 over every run."""
    seen.chunks += progress.chunks
    seen.max_chunk_ms = max(seen.max_chunk_ms, progress.max_chunk_ms)
    for bucket, count in progress.histogram.items():
        seen.histogram[bucket] = seen.histogram.get(bucket, 0) + count


@dataclass
class Figures:
    """One engine's key figures."""

    engine: str
    chunk_ratio: float | None = None  # DC_CHUNK: direct time over ticket time
    chunk_p99: int | None = None
    cleanup_ratio: float = 0.0  # one DELETE's time over the cleanup run's
    cleanup_p99: int = 0
    archiver: tuple[float, float] | None = None  # pt-archiver default, bulk: its time / ours


def compare_cleanup(
    engine: Engine, site: Site, rows: int, repeat: int, archiver: bool, figures: Figures
) -> None:
    ours, one = [], []
    seen = Progress()
    for _ in range(repeat):
        engine.run(*engine.fresh)
        one.append(direct_delete(engine, rows))
        engine.run(*engine.fresh)
        took, progress = cleanup_run(site, engine, rows)
        ours.append(took)
        merge(seen, progress)
    o, d = statistics.median(ours), statistics.median(one)
    figures.cleanup_ratio, figures.cleanup_p99 = d / o, seen.p99_ms
    print(
        f"{engine.name}: cleanup of {rows // 2:,} of {rows:,} rows: a ticket's run {o:.2f} s, "
        f"one DELETE statement {d:.2f} s: ratio {d / o:.2f} (medians of {repeat}); "
        f"{seen.chunks:,} chunks, p99 chunk {seen.p99_ms} ms, slowest {seen.max_chunk_ms} ms"
    )
    if engine.name != "MariaDB":
        return
    if not archiver:
        print(f"{engine.name}: pt-archiver not run (--no-pt-archiver)")
        return
    if not shutil.which("pt-archiver"):
        print(f"{engine.name}: pt-archiver not run (apt-get install percona-toolkit)")
        return
    engine.run(*engine.fresh)
    bulk = pt_archiver(engine, rows, "--bulk-delete", "--limit", "1000")
    engine.run(*engine.fresh)
    default = pt_archiver(engine, rows)
    figures.archiver = (default / o, bulk / o)
    print(
        f"{engine.name}: pt-archiver --purge {default:.2f} s (ours {default / o:.1f}x as fast), "
        f"with --bulk-delete --limit 1000 {bulk:.2f} s (ours {bulk / o:.2f}x), once each"
    )


def compare_chunked(engine: Engine, site: Site, rows: int, repeat: int, figures: Figures) -> None:
    bare, chunked, bare_waits, chunk_waits = [], [], [], []
    seen = Progress()  # every run's chunk times together
    for _ in range(repeat):
        engine.run(*engine.fresh)
        took, wait = direct(engine, rows)
        bare.append(took)
        bare_waits.append(wait)
        engine.run(*engine.fresh)
        took, wait, progress = ticket(site, engine, rows)
        chunked.append(took)
        chunk_waits.append(wait)
        merge(seen, progress)
    d, t = statistics.median(bare), statistics.median(chunked)
    figures.chunk_ratio, figures.chunk_p99 = d / t, seen.p99_ms
    print(
        f"{engine.name}: UPDATE of {rows:,} rows as one statement {d:.2f} s "
        f"({rows / d:,.0f} rows/s), through a DC_CHUNK ticket {t:.2f} s ({rows / t:,.0f} "
        f"rows/s): throughput ratio {d / t:.2f} (medians of {repeat})"
    )
    print(
        f"{engine.name}: {seen.chunks:,} chunks in {repeat} runs, p99 chunk {seen.p99_ms} ms, "
        f"slowest {seen.max_chunk_ms} ms"
    )
    print(
        f"{engine.name}: a single-row writer's worst wait: {max(bare_waits):,.0f} ms during the "
        f"single statement, {max(chunk_waits):,.0f} ms during the chunked ticket"
    )


def verdict(value: float, target: float, *, at_least: bool, missed: list[str], what: str) -> str:
    met = value >= target if at_least else value < target
    if not met:
        missed.append(what)
    return f"{'>=' if at_least else '<'} {target:g}: {'met' if met else 'NOT MET'}"


def summary(results: list[Figures]) -> None:
    """Every engine's figures against the targets, as the last lines."""
    missed: list[str] = []
    print("-- figures against the targets --")
    for f in results:
        parts = []
        if f.chunk_ratio is not None and f.chunk_p99 is not None:
            ratio = verdict(
                f.chunk_ratio, 0.7, at_least=True, missed=missed, what=f"{f.engine} DC_CHUNK ratio"
            )
            p99 = verdict(
                f.chunk_p99, 100, at_least=False, missed=missed, what=f"{f.engine} DC_CHUNK p99"
            )
            parts.append(
                f"DC_CHUNK ratio {f.chunk_ratio:.2f} ({ratio}), p99 chunk {f.chunk_p99} ms ({p99})"
            )
        if f.engine == "PostgreSQL":
            ratio = verdict(
                f.cleanup_ratio, 0.7, at_least=True, missed=missed, what=f"{f.engine} cleanup ratio"
            )
        else:
            ratio = "measured, no target"
        p99 = verdict(
            f.cleanup_p99, 100, at_least=False, missed=missed, what=f"{f.engine} cleanup p99"
        )
        parts.append(
            f"cleanup {f.cleanup_ratio:.2f} of one DELETE ({ratio}), "
            f"p99 chunk {f.cleanup_p99} ms ({p99})"
        )
        if f.archiver is not None:
            default, bulk = f.archiver
            purge = verdict(
                default, 5, at_least=True, missed=missed, what=f"{f.engine} vs pt-archiver"
            )
            bulked = verdict(
                bulk, 1, at_least=True, missed=missed, what=f"{f.engine} vs pt-archiver --bulk"
            )
            parts.append(
                f"vs pt-archiver --purge {default:.1f}x ({purge}), "
                f"--bulk-delete --limit 1000 {bulk:.2f}x ({bulked})"
            )
        print(f"{f.engine}: " + "; ".join(parts))
    print("targets: " + ("all met" if not missed else "NOT MET: " + ", ".join(missed)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--no-pt-archiver", action="store_true")
    parser.add_argument("--cleanup-only", action="store_true", help="skip the DC_CHUNK runs")
    args = parser.parse_args()
    makers = {"mariadb": mariadb, "postgresql": postgresql}
    results = []
    for name in args.engines.split(","):
        with makers[name](args.rows) as engine, tempfile.TemporaryDirectory() as tmp:
            site = Site(engine, Path(tmp))
            figures = Figures(engine.name)
            if not args.cleanup_only:
                compare_chunked(engine, site, args.rows, args.repeat, figures)
            archiver = not args.no_pt_archiver
            compare_cleanup(engine, site, args.rows, args.repeat, archiver, figures)
            results.append(figures)
    summary(results)


if __name__ == "__main__":
    main()
