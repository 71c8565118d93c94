"""Historical-data cleanup tickets (DC_CRON_CLEAR) on real MariaDB and PostgreSQL databases,
end to end through the services: filed, prechecked, armed on approval, fired by their
schedule on a clock moved forward by hand, each run a chunked DELETE of exactly the rows
older than its fire time's cutoff (date/time columns, epoch seconds and milliseconds, with a
FilterSQL), runs one after another with their history, space reclaimed after a run, and a
large table walked in many small chunks."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from opendms.errors import DmsError
from opendms.execution import cleanup
from opendms.execution.chunked import Progress
from opendms.identity.secrets import SecretBox
from opendms.jobs.runner import Runner
from opendms.precheck import service as precheck
from opendms.runtime import executors
from opendms.store.db import Store
from opendms.store.models import CronRun, Job, PrecheckStatement, SqlJob, SqlJobDetail, utcnow
from opendms.targets.pace import Pace
from opendms.tickets import cron
from tests.approval_world import World
from tests.clock import Clock
from tests.integration.server_db import ServerDb

pytestmark = pytest.mark.integration

DAILY = "0 0 2 * * ?"  # 02:00 every day (UTC)
ROW = 24 * 3600 // 10  # test 1's rows: one every 0.1 day


def fires(n: int) -> list[datetime]:
    """The next ``n`` fire times of DAILY from now (UTC, naive)."""
    at, found = utcnow(), []
    for _ in range(n):
        at = cron.next_run(DAILY, at)
        found.append(at)
    return found


def epoch(at: datetime, unit: str) -> int:
    seconds = int(at.replace(tzinfo=UTC).timestamp())
    return seconds * 1000 if unit == "MILLISECONDS" else seconds


def item(table: str, column: str, days: int, **extra: Any) -> dict[str, Any]:
    return {"TableName": table, "ColumnName": column, "RemainDays": days, **extra}


@dataclass
class Server(ServerDb):
    """A fresh database on one engine, an autocommit connection to it, and a World whose
    tickets need no approval, run by a runner on ``clock``."""

    clock: Clock

    # ------------------------------------------------------------ the database

    def ids(self, table: str, where: str = "1=1") -> list[int]:
        return [int(r[0]) for r in self.rows(f"SELECT id FROM {table} WHERE {where} ORDER BY id")]

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        marks = ", ".join(["%s"] * len(columns))
        with self.conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", list(rows)
            )

    def types(self, kind: str) -> str:
        """The engine's own column type for ``kind``."""
        return {
            ("mariadb", "datetime"): "DATETIME",
            ("mariadb", "timestamp"): "TIMESTAMP NULL",
            ("postgresql", "datetime"): "TIMESTAMP",
            ("postgresql", "timestamp"): "TIMESTAMPTZ",
        }[(self.engine, kind)]

    # ------------------------------------------------------------ the service

    def build_runner(self) -> None:
        w = self.world
        w.runner = Runner(
            w.store,
            {**executors(w.means), cleanup.SCHEDULE: cleanup.Schedule(self.clock)},
            threads=0,
            clock=self.clock,
        )

    def pace(self, pace: Pace) -> None:
        self.world.means = dataclasses.replace(self.world.means, pace=pace)
        self.build_runner()

    def file(self, items: list[dict[str, Any]], **param: Any) -> int:
        """A DC_CRON_CLEAR ticket on this database, prechecked (not yet submitted)."""
        return self.world.file(
            "",
            kind="DC_CRON_CLEAR",
            CronClearItemList=items,
            CronFormat=DAILY,
            **{"specifyDuration": False, **param},
        )

    def steps(self, order_id: int) -> dict[str, precheck.PrecheckStepView]:
        with self.world.store.session() as s:
            return {v.step: v for v in precheck.steps(s, order_id)}

    def arm(self, items: list[dict[str, Any]], **param: Any) -> int:
        """File a ticket, see it pass its precheck and submit it: needing no approval, it
        is armed at once, its schedule asleep until the next fire time."""
        order_id = self.file(items, **param)
        steps = self.steps(order_id)
        assert all(v.status == "SUCCESS" for v in steps.values()), steps
        self.world.submit(order_id)
        assert self.world.status(order_id) == "processing"
        with self.world.store.session() as s:
            armed = cleanup.schedule_job(s, order_id)
            assert armed is not None and armed.state == "queued"
            assert armed.run_after == fires(1)[0]
        return order_id

    def fire(self, at: datetime, order_id: int, seconds: float = 30.0) -> None:
        """Move the clock just past ``at`` and run jobs until the ticket's runs and
        reclaims are over (steps that wait are picked up again when due)."""
        self.clock.now = at + timedelta(seconds=5)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.world.runner.run_once():
                continue
            with self.world.store.session() as s:
                pending = s.scalar(
                    select(func.count())
                    .select_from(Job)
                    .where(
                        Job.order_id == order_id,
                        Job.kind.in_(("execute", cleanup.RECLAIM)),
                        Job.state.in_(("queued", "running")),
                    )
                )
            if not pending:
                return
            time.sleep(0.05)
        raise AssertionError(f"the jobs of ticket {order_id} did not finish in {seconds} s")

    def runs(self, order_id: int) -> list[CronRun]:
        with self.world.store.session() as s:
            found = list(
                s.scalars(
                    select(CronRun).where(CronRun.order_id == order_id).order_by(CronRun.fire_at)
                )
            )
            s.expunge_all()
            return found

    def history(self, order_id: int) -> tuple[list[cleanup.RunView], int]:
        with self.world.store.session() as s:
            views, total = cleanup.history(s, self.world.as_("alice"), order_id, 1, 20)
            s.expunge_all()
            return views, total

    def config(self, order_id: int) -> cleanup.Config:
        with self.world.store.session() as s:
            return cleanup.config(s, self.world.as_("alice"), order_id)

    def details(self, group: int) -> list[SqlJobDetail]:
        """The statements a run ran (one per item), in order."""
        with self.world.store.session() as s:
            found = list(
                s.scalars(
                    select(SqlJobDetail)
                    .join(SqlJob, SqlJob.sql_job_id == SqlJobDetail.sql_job_id)
                    .where(SqlJob.group_id == group)
                    .order_by(SqlJobDetail.number)
                )
            )
            s.expunge_all()
            return found

    def sql_jobs(self, order_id: int) -> list[SqlJob]:
        with self.world.store.session() as s:
            found = list(
                s.scalars(
                    select(SqlJob).where(SqlJob.order_id == order_id).order_by(SqlJob.sql_job_id)
                )
            )
            s.expunge_all()
            return found

    def run_once_at(self, at: datetime, order_id: int) -> cleanup.RunView:
        """Fire the ticket at ``at``; the run's view (its status and rows)."""
        before = len(self.runs(order_id))
        self.fire(at, order_id)
        runs = self.runs(order_id)
        assert len(runs) == before + 1 and runs[-1].fire_at == at, runs
        views, _ = self.history(order_id)
        latest = views[0]
        assert latest.run.fire_at == at
        logs = [(j.status, j.log) for j in self.sql_jobs(order_id)]
        assert latest.status == "SUCCESS", logs
        return latest


