"""The ticket list in a real browser, against ``opendms serve --demo``: a user sees their own
tickets and nobody else's, filters and pages without the page reloading (htmx swaps the
results and the address follows), an administrator sees everyone's, a date that is no date
is named beside its field, and the form works with JavaScript switched off."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.cli_support import opendms
from tests.e2e.web.conftest import DemoServer, Person, demo_server, sign_in

DEMO_DB = "1"  # the demo target's database, registered first


@dataclass(frozen=True)
class Tenant:
    demo: DemoServer
    pat: Person  # a plain user with twelve tickets of their own
    pats: list[int]  # newest first
    admins: int  # the administrator's one ticket


@pytest.fixture(scope="module")
def tenant() -> Iterator[Tenant]:
    with demo_server() as demo:
        d = demo.data_dir
        made = json.loads(opendms("user", "create", "--nick", "pat", data_dir=d).stdout)
        login = json.loads(
            opendms("user", "password", made["Uid"], "--generate", data_dir=d).stdout
        )
        pats = []
        for n in range(1, 13):
            out = opendms(
                "order", "create", "--type", "DC_COMMON", "--comment", f"pat fix {n}",
                "--db", DEMO_DB, "--rows", "1",
                "--sql", f"UPDATE orders SET status = 'paid' WHERE id = {n}",
                "--as", made["Uid"], data_dir=d,
            ).stdout  # fmt: skip
            pats.append(json.loads(out)["OrderId"])
        out = opendms(
            "order", "create", "--type", "DC_COMMON", "--comment", "the administrator's own",
            "--db", DEMO_DB, "--rows", "1",
            "--sql", "UPDATE orders SET status = 'paid' WHERE id = 99",
            "--as", demo.admin.uid, data_dir=d,
        ).stdout  # fmt: skip
        yield Tenant(
            demo,
            Person(made["Uid"], "pat", login["Password"]),
            sorted(pats, reverse=True),
            json.loads(out)["OrderId"],
        )


def rows(page: Page) -> list[int]:
    """The ticket numbers the list shows, in order."""
    texts = page.locator("#orders-results tbody tr td:first-child a").all_inner_texts()
    return [int(t.removeprefix("#")) for t in texts]


def test_a_user_sees_their_own_and_pages_and_filters_without_a_reload(
    page: Page, tenant: Tenant
) -> None:
    sign_in(page, tenant.demo, tenant.pat)
    page.get_by_role("link", name="Tickets", exact=True).click()
    expect(page.get_by_text("12 in all · page 1 of 1")).to_be_visible()
    assert rows(page) == tenant.pats
    expect(page.get_by_text("the administrator's own")).to_have_count(0)
    # nobody but an administrator is offered everyone's tickets
    expect(page.get_by_label("Tickets", exact=True).locator("option")).not_to_contain_text(
        ["Everyone's"]
    )
    page.evaluate("window.stillThisPage = true")  # gone if the page reloads

    page.get_by_label("Per page").select_option("10")
    expect(page).to_have_url(re.compile(r"/console/orders\?size=10$"))
    expect(page.get_by_text("12 in all · page 1 of 2")).to_be_visible()
    assert rows(page) == tenant.pats[:10]
    page.get_by_role("link", name="Next").click()
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.get_by_text("12 in all · page 2 of 2")).to_be_visible()
    assert rows(page) == tenant.pats[10:]

    page.get_by_label("Search").fill("pat fix 7")
    expect(page.get_by_text("1 in all · page 1 of 1")).to_be_visible()
    expect(page).to_have_url(re.compile(r"q=pat\+fix\+7"))
    assert rows(page) == [tenant.pats[12 - 7]]
    page.get_by_label("Search").fill("")
    page.get_by_label("Status").select_option(label="Waiting for approval")
    expect(page.get_by_text("No ticket matches these filters.")).to_be_visible()
    page.get_by_label("Status").select_option(label="Not finished")
    page.get_by_label("Database").select_option(DEMO_DB)
    expect(page).to_have_url(re.compile(r"db=1"))
    expect(page.get_by_text("12 in all · page 1 of 2")).to_be_visible()
    assert page.evaluate("window.stillThisPage") is True
    # the address holds the view: opened afresh it shows the same
    page.goto(page.url)
    expect(page.get_by_label("Status")).to_have_value("running")
    expect(page.get_by_label("Database")).to_have_value(DEMO_DB)
    expect(page.get_by_text("12 in all · page 1 of 2")).to_be_visible()


def test_an_administrator_sees_everyone_s_tickets(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant.demo, tenant.demo.admin)
    page.goto(tenant.demo.url("/orders"))
    assert rows(page) == [tenant.admins]  # their own, by default
    page.get_by_label("Tickets", exact=True).select_option(label="Everyone's")
    expect(page.get_by_text("13 in all · page 1 of 1")).to_be_visible()
    assert rows(page) == [tenant.admins, *tenant.pats]
    expect(page).to_have_url(re.compile(r"scope=AS_ADMIN"))


def test_a_value_that_makes_no_sense_is_named_beside_its_field(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant.demo, tenant.pat)
    page.goto(tenant.demo.url("/orders?since=yesterday&scope=AS_ADMIN"))
    expect(page.locator("#note-since")).to_contain_text("Write a date as YYYY-MM-DD")
    expect(page.locator("#note-scope")).to_contain_text("AS_ADMIN is for administrators")
    assert rows(page) == tenant.pats  # the list as if neither were given
    # the message goes when the value is put right, without a reload
    page.get_by_label("Created from").fill("2020-01-01")
    page.get_by_label("Created from").press("Enter")
    expect(page.locator("#note-since")).to_be_empty()
    assert rows(page) == tenant.pats


def test_the_home_page_leads_to_what_waits_for_me(page: Page, tenant: Tenant) -> None:
    sign_in(page, tenant.demo, tenant.demo.dba)
    page.get_by_role("link", name="All that waits for me").click()
    expect(page).to_have_url(re.compile(r"/console/orders\?scope=AS_HANDLER$"))
    expect(page.get_by_label("Tickets", exact=True)).to_have_value("AS_HANDLER")
    # nothing was submitted: nothing waits on the DBA yet
    expect(page.get_by_text("No ticket matches these filters.")).to_be_visible()


def test_the_list_works_without_javascript(browser: Browser, tenant: Tenant) -> None:
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, tenant.demo, tenant.pat)
        page.goto(tenant.demo.url("/orders"))
        page.get_by_label("Per page").select_option("10")
        page.get_by_label("Search").fill("pat fix 1")  # 1, 10, 11 and 12
        page.get_by_role("button", name="Filter").click()
        expect(page).to_have_url(re.compile(r"q=pat\+fix\+1"))
        expect(page.get_by_text("4 in all · page 1 of 1")).to_be_visible()
        assert rows(page) == [tenant.pats[0], tenant.pats[1], tenant.pats[2], tenant.pats[11]]
    finally:
        context.close()
