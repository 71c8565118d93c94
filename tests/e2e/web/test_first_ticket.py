"""The issue's "done when", as a new user does it: the README's serve command on a fresh data
directory; the printed console address and passwords; in the browser, a data change filed
through the form against the demo target, submitted once its precheck passes, approved by
the demo's DBA, executed by the administrator and watched to its end; the demo database
changed as the ticket said. Nothing but the printed output and the pages guides it."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import ROOT, _child_env, free_port, stop_server, wait_until_listening
from tests.e2e.web.conftest import printed_tables

pytestmark = [pytest.mark.e2e]


def _sign_in(page: Page, console: str, name: str, password: str) -> None:
    page.goto(console)
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Waiting for me")).to_be_visible()


def _sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Username")).to_be_visible()


def test_a_new_user_files_a_ticket_has_it_approved_and_watches_it_run(page: Page) -> None:
    with tempfile.TemporaryDirectory(prefix="opendms-first-ticket-") as tmp:
        port = free_port()
        env = _child_env({"OPENDMS_DATA_DIR": str(Path(tmp) / "data"), "OPENDMS_PORT": str(port)})
        log = Path(tmp) / "serve.log"
        with log.open("wb") as out:  # the README's serve command
            server = subprocess.Popen(
                ["python3", "dev.py", "serve"], cwd=ROOT, env=env, stdout=out, stderr=out
            )
        try:
            wait_until_listening(server, port, log)
            admin, dba = printed_tables(log.read_text(errors="replace"))[:2]
            console = admin["Console"]
            assert console == f"http://127.0.0.1:{port}/console/"

            _sign_in(page, console, admin["Username"], admin["Password"])
            page.get_by_role("link", name="New ticket").first.click()
            page.get_by_role("link", name="Data change").click()
            # The demo target is the one database there is: the form has chosen it.
            expect(page.get_by_label("Database")).to_have_value("1")
            page.get_by_label("SQL", exact=True).fill(
                "UPDATE orders SET status = 'paid' WHERE id = 7"
            )
            page.get_by_label("Estimated affected rows").fill("1")
            page.get_by_label("Reason").fill("order 7 was paid by bank transfer")
            page.get_by_role("button", name="Create").click()
            expect(page).to_have_url(re.compile(r"/console/orders/\d+"))
            ticket = page.url.split("?")[0]
            # The precheck runs by itself; its end reloads the page with the next step.
            page.get_by_role("button", name="Submit for approval").click()
            expect(page.get_by_text(re.compile(r"demo-dba"))).not_to_have_count(0)
            _sign_out(page)

            _sign_in(page, console, dba["Username"], dba["Password"])
            waiting = page.get_by_role("region", name=re.compile("Waiting for me"))
            waiting.get_by_role("link", name=re.compile(r"#\d+")).first.click()
            expect(page).to_have_url(re.compile(re.escape(ticket) + r"$"))
            page.get_by_role("button", name="Approve").click()
            expect(page.get_by_role("button", name="Approve")).to_have_count(0)
            _sign_out(page)

            _sign_in(page, console, admin["Username"], admin["Password"])
            page.goto(ticket)
            page.get_by_role("button", name="Execute").click()
            # The progress fragment polls until the work ends, then the page shows the end.
            expect(page.locator(".status").first).to_have_text("Done", timeout=60_000)
        finally:
            stop_server(server)
        demo = Path(tmp) / "data" / "targets" / "demo-target.db"
        with sqlite3.connect(demo) as db:
            assert db.execute("SELECT status FROM orders WHERE id = 7").fetchone() == ("paid",)
