"""A data change from the command line, without a server: `order create`, `jobs run` (the
precheck), `order precheck`, approval, `order execute`, `jobs run` (the execution)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from opendms.targets.demo import ensure_demo_target
from tests.unit.test_cli_approvals import Site, result_is_one_line_error, row_of, site

__all__ = ["site"]  # the fixture, shared with the approval commands' tests


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
