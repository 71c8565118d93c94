"""The console's site (``web/site.py``, ``web/pages/account.py``) through the app
``create_app`` builds: the way to the sign-in page, the session cookie, CSRF on every POST,
the security headers, and error pages that never show a traceback."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient

from opendms.errors import DmsError, ErrorCode
from opendms.gateway.errors import GatewayError
from opendms.identity import service, sessions
from opendms.store.models import ConsoleSession, SignInAttempt
from opendms.store.states import SignInOutcome
from opendms.web.page import Page
from opendms.web.pages import account
from opendms.web.routing import get, post
from opendms.web.site import HEADERS, Site
from tests.conftest import Api
from tests.signer import Signer
from tests.unit.web.conftest import ORIGIN, PASSWORD, Browser, form_token, set_cookies

Browsers = Callable[..., Browser]
NO_LISTS = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:List*","Resource":"*"}]}'


def open_sessions(api: Api) -> int:
    with api.store.session() as s:
        return len(s.scalars(select(ConsoleSession).where(ConsoleSession.ended_at.is_(None))).all())


def attempts(api: Api) -> list[SignInOutcome]:
    with api.store.session() as s:
        return list(s.scalars(select(SignInAttempt.outcome).order_by(SignInAttempt.id)))


def assert_refused(answer: httpx.Response) -> None:
    assert answer.status_code == 403, answer.text
    assert "InvalidCsrfToken" in answer.text
    assert "nothing was done" in answer.text.replace("\n", " ")


# ---------------------------------------------------------------- the way in


def test_a_page_without_a_session_leads_to_sign_in_and_back(browser: Browsers) -> None:
    me = browser()
    answer = me.get("/", params={"scope": "mine"})
    assert answer.status_code == 303
    where = urlsplit(answer.headers["location"])
    assert where.path == "/console/sign-in"
    assert parse_qs(where.query) == {"next": ["/console/?scope=mine"]}
    assert me.sign_in(next_="/console/?scope=mine").headers["location"] == "/console/?scope=mine"


def test_an_htmx_request_without_a_session_is_told_where_to_go(browser: Browsers) -> None:
    answer = browser().get("/", headers={"hx-request": "true"})
    assert answer.status_code == 401
    assert answer.headers["hx-redirect"] == "/console/sign-in?next=%2Fconsole%2F"


def test_a_post_without_a_session_leads_to_sign_in_without_next(browser: Browsers) -> None:
    answer = browser().post("/sign-out", {"csrf_token": "x"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in"


def test_the_sign_in_form(browser: Browsers) -> None:
    page = browser().get("/sign-in")
    assert page.status_code == 200
    assert '<label for="username">Username</label>' in page.text
    assert '<input id="username" name="username"' in page.text
    assert '<label for="password">Password</label>' in page.text
    assert 'name="password" type="password"' in page.text
    assert ">Sign in</button>" in page.text
    assert 'action="/console/sign-in"' in page.text
    # Its CSRF token before there is a session: a cookie only this site's pages can read
    # back (SameSite=Strict), repeated in the form.
    cookie = set_cookies(page)["odms_sign_in"]
    assert f"odms_sign_in={form_token(page)};" in cookie
    for attribute in ("HttpOnly", "Path=/console", "SameSite=strict", "Secure"):
        assert attribute in cookie


def test_signing_in_sets_a_secure_session_cookie_for_the_console_only(
    browser: Browsers, console: Api
) -> None:
    me = browser()
    answer = me.sign_in()
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/"
    cookies = set_cookies(answer)
    session = cookies["odms_session"]
    for attribute in ("HttpOnly", "Path=/console", "SameSite=lax", "Secure"):
        assert attribute in session.split("; ") or attribute in session
    assert f"Max-Age={int(sessions.LIFETIME.total_seconds())}" in session
    assert "Domain" not in session  # this host only
    # The sign-in form's token is spent: its cookie goes.
    assert 'odms_sign_in="";' in cookies["odms_sign_in"] or "Max-Age=0" in cookies["odms_sign_in"]
    assert me.signed_in()
    assert open_sessions(console) == 1


def test_a_session_cookie_planted_before_sign_in_is_never_adopted(
    browser: Browsers, console: Api
) -> None:
    """Session fixation: whatever session cookie a browser brings, signing in issues a new
    random one; the planted value opens nothing before or after."""
    me = browser()
    planted = "attacker-chosen-session-token"
    me.client.cookies.set("odms_session", planted)
    answer = me.sign_in()
    assert answer.status_code == 303
    issued = set_cookies(answer)["odms_session"].split(";")[0].removeprefix("odms_session=")
    assert issued != planted and len(issued) >= 43
    assert browser().get("/", headers={"cookie": f"odms_session={planted}"}).status_code == 303
    assert browser().get("/", headers={"cookie": f"odms_session={issued}"}).status_code == 200


def test_a_cookie_tossed_for_the_whole_site_does_not_shadow_the_consoles(
    browser: Browsers, console: Api
) -> None:
    """A sibling subdomain can set odms_session for Path=/; a browser sends the console's
    own (Path=/console) first, and that one is the session."""
    with console.store.session() as s:
        service.register_user(s, None, console.tid, "4244", nick_name="mallory")
        sessions.set_password(s, "4244", PASSWORD)
    me, mallory = browser(), browser()
    me.sign_in()
    mallory.sign_in("mallory")
    both = {"cookie": f"odms_session={me.session_token}; odms_session={mallory.session_token}"}
    home = browser().get("/", headers=both)
    assert home.status_code == 200
    assert "Hello, admin" in home.text and "mallory" not in home.text
    garbage = {"cookie": f"odms_session={me.session_token}; odms_session=tossed"}
    assert browser().get("/", headers=garbage).status_code == 200


def test_sign_in_by_uid_too(browser: Browsers, console: Api) -> None:
    assert browser().sign_in(console.admin_uid).status_code == 303


def test_a_wrong_password_or_name_is_refused_in_the_same_words(
    browser: Browsers, console: Api
) -> None:
    me = browser()
    for name in ("admin", "nobody-here"):
        answer = me.sign_in(name, "not the password at all")
        assert answer.status_code == 401
        assert "Wrong username or password." in answer.text
        assert f'value="{name}"' in answer.text  # what was typed is kept
        assert "odms_session" not in set_cookies(answer)
    assert not me.signed_in()
    assert attempts(console) == [SignInOutcome.WRONG, SignInOutcome.WRONG]


def test_too_many_failures_are_held_back(browser: Browsers, console: Api) -> None:
    me = browser()
    for _ in range(sessions.MAX_FAILURES_PER_NAME):
        assert me.sign_in("admin", "not the password at all").status_code == 401
    held = me.sign_in()
    assert held.status_code == 401 and "Too many failed sign-ins" in held.text
    assert attempts(console)[-1] == SignInOutcome.THROTTLED


def test_a_disabled_user_is_signed_out_at_once(browser: Browsers, console: Api) -> None:
    with console.store.session() as s:
        user = service.register_user(s, None, console.tid, "4242", nick_name="kim")
        sessions.set_password(s, "4242", PASSWORD)
    kim = browser()
    assert kim.sign_in("kim").status_code == 303
    assert kim.signed_in()
    with console.store.session() as s:
        service.set_user_state(s, None, console.tid, user.uid, "DISABLE")
    assert not kim.signed_in()
    refused = browser().sign_in("kim")
    assert refused.status_code == 401 and "disabled" in refused.text


def test_sign_ins_hash_on_threads_of_their_own(
    browser: Browsers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of sign-in tries queues for its own two threads: the threads the API's
    handlers run on stay free."""
    threads: list[str] = []
    real = sessions.sign_in

    def recording(*args: Any, **kwargs: Any) -> sessions.SignedIn:
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(sessions, "sign_in", recording)
    assert browser().sign_in().status_code == 303
    assert browser().sign_in("admin", "wrong password here").status_code == 401
    assert len(threads) == 2
    assert all(name.startswith("opendms-sign-in") for name in threads), threads


