"""What the benchmarks share: a fresh database on MariaDB or PostgreSQL holding a table
``t_orig`` of generated rows and a way to make ``t`` a fresh copy of it, and a metadata store
(a "site") with that instance registered, where tickets are filed and run in this process."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pymysql
from sqlalchemy import select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from opendms.approvals import flow  # noqa: E402
from opendms.catalog import instances, queries, sync  # noqa: E402
from opendms.execution import cleanup  # noqa: E402
from opendms.execution import service as execution  # noqa: E402
from opendms.exports import service as exports  # noqa: E402
from opendms.files import service as files  # noqa: E402
from opendms.files.storage import FileStore  # noqa: E402
from opendms.identity import service as identity  # noqa: E402
from opendms.identity.secrets import SecretBox, load_master_key  # noqa: E402
from opendms.jobs.runner import Runner, Work  # noqa: E402
from opendms.means import Means  # noqa: E402
from opendms.precheck import service as precheck  # noqa: E402
from opendms.rulebook import rule_sets  # noqa: E402
from opendms.runtime import executors  # noqa: E402
from opendms.store.db import Store  # noqa: E402
from opendms.store.models import Order, SqlJobDetail, utcnow  # noqa: E402
from opendms.targets.base import TargetPolicy  # noqa: E402
from opendms.tickets import service as tickets  # noqa: E402

FREE = """
templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}
rules:
  - name: benchmark tickets need no approval
    when: {ticket_types: [DC_COMMON, DC_CHUNK, DC_CRON_CLEAR, DC_BIG_FILE, DATA_EXPORT, TABLE_SYNC]}
    risk: NONE
