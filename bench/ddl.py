#!/usr/bin/env python3
"""Lock-free DDL (issue 21): schema changes of a 1,000,000-row table under a live writer,
through a TABLE_SYNC ticket vs the databases' own online DDL and Percona's
pt-online-schema-change, on MariaDB and PostgreSQL, each on a fresh copy of the same table.

Two changes, each made by a structure sync whose source holds the wanted shape of ``t``:

- **add**: a column and an index. Native: MariaDB ``ALTER TABLE … ADD COLUMN …, ADD INDEX …,
  ALGORITHM=INPLACE, LOCK=NONE`` (INSTANT cannot add an index); PostgreSQL ``ADD COLUMN`` then
  ``CREATE INDEX CONCURRENTLY``. OpenDMS with the instance's DdlOnline 1 (the server's own
  online DDL first). Targets: at most 1.2x the native time, writer p99 ≤ 50 ms, 0 errors.
- **type**: a column type change that rewrites the table (``n`` INT to BIGINT). OpenDMS with
  DdlOnline 2 (its shadow copy) vs a plain ALTER and, on MariaDB only (it is a MySQL tool),
  ``pt-online-schema-change`` (Debian's percona-toolkit, installed by this script when
  missing; ``--no-drop-old-table``, as OpenDMS keeps the old table too). Targets: faster than
  pt-osc, writer p99 ≤ 100 ms, 0 writer deadlocks.

The OpenDMS side is the product's own path in this process (``bench.sites.Site``): the
ticket filed, its precheck (the live comparison, the review), submitted to a rule set that
needs no approval, and timed from ExecuteStructSync until the ticket is ``success``.

The writer is a separate process (so that OpenDMS's Python in this one does not slow it)
doing single-row UPDATEs of random keys in autocommit, pausing ``--writer-pause`` between
them, through every run; its p99 is over the statements it began during the timed run.
Deadlocks (MySQL 1213, PostgreSQL 40P01) and other errors are counted apart. After every
timed run the table's row count, a checksum of the columns the writer does not write, and
the new shape are checked; a mismatch stops the bench.

    python bench/ddl.py [--rows 1000000] [--engines mariadb,postgresql] [--repeat 3]
    python bench/ddl.py --quick          # a smoke run: 20,000 rows, one run each

The last line has every ratio (OpenDMS's time over the other's) and stall of both engines.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.sites import Engine, Site, mariadb, postgresql
from opendms.approvals import flow
from opendms.execution import service as execution
from opendms.execution.online import OnlineProgress
from opendms.kinds.struct_sync import KIND
from opendms.store.models import Order, SqlJob, SqlJobDetail
from opendms.store.states import OrderStatus, SqlJobStatus
from opendms.structure import service as structure
from opendms.targets.pace import Pace

DEADLOCK = {"MariaDB": "1213", "PostgreSQL": "40P01"}
SOURCES = {  # the wanted shapes of t, each in a database of its own (``{s}``: its name)
    "MariaDB": {
        "add": "CREATE TABLE {s}.t (id INT PRIMARY KEY, n INT, name VARCHAR(64), "
        "amount DECIMAL(12,2), created DATETIME, note VARCHAR(32), KEY ix_t_n (n)) ENGINE=InnoDB",
        "type": "CREATE TABLE {s}.t (id INT PRIMARY KEY, n BIGINT, name VARCHAR(64), "
        "amount DECIMAL(12,2), created DATETIME) ENGINE=InnoDB",
    },
    "PostgreSQL": {
        "add": "CREATE TABLE {s}.t (id INT PRIMARY KEY, n INT, name VARCHAR(64), "
        "amount NUMERIC(12,2), created TIMESTAMP, note VARCHAR(32));"
        "CREATE INDEX ix_t_n ON {s}.t (n)",
        "type": "CREATE TABLE {s}.t (id INT PRIMARY KEY, n BIGINT, name VARCHAR(64), "
        "amount NUMERIC(12,2), created TIMESTAMP)",
    },
}
NATIVE_ADD = {
    "MariaDB": [
        "ALTER TABLE t ADD COLUMN note VARCHAR(32), ADD INDEX ix_t_n (n), "
        "ALGORITHM=INPLACE, LOCK=NONE"
    ],
    "PostgreSQL": [
        "ALTER TABLE t ADD COLUMN note VARCHAR(32)",
        "CREATE INDEX CONCURRENTLY ix_t_n ON t (n)",
    ],
}
PLAIN_TYPE = {
    "MariaDB": "ALTER TABLE t MODIFY n BIGINT",
    "PostgreSQL": "ALTER TABLE t ALTER COLUMN n TYPE BIGINT",
}
CHECKSUM = {  # of the columns neither the writer nor the changes write
    "MariaDB": "SELECT COUNT(*), SUM(CRC32(CONCAT_WS('|', id, n, amount, created))) FROM t",
    "PostgreSQL": "SELECT count(*), sum(hashtext(concat_ws('|', id, n, amount, created))) FROM t",
}


# -- the writer -----------------------------------------------------------------------------


def _connect(kind: str, where: tuple[str, str]) -> Any:
    if kind == "MariaDB":
        import pymysql

        return pymysql.connect(
            host="127.0.0.1", user="root", password="", database=where[1], autocommit=True
        )
    import psycopg

    return psycopg.connect(
        f"host=127.0.0.1 port=5432 user=postgres dbname={where[0]}", autocommit=True
    )


def _code(kind: str, exc: Exception) -> str:
    """The server's error code: MySQL's number, PostgreSQL's SQLSTATE."""
    if kind == "MariaDB":
        return str(exc.args[0]) if exc.args else type(exc).__name__
    return str(getattr(exc, "sqlstate", None) or type(exc).__name__)


