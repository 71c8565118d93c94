"""The catalog in a real browser, against ``opendms serve --demo``: instance → database →
table → its columns and indexes; finding a table; reading a database's tables again."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import DemoServer, sign_in


def test_browse_from_the_instance_to_a_tables_columns(page: Page, demo: DemoServer) -> None:
    sign_in(page, demo, demo.admin)
    page.get_by_role("link", name="Catalog").click()
    instances = page.locator("#instances")
    expect(instances.get_by_role("cell", name="sqlite", exact=True)).to_be_visible()
    expect(instances.get_by_role("cell", name="demo-dba", exact=True)).to_be_visible()
    instances.get_by_role("link", name="demo", exact=True).click()

    expect(page.get_by_role("heading", name="demo")).to_be_visible()
    page.locator("#databases").get_by_role("link", name="main", exact=True).click()

    tables = page.locator("#tables")
    expect(tables.get_by_role("link")).to_have_text(["customers", "orders"])
    page.get_by_label("Find a table").fill("ord")
    expect(tables.get_by_role("link")).to_have_text(["orders"])
    page.get_by_label("Find a table").fill("cust")
    expect(tables.get_by_role("link")).to_have_text(["customers"])
    tables.get_by_role("link", name="customers").click()

    expect(page.get_by_role("heading", name="customers", exact=True)).to_be_visible()
    columns = page.get_by_role("table").first
    expect(columns.locator("tbody tr")).to_have_count(4)
    email = columns.get_by_role("row").filter(has_text="email")
    expect(email).to_contain_text("TEXT")
    expect(email).to_contain_text("NOT NULL")
    expect(columns.get_by_role("row").filter(has_text="created_at")).to_contain_text("TEXT")
    expect(columns.get_by_role("row").nth(1)).to_contain_text("Primary key")
    indexes = page.locator("section", has=page.get_by_role("heading", name="Indexes"))
    expect(indexes.get_by_role("row").filter(has_text="email")).to_contain_text("Unique")

    # back up the breadcrumb to the database, and read its tables again
    page.get_by_role("navigation", name="Breadcrumb").get_by_role("link", name="main").click()
    page.get_by_role("button", name="Sync tables").click()
    expect(page.get_by_role("status")).to_have_text("Read the database's tables again.")
    expect(page.locator("#tables").get_by_role("link")).to_have_text(["customers", "orders"])


def test_a_tables_query_link_opens_the_sql_console_ready_to_run(
    page: Page, demo: DemoServer
) -> None:
    sign_in(page, demo, demo.dba)
    page.get_by_role("link", name="Catalog").click()
    page.get_by_role("link", name="demo", exact=True).click()
    page.locator("#databases").get_by_role("link", name="main", exact=True).click()
    page.locator("#tables").get_by_role("link", name="orders").click()
    page.get_by_role("link", name="Query in the SQL console").click()
    expect(page.get_by_label("SQL", exact=True)).to_have_value("SELECT * FROM orders")
    page.get_by_role("button", name="Run").click()
    # the rule set's row cap: 1,000 of the 5,000 orders, and the page says so
    expect(page.locator("#result-1")).to_contain_text("1,000 rows · rows 1\N{EN DASH}50")
    expect(page.locator("#result-1")).to_contain_text("Truncated: the first 1000 rows are shown")