@contextmanager
def _server(engine: str, store: Store, box: SecretBox, tmp_path: Path) -> Iterator[Server]:
    with World.on_server(engine, store, box, tmp_path) as (world, name, conn):
        server = Server(engine, name, conn, world.free_of_approval("DC_CRON_CLEAR"), box, Clock())
        server.build_runner()
        yield server


@pytest.fixture(params=["mariadb", "postgresql"])
def server(
    request: pytest.FixtureRequest, store: Store, box: SecretBox, tmp_path: Path
) -> Iterator[Server]:
    with _server(request.param, store, box, tmp_path) as found:
        yield found


@pytest.fixture
def pg_server(store: Store, box: SecretBox, tmp_path: Path) -> Iterator[Server]:
    with _server("postgresql", store, box, tmp_path) as found:
        yield found


# ------------------------------------------------------------ 1. a date/time column


@pytest.mark.parametrize("kind", ["datetime", "timestamp"])
def test_a_run_deletes_exactly_the_rows_older_than_remain_days_before_its_fire_time(
    server: Server, kind: str
) -> None:
    (f1,) = fires(1)
    cut = f1 - timedelta(days=30)
    now = utcnow().replace(microsecond=0)
    server.sql(f"CREATE TABLE ev (id INT PRIMARY KEY, at {server.types(kind)}, note VARCHAR(20))")
    data: dict[int, datetime | None] = {i: now - timedelta(seconds=i * ROW) for i in range(600)}
    # at the cutoff itself (kept: older than it only), a second either side, and no time
    data |= {
        1001: cut,
        1002: cut - timedelta(seconds=1),
        1003: cut + timedelta(seconds=1),
        1004: None,
    }
    server.insert("ev", ("id", "at", "note"), [(i, at, f"n{i}") for i, at in data.items()])
    server.sync()
    gone = sorted(i for i, at in data.items() if at is not None and at < cut)
    assert 250 < len(gone) < 350 and 1002 in gone  # about half of sixty days is older

    order_id = server.arm([item("ev", "at", 30)])
    server.fire(f1 - timedelta(hours=1), order_id)  # before the fire time: nothing runs
    assert server.runs(order_id) == []
    assert len(server.ids("ev")) == len(data)

    run = server.run_once_at(f1, order_id)
    assert server.ids("ev") == sorted(set(data) - set(gone))
    assert run.rows == len(gone)
    (detail,) = server.details(run.run.job_id or 0)
    assert detail.affect_rows == len(gone) and detail.sql_type == "DELETE"
    assert f1 - timedelta(days=30) == cut
    # a wall-clock cutoff, or for a MariaDB TIMESTAMP the instant in the session's zone
    epoch = int(cut.replace(tzinfo=UTC).timestamp())
    assert f"{cut:%Y-%m-%d %H:%M:%S}" in detail.sql_text or (
        f"FROM_UNIXTIME({epoch})" in detail.sql_text
    )
    config = server.config(order_id)
    assert (config.status, config.call_times) == ("SUCCESS", 1)
    assert config.next_call is not None and config.next_call > f1
    assert server.world.status(order_id) == "processing"  # it stays on its schedule