def _write(
    kind: str,
    where: tuple[str, str],
    rows: int,
    pause: float,
    events: tuple[Any, Any],
    out: Connection,
) -> None:
    """The writer process: (began, seconds, error code or "") per UPDATE, from connecting
    (``ready`` set) until ``stop``."""
    ready, stop = events
    seen: list[tuple[float, float, str]] = []
    conn = _connect(kind, where)
    cur = conn.cursor()
    ready.set()
    while not stop.is_set():
        key = random.randint(1, rows)
        began = time.monotonic()
        code = ""
        try:
            cur.execute("UPDATE t SET name = %s WHERE id = %s", (f"w-{key}", key))
        except Exception as exc:  # every failure is counted, by its code
            code = _code(kind, exc)
            try:
                conn.close()
            finally:
                conn = _connect(kind, where)
                cur = conn.cursor()
        seen.append((began, time.monotonic() - began, code))
        time.sleep(pause)
    conn.close()
    out.send(seen)
    out.close()


@dataclass
class Stalls:
    """The writer's statements begun during one timed run."""

    waits: list[float] = field(default_factory=list)
    deadlocks: int = 0
    errors: int = 0  # other than deadlocks
    codes: dict[str, int] = field(default_factory=dict)

    @property
    def p99_ms(self) -> float:
        if not self.waits:
            return 0.0
        ordered = sorted(self.waits)
        return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000

    @property
    def max_ms(self) -> float:
        return max(self.waits, default=0.0) * 1000


@contextmanager
def writer(engine: Engine, rows: int, pause: float) -> Iterator[Callable[[float, float], Stalls]]:
    """A writer process going through the block; what it yields, called after the block
    with a run's (began, ended) in ``time.monotonic``, is that run's stalls."""
    spawn = mp.get_context("spawn")
    ready, stop = spawn.Event(), spawn.Event()
    ours, theirs = spawn.Pipe(duplex=False)
    proc = spawn.Process(
        target=_write,
        args=(engine.name, engine.where, rows, pause, (ready, stop), theirs),
        daemon=True,
    )
    proc.start()
    seen: list[tuple[float, float, str]] = []
    if not ready.wait(60):
        proc.terminate()
        raise SystemExit(f"{engine.name}: the writer did not connect")
    time.sleep(0.5)  # writing

    def stalls(began: float, ended: float) -> Stalls:
        found = Stalls()
        for at, took, code in seen:
            if not began <= at <= ended:
                continue
            found.waits.append(took)
            if code:
                found.codes[code] = found.codes.get(code, 0) + 1
                if code == DEADLOCK[engine.name]:
                    found.deadlocks += 1
                else:
                    found.errors += 1
        return found

    try:
        yield stalls
    finally:
        stop.set()
        if ours.poll(120):
            seen.extend(ours.recv())
        proc.join(30)
        if proc.is_alive():
            proc.terminate()
            raise SystemExit(f"{engine.name}: the writer did not stop")


# -- one timed run --------------------------------------------------------------------------


@dataclass
class Run:
    took: float
    stalls: Stalls
    how: str = ""  # how OpenDMS ran it (its strategies)


