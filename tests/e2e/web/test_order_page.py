"""A ticket's page in a real browser, against ``opendms serve --demo``: tickets filed with the
command line as the README's walkthrough files them; demo-dba approves with a double click
(the approval trail holds one AGREE), the administrator executes and the progress fragment
reaches its end by itself; a rejection's comment shows in the timeline; someone the ticket
is not for gets 404; and the page fits a phone's width."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.cli_support import opendms
from tests.e2e.conftest import OPENDMS, _child_env
from tests.e2e.web.conftest import DemoServer, Person, printed_tables, sign_in
from tests.signer import Signer

pytestmark = [pytest.mark.e2e]


def _ticket(demo: DemoServer, sql: str, *, submit: bool = True) -> int:
    """A data change on the demo target (DbId 1) filed by the administrator, prechecked and
    submitted, with the command line on the server's data directory."""
    made = opendms(
        "order",
        "create",
        "--type",
        "DC_COMMON",
        "--comment",
        "fix an order",
        "--db",
        "1",
        "--rows",
        "1",
        "--sql",
        sql,
        data_dir=demo.data_dir,
    )
    order_id = int(json.loads(made.stdout)["OrderId"])
    opendms("order", "precheck", str(order_id), "--wait", data_dir=demo.data_dir)
    if submit:
        opendms("order", "submit", str(order_id), data_dir=demo.data_dir)
    return order_id


def _api(demo: DemoServer, action: str, **params: object) -> dict:
    """An API call signed with the administrator's access key, as printed by serve."""
    admin = printed_tables(demo.stdout)[0]
    host = f"127.0.0.1:{demo.port}"
    signer = Signer(admin["AccessKeyId"], admin["AccessKeySecret"], host=host)
    prepared = signer.v3(action, {k: str(v) for k, v in params.items()})
    answer = httpx.request(
        prepared.method,
        f"http://{host}{prepared.url}",
        headers=prepared.headers,
        content=prepared.body,
        trust_env=False,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.fixture
def other(browser: Browser) -> Iterator[BrowserContext]:
    """A second person's browser, beside ``context``."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    yield context
    context.close()


def _open(page: Page, demo: DemoServer, who: Person, order_id: int) -> None:
    sign_in(page, demo, who)
    page.goto(demo.url(f"/orders/{order_id}"))
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{order_id}")


def test_approve_once_on_a_double_click_then_execute_and_watch_it_end(
    page: Page, other: BrowserContext, demo: DemoServer
) -> None:
    order_id = _ticket(demo, "UPDATE orders SET status = 'paid' WHERE id = 7")

    sign_in(page, demo, demo.dba)  # the home page lists what waits for them
    page.get_by_role("link", name=f"#{order_id}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"#{order_id}")
    expect(page.locator("#waits")).to_contain_text("Waiting for demo-dba to approve node")
    acts = page.locator(".ticket-acts")
    expect(acts.get_by_role("button", name="Execute")).to_have_count(0)  # not theirs
    acts.get_by_role("button", name="Approve", exact=True).dblclick()
    expect(page.get_by_role("status")).to_have_text("Approved.")
    expect(page.locator(".ticket-head .status")).to_have_text("Approved")
    expect(acts.get_by_role("button", name="Approve", exact=True)).to_have_count(0)

    wf = _api(demo, "GetOrderBaseInfo", OrderId=order_id)["OrderBaseInfo"]["WorkflowInstanceId"]
    trail = _api(demo, "ListApprovalEvents", WorkflowInstanceId=wf)["ApprovalEvents"]
    assert [e["Action"] for e in trail] == ["SUBMIT", "AGREE"]  # once: no REPEAT either
    expect(page.locator("ol.timeline.trail li")).to_have_count(2)

    admin = other.new_page()
    _open(admin, demo, demo.admin, order_id)
    expect(admin.locator("#waits")).to_contain_text("Waiting for admin (the committer) to execute")
    admin.get_by_label("Back up what it changes").check()
    admin.get_by_role("button", name="Execute").click()
    expect(admin.get_by_role("status")).to_have_text("Execution started.")
    progress = admin.locator("#progress")
    # the fragment asks again by itself until the work ends, then the page reloads once
    expect(progress.locator(".progress-state .status").first).to_have_text("Done", timeout=60_000)
    expect(progress).to_contain_text("1 of 1")
    expect(progress).to_contain_text("100%")
    expect(progress.locator("pre.log")).to_contain_text("succeeded: 1 rows")
    # the page's reload comes with the fragment's next answer: a busy machine may take a while
    expect(admin.locator(".ticket-head .status")).to_have_text("Done", timeout=60_000)
    expect(admin.get_by_role("link", name="Rollback script 1")).to_be_visible()
    expect(admin.locator("#progress[hx-trigger]")).to_have_count(0)  # it stopped asking
    assert _api(demo, "GetOrderBaseInfo", OrderId=order_id)["OrderBaseInfo"]["StatusCode"] == (
        "success"
    )


def test_a_rejection_shows_its_comment_in_the_timeline(page: Page, demo: DemoServer) -> None:
    order_id = _ticket(demo, "UPDATE orders SET status = 'paid' WHERE id = 8")
    _open(page, demo, demo.dba, order_id)
    page.get_by_text("Reject…").click()
    page.get_by_label("Why you reject it").fill("Order 8 is refunded: nothing to pay.")
    page.get_by_role("button", name="Reject", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Rejected.")
    expect(page.locator(".ticket-head .status")).to_have_text("Rejected")
    expect(page.locator("ol.timeline.nodes")).to_contain_text(
        "Order 8 is refunded: nothing to pay."
    )
    last = page.locator("ol.timeline.trail li").last
    expect(last).to_contain_text("demo-dba")
    expect(last).to_contain_text("rejected it")
    expect(last.locator("blockquote")).to_have_text("Order 8 is refunded: nothing to pay.")
    expect(page.locator(".ticket-acts")).to_have_count(0)  # nothing left to do


def test_someone_the_ticket_is_not_for_gets_404(page: Page, demo: DemoServer) -> None:
    order_id = _ticket(demo, "UPDATE orders SET status = 'paid' WHERE id = 9", submit=False)
    made = opendms("user", "create", "--nick", "eve", data_dir=demo.data_dir)
    uid = json.loads(made.stdout)["Uid"]
    password = "eve's rather long password"
    subprocess.run(  # the password on standard input, as an operator pipes it
        [OPENDMS, "user", "password", uid, "--data-dir", str(demo.data_dir)],
        input=password + "\n",
        text=True,
        env=_child_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )
    sign_in(page, demo, Person(uid, "eve", password))
    answer = page.goto(demo.url(f"/orders/{order_id}"))
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text(f"Ticket {order_id} does not exist.")
    for part in ("/progress", "/precheck"):
        assert page.request.get(demo.url(f"/orders/{order_id}{part}")).status == 404
    missing = page.goto(demo.url("/orders/999999"))
    assert missing is not None and missing.status == 404


def test_the_page_fits_a_phone(browser: Browser, demo: DemoServer) -> None:
    order_id = _ticket(demo, "UPDATE orders SET status = 'paid' WHERE id = 10")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = phone.new_page()
        _open(page, demo, demo.dba, order_id)
        expect(page.get_by_role("button", name="Approve", exact=True)).to_be_visible()
        expect(page.locator(".ticket-side")).to_be_visible()
        wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert wide <= 0, f"the page is {wide}px wider than the phone"
        assert re.search(r"UPDATE", page.locator("pre.sql").first.inner_text())
    finally:
        phone.close()
