"""The console in process: the app ``create_app`` builds (tests/conftest.py ``make_api``),
reached over HTTPS as a browser would, with a signed-in administrator when a test wants one.

The TestClient keeps cookies as a browser does: the session cookie is Secure, so the client
speaks https to the app."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from opendms.identity import passwords, sessions
from opendms.web.site import SESSION_COOKIE, SIGN_IN_COOKIE
from tests.conftest import Api

PASSWORD = "a long console password"
ORIGIN = "https://testserver"
_HIDDEN = re.compile(r'<input type="hidden" name="csrf_token" value="([^"]*)">')
_HX = re.compile(r"hx-headers='\{\"X-CSRF-Token\": \"([^\"]*)\"\}'")


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with the least work: the rules under test are the same, the suite is faster."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(1, 8, 1))


def form_token(page: httpx.Response) -> str:
    """The CSRF token a page's first form carries."""
    found = _HIDDEN.search(page.text)
    assert found, page.text
    return html.unescape(found.group(1))


def set_cookies(response: httpx.Response) -> dict[str, str]:
    """Each Set-Cookie header of a response, by cookie name, as sent."""
    out = {}
    for header in response.headers.get_list("set-cookie"):
        out[header.split("=", 1)[0]] = header
    return out


@dataclass
class Browser:
    """One browser on the console: its own cookies, requests that do not follow redirects,
    and the Origin and Sec-Fetch-Site a browser sends with a form from the console's page."""

    api: Api
    client: TestClient
    csrf: str = ""
    same_origin: dict[str, str] = field(
        default_factory=lambda: {"origin": ORIGIN, "sec-fetch-site": "same-origin"}
    )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(f"/console{path}", follow_redirects=False, **kwargs)

    def post(
        self, path: str, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return self.client.post(
            f"/console{path}",
            data=data or {},
            headers={**self.same_origin, **(headers or {})},
            follow_redirects=False,
        )

    def sign_in(
        self, name: str = "admin", password: str = PASSWORD, next_: str = ""
    ) -> httpx.Response:
        """The sign-in form, filled in and sent; on success ``csrf`` is the session's token."""
        page = self.get("/sign-in", params={"next": next_} if next_ else None)
        assert page.status_code == 200, page.text
        data = {"csrf_token": form_token(page), "username": name, "password": password}
        data["next"] = next_
        sent = self.post("/sign-in", data)
        if sent.status_code == 303:
            home = self.get("/")
            assert home.status_code == 200, home.text
            found = _HX.search(home.text)
            assert found, home.text
            self.csrf = found.group(1)
        return sent

    @property
    def session_token(self) -> str:
        return next(c.value for c in self.client.cookies.jar if c.name == SESSION_COOKIE)

    @property
    def sign_in_token(self) -> str:
        return next(c.value for c in self.client.cookies.jar if c.name == SIGN_IN_COOKIE)

    def signed_in(self) -> bool:
        """Whether the session still opens the home page (an observed state)."""
        answer = self.get("/")
        assert answer.status_code in (200, 303), answer.text
        return answer.status_code == 200


@pytest.fixture
def console(make_api: Callable[..., Api]) -> Api:
    """The app, its administrator (nick name ``admin``) with a console password."""
    api = make_api()
    with api.store.session() as s:
        sessions.set_password(s, api.admin_uid, PASSWORD)
    return api


@pytest.fixture
def browser(console: Api) -> Callable[..., Browser]:
    """A fresh browser (its own cookies) on ``console``; ``base_url`` for another address."""

    def make(base_url: str = ORIGIN) -> Browser:
        return Browser(console, TestClient(console.app, base_url=base_url))

    return make
