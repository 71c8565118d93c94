"""The administration pages' tests share these: a browser-like client of the in-process app,
signed in to the console through its form, that sends forms as the pages build them (the
session's CSRF token and a fresh one-time token), and the approval world's people signed in."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.testclient import TestClient

from opendms.identity import sessions
from tests.approval_world import World
from tests.conftest import Api

PASSWORD = "correct horse battery staple"
# The session cookie is Secure: the client speaks HTTPS to the app, as a browser must.
BASE = "https://testserver"


@dataclass
class Console:
    client: TestClient
    csrf: str

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.client.get("/console" + path, params=params)

    def post(self, path: str, data: dict[str, Any], *, once: str | None = None) -> httpx.Response:
        """A form as a page sends it: the CSRF token, a one-time token (``once`` to send one
        again, as a double click would), and ``data`` (lists repeat a field)."""
        form = {"csrf_token": self.csrf, "once": once or secrets.token_urlsafe(16), **data}
        return self.client.post("/console" + path, data=form)


def sign_in(api: Api, name: str, password: str = PASSWORD) -> Console:
    client = TestClient(api.app, base_url=BASE, follow_redirects=False)
    client.get("/console/sign-in")
    answer = client.post(
        "/console/sign-in",
        data={"csrf_token": client.cookies["odms_sign_in"], "username": name, "password": password},
    )
    assert answer.status_code == 303, answer.text
    home = client.get("/console/admin")
    found = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
    assert found, home.text
    return Console(client, found.group(1))


def world_in(api: Api) -> World:
    """The approval world (admin, dba, alice, owen, olga, carol) in the app's store."""
    return World.build(api.store, api.box, api.sqlite_targets)


def signed_in(api: Api, world: World, name: str) -> Console:
    """``name`` of the world, given the console password ``PASSWORD`` and signed in (by Uid:
    the bootstrap administrator is an "admin" too)."""
    uid = world.users[name].uid
    with api.store.session() as s:
        sessions.set_password(s, uid, PASSWORD)
    return sign_in(api, uid)


def field_error(page: httpx.Response, name: str) -> str:
    """The message shown beside the field ``name``, or ''."""
    found = re.search(
        rf'<p class="field-error" id="{re.escape(name)}-error"[^>]*>([^<]*)</p>', page.text
    )
    return found.group(1) if found else ""