# ------------------------------------------------------------ 2. epoch columns


def test_epoch_seconds_and_milliseconds_columns_are_cut_at_the_same_instant(
    server: Server,
) -> None:
    (f1,) = fires(1)
    cut = f1 - timedelta(days=7)
    server.sql(
        "CREATE TABLE es (id INT PRIMARY KEY, at_s BIGINT NOT NULL)",
        "CREATE TABLE ems (id INT PRIMARY KEY, at_ms BIGINT NOT NULL)",
    )
    # every 3 hours from 14 days before the cutoff to 14 days after
    times = [cut + timedelta(hours=3 * k) for k in range(-112, 113)]
    secs = {i: epoch(at, "SECONDS") for i, at in enumerate(times, start=1)}
    secs |= {901: epoch(cut, "SECONDS"), 902: epoch(cut, "SECONDS") - 1}
    ms = {i: epoch(at, "MILLISECONDS") + i % 1000 for i, at in enumerate(times, start=1)}
    ms |= {
        901: epoch(cut, "MILLISECONDS"),
        902: epoch(cut, "MILLISECONDS") - 1,
        903: epoch(cut, "MILLISECONDS") + 1,
    }
    server.insert("es", ("id", "at_s"), secs.items())
    server.insert("ems", ("id", "at_ms"), ms.items())
    server.sync()
    cut_s, cut_ms = epoch(cut, "SECONDS"), epoch(cut, "MILLISECONDS")
    gone_s = {i for i, v in secs.items() if v < cut_s}
    gone_ms = {i for i, v in ms.items() if v < cut_ms}
    assert 902 in gone_s and 901 not in gone_s and 902 in gone_ms and 903 not in gone_ms
    assert len(gone_s) == 112 + 1  # the 112 rows before the cutoff, and 902

    order_id = server.arm(
        [
            item("es", "at_s", 7, TimeUnit="SECONDS"),
            item("ems", "at_ms", 7, TimeUnit="MILLISECONDS"),
        ]
    )
    run = server.run_once_at(f1, order_id)
    assert server.ids("es") == sorted(set(secs) - gone_s)
    assert server.ids("ems") == sorted(set(ms) - gone_ms)
    first, second = server.details(run.run.job_id or 0)
    assert (first.affect_rows, second.affect_rows) == (len(gone_s), len(gone_ms))
    assert str(cut_s) in first.sql_text and str(cut_ms) in second.sql_text
    assert run.rows == len(gone_s) + len(gone_ms)