def timed(
    engine: Engine,
    rows: int,
    pause: float,
    prepare: Callable[[], Callable[[], str | None]],
    change: str,
) -> Run:
    """On a fresh ``t``, the run ``prepare`` makes (a ticket filed and prechecked, untimed)
    under the writer, timed, then checked."""
    fresh(engine)
    run = prepare()
    with writer(engine, rows, pause) as stalls:
        began = time.monotonic()
        how = run() or ""
        ended = time.monotonic()
    check(engine, rows, change)
    return Run(ended - began, stalls(began, ended), how)


def fresh(engine: Engine) -> None:
    """Every table but t_orig dropped (old tables kept by a run), t a fresh copy."""
    with engine.connect() as conn, conn.cursor() as cur:
        if engine.name == "MariaDB":
            cur.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                (engine.where[1],),
            )
            names = [r[0] for r in cur.fetchall() if r[0] != "t_orig"]
            for name in names:
                cur.execute(f"DROP TABLE `{name}`")
        else:
            cur.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 't_orig'"
            )
            for (name,) in cur.fetchall():
                cur.execute(f'DROP TABLE "{name}" CASCADE')
    engine.run(*engine.fresh)
    if engine.name == "MariaDB":
        engine.run("ANALYZE TABLE t")


_expected: dict[str, tuple[int, int]] = {}


def check(engine: Engine, rows: int, change: str) -> None:
    """The rows all there, the untouched columns as they were, the new shape in place."""
    with engine.connect() as conn, conn.cursor() as cur:
        cur.execute(CHECKSUM[engine.name])
        count, total = cur.fetchone()
        if engine.name not in _expected:
            cur.execute(CHECKSUM[engine.name].replace("FROM t", "FROM t_orig"))
            got = cur.fetchone()
            _expected[engine.name] = (int(got[0]), int(got[1]))
        expected = _expected[engine.name]
        if (int(count), int(total)) != expected or expected[0] != rows:
            raise SystemExit(
                f"{engine.name} {change}: t holds {count} rows, checksum {total}; expected "
                f"{expected[0]} rows, checksum {expected[1]}"
            )
        shape = _shape(engine, cur)
    wanted = {
        "add": ("note" in shape["columns"] and shape["index"]),
        "type": shape["n"] == "bigint",
    }
    if not wanted[change]:
        raise SystemExit(f"{engine.name} {change}: t does not have the new shape: {shape}")


def _shape(engine: Engine, cur: Any) -> dict[str, Any]:
    if engine.name == "MariaDB":
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 't'",
            (engine.where[1],),
        )
        columns = {r[0]: r[1] for r in cur.fetchall()}
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.statistics WHERE table_schema = %s "
            "AND table_name = 't' AND index_name = 'ix_t_n'",
            (engine.where[1],),
        )
        index = bool(cur.fetchone()[0])
    else:
        cur.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name = 't'"
        )
        columns = {r[0]: r[1] for r in cur.fetchall()}
        cur.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE c.relname = 'ix_t_n' AND i.indrelid = 'public.t'::regclass AND i.indisvalid"
        )
        index = bool(cur.fetchone()[0])
    return {"columns": sorted(columns), "n": columns.get("n"), "index": index}


# -- the ways to change t -------------------------------------------------------------------


def native(engine: Engine, statements: list[str]) -> Callable[[], None]:
    def run() -> None:
        engine.run(*statements)

    return run


