"""Lock-free changes and cleanups from the command line: `instance throttle`, `order pause` /
`order restart`, `order create --optimize-every` and `order cleanup`."""

from __future__ import annotations

import json

from opendms.store.models import Instance, SqlJob
from tests.unit.test_cli_approvals import Site, as_json, result_is_one_line_error, site

__all__ = ["site"]


def test_an_instances_throttle_is_set_and_checked(site: Site) -> None:
    shown = site.run("instance", "throttle", str(site.instance_id), "--max-running", "8").stdout
    assert json.loads(shown) == {"max_running": 8}
    shown = site.run("instance", "throttle", str(site.instance_id), "--max-lag", "2.5").stdout
    assert json.loads(shown) == {"max_running": 8, "max_lag_seconds": 2.5}
    with site.store().session() as s:
        inst = s.get(Instance, site.instance_id)
        assert inst is not None and inst.throttle["max_lag_seconds"] == 2.5

    refused = site.run(
        "instance", "throttle", str(site.instance_id), "--max-running", "0", ok=False
    )
    assert result_is_one_line_error(refused, "InvalidParameter")
    itself = site.run(
        "instance", "throttle", str(site.instance_id), "--replica", str(site.instance_id), ok=False
    )
    assert result_is_one_line_error(itself, "InvalidParameter")
    unknown = site.run("instance", "throttle", str(site.instance_id), "--replica", "999", ok=False)
    assert result_is_one_line_error(unknown, "InstanceNotFound")


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


def test_a_cleanup_ticket_takes_its_reclaim_cadence_and_shows_its_schedule(site: Site) -> None:
    param = {
        "DbItemList": [{"DbId": site.db_id}],
        "CronClearItemList": [
            {"TableName": "orders", "ColumnName": "created_at", "RemainDays": 3650}
        ],
        "CronFormat": "0 0 3 * * ?",
        "specifyDuration": False,
    }
    made = as_json(
        site.as_(
            "carl",
            "order",
            "create",
            "--type",
            "DC_CRON_CLEAR",
            "--comment",
            "purge",
            "--param",
            json.dumps(param),
            "--optimize-every",
            "3",
        )
    )
    order_id = int(made["OrderId"])
    site.run("jobs", "run")
    shown = " ".join(site.as_("carl", "order", "cleanup", str(order_id)).stdout.split())
    assert "cron 0 0 3 * * ?: never ran, 0 runs" in shown
    assert "space reclaimed every 3 runs" in shown
    wrong = site.as_(
        "carl",
        "order",
        "create",
        "--type",
        "DC_COMMON",
        "--comment",
        "x",
        "--db",
        str(site.db_id),
        "--sql",
        "DELETE FROM orders WHERE id = 1",
        "--optimize-every",
        "3",
        ok=False,
    )
    assert "--optimize-every is for DC_CRON_CLEAR tickets" in wrong.stderr + wrong.stdout
