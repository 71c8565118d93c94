"""``opendms order create|list|show|close`` and ``opendms upload``: tickets filed from
--param or --db/--sql, with an attachment, a cleanup's reclaim cadence."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli_support import assert_one_line_error, opendms
from tests.unit.cli.site import Site, as_json


def test_orders_and_uploads(tmp_path: Path) -> None:
    from opendms.targets.demo import ensure_demo_target

    opendms("init", "--json", data_dir=tmp_path)
    target = ensure_demo_target(tmp_path / "targets")
    opendms("instance", "register", "--type", "sqlite", "--host", str(target), data_dir=tmp_path)
    sql_file = tmp_path / "fix.sql"
    sql_file.write_text("UPDATE orders SET status = 'paid' WHERE id = 1;\n")
    up = json.loads(opendms("upload", str(sql_file), data_dir=tmp_path).stdout)
    assert up["AttachmentKey"].startswith("att-") and up["Size"] == sql_file.stat().st_size
    made = json.loads(
        opendms(
            "order",
            "create",
            "--type",
            "DC_COMMON",
            "--comment",
            "fix",
            "--db",
            "1",
            "--sql",
            "DELETE FROM orders WHERE id = 2",
            "--rows",
            "1",
            "--attachment",
            up["AttachmentKey"],
            data_dir=tmp_path,
        ).stdout
    )
    assert made["StatusCode"] == "new"
    param = json.dumps(
        {
            "DbItemList": [{"DbId": 1}],
            "SqlType": "ATTACHMENT",
            "AttachmentName": up["AttachmentKey"],
            "EstimateAffectRows": 1,
        }
    )
    second = json.loads(
        opendms(
            "order",
            "create",
            "--type",
            "DC_COMMON",
            "--comment",
            "file",
            "--param",
            param,
            data_dir=tmp_path,
        ).stdout
    )
    listed = opendms("order", "list", data_dir=tmp_path).stdout
    assert "2 tickets" in listed and "DC_COMMON" in listed
    shown = json.loads(opendms("order", "show", str(made["OrderId"]), data_dir=tmp_path).stdout)
    assert shown["Param"]["ExecSQL"] == "DELETE FROM orders WHERE id = 2"
    assert (
        "closed"
        in opendms(
            "order", "close", str(second["OrderId"]), "--reason", "dup", data_dir=tmp_path
        ).stdout
    )
    bad = opendms(
        "order",
        "create",
        "--type",
        "DC_COMMON",
        "--comment",
        "x",
        "--param",
        '{"SqlType": "TEXT"}',
        data_dir=tmp_path,
        ok=False,
    )
    assert_one_line_error(bad, "InvalidParameter")
    missing = opendms("order", "show", "99", data_dir=tmp_path, ok=False)
    assert_one_line_error(missing, "OrderNotFound")


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
