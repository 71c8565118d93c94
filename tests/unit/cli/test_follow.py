"""Following a ticket's work from the command line: `order show` with its execution, the
`--follow` of `order execute` / `order show`, and the hint when no job runner runs. Nothing
here waits on a clock: a runner in a thread, or `jobs run` before, moves the work; the
assertions are on what was printed and the exit code."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager

import pytest

from opendms import cli
from opendms.cli import follow
from opendms.config import Settings
from opendms.jobs.runner import Runner
from opendms.runtime import Runtime
from opendms.targets.demo import ensure_demo_target
from tests.unit.cli.site import Site


@pytest.fixture(autouse=True)
def _no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever listens on this machine's 8080, these tests run with no server."""
    monkeypatch.setattr(follow, "server_answers", lambda settings: False)


def _approved(
    site: Site, sql: str = "UPDATE orders SET amount_cents = amount_cents + 1 WHERE id = 7"
) -> int:
    site.dba_only()
    order_id = site.file(sql)
    site.as_("carl", "order", "submit", str(order_id))
    site.as_("dora", "order", "approve", str(order_id))
    return order_id


def test_order_show_has_the_execution_and_its_backup(site: Site) -> None:
    order_id = _approved(site)
    before = json.loads(site.as_("carl", "order", "show", str(order_id)).stdout)
    assert "Execution" not in before
    started = site.as_("carl", "order", "execute", str(order_id), "--backup")
    assert "queued" in started.stdout
    assert f"note: {follow.NO_RUNNER}" in started.stderr  # nothing would run it
    assert "1 job run" in site.run("jobs", "run").stdout
    shown = json.loads(site.as_("carl", "order", "show", str(order_id)).stdout)
    execution = shown["Execution"]
    assert (execution["Kind"], execution["State"], execution["Status"]) == (
        "execute",
        "succeeded",
        "SUCCESS",
    )
    assert execution["Rows"] == 1
    (statement,) = execution["Statements"]
    assert (statement["Status"], statement["Rows"]) == ("SUCCESS", 1)
    (backup,) = execution["Backups"]
    assert backup["Rows"] == 1 and backup["Of"] == "orders"
    assert execution["RollbackAvailable"] is True


def test_show_follow_on_finished_work_prints_its_end_and_exits_0(site: Site) -> None:
    order_id = _approved(site)
    site.as_("carl", "order", "execute", str(order_id))
    site.run("jobs", "run")
    followed = site.as_("carl", "order", "show", str(order_id), "--follow")
    lines = followed.stdout.splitlines()
    assert any(ln.startswith("execute ") and ln.endswith(": SUCCESS") for ln in lines)
    assert "  statement 1 on DbId" in followed.stdout and "SUCCESS, 1 row" in followed.stdout
    assert lines[-1] == f"Ticket {order_id}: success, succeeded (1 row)"
    assert followed.stderr == ""


def test_a_failed_execution_is_followed_to_exit_1(site: Site) -> None:
    order_id = _approved(site)
    path = ensure_demo_target(site.data_dir / "targets")
    with closing(sqlite3.connect(path)) as db:  # the table goes after the precheck
        db.execute("ALTER TABLE orders RENAME TO orders_gone")
        db.commit()
    site.as_("carl", "order", "execute", str(order_id))
    site.run("jobs", "run")
    followed = site.as_("carl", "order", "show", str(order_id), "--follow", ok=False)
    assert followed.returncode == cli.EXIT_FAILED
    assert "FAIL" in followed.stdout
    assert followed.stderr.startswith("error: execute ") and " failed: " in followed.stderr
    shown = json.loads(site.as_("carl", "order", "show", str(order_id)).stdout)
    assert shown["Execution"]["Failure"]


def test_follow_without_an_execution_is_refused(site: Site) -> None:
    order_id = _approved(site)
    refused = site.as_("carl", "order", "show", str(order_id), "--follow", ok=False)
    assert refused.returncode == cli.EXIT_FAILED
    assert "has no execution or export to follow" in refused.stderr


@contextmanager
def _runner(site: Site) -> Iterator[Runner]:
    """A job runner in a thread, as `opendms serve` would run, until the test is done."""
    settings = Settings(data_dir=site.data_dir)
    store = site.store()
    runner = Runtime.from_settings(settings, store).job_runner(threads=1, uploads=True)
    runner.idle_seconds = 0.05
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
        store.dispose()


def test_execute_follow_shows_the_run_to_its_end(site: Site) -> None:
    order_id = _approved(site)
    with _runner(site):
        followed = site.as_("carl", "order", "execute", str(order_id), "--follow")
    lines = followed.stdout.splitlines()
    assert lines[0].startswith(f"Ticket {order_id}: execution ") and "queued" in lines[0]
    assert any(ln.endswith(": SUCCESS") for ln in lines)
    assert lines[-1] == f"Ticket {order_id}: success, succeeded (1 row)"


def test_a_queued_precheck_with_no_runner_says_what_would_run_it(site: Site) -> None:
    order_id = site.file()
    retried = site.as_("carl", "order", "precheck", str(order_id), "--retry")
    assert f"Ticket {order_id}: precheck" in retried.stdout
    assert retried.stderr == f"note: {follow.NO_RUNNER}\n"
    site.run("jobs", "run")
    done = site.as_("carl", "order", "precheck", str(order_id))
    assert done.stderr == ""


def test_a_failed_export_exits_1(site: Site) -> None:
    order_id = site.approved_export("SELECT id FROM customers WHERE id <= 3", 3)
    path = ensure_demo_target(site.data_dir / "targets")
    with closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE customers RENAME TO customers_gone")
        db.commit()
    site.run("order", "export", order_id)
    site.run("jobs", "run")
    exported = site.run("order", "exported", order_id, ok=False)
    assert exported.returncode == cli.EXIT_FAILED
    assert f"Ticket {order_id}: EXPORT_FAIL" in exported.stdout
    followed = site.run("order", "show", order_id, "--follow", ok=False)
    assert followed.returncode == cli.EXIT_FAILED
    assert followed.stderr.startswith("error: export ") and "customers" in followed.stderr


def test_beside_a_broker_the_hint_is_about_workers_and_their_heartbeats(world) -> None:  # type: ignore[no-untyped-def]
    from opendms.jobs.processes import beat
    from opendms.store.models import Job

    order_id = world.file()
    with world.store.session() as s:
        job = Job(order_id=order_id, kind="execute")
        s.add(job)
        s.flush()
        job_id = job.job_id
    settings = Settings(broker_url="redis://127.0.0.1:1/0")
    assert follow.runner_hint(settings) == follow.NO_WORKER
    with world.store.session() as s:
        assert follow.no_runner(s, settings, job_id) is True  # no worker has beaten
    beat(world.store, "w1", "worker", 0, 0)
    with world.store.session() as s:
        assert follow.no_runner(s, settings, job_id) is False