@pytest.mark.parametrize(
    ("asked", "goes"),
    [
        ("/console/orders/7?tab=sql", "/console/orders/7?tab=sql"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/\\evil.example", "/console/"),
        ("/console/\\\\evil.example", "/console/"),
        ("/consolex", "/console/"),
        ("/files/secret", "/console/"),
        ("javascript:alert(1)", "/console/"),
        ("", "/console/"),
    ],
)
def test_after_sign_in_only_console_paths(browser: Browsers, asked: str, goes: str) -> None:
    me = browser()
    assert me.sign_in(next_=asked).headers["location"] == goes
    # Signed in already, the sign-in page sends one on the same way.
    again = me.get("/sign-in", params={"next": asked})
    assert again.status_code == 303 and again.headers["location"] == goes


def test_plain_http_from_another_machine_cannot_sign_in(browser: Browsers, console: Api) -> None:
    """The cookies are Secure: over plain HTTP (not loopback) a browser drops them, so the
    console says so on the form instead of failing silently, and never tries a password."""
    far = browser("http://testserver")
    page = far.get("/sign-in")
    assert "signs in over HTTPS only" in page.text
    token = form_token(page)
    answer = far.post(
        "/sign-in",
        {"csrf_token": token, "username": "admin", "password": PASSWORD},
        # what a browser that kept the Secure cookie anyway would send
        headers={"origin": "http://testserver", "cookie": f"odms_sign_in={token}"},
    )
    assert answer.status_code == 400 and "HTTPS only" in answer.text
    assert "odms_session" not in set_cookies(answer)
    assert attempts(console) == []  # the password was not even tried
    # Browsers keep Secure cookies for plain HTTP to this machine.
    near = browser("http://127.0.0.1")
    page = near.get("/sign-in")
    assert "HTTPS only" not in page.text
    token = form_token(page)
    answer = near.post(
        "/sign-in",
        {"csrf_token": token, "username": "admin", "password": PASSWORD},
        headers={"origin": "http://127.0.0.1", "cookie": f"odms_sign_in={token}"},
    )
    assert answer.status_code == 303 and "odms_session" in set_cookies(answer)


def test_signing_out_ends_the_session_in_the_store(browser: Browsers, console: Api) -> None:
    me = browser()
    me.sign_in()
    copied = {"cookie": f"odms_session={me.session_token}"}
    thief = browser()
    assert thief.get("/", headers=copied).status_code == 200  # a copy of the cookie works
    answer = me.post("/sign-out", {"csrf_token": me.csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/console/sign-in"
    gone = set_cookies(answer)["odms_session"]
    assert "Max-Age=0" in gone and "Path=/console" in gone
    # The old cookie, sent again, opens nothing: the session ended where it is kept.
    assert thief.get("/", headers=copied).status_code == 303
    assert open_sessions(console) == 0


# ---------------------------------------------------------------- CSRF


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        (None, {}),
        ("", {}),
        ("guessed", {}),
        ("RIGHT", {"origin": "https://evil.example"}),
        ("RIGHT", {"origin": "http://testserver"}),  # the wrong scheme is another origin
        ("RIGHT", {"origin": "https://testserver:8443"}),
        ("RIGHT", {"origin": "null"}),
        ("RIGHT", {"sec-fetch-site": "cross-site"}),
        ("RIGHT", {"sec-fetch-site": "same-site"}),  # a sibling subdomain is not us
    ],
)
def test_a_post_without_the_right_token_from_this_origin_does_nothing(
    browser: Browsers, console: Api, token: str | None, headers: dict[str, str]
) -> None:
    me = browser()
    me.sign_in()
    data = {} if token is None else {"csrf_token": me.csrf if token == "RIGHT" else token}
    assert_refused(me.post("/sign-out", data, headers=headers))
    assert me.signed_in()
    assert open_sessions(console) == 1


def test_the_token_may_come_in_the_htmx_header(browser: Browsers, console: Api) -> None:
    me = browser()
    me.sign_in()
    assert_refused(me.post("/sign-out", headers={"x-csrf-token": "guessed"}))
    assert me.signed_in()
    answer = me.post("/sign-out", headers={"x-csrf-token": me.csrf, "hx-request": "true"})
    assert answer.status_code == 303
    assert not me.signed_in()


def test_a_post_without_origin_headers_needs_the_token_all_the_same(
    browser: Browsers, console: Api
) -> None:
    """Some clients send neither Origin nor Sec-Fetch-Site: the token alone decides."""
    me = browser()
    me.sign_in()
    me.same_origin = {}
    assert_refused(me.post("/sign-out", {"csrf_token": "guessed"}))
    assert me.signed_in()
    assert me.post("/sign-out", {"csrf_token": me.csrf}).status_code == 303
    assert not me.signed_in()


def test_another_sessions_token_or_the_sign_in_token_is_not_this_sessions(
    browser: Browsers, console: Api
) -> None:
    me, other = browser(), browser()
    me.sign_in()
    other.sign_in()
    assert_refused(me.post("/sign-out", {"csrf_token": other.csrf}))
    # The sign-in form's token (a cookie this browser holds) is no session's token.
    page = me.get("/sign-in")
    assert page.status_code == 303  # signed in: no new form
    cookies = f"odms_session={me.session_token}; odms_sign_in=pre-session"
    answer = me.post("/sign-out", {"csrf_token": "pre-session"}, headers={"cookie": cookies})
    assert_refused(answer)
    assert me.signed_in() and other.signed_in()


def test_sign_in_needs_its_form_token_and_this_origin(browser: Browsers, console: Api) -> None:
    """A forged sign-in (another site signing the browser in as someone else) is refused,
    and refused before the password is tried: no attempt is counted."""
    me = browser()
    page = me.get("/sign-in")
    good = {"csrf_token": form_token(page), "username": "admin", "password": PASSWORD}
    assert_refused(me.post("/sign-in", {**good, "csrf_token": "guessed"}))
    assert_refused(me.post("/sign-in", {k: v for k, v in good.items() if k != "csrf_token"}))
    assert_refused(me.post("/sign-in", good, headers={"origin": "https://evil.example"}))
    assert_refused(me.post("/sign-in", good, headers={"sec-fetch-site": "cross-site"}))
    # Without the cookie the form's token came with, the token is nobody's.
    fresh = browser()
    assert_refused(fresh.post("/sign-in", good))
    assert attempts(console) == []
    assert open_sessions(console) == 0
    assert me.post("/sign-in", good).status_code == 303


# ---------------------------------------------------------------- headers and error pages


def _assert_headers(answer: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert answer.headers[name] == value, name
    csp = answer.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp


def test_every_console_answer_carries_the_security_headers(browser: Browsers, console: Api) -> None:
    me = browser()
    _assert_headers(me.get("/"))  # a redirect to sign in
    _assert_headers(me.get("/sign-in"))
    _assert_headers(me.post("/sign-out", {"csrf_token": "x"}))
    _assert_headers(me.sign_in("admin", "wrong password here"))
    _assert_headers(me.sign_in())
    _assert_headers(me.get("/"))
    _assert_headers(me.post("/sign-out", {"csrf_token": "guessed"}))  # an error page


def test_the_csp_blocks_inline_script_and_the_pages_have_none(browser: Browsers) -> None:
    me = browser()
    me.sign_in()
    for page in (me.get("/"), browser().get("/sign-in")):
        assert "<script>" not in page.text and " on" + "click=" not in page.text
        assert " style=" not in page.text


def test_a_ram_policy_that_denies_the_homes_action_gives_a_403_page(
    browser: Browsers, console: Api
) -> None:
    with console.store.session() as s:
        service.register_user(s, None, console.tid, "4243", nick_name="lee")
        sessions.set_password(s, "4243", PASSWORD)
    lee = browser()
    assert lee.sign_in("lee").status_code == 303
    with console.store.session() as s:
        service.attach_policy(s, console.tid, "4243", "no-lists", NO_LISTS, actor=None)
    denied = lee.get("/")
    assert denied.status_code == 403
    assert "Forbidden.RAM" in denied.text and "Not allowed" in denied.text
    _assert_headers(denied)


SMALL = 2 * 1024 * 1024  # the failing site's request limit


class Boom(Exception):
    pass


async def _not_found(_page: Page) -> None:
    raise DmsError(ErrorCode.ORDER_NOT_FOUND, "No ticket 7 in this tenant.")


async def _denied(_page: Page) -> None:
    raise DmsError(ErrorCode.PERMISSION_DENIED, "Only the ticket's DBA may do that.")


async def _invalid(_page: Page) -> None:
    raise DmsError(ErrorCode.INVALID_PARAMETER, "Comment: too long.")


async def _gateway(_page: Page) -> None:
    raise GatewayError(403, "Forbidden.RAM", "User not authorized: dms:GetOrder.")


async def _boom(_page: Page) -> None:
    raise Boom("secret-internal-detail in /srv/opendms/handler.py")


async def _echo(page: Page) -> Response:
    return PlainTextResponse(page.field("name"))


UPLOADS: list[UploadFile] = []


async def _upload(page: Page) -> Response:
    assert page.form is not None
    sent = page.form["file"]
    assert isinstance(sent, UploadFile)
    UPLOADS.append(sent)
    return PlainTextResponse(str(len(await sent.read())))


@pytest.fixture
def failing(console: Api) -> TestClient:
    """A site with pages that fail in each way, reachable without signing in."""
    site = Site(
        console.app.gateway,
        console.store,
        [
            *account.ROUTES,
            get("/not-found", _not_found, public=True),
            get("/denied", _denied, public=True),
            get("/invalid", _invalid, public=True),
            get("/gateway", _gateway, public=True),
            get("/boom", _boom, public=True),
            post("/echo", _echo, public=True),
            post("/upload", _upload, public=True),
        ],
        max_body=SMALL,
    )
    return TestClient(Starlette(routes=site.routes()), base_url=ORIGIN)


@pytest.mark.parametrize(
    ("path", "status", "code", "heading"),
    [
        ("/not-found", 404, "OrderNotFound", "Not found"),
        ("/denied", 403, "PermissionDenied", "Not allowed"),
        ("/invalid", 400, "InvalidParameter", "Something is not right"),
        ("/gateway", 403, "Forbidden.RAM", "Not allowed"),
    ],
)
def test_a_dms_error_becomes_its_page(
    failing: TestClient, path: str, status: int, code: str, heading: str
) -> None:
    answer = failing.get(f"/console{path}")
    assert answer.status_code == status
    assert f"<h1>{heading}</h1>" in answer.text
    assert f"<strong>{code}</strong>" in answer.text
    _assert_headers(answer)
    fragment = failing.get(f"/console{path}", headers={"hx-request": "true"})
    assert fragment.status_code == status
    assert "<html" not in fragment.text and f"<strong>{code}</strong>" in fragment.text


def test_an_unexpected_failure_is_a_500_page_that_tells_nothing_but_a_request_id(
    failing: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="opendms.web"):
        answer = failing.get("/console/boom")
    assert answer.status_code == 500
    assert "InternalError" in answer.text
    for secret in ("Traceback", "secret-internal-detail", "Boom", "handler.py", 'File "'):
        assert secret not in answer.text
    _assert_headers(answer)
    # The details are in the log, under the request id the page shows.
    record = next(r for r in caplog.records if r.name == "opendms.web")
    assert record.exc_info is not None and record.exc_info[0] is Boom
    request_id = record.getMessage().split("request_id=")[1].split()[0]
    assert request_id in answer.text


def test_a_form_the_site_cannot_read_is_a_400_not_a_500(failing: TestClient) -> None:
    token = form_token(failing.get("/console/sign-in"))
    for data in ({f"f{i}": "x" for i in range(250)},):  # too many fields
        answer = failing.post(
            "/console/echo", data={"csrf_token": token, **data}, headers={"origin": ORIGIN}
        )
        assert answer.status_code == 400, answer.text
        assert "<strong>InvalidForm</strong>" in answer.text
        _assert_headers(answer)
    ok = failing.post(
        "/console/echo", data={"csrf_token": token, "name": "ann"}, headers={"origin": ORIGIN}
    )
    assert ok.status_code == 200 and ok.text == "ann"


def test_a_post_bigger_than_the_request_limit_is_refused(console: Api, failing: TestClient) -> None:
    assert console.app.console.max_body == console.app.settings.max_request_bytes
    token = form_token(failing.get("/console/sign-in"))
    over = b"x" * (SMALL + 1)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the size shows only as it comes
        yield f"csrf_token={token}&name=".encode()
        yield from (over[i : i + 65536] for i in range(0, len(over), 65536))

    headers = {"origin": ORIGIN, "content-type": "application/x-www-form-urlencoded"}
    for answer in (
        failing.post(
            "/console/echo",
            files={"name": ("big.txt", over)},
            data={"csrf_token": token},
            headers={"origin": ORIGIN},
        ),
        failing.post("/console/echo", content=chunks(), headers=headers),
    ):
        assert answer.status_code == 413, answer.text
        assert "InvalidParameter.TooLarge" in answer.text
        _assert_headers(answer)
    UPLOADS.clear()
    under = failing.post(
        "/console/upload",
        files={"file": ("small.txt", b"y" * 1000)},
        data={"csrf_token": token},
        headers={"origin": ORIGIN},
    )
    assert under.status_code == 200 and under.text == "1000"
    assert UPLOADS[0].file.closed  # its temporary copy is gone with the request


def test_a_store_failure_is_a_503_page(
    failing: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    def broken(_site: Site, _token: str) -> None:
        raise sqlite3.OperationalError("database is locked at /srv/opendms/meta.db")

    monkeypatch.setattr(Site, "_live", broken)
    answer = failing.get("/console/not-found", headers={"cookie": "odms_session=some-token"})
    assert answer.status_code == 503
    assert "metadata store is unavailable" in answer.text
    assert "database is locked" not in answer.text and "meta.db" not in answer.text
    _assert_headers(answer)


# ---------------------------------------------------------------- the server's address


def test_a_browser_at_the_servers_address_is_led_to_the_console(console: Api) -> None:
    answer = console.client.get(
        "/", headers={"accept": "text/html,application/xhtml+xml"}, follow_redirects=False
    )
    assert answer.status_code == 303 and answer.headers["location"] == "/console/"
    slash = console.client.get("/console", follow_redirects=False)
    assert slash.status_code == 308 and slash.headers["location"].endswith("/console/")


def test_no_dms_call_is_ever_redirected(console: Api) -> None:
    html_too = {"accept": "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2"}
    # An ACS3 call with no parameter at all: its action is in a header, its query empty.
    browserish = Signer(console.admin.access_key_id, console.admin.secret, extra_headers=html_too)
    for method in ("GET", "POST"):
        prepared = browserish.v3("GetUserActiveTenant", method=method)
        assert prepared.url == "/" and prepared.headers["accept"] == html_too["accept"]
        answer = console.send(prepared)
        assert answer.status_code == 200, answer.text
        assert answer.json()["Tenant"]["Tid"] == console.tid
    v1 = console.admin.v1("GetUserActiveTenant", method="GET")
    v1.headers.update(html_too)
    assert console.send(v1).json()["Success"] is True
    # Unsigned or malformed calls get the API's JSON error, not the console.
    for answer in (
        console.client.get("/", follow_redirects=False),
        console.client.get("/?Action=GetUser", headers=html_too, follow_redirects=False),
        console.client.post("/", headers=html_too, follow_redirects=False),
        console.client.get(
            "/", headers={**html_too, "x-acs-action": "GetUser"}, follow_redirects=False
        ),
    ):
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/json"


def test_static_files_are_served(browser: Browsers) -> None:
    me = browser()
    assert me.get("/static/console.css").status_code == 200
    assert "javascript" in me.get("/static/console.js").headers["content-type"]
    assert me.get("/static/sql.css").headers["content-type"].startswith("text/css")
    assert me.get("/static/../../app.py").status_code == 404
