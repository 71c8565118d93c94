"""Signing in and out, and the home page: what waits for me, and my latest tickets."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

from starlette.responses import RedirectResponse, Response

from opendms.identity import sessions
from opendms.store.models.base import utcnow
from opendms.web.page import PREFIX, Page, url
from opendms.web.routing import get, post
from opendms.web.site import SESSION_COOKIE, SIGN_IN_COOKIE, cookie, set_session_cookie

LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Sign-ins hash on threads of their own, two at a time: argon2 takes 64 MiB and tens of
# milliseconds a try, and anybody may try. On the shared worker threads a flood of tries
# from many addresses would hold every thread the API's handlers run on; here it queues.
_HASHING = ThreadPoolExecutor(2, thread_name_prefix="opendms-sign-in")


def _safe_next(target: str) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return url("/")


def _secure_enough(page: Page) -> bool:
    """The session cookie is Secure: browsers keep it over HTTPS, or plain HTTP to loopback."""
    host = (page.request.url.hostname or "").strip("[]")
    return page.request.url.scheme == "https" or host in LOOPBACK


def _sign_in_form(page: Page, *, status: int = 200, error: str = "", name: str = "") -> Response:
    token = cookie(page.request, SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = page.render(
        "sign_in.html",
        status=status,
        form_token=token,
        error=error,
        name=name,
        next=page.field("next"),
        insecure=not _secure_enough(page),
    )
    response.set_cookie(
        SIGN_IN_COOKIE, token, path=PREFIX, secure=True, httponly=True, samesite="strict"
    )
    return response


async def sign_in_page(page: Page) -> Response:
    if page.live is not None:
        return RedirectResponse(_safe_next(page.field("next")), status_code=303)
    return _sign_in_form(page)


async def sign_in(page: Page) -> Response:
    name, password = page.field("username"), page.field("password")
    if not _secure_enough(page):
        return _sign_in_form(
            page,
            status=400,
            name=name,
            error="The console signs in over HTTPS only (or plain HTTP on this machine).",
        )
    client = page.request.client.host if page.request.client else ""
    agent = page.request.headers.get("user-agent", "")

    def attempt() -> sessions.SignedIn | str:
        # The attempt is recorded whatever the outcome: a refusal commits too.
        with page.store.session() as s:
            try:
                return sessions.sign_in(
                    s, name, password, client_host=client, user_agent=agent, now=utcnow()
                )
            except sessions.SignInRefused as exc:
                return exc.message

    result = await asyncio.get_running_loop().run_in_executor(_HASHING, attempt)
    if isinstance(result, str):
        return _sign_in_form(page, status=401, error=result, name=name)
    response = RedirectResponse(_safe_next(page.field("next")), status_code=303)
    set_session_cookie(response, result.token, int(sessions.LIFETIME.total_seconds()))
    response.delete_cookie(SIGN_IN_COOKIE, path=PREFIX)
    return response


async def sign_out(page: Page) -> Response:
    token = cookie(page.request, SESSION_COOKIE)
    await page.in_store(lambda s: sessions.end(s, token, utcnow()))
    response = RedirectResponse(url("/sign-in"), status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, secure=True, httponly=True)
    return response


async def home(page: Page) -> Response:
    waiting = await page.call(
        "ListOrders", OrderResultType="AS_HANDLER", OrderStatus="RUNNING", PageSize=20
    )
    mine = await page.call("ListOrders", OrderResultType="AS_COMMITTER", PageSize=10)
    return page.render(
        "home.html",
        waiting=waiting["Orders"]["Order"],
        waiting_total=waiting["TotalCount"],
        mine=mine["Orders"]["Order"],
        mine_total=mine["TotalCount"],
    )


ROUTES = [
    get("/sign-in", sign_in_page, public=True),
    post("/sign-in", sign_in, public=True),
    post("/sign-out", sign_out),
    get("/", home),
]
