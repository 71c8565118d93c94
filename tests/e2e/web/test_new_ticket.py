"""Filing tickets through the New ticket forms in a real browser against ``opendms serve
--demo``: a data change refused beside its SQL field, then filed once however often Create
is clicked, with and without JavaScript; an import whose CSV is uploaded ahead with a
progress bar that reaches 100%, and one posted with the form where no script runs. What was
filed is read back through the API with the administrator's printed access key."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import wait_for
from tests.e2e.web.conftest import DemoServer, printed_tables, sign_in
from tests.signer import Signer

CREATED = re.compile(r"/console/orders/(\d+)\?notice=")
SQL = "UPDATE orders SET status = 'paid' WHERE id = 7"


def api(demo: DemoServer, action: str, **params: Any) -> dict[str, Any]:
    """A signed call with the administrator's access key, as the server printed it."""
    admin = printed_tables(demo.stdout)[0]
    signer = Signer(admin["AccessKeyId"], admin["AccessKeySecret"], host=f"127.0.0.1:{demo.port}")
    prepared = signer.v3(action, {k: str(v) for k, v in params.items()})
    with httpx.Client(base_url=f"http://127.0.0.1:{demo.port}", trust_env=False) as http:
        resp = http.request(
            prepared.method, prepared.url, headers=prepared.headers, content=prepared.body
        )
    body = resp.json()
    assert body.get("Success") is True, body
    return dict(body)


def tickets_with(demo: DemoServer, comment: str) -> list[dict[str, Any]]:
    found = api(demo, "ListOrders", OrderResultType="AS_ADMIN", PageSize=100)
    return [o for o in found["Orders"]["Order"] if o["Comment"] == comment]


@pytest.fixture
def no_script(browser: Browser) -> Iterator[Page]:
    """A browser that runs no JavaScript: every form must work as plain HTML."""
    context = browser.new_context(
        java_script_enabled=False, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


def test_a_data_change_is_refused_beside_its_sql_then_filed_once(
    page: Page, demo: DemoServer
) -> None:
    sign_in(page, demo, demo.admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New ticket").click()
    expect(page.get_by_text("Run INSERT, UPDATE or DELETE statements")).to_be_visible()
    page.get_by_role("link", name="Data change").click()
    page.get_by_label("Database").select_option(label="main")
    page.get_by_label("Estimated affected rows").fill("1")
    page.get_by_label("Reason").fill("fix order 7 from the form")
    page.get_by_role("button", name="Create").click()

    # Refused by the API's own validation, told beside the SQL, and nothing else lost.
    expect(page.locator("#sql-error")).to_have_text("This is required.")
    expect(page.get_by_label("SQL", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Reason")).to_have_value("fix order 7 from the form")
    expect(page.get_by_label("Estimated affected rows")).to_have_value("1")
    expect(page.get_by_label("Database")).to_have_value(re.compile(r"^\d+$"))
    assert tickets_with(demo, "fix order 7 from the form") == []

    page.get_by_label("SQL", exact=True).fill(SQL)
    page.get_by_role("button", name="Create").dblclick()
    page.wait_for_url(CREATED)
    found = CREATED.search(page.url)
    assert found
    (ticket,) = tickets_with(demo, "fix order 7 from the form")
    assert (ticket["OrderId"], ticket["PluginType"]) == (int(found.group(1)), "DC_COMMON")


def test_without_javascript_a_double_click_still_files_one_ticket(
    no_script: Page, demo: DemoServer
) -> None:
    sign_in(no_script, demo, demo.admin)
    no_script.goto(demo.url("/orders/new/data-change"))
    no_script.get_by_label("Database").select_option(label="main")
    no_script.get_by_label("SQL", exact=True).fill(SQL)
    no_script.get_by_label("Estimated affected rows").fill("1")
    no_script.get_by_label("Reason").fill("clicked twice without a script")
    # Both clicks send the form; the second finds its one-time token used and files nothing.
    no_script.get_by_role("button", name="Create").dblclick()
    # The second submission aborts the first one's navigation, which wait_for_url reports as
    # an error (seen once): the page's address is watched instead, until it settles.
    expect(no_script).to_have_url(re.compile(r"/console/(orders/\d+)?\?notice="))
    assert len(tickets_with(demo, "clicked twice without a script")) == 1


def customers_csv(rows: int) -> bytes:
    lines = ["id,name,email,created_at"]
    lines += [
        f"{i},imported customer {i},imported{i}@example.com,2026-03-01 00:00:00"
        for i in range(100_000, 100_000 + rows)
    ]
    return ("\n".join(lines) + "\n").encode()


def prechecked(demo: DemoServer, order_id: int) -> str:
    def status() -> str | None:
        detail = api(demo, "GetDataCorrectOrderDetail", OrderId=order_id)
        code = str(detail["DataCorrectOrderDetail"]["Status"])
        return None if code in ("new", "precheck") else code

    return str(wait_for(f"ticket {order_id}'s precheck", status))


def test_an_import_uploads_its_csv_with_a_progress_bar(page: Page, demo: DemoServer) -> None:
    csv = customers_csv(40_000)  # a few MB: the upload reports progress on its way
    sign_in(page, demo, demo.admin)
    page.goto(demo.url("/orders/new/import"))
    page.get_by_label("Database").select_option(label="main")
    page.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "customers.csv", "mimeType": "text/csv", "buffer": csv}]
    )
    bar = page.get_by_role("progressbar", name="Upload")
    expect(bar).to_be_visible()
    expect(bar).to_have_attribute("value", "100")
    expect(page.locator("#file-status")).to_have_text(re.compile(r"^Uploaded: customers\.csv \("))
    expect(page.locator("input[name=attachment]")).to_have_value(re.compile(r"^att-"))
    page.get_by_label("Table").fill("customers")
    page.get_by_label("Reason").fill("import new customers")
    page.get_by_role("button", name="Create").click()
    page.wait_for_url(CREATED)
    (ticket,) = tickets_with(demo, "import new customers")
    assert ticket["PluginType"] == "DC_BIG_FILE"
    # The file the server stored is the one chosen: its precheck reads every row of it.
    assert prechecked(demo, int(ticket["OrderId"])) == "precheck_success"


def test_without_javascript_the_import_posts_its_file_with_the_form(
    no_script: Page, demo: DemoServer
) -> None:
    sign_in(no_script, demo, demo.admin)
    no_script.goto(demo.url("/orders/new/import"))
    expect(no_script.get_by_role("progressbar", name="Upload")).to_be_hidden()
    no_script.get_by_label("Database").select_option(label="main")
    no_script.get_by_label("File", exact=True).set_input_files(
        files=[{"name": "few.csv", "mimeType": "text/csv", "buffer": customers_csv(3)}]
    )
    no_script.get_by_label("Reason").fill("import without a script")
    no_script.get_by_role("button", name="Create").click()
    # No table: refused beside it, and the file already stored is kept for the next try.
    expect(no_script.locator("#table-error")).to_contain_text("TableName is required")
    expect(no_script.locator("#file-status")).to_have_text(re.compile(r"^Uploaded: few\.csv"))
    no_script.get_by_label("Table").fill("customers")
    no_script.get_by_role("button", name="Create").click()
    no_script.wait_for_url(CREATED)
    (ticket,) = tickets_with(demo, "import without a script")
    assert prechecked(demo, int(ticket["OrderId"])) == "precheck_success"
