"""Signing in, in a real browser, for what only a browser shows: the pages run under their
own Content-Security-Policy without a violation, ``next`` brings one back to the page asked
for and never elsewhere, and an API call at the server's address is never sent to the
console."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.e2e.web.conftest import DemoServer, sign_in


def test_the_pages_break_none_of_their_own_csp(page: Page, demo: DemoServer) -> None:
    complaints: list[str] = []

    def heard(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or message.type == "error":
            complaints.append(f"{message.text} {message.location}")

    page.on("console", heard)
    page.on("pageerror", lambda exc: complaints.append(str(exc)))
    page.on(
        "response",
        lambda r: complaints.append(f"{r.status} {r.url}") if r.status >= 400 else None,
    )
    page.goto(demo.console)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    sign_in(page, demo, demo.admin)
    expect(page.get_by_role("heading", name="Waiting for me")).to_be_visible()
    # htmx and the console's script loaded from the console's own origin, as the CSP allows.
    assert page.evaluate("typeof window.htmx") == "object"
    assert complaints == []


def test_next_brings_one_back_to_the_page_asked_for(page: Page, demo: DemoServer) -> None:
    page.goto(demo.url("/?from=a-link"))
    expect(page).to_have_url(re.compile(r"/console/sign-in\?next="))
    page.get_by_label("Username").fill(demo.dba.uid)  # the Uid signs in as the nick does
    page.get_by_label("Password").fill(demo.dba.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/console/\?from=a-link$"))
    expect(page.get_by_role("heading", name=f"Hello, {demo.dba.username}")).to_be_visible()


def test_next_never_leads_to_another_site(page: Page, demo: DemoServer) -> None:
    for elsewhere in ("https://example.com/", "//example.com/", "/\\example.com"):
        page.context.clear_cookies()
        page.goto(demo.url(f"/sign-in?next={quote(elsewhere, safe='')}"))
        page.get_by_label("Username").fill(demo.admin.username)
        page.get_by_label("Password").fill(demo.admin.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(f"http://127.0.0.1:{demo.port}/console/")


def test_an_api_call_at_the_servers_address_is_never_sent_to_the_console(
    demo: DemoServer,
) -> None:
    """An ACS3 call names its action in a header and may have no query; its client's
    default Accept may name text/html. It gets the API's answer (here: unsigned, refused)."""
    answer = httpx.get(
        f"http://127.0.0.1:{demo.port}/",
        headers={"accept": "text/html, */*; q=0.2", "x-acs-action": "GetUserActiveTenant"},
    )
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    browser = httpx.get(f"http://127.0.0.1:{demo.port}/", headers={"accept": "text/html"})
    assert browser.status_code == 303 and browser.headers["location"] == "/console/"
