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
copy, against Percona's ``pt-archiver --purge`` on MariaDB with its defaults and with
``--bulk-delete --limit 1000`` (Debian package percona-toolkit; ``--no-pt-archiver`` skips
it, and its default mode, a row per transaction, takes minutes), and against one DELETE
statement on PostgreSQL.

    python bench/chunked.py [--rows 1000000] [--engines mariadb,postgresql]

The last line is the key figure: the slower engine's throughput ratio, direct time over
ticket time (target: at least 0.7), with its p99 chunk time (target: under 100 ms).
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


def direct(engine: Engine, rows: int) -> tuple[float, float]:
    """The UPDATE as one statement: seconds, and the writer's worst wait (ms)."""
    with Writer(engine, rows) as writer, engine.connect() as conn, conn.cursor() as cur:
        time.sleep(0.2)  # the writer is going
        cur.execute("BEGIN")
        began = time.perf_counter()
        cur.execute(UPDATE)
        cur.execute("COMMIT")
        took = time.perf_counter() - began
    return took, writer.worst_ms


def ticket(site: Site, engine: Engine, rows: int) -> tuple[float, float, Progress]:
    """The UPDATE through a DC_CHUNK ticket: seconds from ExecuteDataCorrect to success, the
    writer's worst wait (ms), and the statement's progress (chunk times)."""
    order_id = site.file(UPDATE, None, "DC_CHUNK")
    site.prechecked(order_id)
    with Writer(engine, rows) as writer:
        time.sleep(0.2)
        took = site.execute(order_id, backup=False)
    with site.store.session() as s:
        detail = (
            s.query(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .filter(SqlJob.order_id == order_id)
            .one()
        )
        progress = Progress.load(detail.progress)
    if progress.rows != rows:
        raise SystemExit(f"the ticket changed {progress.rows} rows, not {rows}")
    return took, writer.worst_ms, progress


def cleanup_run(site: Site, rows: int) -> float:
    """Seconds a cleanup ticket's run takes to delete the older half of ``t``."""
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
    return site.cleanup_run(order_id)


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
    return time.perf_counter() - began


def direct_delete(engine: Engine, rows: int) -> float:
    with engine.connect() as conn, conn.cursor() as cur:
        cur.execute("BEGIN")
        began = time.perf_counter()
        cur.execute(f"DELETE FROM t WHERE id <= {rows // 2}")
        cur.execute("COMMIT")
        return time.perf_counter() - began


def compare_cleanup(engine: Engine, site: Site, rows: int, archiver: bool) -> None:
    engine.run(*engine.fresh)
    ours = cleanup_run(site, rows)
    line = f"{engine.name}: cleanup of {rows // 2:,} of {rows:,} rows: a ticket's run {ours:.2f} s"
    if engine.name == "MariaDB" and archiver and shutil.which("pt-archiver"):
        engine.run(*engine.fresh)
        bulk = pt_archiver(engine, rows, "--bulk-delete", "--limit", "1000")
        engine.run(*engine.fresh)
        default = pt_archiver(engine, rows)
        line += (
            f"; pt-archiver --purge {default:.2f} s (ours {default / ours:.1f}x as fast, target"
            f" >= 5), with --bulk-delete --limit 1000 {bulk:.2f} s (ours {bulk / ours:.2f}x,"
            " target >= 1)"
        )
    elif engine.name == "MariaDB":
        line += "; pt-archiver not run (apt-get install percona-toolkit)"
    else:
        engine.run(*engine.fresh)
        one = direct_delete(engine, rows)
        line += f"; one DELETE statement {one:.2f} s (ratio {one / ours:.2f})"
    print(line)


def measure(
    engine: Engine, rows: int, workdir: Path, repeat: int, archiver: bool
) -> tuple[float, int]:
    site = Site(engine, workdir)
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
        seen.chunks += progress.chunks
        seen.max_chunk_ms = max(seen.max_chunk_ms, progress.max_chunk_ms)
        for bucket, count in progress.histogram.items():
            seen.histogram[bucket] = seen.histogram.get(bucket, 0) + count
    d, t = statistics.median(bare), statistics.median(chunked)
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
    compare_cleanup(engine, site, rows, archiver)
    return d / t, seen.p99_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--no-pt-archiver", action="store_true")
    args = parser.parse_args()
    makers = {"mariadb": mariadb, "postgresql": postgresql}
    results = []
    for name in args.engines.split(","):
        with makers[name](args.rows) as engine, tempfile.TemporaryDirectory() as tmp:
            ratio, p99 = measure(engine, args.rows, Path(tmp), args.repeat, not args.no_pt_archiver)
            results.append((ratio, p99, engine.name))
    ratio, p99, where = min(results)
    print(
        f"throughput ratio (direct / DC_CHUNK ticket), worst engine {where}: {ratio:.2f} "
        f"(target >= 0.7), p99 chunk {p99} ms (target < 100)"
    )


if __name__ == "__main__":
    main()
