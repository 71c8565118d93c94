"""The SQL console page in a real browser, against ``opendms serve --demo``: pick the demo
database, run a query, see its rows and the time it took, page through them (with htmx, and
as full posts without JavaScript), and see a refused statement's reason."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Response, expect

from tests.e2e.web.conftest import DemoServer, sign_in

DEMO_DB = "main · demo (dev)"  # how the picker names the demo database
ALL_CUSTOMERS = "SELECT * FROM customers ORDER BY id"
TOOK = re.compile(r"in \d[\d,.]* (ms|s)")


@pytest.fixture
def problems(page: Page) -> Iterator[list[str]]:
    """What the browser complained of (a script error, a Content-Security-Policy refusal, a
    request the console answered with an error): nothing, at the end of the test. (Chromium
    asks for /favicon.ico, which the console does not serve.)"""
    seen: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen.append(message.text)

    def answered(response: Response) -> None:
        if response.status >= 400 and not response.url.endswith("/favicon.ico"):
            seen.append(f"{response.status} {response.url}")

    page.on("console", heard)
    page.on("response", answered)
    page.on("pageerror", lambda exc: seen.append(str(exc)))
    yield seen
    assert seen == []


def open_console(page: Page, demo: DemoServer) -> None:
    sign_in(page, demo, demo.admin)
    page.get_by_role("link", name="SQL console").click()
    expect(page.get_by_role("heading", name="SQL console")).to_be_visible()
    page.get_by_label("Database", exact=True).select_option(label=DEMO_DB)


def test_a_query_shows_its_rows_and_time_a_page_at_a_time(
    page: Page, demo: DemoServer, problems: list[str]
) -> None:
    open_console(page, demo)
    page.get_by_label("SQL", exact=True).fill(ALL_CUSTOMERS)
    page.get_by_role("button", name="Run").click()
    result = page.locator("#result-1")
    expect(page.locator(".run-facts")).to_contain_text(TOOK)
    expect(result).to_contain_text("200 rows · rows 1\N{EN DASH}50")
    for name in ("id", "name", "email", "created_at"):
        expect(result.get_by_role("columnheader", name=name, exact=True)).to_be_visible()
    expect(result.locator("tbody tr")).to_have_count(50)
    expect(result.get_by_role("cell", name="c1@example.com", exact=True)).to_be_visible()

    result.get_by_role("button", name="Next").click()
    expect(result).to_contain_text("rows 51\N{EN DASH}100")
    expect(result.get_by_role("cell", name="c51@example.com", exact=True)).to_be_visible()
    expect(result.get_by_role("cell", name="c1@example.com", exact=True)).to_have_count(0)
    expect(result.locator("tbody tr")).to_have_count(50)
    expect(page).to_have_url(re.compile(r"/console/sql$"))  # htmx swapped the section alone
    # the keyboard stays where it was: on Next, in the page that replaced the old one
    expect(result.get_by_role("button", name="Next")).to_be_focused()
    result.get_by_role("button", name="Last").click()
    expect(result).to_contain_text("rows 151\N{EN DASH}200")
    expect(result.get_by_role("button", name="Next")).to_have_count(0)
    # the SQL box keeps what was typed
    expect(page.get_by_label("SQL", exact=True)).to_have_value(
        "SELECT * FROM customers ORDER BY id"
    )


def test_ctrl_enter_runs_and_a_refused_statement_says_why(
    page: Page, demo: DemoServer, problems: list[str]
) -> None:
    open_console(page, demo)
    box = page.get_by_label("SQL", exact=True)
    box.fill("SELECT count(*) AS n FROM orders;\nATTACH DATABASE 'elsewhere.db' AS other")
    box.press("Control+Enter")
    second = page.locator("#result-2")
    expect(second).to_contain_text("the console runs queries, data changes and table changes")
    expect(second).to_contain_text("Not done")
    # one refused statement and none runs: the first says so instead of counting
    expect(page.locator("#result-1")).to_contain_text("statement 2 was refused")
    expect(page.locator("#result-1").get_by_role("table")).to_have_count(0)
    expect(page.get_by_role("status")).to_contain_text("2 not done")

    # the form can run again at once (its one-time token was renewed with the answer)
    box.fill("SELECT NULL AS missing, 'NULL' AS word")
    box.press("Control+Enter")
    first = page.locator("#result-1")
    expect(first).to_contain_text("1 row")
    expect(first.locator("em.null")).to_have_text("NULL")  # SQL NULL, marked as such
    expect(first.locator("tbody td").nth(2)).to_have_text("NULL")  # the text 'NULL', plain
    expect(first.locator("tbody td").nth(2).locator("em")).to_have_count(0)
    expect(page.locator("#result-2")).to_have_count(0)


def test_an_error_answer_shows_where_the_results_go(page: Page, demo: DemoServer) -> None:
    open_console(page, demo)
    # the page's CSRF token goes stale (as after signing in again in another tab)
    page.evaluate(
        """document.body.setAttribute("hx-headers", '{"X-CSRF-Token": "stale"}');
        document.querySelector("#sql-run [name=csrf_token]").value = "stale";"""
    )
    page.get_by_label("SQL", exact=True).fill("SELECT 1")
    page.get_by_role("button", name="Run").click()
    expect(page.locator("#sql-results").get_by_role("alert")).to_contain_text("InvalidCsrfToken")
    expect(page.get_by_role("button", name="Run")).to_be_enabled()


def test_without_javascript_running_and_paging_are_full_posts(
    browser: Browser, demo: DemoServer
) -> None:
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        open_console(page, demo)
        page.get_by_label("SQL", exact=True).fill("SELECT id, email FROM customers ORDER BY id")
        page.get_by_role("button", name="Run").click()
        result = page.locator("#result-1")
        expect(result).to_contain_text("200 rows · rows 1\N{EN DASH}50")
        expect(page.locator(".run-facts")).to_contain_text(TOOK)
        result.get_by_role("button", name="Next").click()
        expect(page).to_have_url(re.compile(r"/console/sql/page$"))
        expect(result).to_contain_text("rows 51\N{EN DASH}100")
        expect(result.get_by_role("cell", name="c51@example.com", exact=True)).to_be_visible()
        expect(page.get_by_label("Database", exact=True)).to_have_value(
            page.get_by_role("option", name=DEMO_DB).get_attribute("value") or ""
        )
        expect(page.get_by_label("SQL", exact=True)).to_have_value(
            "SELECT id, email FROM customers ORDER BY id"
        )
    finally:
        context.close()
