"""The approval, rule set and webhook commands of the command line.

Commands run in this process (tests/cli_support.py); one check runs the real process."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from opendms.catalog import ownership, permissions, queries
from opendms.identity.secrets import SecretBox, load_master_key
from opendms.notify import webhooks
from opendms.rulebook import rules
from opendms.store.db import Store
from opendms.store.models import utcnow
from opendms.targets.demo import ensure_demo_target
from tests.cli_support import (
    assert_one_line_error,
    opendms,
    opendms_process,
    result_is_one_line_error,
)

UPDATE = "UPDATE orders SET status = 'paid' WHERE id = 7"

DBA_ONLY = """\
description: every ticket goes to the instance's DBA
templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}
"""

# line 5 holds the bad field
BAD_RISK = """\
templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}
rules:
  - name: too risky
    when: {env: [product]}
    risk: HUGE
"""

NO_DROPS = """\
templates: {LOW: DBA, MIDDLE: Owner, HIGH: Owner->DBA, HIGHEST: Owner->DBA->Admin}
rules:
  - name: no drops
    when: {statement_kinds: [DROP, TRUNCATE]}
    forbid: drop a table through a schema ticket
"""


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


@dataclass
class Site:
    """An initialised data directory: an administrator, a committer (carl), a DBA (dora),
    another user (olly) and the demo target in production with dora as its DBA."""

    data_dir: Path
    tid: int
    users: dict[str, int]  # name -> UserId
    uids: dict[str, str]  # name -> Uid
    instance_id: int
    db_id: int

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return opendms(*args, data_dir=self.data_dir, ok=ok)

    def as_(self, name: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(*args, "--uid", self.uids[name], ok=ok)

    def create(self, kind: str, sql: str, rows: int | None = 1, who: str = "carl") -> int:
        """``order create`` of a ``kind`` ticket on the demo database: its OrderId."""
        args = ["order", "create", "--type", kind, "--comment", "fix order 7"]
        args += ["--db", str(self.db_id), "--sql", sql]
        args += ["--rows", str(rows)] if rows is not None else []
        made = as_json(self.as_(who, *args))
        assert made["StatusCode"] == "new"
        return int(made["OrderId"])

    def file(self, sql: str = UPDATE, who: str = "carl") -> int:
        """A data change, prechecked."""
        order_id = self.create("DC_COMMON", sql, who=who)
        assert "1 job run" in self.run("jobs", "run").stdout  # the precheck
        return order_id

    def approved_export(self, sql: str, rows: int) -> str:
        """An export of ``sql`` by the administrator, prechecked, and approved by dora under
        a DBA-only rule set: its OrderId."""
        order_id = str(self.create("DATA_EXPORT", sql, rows=rows, who="admin"))
        self.run("jobs", "run")  # its precheck
        self.dba_only()
        self.run("order", "submit", order_id)
        self.as_("dora", "order", "approve", order_id)
        return order_id

    def write(self, name: str, content: str) -> Path:
        path = self.data_dir.parent / name
        path.write_text(content, encoding="utf-8")
        return path

    def store(self) -> Store:
        """The same metadata store the commands use, for what the CLI cannot do."""
        return Store(f"sqlite:///{self.data_dir / 'opendms.db'}")

    def dba_only(self) -> None:
        rule_file = str(self.write("dba.yaml", DBA_ONLY))
        loaded = self.run("rules", "load", rule_file, "--name", "dba-only").stdout
        assert "Rule set 'dba-only' version 1 is in force" in loaded
        assigned = self.run("rules", "assign", str(self.instance_id), "dba-only").stdout
        assert f"Instance {self.instance_id}" in assigned and "'dba-only'" in assigned


@pytest.fixture
def site(tmp_path: Path) -> Site:
    data_dir = tmp_path / "data"
    admin = as_json(opendms("init", "--json", data_dir=data_dir))
    uids = {"admin": admin["Uid"]}
    users: dict[str, int] = {}
    for name, uid, roles in (
        ("carl", "1001", "USER"),
        ("dora", "1002", "DBA"),
        ("olly", "1003", "USER"),
    ):
        made = as_json(
            opendms(
                "user", "create", "--uid", uid, "--nick", name, "--roles", roles, data_dir=data_dir
            )
        )
        users[name], uids[name] = made["UserId"], made["Uid"]
    target = ensure_demo_target(data_dir / "targets")
    inst = as_json(
        opendms(
            "instance",
            "register",
            "--type",
            "sqlite",
            "--host",
            str(target),
            "--alias",
            "demo",
            "--dba",
            str(users["dora"]),
            data_dir=data_dir,
        )
    )
    assert inst["Databases"] == 1
    st = Store(f"sqlite:///{data_dir / 'opendms.db'}")
    try:
        with st.session() as s:
            (db,) = queries.list_databases(s, admin["Tid"], inst["InstanceId"]).items
            db_id = db.db_id
            permissions.grant(  # carl may change the demo database
                s,
                admin["Tid"],
                users["carl"],
                permissions.Target("DATABASE", inst["InstanceId"], db_id),
                "CORRECT",
                utcnow() + timedelta(days=1),
            )
    finally:
        st.dispose()
    return Site(data_dir, admin["Tid"], users, uids, inst["InstanceId"], db_id)


def cells(line: str) -> list[str]:
    """The cells of one printed table line."""
    return [c.strip() for c in re.split(r"[│┃|]", line) if c.strip()]


def row_of(output: str, first_cell: str) -> str:
    """The line of a printed table whose first cell is ``first_cell``."""
    for line in output.splitlines():
        found = cells(line)
        if found and found[0] == first_cell:
            return line
    raise AssertionError(f"no row {first_cell!r} in:\n{output}")


# ------------------------------------------------------------------ approving from the CLI


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


# ------------------------------------------------------------------ rule sets


def test_rules_list_shows_every_review_rule_and_its_level_in_a_rule_set(site: Site) -> None:
    listed = site.run("rules", "list").stdout
    assert row_of(listed, "DML_WITHOUT_WHERE").split()[:3] == ["│", "DML_WITHOUT_WHERE", "│"]
    assert "ERROR" in row_of(listed, "DML_WITHOUT_WHERE")
    relaxed = DBA_ONLY + "review:\n  DML_WITHOUT_WHERE: WARNING\n"
    site.run("rules", "load", str(site.write("relaxed.yaml", relaxed)), "--name", "relaxed")
    row = row_of(site.run("rules", "list", "relaxed").stdout, "DML_WITHOUT_WHERE")
    assert row.index("ERROR") < row.index("WARNING")  # default, then the rule set's level


def test_rules_show_list_load_and_a_bad_file_changes_nothing(site: Site) -> None:
    assert site.run("rules", "show").stdout == rules.default_source()
    listed = site.run("rules", "sets").stdout
    default = row_of(listed, "default")
    assert "built-in" in default and f"{site.instance_id} demo" in default
    assert result_is_one_line_error(
        site.run("rules", "show", "nosuch", ok=False), "SecurityRuleSetNotFound"
    )

    site.dba_only()
    assert site.run("rules", "show", "dba-only").stdout == DBA_ONLY
    bad = site.run(
        "rules", "load", str(site.write("bad.yaml", BAD_RISK)), "--name", "dba-only", ok=False
    )
    assert result_is_one_line_error(bad, "InvalidSecurityRuleSet")
    assert "line 5: rules.0.risk" in bad.stderr
    unknown = site.run(
        "rules",
        "load",
        str(site.write("nobody.yaml", DBA_ONLY.replace("LOW: DBA", "LOW: Nobody"))),
        "--name",
        "dba-only",
        ok=False,
    )
    assert result_is_one_line_error(unknown, "no template named 'Nobody'")
    missing = site.run("rules", "load", str(site.data_dir / "nope.yaml"), "--name", "x", ok=False)
    assert result_is_one_line_error(missing, "cannot read")
    assert site.run("rules", "show", "dba-only").stdout == DBA_ONLY  # still version 1

    again = site.run(
        "rules",
        "load",
        str(site.write("dba2.yaml", DBA_ONLY + "self_approval: true\n")),
        "--name",
        "dba-only",
    ).stdout
    assert "'dba-only' version 2 is in force" in again
    listed = site.run("rules", "sets").stdout
    mine = row_of(listed, "dba-only")
    assert " 2 " in mine and f"{site.instance_id} demo" in mine
    assert "built-in" in row_of(listed, "default")
    assert result_is_one_line_error(
        site.run("rules", "assign", str(site.instance_id), "nosuch", ok=False),
        "SecurityRuleSetNotFound",
    )


def test_rules_test_with_factors_a_file_and_an_order(site: Site) -> None:
    def decide(*args: str) -> str:
        return site.run("rules", "test", *args).stdout

    # unknown affected rows are taken as the worst case: over any limit
    unknown = decide("default")
    assert "risk HIGHEST -> template Owner->DBA->Admin" in unknown
    assert "affected rows unknown" in unknown
    assert "risk HIGH -> template Owner->DBA\n" in decide("default", "--rows", "1")
    low = decide("default", "--env", "test", "--kinds", "delete")
    assert "risk LOW -> template DBA" in low
    assert "Rule 'test and development' of rule set 'default' sets risk LOW." in low
    big = decide("default", "--rows", "20000")
    assert "risk HIGHEST -> template Owner->DBA->Admin" in big
    assert "Rule 'large production change'" in big
    assert "risk MIDDLE -> template Owner->DBA\n" in decide("default", "--env", "uat")
    export = decide(
        "default", "--type", "DATA_EXPORT", "--kinds", "SELECT", "--rows", "1", "--export-rows", "1"
    )
    assert "risk HIGH -> template Owner->DBA\n" in export and "export rows 1" in export

    rule_file = site.write("no-drops.yaml", NO_DROPS)
    dropped = decide(str(rule_file), "--kinds", "DROP", "--tables", "shop.orders")
    assert "FORBIDDEN: no drops: drop a table through a schema ticket" in dropped
    assert "FORBIDDEN" not in decide(str(rule_file), "--kinds", "UPDATE")

    order_id = site.file()
    from_order = decide("default", "--order", str(order_id))
    assert "risk HIGH -> template Owner->DBA" in from_order
    # the rows its precheck counted, not the table's 5,000
    assert "type DC_COMMON; environment product; statements UPDATE; affected rows 1." in from_order
    site.dba_only()
    assert "risk HIGH -> template DBA" in decide("dba-only", "--order", str(order_id))
    assert result_is_one_line_error(
        site.run("rules", "test", "nosuch", ok=False), "SecurityRuleSetNotFound"
    )


# ------------------------------------------------------------------ webhook


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    got: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            got.append((dict(self.headers.items()), body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/events", got
    server.shutdown()
    server.server_close()


def test_webhook_set_ping_log_and_disable(
    site: Site, receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    url, got = receiver
    assert result_is_one_line_error(site.run("webhook", "ping", ok=False), "no enabled webhook")
    assert "no webhook" in site.run("webhook", "log").stdout
    assert result_is_one_line_error(site.run("webhook", "disable", ok=False), "has no webhook")
    assert result_is_one_line_error(
        site.run("webhook", "set", "ftp://example.com/x", ok=False), "InvalidParameter"
    )
    assert result_is_one_line_error(
        site.run("webhook", "set", url, "--secret", "short", ok=False), "at least 16"
    )

    chosen = as_json(site.run("webhook", "set", url, "--secret", "a" * 20))
    assert chosen == {"Url": url, "Secret": "a" * 20}
    made = as_json(site.run("webhook", "set", url))
    assert set(made) == {"Url", "Secret"} and made["Url"] == url
    secret = made["Secret"]
    assert len(secret) >= 32 and secret != "a" * 20
    for f in site.data_dir.iterdir():  # shown once, never on disk in clear
        if f.is_file():
            assert secret.encode() not in f.read_bytes()

    queued = site.run("webhook", "ping").stdout
    found = re.search(r"Delivery (\d+) queued", queued)
    assert found is not None
    delivery_id = found.group(1)
    pending = row_of(site.run("webhook", "log").stdout, delivery_id)
    assert "webhook.ping" in pending and "pending" in pending

    # what a server process would do: deliver with the data directory's master key
    st = site.store()
    try:
        box = SecretBox(load_master_key(None, site.data_dir))
        assert asyncio.run(webhooks.Deliverer(st, box).run_once()) == 1
    finally:
        st.dispose()
    ((headers, body),) = got
    assert headers["X-OpenDMS-Event"] == "webhook.ping"
    assert headers["X-OpenDMS-Delivery"] == delivery_id
    mac = hmac.new(
        secret.encode(), headers["X-OpenDMS-Timestamp"].encode() + b"." + body, hashlib.sha256
    )
    assert headers["X-OpenDMS-Signature"] == "sha256=" + mac.hexdigest()
    ping = json.loads(body)
    assert set(ping) == {"event", "delivery_id", "tenant_id", "occurred_at"}
    assert (ping["event"], ping["delivery_id"], ping["tenant_id"]) == (
        "webhook.ping",
        int(delivery_id),
        site.tid,
    )

    log = site.run("webhook", "log").stdout
    assert url in log and "(disabled)" not in log
    delivered = row_of(log, delivery_id)
    assert "delivered" in delivered and "200" in delivered

    # ticket events are queued too
    site.dba_only()
    order_id = site.file()
    site.as_("carl", "order", "submit", str(order_id))
    site.as_("dora", "order", "approve", str(order_id))
    log = site.run("webhook", "log").stdout
    assert "order.submitted" in log and "order.approved" in log
    newest = site.run("webhook", "log", "--limit", "1").stdout
    assert "order.approved" in newest and "order.submitted" not in newest

    assert "Webhook disabled" in site.run("webhook", "disable").stdout
    assert "(disabled)" in site.run("webhook", "log").stdout
    assert result_is_one_line_error(site.run("webhook", "ping", ok=False), "no enabled webhook")
