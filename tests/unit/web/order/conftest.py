"""The console in process: the app on the approval world's store (tests/approval_world.py),
signed in as any of its people through a session made in the store, as the sign-in form
makes one. Background jobs run when a test says so (``world.run_jobs``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from opendms.app import create_app
from opendms.config import Settings
from opendms.identity import sessions
from opendms.store.models import utcnow
from opendms.web.site import SESSION_COOKIE
from tests.approval_world import World
from tests.conftest import BASE_URL, LOOPBACK, MASTER_KEY

ONCE = re.compile(r'name="once" value="([^"]+)"')


@dataclass
class Person:
    """One person's browser: their session cookie and CSRF token."""

    client: TestClient
    token: str
    csrf: str

    def get(self, path: str, **headers: str) -> httpx.Response:
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, self.token)
        return self.client.get(f"/console{path}", headers=headers, follow_redirects=False)

    def post(self, path: str, data: dict[str, Any]) -> httpx.Response:
        self.client.cookies.clear()
        self.client.cookies.set(SESSION_COOKIE, self.token)
        return self.client.post(
            f"/console{path}",
            data={"csrf_token": self.csrf, **data},
            follow_redirects=False,
        )

    def act(self, order_id: int, act: str, **fields: str) -> httpx.Response:
        """Send the act's form as the page has it, with a fresh one-time token."""
        page = self.get(f"/orders/{order_id}")
        assert page.status_code == 200, page.text
        form = re.search(rf'action="/console/orders/{order_id}/{act}".*?</form>', page.text, re.S)
        assert form, f"no {act} form on the page"
        once = ONCE.search(form.group(0))
        assert once
        return self.post(f"/orders/{order_id}/{act}", {"once": once.group(1), **fields})


@dataclass
class Console:
    world: World
    client: TestClient

    def as_(self, name: str) -> Person:
        user = self.world.users[name]
        with self.world.store.session() as s:
            sessions.set_password(s, user.uid, "a long enough password")
            signed = sessions.sign_in(
                s,
                user.uid,
                "a long enough password",
                client_host="testclient",
                user_agent="tests",
                now=utcnow(),
            )
        return Person(self.client, signed.token, signed.csrf_token)


@pytest.fixture
def console(world: World, tmp_path: Path) -> Iterator[Console]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'meta.db'}",
        secret_key=MASTER_KEY,
        target_hosts=LOOPBACK,
        job_threads=0,
        upload_threads=0,
    )
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        yield Console(world, client)
