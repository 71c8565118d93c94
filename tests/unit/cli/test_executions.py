"""A data change from the command line, without a server: `order create`, `jobs run` (the
precheck), `order precheck`, approval, `order execute`, `jobs run` (the execution); and a
lock-free one paused and restarted."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from opendms.store.models import SqlJob
from opendms.targets.demo import ensure_demo_target
from tests.cli_support import result_is_one_line_error
from tests.unit.cli.site import Site, as_json, row_of


def amount(site: Site, order: int) -> int:
    path = ensure_demo_target(site.data_dir / "targets")  # the site's: only its path
    with closing(sqlite3.connect(path)) as db:
        return int(
            db.execute("SELECT amount_cents FROM orders WHERE id = ?", (order,)).fetchone()[0]
        )


def test_a_ticket_from_precheck_to_execution(site: Site) -> None:
    site.dba_only()
    before = amount(site, 7)
    order_id = site.file("UPDATE orders SET amount_cents = amount_cents + 1 WHERE id = 7")
    shown = site.as_("carl", "order", "precheck", str(order_id)).stdout
    assert f"Ticket {order_id}: precheck_success" in shown
    assert "1 row, as estimated." in row_of(shown, "ROW_CHECK")
    assert "COUNT" in shown and "PASS" in shown

    refused = site.as_("carl", "order", "execute", str(order_id), ok=False)
    assert result_is_one_line_error(refused, "InvalidOrderStatus")
    site.as_("carl", "order", "submit", str(order_id))
    site.as_("dora", "order", "approve", str(order_id))
    started = site.as_("carl", "order", "execute", str(order_id), "--backup").stdout
    assert f"Ticket {order_id}: execution" in started and "queued" in started
    assert "1 job run" in site.run("jobs", "run").stdout
    assert amount(site, 7) == before + 1
    assert '"StatusCode": "success"' in site.as_("carl", "order", "show", str(order_id)).stdout


def test_a_precheck_failure_is_shown_and_waived(site: Site) -> None:
    order_id = site.file("UPDATE orders SET status = 'paid' WHERE id < 3")  # 2 rows, not 1
    failed = site.as_("carl", "order", "precheck", str(order_id), ok=False)
    assert failed.returncode == 1  # a script can tell a failed precheck
    shown = failed.stdout
    assert f"Ticket {order_id}: precheck_fail" in shown
    assert "2 rows counted, where the ticket estimates 1" in shown.replace("\n", " ")
    assert failed.stderr.startswith("error: the precheck failed: ROW_CHECK failed: 2 rows")
    waived = site.as_(
        "carl", "order", "precheck", str(order_id), "--skip-row-check", "two is right"
    ).stdout
    assert f"Ticket {order_id}: precheck_success" in waived
    retried = site.as_("carl", "order", "precheck", str(order_id), "--retry").stdout
    assert f"Ticket {order_id}: precheck" in retried  # queued again, not yet run
    site.run("jobs", "run")
    again = site.as_("carl", "order", "precheck", str(order_id)).stdout
    assert f"Ticket {order_id}: precheck_success" in again  # the waiver holds


def _chunked_ticket(site: Site) -> int:
    made = as_json(
        site.as_(
            "carl",
            "order",
            "create",
            "--type",
            "DC_CHUNK",
            "--comment",
            "bump all",
            "--db",
            str(site.db_id),
            "--sql",
            "UPDATE orders SET amount_cents = amount_cents + 1 WHERE 1=1",
        )
    )
    order_id = int(made["OrderId"])
    site.run("jobs", "run")  # its precheck
    site.dba_only()
    site.as_("carl", "order", "submit", str(order_id))
    site.as_("dora", "order", "approve", str(order_id))
    return order_id


def test_an_execution_is_paused_and_restarted(site: Site) -> None:
    order_id = _chunked_ticket(site)
    site.as_("carl", "order", "execute", str(order_id))
    paused = site.as_("carl", "order", "pause", str(order_id)).stdout
    assert f"Ticket {order_id}: SQL jobs" in paused and "paused" in paused
    site.run("jobs", "run")  # the runner sees the pause and parks the job
    with site.store().session() as s:
        (job,) = s.query(SqlJob).filter(SqlJob.order_id == order_id).all()
        assert job.status == "PAUSE"
        job_id = job.sql_job_id
    again = site.as_("olly", "order", "pause", str(order_id), ok=False)
    assert result_is_one_line_error(again, "OrderNotFound")  # not hers to see
    restarted = site.as_("carl", "order", "restart", str(order_id), "--job", str(job_id)).stdout
    assert f"SQL jobs {job_id} restarted" in restarted
    site.run("jobs", "run")
    shown = as_json(site.as_("carl", "order", "show", str(order_id)))
    assert shown["StatusCode"] == "success"
    (statement,) = shown["Execution"]["Statements"]
    progress = statement["Progress"]  # a lock-free change keeps how far it got
    assert progress["State"] == "DONE" and progress["Rows"] == progress["Estimate"] > 0
    assert shown["Execution"]["EstimateRows"] == progress["Estimate"]


def test_execute_checks_its_times_as_execute_data_correct_does(site: Site) -> None:
    order_id = site.file()
    past = site.as_(
        "carl", "order", "execute", str(order_id), "--end", "2000-01-01 00:00:00", ok=False
    )
    assert result_is_one_line_error(past, "ActionDetail.endTime has already passed")
    bad = site.as_("carl", "order", "execute", str(order_id), "--start", "soon", ok=False)
    assert result_is_one_line_error(bad, "ActionDetail.startTime: 'soon' is not a time")
