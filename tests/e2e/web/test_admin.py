"""Administration in a real browser against ``opendms serve --demo``: the administrator
registers a user, grants them a permission and makes an access key whose secret is shown
once (a reload does not show it again) and signs with the official SDK; the demo target's DBA
is refused the users page."""

from __future__ import annotations

import re

from alibabacloud_dms_enterprise20181101 import models as dms
from alibabacloud_dms_enterprise20181101.client import Client
from alibabacloud_tea_openapi.utils_models import Config
from playwright.sync_api import Page, expect

from tests.e2e.web.conftest import DemoServer, sign_in


def test_an_admin_registers_a_user_grants_a_permission_and_makes_a_key(
    page: Page, demo: DemoServer
) -> None:
    sign_in(page, demo, demo.admin)
    page.get_by_role("link", name="Administration").click()
    expect(page.get_by_role("heading", name="Administration")).to_be_visible()
    admin_nav = page.get_by_role("navigation", name="Administration")
    admin_nav.get_by_role("link", name="Users and roles").click()

    # Register: no Uid typed, so a new account; the roles are checkboxes
    page.get_by_label("Nick name").fill("dora")
    expect(page.get_by_role("checkbox", name="USER")).to_be_checked()
    page.get_by_role("checkbox", name="DBA", exact=True).check()
    page.get_by_role("button", name="Register").click()
    expect(page).to_have_url(re.compile(r"/console/admin/users/\d+"))
    expect(page.get_by_role("status")).to_contain_text("as a user of this tenant")
    expect(page.get_by_role("heading", name=re.compile("^dora"))).to_be_visible()
    expect(page.locator("dd", has_text="USER, DBA")).to_be_visible()

    # Grant QUERY on the demo database until the default expiry
    page.get_by_role("link", name="Permissions of this user").click()
    expect(page.get_by_label("User")).to_have_value(re.compile(r"\d+"))
    expect(page.get_by_text("No database permission")).to_be_visible()
    page.get_by_label("Database", exact=True).select_option(index=1)
    expect(page.get_by_role("checkbox", name="QUERY")).to_be_checked()
    page.get_by_role("button", name="Grant").click()
    expect(page.get_by_role("status")).to_have_text("Granted QUERY.")
    granted = page.get_by_role("row").filter(has_text="QUERY")
    expect(granted).to_have_count(1)
    expect(granted.get_by_role("button", name=re.compile("^Revoke QUERY"))).to_be_visible()

    # My access key: the secret once, on the answer that made it
    admin_nav.get_by_role("link", name="My access keys").click()
    page.get_by_label("What it is for").fill("browser test")
    page.get_by_role("button", name="Create a key").click()
    secret_shown = page.locator("#new-key-secret")
    expect(secret_shown).to_be_visible()
    key_id = page.locator("#new-key-id").inner_text()
    secret = secret_shown.inner_text()
    assert key_id.startswith("ODMS") and len(secret) == 30
    client = Client(
        Config(
            access_key_id=key_id,
            access_key_secret=secret,
            endpoint=f"127.0.0.1:{demo.port}",
            protocol="http",
        )
    )
    me = client.get_user(dms.GetUserRequest()).body
    assert me.success and me.user.uid == demo.admin.uid

    # A reload sends the form again: its one-time token is spent, so nothing is made and
    # the secret is not shown again
    page.reload()
    expect(page.get_by_role("status")).to_contain_text("Already sent")
    expect(page.locator("#new-key-secret")).to_have_count(0)
    assert secret not in page.content()
    expect(page.get_by_role("row").filter(has_text="browser test")).to_have_count(1)
    page.goto(demo.url("/admin/keys"))
    expect(page.get_by_role("cell", name=key_id, exact=True)).to_be_visible()
    assert secret not in page.content()


def test_the_demo_dba_is_refused_the_users_page(page: Page, demo: DemoServer) -> None:
    sign_in(page, demo, demo.dba)
    page.get_by_role("link", name="Administration").click()
    admin_nav = page.get_by_role("navigation", name="Administration")
    expect(admin_nav.get_by_role("link", name="My access keys")).to_be_visible()
    expect(admin_nav.get_by_role("link", name="Users and roles")).to_have_count(0)
    response = page.goto(demo.url("/admin/users"))
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("dms:UpdateUser")
    expect(page.get_by_role("button", name="Register")).to_have_count(0)
