"""A signed-in console user for page tests: the in-process app with the SQLite demo target
registered as ``opendms serve --demo`` registers it, people of each role, and a TestClient
holding one person's session cookie and CSRF token (over https://, where the console's
Secure cookies travel)."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from html import unescape
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from opendms.catalog import instances, permissions
from opendms.identity import passwords, sessions
from opendms.identity import service as identity
from opendms.store.models import Database, utcnow
from opendms.targets.demo import ensure_demo_target
from opendms.web.site import SESSION_COOKIE
from tests.conftest import Api

PASSWORD = "a password long enough"
# argon2 as the product tunes it costs most of a second a hash; page tests sign people in
# again and again and test no hashing (tests/e2e/web/test_sign_in.py signs in for real).
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", CHEAP)


@dataclass
class Demo:
    api: Api
    instance_id: int
    db_id: int
    users: dict[str, int]  # nick name -> UserId
    uids: dict[str, str]  # nick name -> Uid

    def grant(self, nick: str, permission: str) -> None:
        """``permission`` on the demo database for ``nick``, for a month."""
        with self.api.store.session() as s:
            permissions.grant(
                s,
                self.api.tid,
                self.users[nick],
                permissions.GrantTarget("DATABASE", self.instance_id, self.db_id),
                permission,
                utcnow() + timedelta(days=30),
            )


def demo(api: Api) -> Demo:
    """The demo target (its DBA ``dba``), an administrator ``admin``, a plain ``user``, and
    ``reader``, whose role reads the catalog and calls nothing else."""
    path = ensure_demo_target(api.sqlite_targets)
    with api.store.session() as s:
        users, uids = {}, {}
        for nick, roles in (
            ("admin", "ADMIN"),
            ("dba", "DBA"),
            ("user", "USER"),
            ("reader", "STRUCT_READ_ONLY"),
        ):
            u = identity.register_user(
                s, None, api.tid, identity.new_uid(), nick_name=nick, roles=roles
            )
            sessions.set_password(s, u.uid, PASSWORD)
            users[nick], uids[nick] = u.user_id, u.uid
        inst = instances.ensure_registered(
            s,
            api.app.means.secrets,
            api.app.means.targets,
            api.tid,
            instances.InstanceSpec(
                alias="demo",
                instance_type="sqlite",
                host=str(path),
                env_type="dev",
                dba_user_id=users["dba"],
                safe_rule="default",
            ),
            actor=None,
        )
        db = s.query(Database).filter_by(instance_id=inst.instance_id).one()
        return Demo(api, inst.instance_id, db.db_id, users, uids)


@dataclass
class Browser:
    client: TestClient
    csrf: str

    def get(self, path: str, htmx: bool = False, **params: Any) -> httpx.Response:
        return self.client.get(
            f"/console{path}", params=params, headers={"hx-request": "true"} if htmx else {}
        )

    def post(self, path: str, data: dict[str, Any], htmx: bool = False) -> httpx.Response:
        headers = {"hx-request": "true", "x-csrf-token": self.csrf} if htmx else {}
        if not htmx:
            data = {"csrf_token": self.csrf, **data}
        return self.client.post(f"/console{path}", data=data, headers=headers)


def once() -> str:
    return secrets.token_urlsafe(16)


def browser(d: Demo, nick: str) -> Browser:
    """``nick`` signed in, as the sign-in form does it."""
    with d.api.store.session() as s:
        signed = sessions.sign_in(
            s, d.uids[nick], PASSWORD, client_host="testclient", user_agent="pytest", now=utcnow()
        )
    client = TestClient(d.api.app, base_url="https://testserver", follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, signed.token)
    return Browser(client, signed.csrf_token)


def text(html: str) -> str:
    """A page's words, tags dropped and white space folded: what a reader sees."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html))).strip()
