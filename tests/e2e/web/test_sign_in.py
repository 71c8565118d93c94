"""Signing in to the console, in a real browser: the printed password works, a wrong one is
refused, a cross-site POST changes nothing, signing out ends the session."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import BrowserContext, Page, expect

from tests.e2e.web.conftest import DemoServer, sign_in


def test_the_printed_password_signs_in_and_sign_out_ends_the_session(
    page: Page, demo: DemoServer
) -> None:
    page.goto(f"http://127.0.0.1:{demo.port}/")  # the server's address leads to the console
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    sign_in(page, demo, demo.admin)
    expect(page.get_by_role("heading", name="Waiting for me")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "odms_session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in"))
    # The old cookie opens nothing any more: the session ended in the store.
    gone = httpx.get(demo.url("/"), cookies={"odms_session": cookie["value"]})
    assert gone.status_code == 303 and "/console/sign-in" in gone.headers["location"]


def test_a_wrong_password_is_refused_in_the_same_words_as_a_wrong_name(
    page: Page, demo: DemoServer
) -> None:
    page.goto(demo.console)
    for name in (demo.dba.username, "nobody-at-all"):
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill("not the password at all")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
        expect(page.get_by_label("Username")).to_have_value(name)


def test_a_cross_site_post_is_refused_and_changes_nothing(
    context: BrowserContext, page: Page, demo: DemoServer
) -> None:
    sign_in(page, demo, demo.admin)
    # Another site's page posts the sign-out form at us: the browser sends the cookie it has
    # (a top-level POST is not SameSite-Lax-protected in every browser), never the CSRF token.
    evil = context.new_page()
    evil.set_content(
        f"""<form method="post" action="{demo.url("/sign-out")}">
        <input name="csrf_token" value="guessed"><button>go</button></form>"""
    )
    evil.get_by_role("button", name="go").click()
    expect(evil.get_by_role("alert")).to_contain_text("InvalidCsrfToken")
    page.reload()
    expect(page.get_by_role("heading", name="Waiting for me")).to_be_visible()
    # From our own origin with the session's cookie but a forged token: refused too.
    cookie = next(c for c in context.cookies() if c["name"] == "odms_session")
    forged = httpx.post(
        demo.url("/sign-out"),
        data={"csrf_token": "guessed"},
        cookies={"odms_session": cookie["value"]},
        headers={"origin": f"http://127.0.0.1:{demo.port}"},
    )
    assert forged.status_code == 403 and "InvalidCsrfToken" in forged.text
    page.reload()
    expect(page.get_by_role("heading", name="Waiting for me")).to_be_visible()