# ------------------------------------------------------------ 3. FilterSQL


def _status_table(server: Server, cut: datetime) -> dict[int, tuple[datetime, str, str | None]]:
    server.sql(
        "CREATE TABLE job (id INT PRIMARY KEY, at TIMESTAMP NULL, status VARCHAR(20),"
        " note VARCHAR(40))"
        if server.engine == "mariadb"
        else "CREATE TABLE job (id INT PRIMARY KEY, at TIMESTAMP, status VARCHAR(20),"
        " note VARCHAR(40))"
    )
    statuses = ["done", "open", "it's", "DONE", "done "]
    notes: list[str | None] = [None, "plain", "back\\slash", "50%_off", "x"]
    data = {
        i: (
            cut + timedelta(hours=i - 100),  # half before the cutoff, half after
            statuses[i % len(statuses)],
            notes[(i // len(statuses)) % len(notes)],
        )
        for i in range(200)
    }
    server.insert("job", ("id", "at", "status", "note"), [(i, *v) for i, v in data.items()])
    server.sync()
    return data


def _filters(engine: str) -> list[str]:
    backslash = "note = 'back\\\\slash'" if engine == "mariadb" else "note = 'back\\slash'"
    return [
        "status = 'done'",
        "status = 'it''s' OR note IS NULL",  # an OR stays inside the filter's parentheses
        f"{backslash} OR status IN ('open', 'DONE')",
        "note LIKE '50!%%' ESCAPE '!' OR (status <> 'done' AND id % 3 = 0)",
    ]


@pytest.mark.parametrize("which", range(4), ids=["eq", "quote-or-null", "backslash", "like"])
def test_filter_sql_limits_the_run_to_old_rows_it_also_matches(server: Server, which: int) -> None:
    (f1,) = fires(1)
    cut = f1 - timedelta(days=30)
    data = _status_table(server, cut)
    filter_sql = _filters(server.engine)[which]
    # what the filter matches, as the database itself reads it
    gone = server.ids("job", f"at < '{cut:%Y-%m-%d %H:%M:%S}' AND ({filter_sql})")
    if which == 0:  # and, for the plain one, as Python reads it (MariaDB's default
        # collation ignores case and trailing spaces)
        mariadb = server.engine == "mariadb"
        done = ["done", "DONE", "done "] if mariadb else ["done"]
        assert gone == sorted(i for i, (at, st, _) in data.items() if at < cut and st in done)
    assert 0 < len(gone) < 100
    wanted = {1: ("status", "it's"), 2: ("note", "back\\slash"), 3: ("note", "50%_off")}
    if which in wanted:  # the quoted, escaped value is read as the row holds it
        column, value = wanted[which]
        at = 1 if column == "status" else 2
        assert any(data[i][at] == value for i in gone), (filter_sql, gone)

    order_id = server.arm([item("job", "at", 30, FilterSQL=filter_sql)])
    run = server.run_once_at(f1, order_id)
    assert server.ids("job") == sorted(set(data) - set(gone))
    assert run.rows == len(gone)


@pytest.mark.parametrize(
    "filter_sql",
    [
        "1=1; DROP TABLE job",
        "status = 'done') OR (1=1",
        "id IN (SELECT id FROM job)",
        "status = 'done' AND load_file('/etc/passwd') IS NULL",
    ],
    ids=["second-statement", "unbalanced", "sub-query", "function"],
)
def test_a_filter_sql_that_is_not_one_condition_fails_the_precheck_and_changes_nothing(
    server: Server, filter_sql: str
) -> None:
    (f1,) = fires(1)
    data = _status_table(server, f1 - timedelta(days=30))
    order_id = server.file([item("job", "at", 30, FilterSQL=filter_sql)])
    steps = server.steps(order_id)
    assert steps["SQL_PARSE"].status == "FAIL", steps
    assert "FilterSQL" in steps["SQL_PARSE"].tip, steps["SQL_PARSE"].tip
    with pytest.raises(DmsError, match="precheck"):
        server.world.submit(order_id)
    assert server.world.status(order_id) == "new"
    with server.world.store.session() as s:
        assert cleanup.schedule_job(s, order_id) is None
    server.fire(f1, order_id)
    assert server.runs(order_id) == []
    assert server.ids("job") == sorted(data)  # the table is there, every row in it


def test_code_in_a_comment_of_filter_sql_never_runs(server: Server) -> None:
    """MySQL runs /*! … */; the precheck refuses it there. To PostgreSQL it is a comment,
    which the DELETE generated from the parse leaves out."""
    order_id = server.file([item("job", "at", 30, FilterSQL="status = 'done' /*!50000 OR 1=1 */")])
    steps = server.steps(order_id)
    if server.engine == "mariadb":
        assert steps["SQL_PARSE"].status == "FAIL", steps
        assert "executable comment" in steps["SQL_PARSE"].tip, steps["SQL_PARSE"].tip
        return
    assert steps["SQL_PARSE"].status == "SUCCESS", steps
    with server.world.store.session() as s:
        texts = s.scalars(
            select(PrecheckStatement.sql_text).where(PrecheckStatement.order_id == order_id)
        ).all()
    assert texts and all("1 = 1" not in t and "/*" not in t for t in texts), texts


# ------------------------------------------------------------ 4. runs one after another


def test_two_items_over_two_fire_times_and_the_history_of_both_runs(server: Server) -> None:
    f1, f2 = fires(2)
    assert f2 - f1 == timedelta(days=1)
    cut_a, cut_b = f1 - timedelta(days=30), f1 - timedelta(days=10)
    server.sql(
        f"CREATE TABLE a (id INT PRIMARY KEY, at {server.types('datetime')} NOT NULL)",
        "CREATE TABLE b (id BIGINT PRIMARY KEY, at BIGINT NOT NULL)",
    )
    # every 2 hours from 2 days before the first run's cutoff to 3 days after
    a = {i: cut_a + timedelta(hours=2 * (i - 24)) for i in range(61)}
    b = {10_000 + i: epoch(cut_b + timedelta(hours=2 * (i - 24)), "SECONDS") for i in range(61)}
    server.insert("a", ("id", "at"), a.items())
    server.insert("b", ("id", "at"), b.items())
    server.sync()
    order_id = server.arm(
        [item("a", "at", 30), item("b", "at", 10, TimeUnit="SECONDS", FilterSQL="id % 2 = 0")]
    )

    first = server.run_once_at(f1, order_id)
    a1 = {i for i, at in a.items() if at < cut_a}
    b1 = {i for i, at in b.items() if at < epoch(cut_b, "SECONDS") and i % 2 == 0}
    assert (len(a1), len(b1)) == (24, 12)
    assert server.ids("a") == sorted(set(a) - a1)
    assert server.ids("b") == sorted(set(b) - b1)

    # rows written between the runs: one already old at the first run, one young still
    server.insert("a", ("id", "at"), [(500, cut_a - timedelta(days=3)), (501, f1)])
    server.insert("b", ("id", "at"), [(20_000, epoch(cut_b - timedelta(days=3), "SECONDS"))])

    second = server.run_once_at(f2, order_id)
    next_a, next_b = cut_a + timedelta(days=1), epoch(cut_b + timedelta(days=1), "SECONDS")
    a2 = {i for i, at in a.items() if cut_a <= at < next_a} | {500}
    b2 = {i for i, at in b.items() if epoch(cut_b, "SECONDS") <= at < next_b and i % 2 == 0}
    b2 |= {20_000}
    assert (len(a2), len(b2)) == (13, 7)
    assert server.ids("a") == sorted((set(a) | {500, 501}) - a1 - a2)
    assert server.ids("b") == sorted((set(b) | {20_000}) - b1 - b2)

    views, total = server.history(order_id)
    assert total == 2
    assert [(v.run.fire_at, v.status, v.rows) for v in views] == [
        (f2, "SUCCESS", len(a2) + len(b2)),
        (f1, "SUCCESS", len(a1) + len(b1)),
    ]
    assert (first.rows, second.rows) == (36, 20)
    assert [d.affect_rows for d in server.details(views[0].run.job_id or 0)] == [13, 7]
    assert [d.affect_rows for d in server.details(views[1].run.job_id or 0)] == [24, 12]
    config = server.config(order_id)
    assert (config.status, config.call_times, config.reclaims) == ("SUCCESS", 2, 0)


# ------------------------------------------------------------ 5. space reclaimed


def _innodb_table_id(server: Server, table: str) -> int:
    (row,) = server.rows(
        "SELECT TABLE_ID FROM information_schema.INNODB_SYS_TABLES"
        f" WHERE NAME = '{server.name}/{table}'"
    )
    return int(row[0])


def _pg_vacuumed(server: Server, table: str) -> tuple[Any, Any]:
    (row,) = server.rows(
        "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables"
        f" WHERE relname = '{table}' AND schemaname = 'public'"
    )
    return row[0], row[1]


def test_space_is_reclaimed_after_a_run_when_asked_every_run(server: Server) -> None:
    (f1,) = fires(1)
    cut = f1 - timedelta(days=30)
    server.sql(
        f"CREATE TABLE big (id INT PRIMARY KEY, at {server.types('datetime')}, pad VARCHAR(200))"
        + (" ENGINE=InnoDB" if server.engine == "mariadb" else "")
    )
    data = {i: cut + timedelta(minutes=i - 1500) for i in range(2000)}
    server.insert("big", ("id", "at", "pad"), [(i, at, "p" * 200) for i, at in data.items()])
    server.sync()
    if server.engine == "mariadb":
        before = _innodb_table_id(server, "big")
    else:
        assert _pg_vacuumed(server, "big")[0] is None

    order_id = server.arm([item("big", "at", 30)], OptimizeTableAfterEveryClearTimes=1)
    run = server.run_once_at(f1, order_id)
    assert run.rows == 1500
    with server.world.store.session() as s:
        reclaims = [
            (j.state, j.checkpoint)
            for j in s.scalars(
                select(Job).where(Job.order_id == order_id, Job.kind == cleanup.RECLAIM)
            )
        ]
    assert [state for state, _ in reclaims] == ["succeeded"], reclaims
    (sql_job,) = server.sql_jobs(order_id)
    assert "space reclaimed in big" in sql_job.log, sql_job.log
    assert "failed" not in sql_job.log, sql_job.log
    assert server.config(order_id).reclaims == 1
    assert server.ids("big") == list(range(1500, 2000))  # still there, still readable

    if server.engine == "mariadb":  # InnoDB's OPTIMIZE TABLE rebuilds the table
        assert _innodb_table_id(server, "big") != before
    else:
        deadline = time.monotonic() + 5
        while _pg_vacuumed(server, "big")[0] is None and time.monotonic() < deadline:
            time.sleep(0.1)
        vacuumed, analyzed = _pg_vacuumed(server, "big")
        assert vacuumed is not None and analyzed is not None


# ------------------------------------------------------------ 6. many chunks

BIG = 50_000


def test_a_large_table_is_cleaned_in_many_small_chunks(server: Server) -> None:
    server.pace(Pace(first_chunk_rows=500, max_chunk_rows=500))
    (f1,) = fires(1)
    cut = f1 - timedelta(days=30)
    c = f"'{cut:%Y-%m-%d %H:%M:%S}'"
    # odd ids: a day and more before the cutoff; even ids: after it
    if server.engine == "mariadb":
        at = (
            f"IF(i % 2 = 1, TIMESTAMP {c} - INTERVAL 1 DAY - INTERVAL i SECOND,"
            f" TIMESTAMP {c} + INTERVAL i SECOND)"
        )
    else:
        at = (
            f"CASE WHEN i % 2 = 1 THEN TIMESTAMP {c} - INTERVAL '1 day' - i * INTERVAL '1 second'"
            f" ELSE TIMESTAMP {c} + i * INTERVAL '1 second' END"
        )
    server.sql(
        f"CREATE TABLE hist (id INT PRIMARY KEY, at {server.types('datetime')} NOT NULL,"
        " n INT NOT NULL DEFAULT 0)",
        f"INSERT INTO hist (id, at) SELECT i, {at} FROM ({server.series(BIG)}) s",
    )
    if server.engine == "postgresql":
        server.sql("ANALYZE hist")
    server.sync()
    order_id = server.arm([item("hist", "at", 30)])

    started = time.monotonic()
    run = server.run_once_at(f1, order_id)
    seconds = time.monotonic() - started
    assert server.ids("hist") == list(range(2, BIG + 1, 2))
    assert run.rows == BIG // 2
    (detail,) = server.details(run.run.job_id or 0)
    progress = Progress.load(detail.progress)
    assert detail.affect_rows == BIG // 2
    assert progress.state == "DONE" and progress.chunks >= BIG // 500, (progress, seconds)


# ------------------------------------------------------------ a time zone other than UTC


def test_a_timestamptz_column_is_cut_at_the_utc_cutoff_in_a_non_utc_database(
    pg_server: Server,
) -> None:
    """The cutoff is documented as UTC (sql/cleanup.py). A TIMESTAMPTZ column compared with
    a bare literal reads it in the session's TimeZone, which the database may set."""
    server = pg_server
    server.sql(f"ALTER DATABASE \"{server.name}\" SET timezone TO 'Asia/Shanghai'")  # UTC+8
    (f1,) = fires(1)
    cut = (f1 - timedelta(days=30)).replace(tzinfo=UTC)
    server.sql("CREATE TABLE ev (id INT PRIMARY KEY, at TIMESTAMPTZ NOT NULL)")
    data = {i: cut + timedelta(hours=i - 12) for i in range(24)}  # the cutoff ± 12 hours
    server.insert("ev", ("id", "at"), data.items())
    server.sync()
    gone = sorted(i for i, at in data.items() if at < cut)
    assert len(gone) == 12

    order_id = server.arm([item("ev", "at", 30)])
    run = server.run_once_at(f1, order_id)
    left = server.ids("ev")
    assert left == sorted(set(data) - set(gone)), (
        f"deleted {run.rows} rows, expected {len(gone)}: rows older than {cut} UTC; "
        f"the oldest kept is {data[left[0]] if left else None}"
    )