"""


@dataclass
class Engine:
    name: str
    connect: Callable[[], Any]  # an autocommit DB-API connection to the bench database
    spec: instances.InstanceSpec
    where: tuple[str, str]
    fill: str  # fills t_orig with the rows
    fresh: list[str]  # statements making t a fresh copy of t_orig

    def run(self, *statements: str) -> None:
        with self.connect() as conn, conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)

    def settle(self, timeout: float = 120.0) -> None:
        """Wait until the server has written out what earlier runs left dirty in memory, so
        that a timed run does not pay for the one before it (a 1,000,000-row load leaves
        most of MariaDB's 128 MB buffer pool dirty here, flushed at about 300 pages a
        second): PostgreSQL's CHECKPOINT; InnoDB's page cleaner asked to keep no dirty
        page meanwhile, until it has none."""
        if self.name == "PostgreSQL":
            self.run("CHECKPOINT")
            return
        with self.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT @@GLOBAL.innodb_max_dirty_pages_pct")
            (kept,) = cur.fetchone()
            cur.execute("SET GLOBAL innodb_max_dirty_pages_pct = 0")
            try:
                ends = time.monotonic() + timeout
                while time.monotonic() < ends:
                    cur.execute("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")
                    if int(cur.fetchone()[1]) == 0:
                        break
                    time.sleep(0.2)
            finally:
                cur.execute(f"SET GLOBAL innodb_max_dirty_pages_pct = {float(kept)}")


@contextmanager
def mariadb(rows: int) -> Iterator[Engine]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = pymysql.connect(host="127.0.0.1", user="root", password="", autocommit=True)
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        engine = Engine(
            "MariaDB",
            lambda: pymysql.connect(
                host="127.0.0.1", user="root", password="", database=name, autocommit=True
            ),
            instances.InstanceSpec(
                instance_type="mariadb", host="127.0.0.1", port=3306, database_user="root"
            ),
            ("def", name),
            "INSERT INTO t_orig SELECT seq, seq % 100, CONCAT('name-', seq), seq / 7, "
            f"'2026-01-01 00:00:00' + INTERVAL seq SECOND FROM seq_1_to_{rows}",
            [
                "DROP TABLE IF EXISTS t",
                "CREATE TABLE t LIKE t_orig",
                "INSERT INTO t SELECT * FROM t_orig",
            ],
        )
        engine.run(
            "CREATE TABLE t_orig (id INT PRIMARY KEY, n INT, name VARCHAR(64), "
            "amount DECIMAL(12,2), created DATETIME) ENGINE=InnoDB",
            engine.fill,
            *engine.fresh,
        )
        yield engine
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
        admin.close()


@contextmanager
def postgresql(rows: int) -> Iterator[Engine]:
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin_dsn = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    try:
        engine = Engine(
            "PostgreSQL",
            lambda: psycopg.connect(dsn, autocommit=True),
            instances.InstanceSpec(
                instance_type="postgresql",
                host="127.0.0.1",
                port=5432,
                sid=name,
                database_user="postgres",
            ),
            (name, "public"),
            "INSERT INTO t_orig SELECT g, g % 100, 'name-' || g, g / 7.0, "
            f"'2026-01-01'::timestamp + g * interval '1 second' FROM generate_series(1, {rows}) g",
            [
                "DROP TABLE IF EXISTS t",
                "CREATE TABLE t (LIKE t_orig INCLUDING ALL)",
                "INSERT INTO t SELECT * FROM t_orig",
                "VACUUM ANALYZE t",
            ],
        )
        engine.run(
            "CREATE TABLE t_orig (id INT PRIMARY KEY, n INT, name VARCHAR(64), "
            "amount NUMERIC(12,2), created TIMESTAMP)",
            engine.fill,
            *engine.fresh,
        )
        yield engine
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Site:
    """A metadata store with one tenant, its administrator, the engine's instance registered
    and a rule set that needs no approval; tickets are filed, prechecked, submitted and run
    in this process. ``store_url``: the store (default: SQLite in ``workdir``), whose master
    key is ``workdir``'s; ``admin`` holds the administrator's access key."""

    def __init__(
        self, engine: Engine, workdir: Path, *, store_url: str | None = None, **means: Any
    ) -> None:
        self.store = Store(store_url or f"sqlite:///{workdir / 'meta.db'}")
        self.store.migrate()
        self.box = box = SecretBox(load_master_key(None, workdir))
        self.policy = policy = TargetPolicy("127.0.0.1")
        self.files = workdir / "files"
        self.runner = Runner(
            self.store,
            executors(Means(box, policy, FileStore(self.files), **means)),
            threads=0,
        )
        with self.store.session() as s:
            self.admin = boot = identity.bootstrap_admin(s, box)
            self.tid = boot.tenant.tid
            self.caller = identity.caller_for(s, self.tid, None)
            inst = instances.register_instance(s, box, policy, self.tid, engine.spec, actor=None)
            self.instance_id = inst.instance_id
            (db,) = [
                d
                for d in queries.list_databases(s, self.tid, inst.instance_id, size=1000).items
                if (d.catalog_name, d.schema_name) == engine.where
            ]
            self.db_id = db.db_id
            rule_sets.load(s, self.tid, "free", FREE)
            rule_sets.assign(s, self.tid, inst.instance_id, "free")

    def database(self, where: tuple[str, str]) -> int:
        """The id of the instance's database at ``where`` (catalog, schema)."""
        with self.store.session() as s:
            (db,) = [
                d
                for d in queries.list_databases(s, self.tid, self.instance_id, size=1000).items
                if (d.catalog_name, d.schema_name) == where
            ]
            return db.db_id

    def sync(self) -> None:
        """The site's database read into its catalog again (after tables were made)."""
        with self.store.session() as s:
            sync.sync_database(s, self.box, self.policy, self.tid, self.db_id)

    def ddl_online(self, mode: int) -> None:
        """The instance's DdlOnline setting, as ModifyInstance sets it."""
        with self.store.session() as s:
            instances.update_instance(
                s,
                self.box,
                self.policy,
                self.tid,
                self.instance_id,
                instances.InstanceSpec(ddl_online=mode),
                actor=None,
            )

    def backups(self) -> list[str]:
        """The backup tables this site's tickets left on the target."""
        with self.store.session() as s:
            found = s.scalars(select(SqlJobDetail.backup).where(SqlJobDetail.backup.is_not(None)))
            return [b["table"] for b in found if b]

    def drain(self) -> None:
        while self.runner.run_once():
            pass

    def file(self, sql: str, rows: int | None, kind: str = "DC_COMMON") -> int:
        """A ticket of ``kind``; ``rows``: its EstimateAffectRows (DC_CHUNK states none)."""
        params: dict[str, Any] = {"SqlType": "TEXT", "ExecSQL": sql}
        if rows is not None:
            params["EstimateAffectRows"] = rows
        return self.create(kind, params)

    def create(self, kind: str, params: dict[str, Any]) -> int:
        """A ticket of ``kind`` on the site's database with ``params``; its id."""
        params = {"DbItemList": [{"DbId": self.db_id}], **params}
        with self.store.session() as s:
            return tickets.create_order(s, self.caller, kind, params, comment="benchmark").order_id

    def cleanup_run(self, order_id: int) -> float:
        """Approve cleanup ticket ``order_id``, fire its schedule as if a day had passed and
        run that run: its seconds, from the run's creation to its end."""
        with self.store.session() as s:
            flow.submit(s, self.caller, order_id)
            job = cleanup.schedule_job(s, order_id)
            assert job is not None
            job_id = job.job_id
        later = utcnow() + timedelta(days=1)
        began = time.perf_counter()
        cleanup.Schedule(lambda: later)(Work(job_id, order_id, "cron", 1, self.store), {})
        self.drain()
        took = time.perf_counter() - began
        with self.store.session() as s:
            (run,), _ = cleanup.history(s, self.caller, order_id, 1, 1)
        if run.status != "SUCCESS":
            raise SystemExit(f"cleanup ticket {order_id}: run ended {run.status}")
        return took

    def prechecked(self, order_id: int) -> None:
        self.drain()
        with self.store.session() as s:
            short = precheck.shortfall(s, s.get_one(Order, order_id))
        if short is not None:
            raise SystemExit(f"ticket {order_id}: {short}")

    def execute(self, order_id: int, *, backup: bool) -> float:
        """Seconds from ExecuteDataCorrect to the ticket's success."""
        with self.store.session() as s:
            flow.submit(s, self.caller, order_id)
        began = time.perf_counter()
        with self.store.session() as s:
            execution.execute(s, self.caller, order_id, execution.ExecutionPlan(backup=backup))
        self.drain()
        took = time.perf_counter() - began
        with self.store.session() as s:
            status = s.get_one(Order, order_id).status_code
        if status != "success":
            raise SystemExit(f"ticket {order_id} ended {status}")
        return took

    def export(self, sql: str, rows: int, file_type: str = "CSV") -> tuple[float, float, Path]:
        """``sql`` exported through an approved DATA_EXPORT ticket: the seconds from
        ExecuteDataExport to the ticket's success, the seconds from the ticket's creation to
        its success (its precheck, which counts the rows, included), and the zip it wrote."""
        created = time.perf_counter()
        params = {
            "DbId": self.db_id,
            "ExeSQL": sql,
            "Classify": "bench",
            "AffectRows": rows,
            "IgnoreAffectRows": False,
        }
        with self.store.session() as s:
            order_id = tickets.create_order(
                s, self.caller, "DATA_EXPORT", params, comment="benchmark"
            ).order_id
        self.prechecked(order_id)
        with self.store.session() as s:
            flow.submit(s, self.caller, order_id)
        began = time.perf_counter()
        with self.store.session() as s:
            exports.execute(s, self.caller, order_id, exports.checked_plan(file_type=file_type))
        self.drain()
        ended = time.perf_counter()
        with self.store.session() as s:
            order = s.get_one(Order, order_id)
            job, found = exports.latest(s, order)
            if found is None:
                raise SystemExit(f"export ticket {order_id} failed: {exports.failure(job)}")
            return ended - began, ended - created, self.files / found.path

    def import_csv(self, path: Path, table: str) -> Imported:
        """The CSV file at ``path`` (with a header) imported into ``table`` through an
        approved DC_BIG_FILE ticket: its seconds (see Imported)."""
        limits = files.UploadLimits(max_bytes=1 << 34, timeout_seconds=60)
        began = time.perf_counter()
        with self.store.session() as s, path.open("rb") as fh:
            blocks = iter(lambda: fh.read(1 << 20), b"")
            key = files.save_attachment(
                s, FileStore(self.files), self.caller, path.name, "big-file", blocks, limits
            ).attachment_key
        uploaded = time.perf_counter()
        order_id = self.create(
            "DC_BIG_FILE",
            {
                "AttachmentName": key,
                "FileType": "CSV",
                "TableName": table,
                "CsvFirstRowIsColumnDef": True,
                "ImportMode": "FAST_MODE",
            },
        )
        self.prechecked(order_id)
        execution = self.execute(order_id, backup=False)
        return Imported(uploaded - began, time.perf_counter() - uploaded, execution)


@dataclass(frozen=True)
class Imported:
    """An import's seconds: the upload (the file copied into the store), the ticket end to
    end (from CreateDataImportOrder: the precheck reading the whole file, submission and
    execution) and the execution alone (from ExecuteDataCorrect to success)."""

    upload: float
    ticket: float
    execution: float
