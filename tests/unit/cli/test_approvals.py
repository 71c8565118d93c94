"""``opendms order submit|approve|reject|withdraw|transfer|add-node|approvals``.

Commands run in this process (tests/cli_support.py); one check runs the real process."""

from __future__ import annotations

import re

from opendms.catalog import ownership
from tests.cli_support import assert_one_line_error, opendms_process, result_is_one_line_error
from tests.unit.cli.site import Site, cells, row_of


def test_dba_only_rules_submit_refuse_the_committer_and_approve(site: Site) -> None:
    site.dba_only()
    order_id = site.file()
    submitted = site.as_("carl", "order", "submit", str(order_id)).stdout
    assert f"Ticket {order_id}: workflow" in submitted
    assert "template DBA (risk HIGH), AUDITING" in submitted

    refused = site.as_("carl", "order", "approve", str(order_id), ok=False)
    assert result_is_one_line_error(refused, "SelfApprovalForbidden")
    assert result_is_one_line_error(
        site.as_("olly", "order", "approve", str(order_id), ok=False), "NotFound"
    )

    approved = site.as_("dora", "order", "approve", str(order_id), "--comment", "ok").stdout
    assert f"Ticket {order_id} is Approved (approval APPROVED)" in approved
    # a second click is answered, not an error, and changes nothing
    site.as_("dora", "order", "approve", str(order_id))

    shown = site.as_("carl", "order", "approvals", str(order_id)).stdout
    assert "template DBA, risk HIGH, APPROVED" in shown
    assert "No rule of rule set 'dba-only' matched: default risk HIGH." in shown
    node = row_of(shown, "1")
    assert "DBA" in node and "APPROVED" in node and str(site.users["dora"]) in node
    assert "ok" in node
    trail = [cells(ln) for ln in shown.split("Trail", 1)[1].splitlines() if "│" in ln]
    acts = [(row[1], row[2]) for row in trail]  # Act, By
    dora, carl = str(site.users["dora"]), str(site.users["carl"])
    assert acts == [("SUBMIT", carl), ("AGREE", dora), ("REPEAT", dora)]


def test_the_committers_refusal_is_one_line_from_the_real_process(site: Site) -> None:
    site.dba_only()
    order_id = site.file()
    site.as_("carl", "order", "submit", str(order_id))
    refused = opendms_process(
        "order",
        "approve",
        str(order_id),
        "--uid",
        site.uids["carl"],
        data_dir=site.data_dir,
        ok=False,
    )
    assert refused.returncode == 1
    assert_one_line_error(refused, "SelfApprovalForbidden")


def test_default_rules_with_owners_go_owner_then_dba(site: Site) -> None:
    st = site.store()
    try:
        with st.session() as s:  # no CLI sets owners yet
            ownership.set_owners(s, site.tid, "DATABASE", site.db_id, [site.users["olly"]])
    finally:
        st.dispose()
    order_id = site.file()
    assert "template Owner->DBA (risk HIGH)" in (
        site.as_("carl", "order", "submit", str(order_id)).stdout
    )
    shown = site.as_("carl", "order", "approvals", str(order_id)).stdout
    assert "Rule 'production change' of rule set 'default' sets risk HIGH." in shown
    owner, dba = row_of(shown, "1"), row_of(shown, "2")
    assert "Owner" in owner and "AUDITING" in owner and str(site.users["olly"]) in owner
    assert "DBA" in dba and "WAITING" in dba
    # the DBA is not the current approver yet
    assert result_is_one_line_error(
        site.as_("dora", "order", "approve", str(order_id), ok=False), "NotCurrentApprover"
    )
    assert "is toaudit (approval AUDITING)" in (
        site.as_("olly", "order", "approve", str(order_id)).stdout
    )
    assert "is Approved (approval APPROVED)" in (
        site.as_("dora", "order", "approve", str(order_id)).stdout
    )


def test_reject_transfer_withdraw_and_add_node(site: Site) -> None:
    site.dba_only()
    u = site.users

    # transfer, then the new approver rejects
    first = site.file()
    site.as_("carl", "order", "submit", str(first))
    assert result_is_one_line_error(
        site.as_("dora", "order", "transfer", str(first), "--to", "olly", ok=False),
        "--to takes comma-separated UserIds",
    )
    moved = site.as_("dora", "order", "transfer", str(first), "--to", str(u["olly"])).stdout
    assert f"Ticket {first} is toaudit (approval AUDITING)" in moved
    shown = site.as_("carl", "order", "approvals", str(first)).stdout
    node = row_of(shown, "1")
    assert "AUDITING" in node and str(u["olly"]) in node and str(u["dora"]) not in node
    assert f"from {u['dora']} to {u['olly']}" in shown
    assert result_is_one_line_error(
        site.as_("dora", "order", "approve", str(first), ok=False), "NotCurrentApprover"
    )
    rejected = site.as_("olly", "order", "reject", str(first), "--comment", "wrong id").stdout
    assert f"Ticket {first} is reject (approval REJECT)" in rejected
    assert "wrong id" in site.as_("carl", "order", "approvals", str(first)).stdout

    # only the committer withdraws; the ticket goes back to new
    second = site.file()
    site.as_("carl", "order", "submit", str(second))
    assert result_is_one_line_error(
        site.as_("dora", "order", "withdraw", str(second), ok=False), "PermissionDenied"
    )
    withdrawn = site.as_("carl", "order", "withdraw", str(second), "--comment", "oops").stdout
    assert f"Ticket {second} is new (approval CANCEL)" in withdrawn
    assert "template DBA" in site.as_("carl", "order", "submit", str(second)).stdout

    # a node inserted before the current one becomes current
    third = site.file()
    site.as_("carl", "order", "submit", str(third))
    made = site.run("workflow", "node", "Security", "--approvers", str(u["olly"])).stdout
    node_id = re.search(r"Node (\d+) \(Security\)", made)
    assert node_id is not None
    added = site.as_(
        "dora", "order", "add-node", str(third), "--node", node_id.group(1), "--before"
    ).stdout
    assert f"Ticket {third} is toaudit (approval AUDITING)" in added
    shown = site.as_("carl", "order", "approvals", str(third)).stdout
    security, dba = row_of(shown, "1"), row_of(shown, "2")
    assert "Security" in security and "AUDITING" in security and str(u["olly"]) in security
    assert "DBA" in dba and "WAITING" in dba
    assert "ADD_APPROVAL_NODE" in shown and "before 'DBA'" in shown
    assert result_is_one_line_error(  # only the current node's approvers add nodes ...
        site.as_("dora", "order", "add-node", str(third), "--node", node_id.group(1), ok=False),
        "NotCurrentApprover",
    )
    assert result_is_one_line_error(  # ... and only nodes that exist
        site.as_("olly", "order", "add-node", str(third), "--node", "999999", ok=False),
        "WorkflowNodeNotFound",
    )

    # a ticket that was never submitted has no approvals to show
    fourth = site.file()
    assert result_is_one_line_error(
        site.as_("carl", "order", "approvals", str(fourth), ok=False),
        "has not been submitted for approval",
    )