def pt_osc(engine: Engine) -> Callable[[], None]:
    def run() -> None:
        subprocess.run(
            [
                "pt-online-schema-change",
                "--alter",
                "MODIFY n BIGINT",
                "--execute",
                "--no-drop-old-table",
                "--noversion-check",  # it would ask Percona's server for news otherwise
                "--recursion-method",
                "none",
                f"h=127.0.0.1,P=3306,u=root,A=utf8mb4,D={engine.where[1]},t=t",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    return run


def ensure_pt_osc() -> bool:
    """Debian's percona-toolkit (and the Perl MySQL driver it needs), installed if missing."""
    if shutil.which("pt-online-schema-change") and _perl_mysql():
        return True
    print("pt-online-schema-change is missing: installing Debian's percona-toolkit", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [*sudo, "apt-get", "install", "-y", "-q", "percona-toolkit", "libdbd-mysql-perl"]
    if subprocess.run(install, check=False, env=env).returncode != 0:
        subprocess.run([*sudo, "apt-get", "update", "-q"], check=False, env=env)
        subprocess.run(install, check=False, env=env)
    return bool(shutil.which("pt-online-schema-change")) and _perl_mysql()


def _perl_mysql() -> bool:
    done = subprocess.run(["perl", "-MDBD::mysql", "-e", "1"], check=False, capture_output=True)
    return done.returncode == 0


class Sync:
    """TABLE_SYNC tickets on a site whose instance holds the sources' databases."""

    def __init__(self, site: Site, sources: dict[str, int]) -> None:
        self.site, self.sources = site, sources

    def run(self, change: str, mode: int) -> Callable[[], str]:
        """Filed and prechecked outside the timing; timed from ExecuteStructSync."""
        site = self.site
        site.ddl_online(mode)
        order_id = site.create(
            "TABLE_SYNC",
            {
                "Source": {"DbId": self.sources[change]},
                "Target": {"DbId": site.db_id},
                "TableInfoList": [{"SourceTableName": "t"}],
            },
        )
        site.prechecked(order_id)
        with site.store.session() as s:
            flow.submit(s, site.caller, order_id)
            if s.get_one(Order, order_id).status_code != OrderStatus.APPROVED:
                raise SystemExit(f"TABLE_SYNC ticket {order_id} is not approved")

        def execute() -> str:
            with site.store.session() as s:
                structure.plan_of(s, site.caller, order_id, KIND.plugin_type)
                execution.execute(s, site.caller, order_id, execution.ExecutionPlan())
            status = _run_to_end(site, order_id)
            if status != "success":
                raise SystemExit(
                    f"TABLE_SYNC ticket {order_id} ended {status}: {_log(site, order_id)}"
                )
            return _strategies(site, order_id)

        return execute


def _run_to_end(site: Site, order_id: int, timeout: float = 3600) -> str:
    """The runner's steps until the ticket ends; a step that asked to wait is waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        site.drain()
        with site.store.session() as s:
            status = s.get_one(Order, order_id).status_code
            if status in (OrderStatus.SUCCESS, OrderStatus.CLOSED):
                return str(status)
            failed = s.query(SqlJob).filter(
                SqlJob.order_id == order_id, SqlJob.status == SqlJobStatus.FAIL
            )
            if failed.count():
                return "failed"
        time.sleep(0.05)
    return "timeout"


def _details(site: Site, order_id: int) -> list[SqlJobDetail]:
    with site.store.session() as s:
        found = (
            s.query(SqlJobDetail)
            .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
            .filter(SqlJob.order_id == order_id)
            .order_by(SqlJobDetail.number)
            .all()
        )
        s.expunge_all()
        return found


def _strategies(site: Site, order_id: int) -> str:
    return "+".join(
        OnlineProgress.loads(d.progress).strategy.value for d in _details(site, order_id)
    )


def _log(site: Site, order_id: int) -> str:
    return " | ".join(f"{d.sql_text}: {d.log}" for d in _details(site, order_id))


# -- per engine -----------------------------------------------------------------------------


@contextmanager
def sources(engine: Engine) -> Iterator[dict[str, tuple[str, str]]]:
    """A database per wanted shape of t, holding it (empty): change → (catalog, schema)."""
    made: dict[str, tuple[str, str]] = {}
    try:
        for change, ddl in SOURCES[engine.name].items():
            if engine.name == "MariaDB":
                name = f"{engine.where[1]}_{change}"
                engine.run(f"CREATE DATABASE {name}")
                made[change] = ("def", name)
            else:
                name = f"src_{change}"
                engine.run(f"CREATE SCHEMA {name}")
                made[change] = (engine.where[0], name)
            engine.run(*ddl.format(s=name).split(";"))
        yield made
    finally:
        if engine.name == "MariaDB":
            engine.run(*(f"DROP DATABASE IF EXISTS {w[1]}" for w in made.values()))


@dataclass
class Figures:
    engine: str
    runs: dict[str, list[Run]] = field(default_factory=dict)

    def time(self, way: str) -> float:
        return statistics.median(r.took for r in self.runs[way])

    def stalls(self, way: str) -> Stalls:
        """Every run's statements together."""
        found = Stalls()
        for r in self.runs[way]:
            found.waits += r.stalls.waits
            found.deadlocks += r.stalls.deadlocks
            found.errors += r.stalls.errors
            for code, n in r.stalls.codes.items():
                found.codes[code] = found.codes.get(code, 0) + n
        return found

    def has(self, way: str) -> bool:
        return bool(self.runs.get(way))


def measure(engine: Engine, rows: int, args: argparse.Namespace, workdir: Path) -> Figures:
    figures = Figures(engine.name)
    pt = engine.name == "MariaDB" and not args.no_pt_osc and ensure_pt_osc()
    with sources(engine) as where:
        means = {"pace": Pace(copy_seconds=args.ddl_chunk_ms / 1000)} if args.ddl_chunk_ms else {}
        site = Site(engine, workdir, **means)
        sync = Sync(site, {change: site.database(w) for change, w in where.items()})
        ways: list[tuple[str, str, Callable[[], Callable[[], str | None]]]] = [
            ("add", "native", lambda: native(engine, NATIVE_ADD[engine.name])),
            ("add", "opendms", lambda: sync.run("add", 1)),
            ("type", "alter", lambda: native(engine, [PLAIN_TYPE[engine.name]])),
            ("type", "opendms", lambda: sync.run("type", 2)),
        ]
        if pt:
            ways.insert(3, ("type", "pt-osc", lambda: pt_osc(engine)))
        ways = [w for w in ways if w[0] in args.changes.split(",")]
        for i in range(args.repeat):
            for change, way, make in ways:
                run = timed(engine, rows, args.writer_pause, make, change)
                figures.runs.setdefault(f"{change} {way}", []).append(run)
                print(
                    f"  {engine.name} {change:<4} {way:<8} run {i + 1}: {run.took:7.2f} s  "
                    f"writer p99 {run.stalls.p99_ms:6.1f} ms, max {run.stalls.max_ms:7.1f} ms, "
                    f"{len(run.stalls.waits)} statements, {run.stalls.deadlocks} deadlocks, "
                    f"{run.stalls.errors} errors {run.stalls.codes or ''} {run.how}",
                    flush=True,
                )
    table(figures, rows, args.repeat)
    return figures


def table(f: Figures, rows: int, repeat: int) -> None:
    print(f"\n{f.engine}: {rows:,} rows, medians of {repeat} run(s)")
    print(f"  {'change':<6} {'way':<10} {'seconds':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'deadlocks':>9} {'errors':>6}  how")  # fmt: skip
    for name, runs in f.runs.items():
        change, way = name.split(" ", 1)
        st = f.stalls(name)
        how = ",".join(sorted({r.how for r in runs if r.how}))
        print(
            f"  {change:<6} {way:<10} {f.time(name):8.2f} {st.p99_ms:8.1f} {st.max_ms:8.1f} "
            f"{st.deadlocks:9d} {st.errors:6d}  {how}"
        )
    print(flush=True)


def summary(f: Figures) -> str:
    said = [f.engine.lower()]
    if f.has("add opendms"):
        a = f.stalls("add opendms")
        said.append(
            f"add {f.time('add opendms') / f.time('add native'):.2f}x native "
            f"(p99 {a.p99_ms:.0f}ms, {a.errors + a.deadlocks} err)"
        )
    if f.has("type opendms"):
        ours, t = f.time("type opendms"), f.stalls("type opendms")
        if f.has("type pt-osc"):
            versus = f"{ours / f.time('type pt-osc'):.2f}x pt-osc"
        elif f.engine == "PostgreSQL":
            versus = "pt-osc n/a (MySQL-only)"
        else:
            versus = "pt-osc not run"
        pt = ""
        if f.has("type pt-osc"):
            p = f.stalls("type pt-osc")
            pt = f"; pt-osc p99 {p.p99_ms:.0f}ms, {p.deadlocks} deadlocks"
        said.append(
            f"type {versus}, {ours / f.time('type alter'):.2f}x ALTER (p99 {t.p99_ms:.0f}ms, "
            f"{t.deadlocks} deadlocks, {t.errors} err{pt})"
        )
    return " ".join(said[:1]) + " " + " | ".join(said[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None, help="default 1,000,000")
    parser.add_argument("--repeat", type=int, default=None, help="runs of each way (default 3)")
    parser.add_argument("--engines", default="mariadb,postgresql")
    parser.add_argument("--writer-pause", type=float, default=0.01, help="seconds")
    parser.add_argument("--no-pt-osc", action="store_true")
    parser.add_argument("--changes", default="add,type", help="which changes to make")
    parser.add_argument(
        "--ddl-chunk-ms",
        type=int,
        default=None,
        help="OPENDMS_DDL_CHUNK_MS for OpenDMS's shadow copies (default: the product's)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 rows, 1 run")
    args = parser.parse_args()
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    args.repeat = args.repeat or (1 if args.quick else 3)
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    makers = {"mariadb": mariadb, "postgresql": postgresql}
    found = []
    for name in args.engines.split(","):
        with makers[name](rows) as engine, tempfile.TemporaryDirectory() as tmp:
            found.append(measure(engine, rows, args, Path(tmp)))
    print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)
    print("ddl: " + " | ".join(summary(f) for f in found))


if __name__ == "__main__":
    main()
