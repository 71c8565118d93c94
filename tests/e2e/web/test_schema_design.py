"""A schema design carried through the console in a real browser, against ``opendms serve
--demo``: filed with the New ticket form on the demo SQLite target, given its design on its
page, compared by the server's runner while the stages poll, run on its base stage, which ends
Equal; the ticket may then be submitted. What the page says is checked against the API."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import DemoServer, sign_in
from tests.e2e.web.test_new_ticket import api

pytestmark = [pytest.mark.e2e]

CREATED = re.compile(r"/console/orders/(\d+)\?notice=")
DESIGN = (
    "ALTER TABLE customers ADD COLUMN phone VARCHAR(32);\n"
    "CREATE INDEX idx_customers_phone ON customers (phone)"
)


def test_a_design_is_given_compared_and_run_on_its_base(page: Page, demo: DemoServer) -> None:
    sign_in(page, demo, demo.admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New ticket").click()
    page.get_by_role("link", name="Schema design").click()
    page.get_by_label("Title").fill("A phone number for customers")
    expect(page.get_by_label("Base database")).to_have_value("1")  # the demo's only one
    page.get_by_label("Description").fill("Support calls customers back.")
    page.get_by_label("Reason").fill("Customers asked to be called back")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(CREATED)
    found = CREATED.search(page.url)
    assert found
    order_id = int(found.group(1))
    expect(page.locator("p.notice")).to_contain_text("Give it its design here")
    expect(page.locator("#design")).to_contain_text("No design yet.")

    page.get_by_label("Design (DDL)").fill(DESIGN)
    page.get_by_role("button", name="Save the design").click()
    expect(page.locator("p.notice")).to_contain_text("Design version 1 saved")
    base = page.locator("#design-stages tbody tr").first
    # the stages ask again by themselves until the comparison ends, then the page reloads
    expect(base.locator(".status")).to_have_text("Pending", timeout=60_000)
    expect(base).to_contain_text("ADD COLUMN")
    expect(page.locator("#design .sql").first).to_contain_text("idx_customers_phone")

    base.get_by_role("button", name="Run on this stage").click()
    expect(page.locator("p.notice")).to_contain_text("The design runs on database 1")
    base = page.locator("#design-stages tbody tr").first
    expect(base.locator(".status")).to_have_text("Equal", timeout=60_000)
    expect(base).to_contain_text("Nothing: it has the design.")
    expect(page.locator("#design-stages[hx-trigger]")).to_have_count(0)  # it stopped asking
    progress = page.locator("#progress")
    expect(progress).to_contain_text("Statements on live tables")
    expect(progress.locator(".ddl-progress tbody tr")).to_have_count(2)
    submit = page.locator(".ticket-acts").get_by_role("button", name="Submit for approval")
    expect(submit).to_be_visible()

    detail = api(demo, "GetSchemaDesignDetail", OrderId=order_id)["SchemaDesignDetail"]
    assert detail["Version"] == 1 and detail["Script"] == DESIGN
    assert [(s["Position"], s["DbId"], s["State"]) for s in detail["Stages"]] == [(0, 1, "EQUAL")]
