"""The console's screenshots in docs/console/, taken from a fresh ``opendms serve --demo`` in
Debian's Chromium: ``.venv/bin/python -m tests.e2e.web.screenshots [walkthrough|schema-design]``
(all by default). Not a test: run it when the pages change, and commit the pictures the
README shows."""

from __future__ import annotations

import re
import sys

from playwright.sync_api import Page, expect, sync_playwright

from tests.e2e.conftest import ROOT
from tests.e2e.web.conftest import CHROMIUM, CHROMIUM_ARGS, DemoServer, Person, demo_server

OUT = ROOT / "docs" / "console"


def _shot(page: Page, name: str) -> None:
    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
    print(f"docs/console/{name}.png")


def _sign_in(page: Page, demo: DemoServer, who: Person) -> None:
    page.goto(demo.console)
    page.get_by_label("Username").fill(who.username)
    page.get_by_label("Password").fill(who.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Waiting for me")).to_be_visible()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()


def _file(page: Page, sql: str, rows: str, reason: str) -> str:
    page.goto(page.url.split("/console/")[0] + "/console/orders/new/data-change")
    page.get_by_label("SQL", exact=True).fill(sql)
    page.get_by_label("Estimated affected rows").fill(rows)
    page.get_by_label("Reason").fill(reason)
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/console/orders/\d+"))
    return page.url.split("?")[0]


def take(demo: DemoServer, page: Page) -> None:
    page.goto(demo.console)
    _shot(page, "sign-in")
    _sign_in(page, demo, demo.admin)
    page.goto(demo.url("/orders/new/data-change"))
    page.get_by_label("SQL", exact=True).fill(
        "UPDATE orders SET status = 'paid' WHERE id = 7;\n"
        "UPDATE orders SET status = 'paid' WHERE id = 8;"
    )
    page.get_by_label("Estimated affected rows").fill("2")
    page.get_by_label("Reason").fill("Orders 7 and 8 were paid by bank transfer")
    _shot(page, "new-ticket")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/console/orders/\d+"))
    first = page.url.split("?")[0]
    page.get_by_role("button", name="Submit for approval").click()
    second = _file(
        page,
        "DELETE FROM orders WHERE status = 'cancelled' AND customer_id = 3",
        "7",
        "Customer 3 asked us to forget their cancelled orders",
    )
    page.get_by_role("button", name="Submit for approval").click()
    _sign_out(page)

    _sign_in(page, demo, demo.dba)
    _shot(page, "home")
    page.goto(first)
    _shot(page, "ticket-waiting")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    _sign_out(page)

    _sign_in(page, demo, demo.admin)
    page.goto(first)
    page.get_by_label("Back up").check() if page.get_by_label("Back up").count() else None
    page.get_by_role("button", name="Execute").click()
    expect(page.locator(".status").first).to_have_text("Done", timeout=60_000)
    _shot(page, "ticket-done")
    page.goto(demo.url("/orders"))
    _shot(page, "tickets")
    page.goto(demo.url("/sql"))
    page.get_by_label("SQL").fill(
        "SELECT id, customer_id, status, amount_cents FROM orders ORDER BY id"
    )
    page.get_by_role("button", name="Run").click()
    expect(page.locator("table").first).to_be_visible()
    _shot(page, "sql-console")
    page.goto(demo.url("/catalog"))
    page.get_by_role("link", name="demo").first.click()
    _shot(page, "catalog")
    page.goto(demo.url("/admin"))
    _shot(page, "administration")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(second)
    _shot(page, "ticket-phone")


def take_schema_design(demo: DemoServer, page: Page) -> None:
    """A schema design on the demo target, given its design and compared: its stage shows
    what it lacks and offers to run it."""
    _sign_in(page, demo, demo.admin)
    page.goto(demo.url("/orders/new/schema-design"))
    page.get_by_label("Title").fill("A phone number for customers")
    page.get_by_label("Description").fill("Support calls customers back; they need a number.")
    page.get_by_label("Reason").fill("Customers asked to be called back")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/console/orders/\d+"))
    page.get_by_label("Design (DDL)").fill(
        "ALTER TABLE customers ADD COLUMN phone VARCHAR(32);\n"
        "CREATE INDEX idx_customers_phone ON customers (phone)"
    )
    page.get_by_role("button", name="Save the design").click()
    stage = page.locator("#design-stages tbody tr").first
    expect(stage.locator(".status")).to_have_text("Pending", timeout=60_000)
    page.goto(page.url.split("?")[0])  # without the notice
    _shot(page, "schema-design")
    _sign_out(page)


# The pictures by name, each from its own fresh server: ``… screenshots schema-design``
# takes only that one.
TAKES = {"walkthrough": take, "schema-design": take_schema_design}


def main(names: list[str]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name in names or list(TAKES):
        with demo_server() as demo, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(15_000)
            try:
                TAKES[name](demo, page)
            except Exception:
                page.screenshot(path="/tmp/failed.png", full_page=True)
                raise
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1:])
