"""The console's Starlette routes: each page handler is wrapped with the session lookup,
the CSRF check on every POST, security headers, and an error page for what went wrong (a
DMS error's code and message; never a traceback)."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message

from opendms.errors import DmsError, ErrorCode
from opendms.gateway import errors
from opendms.gateway.errors import GatewayError
from opendms.gateway.pipeline import Gateway, new_request_id
from opendms.identity import sessions
from opendms.store.db import STORE_UNAVAILABLE, Store
from opendms.store.models.base import utcnow
from opendms.tickets.params import MAX_SQL_BYTES
from opendms.web.page import PREFIX, Page, url
from opendms.web.render import pygments_css
from opendms.web.routing import PageRoute

log = logging.getLogger("opendms.web")

SESSION_COOKIE = "odms_session"
SIGN_IN_COOKIE = "odms_sign_in"  # the sign-in form's CSRF token, before there is a session
MAX_FORM_FIELDS = 200
# A form's text field may hold a ticket's SQL, which the API takes up to 15 MB: Starlette's
# own limit (1 MB a field) would refuse it. Files are not held to this; the files service
# holds an upload to OPENDMS_UPLOAD_MAX_BYTES.
MAX_FIELD_BYTES = MAX_SQL_BYTES + 1024 * 1024
HEADERS = {
    # Scripts and styles come from /console/static only: no inline script runs.
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


def _status_of(exc: DmsError) -> int:
    if exc.code.endswith("NotFound"):
        return 404
    if exc.code == ErrorCode.PERMISSION_DENIED:
        return 403
    return 400


class Site:
    def __init__(
        self, gateway: Gateway, store: Store, routes: Sequence[PageRoute], *, max_body: int
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.page_routes = routes
        self.max_body = max_body  # a POST's body, at most: the API's request limit

    def routes(self) -> list[BaseRoute]:
        static = StaticFiles(directory=str(files("opendms.web") / "static"))
        built: list[BaseRoute] = [
            Route(PREFIX + "/static/sql.css", self._sql_css, methods=["GET"]),
            Mount(PREFIX + "/static", app=static),
            Route(PREFIX, lambda _r: RedirectResponse(PREFIX + "/", 308), methods=["GET"]),
        ]
        for spec in self.page_routes:
            built.append(Route(PREFIX + spec.path, self._endpoint(spec), methods=[spec.method]))
        return built

    async def _sql_css(self, _request: Request) -> Response:
        return PlainTextResponse(
            pygments_css(), media_type="text/css", headers={"cache-control": "max-age=3600"}
        )

    def _endpoint(self, spec: PageRoute) -> Any:
        async def endpoint(request: Request) -> Response:
            response = await self._serve(spec, request)
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return endpoint

    async def _serve(self, spec: PageRoute, request: Request) -> Response:
        live: sessions.Live | None = None
        form: FormData | None = None
        try:
            if spec.method == "POST" and not _same_site(request):
                return self._refused(request, None)
            token = cookie(request, SESSION_COOKIE)
            live = await run_in_threadpool(self._live, token) if token else None
            if live is None and not spec.public:
                return self._to_sign_in(request)
            if spec.method == "POST":
                # Anybody may post the sign-in form: an API request's limit. A user signed in
                # may upload a file for an import, up to the upload limit.
                limit = (
                    max(self.max_body, self.gateway.means.uploads.max_bytes)
                    if live
                    else self.max_body
                )
                form = await self._form(request, limit)
                if not _csrf_ok(request, form, live):
                    return self._refused(request, live)
            page = Page(self.gateway, self.store, request, live, form)
            return await spec.handler(page)
        except DmsError as exc:
            return self._error(request, live, _status_of(exc), exc.code, exc.message)
        except GatewayError as exc:
            return self._error(request, live, exc.status, exc.code, exc.message)
        except HTTPException as exc:
            # Starlette's word on a form it could not read (too many fields, a part too big,
            # broken multipart): the sender's mistake, not ours.
            return self._error(
                request,
                live,
                exc.status_code,
                "InvalidForm",
                f"The form was not read: {exc.detail}",
            )
        except STORE_UNAVAILABLE:
            log.exception("console: metadata store unavailable")
            return self._error(
                request, None, 503, "ServiceUnavailable", "The metadata store is unavailable."
            )
        except Exception:
            request_id = new_request_id()
            log.exception("console: request_id=%s unexpected failure", request_id)
            return self._error(
                request,
                None,
                500,
                "InternalError",
                f"Something went wrong on our side (request {request_id}); it is in the log.",
            )
        finally:
            if form is not None:
                await form.close()  # uploaded files' temporary copies go now, not at exit

    async def _form(self, request: Request, limit: int) -> FormData:
        """The POST's form, read up to ``limit`` bytes as it streams in (Starlette would spool
        multipart files to disk whatever their size); a text field may be as big as a
        ticket's SQL."""
        declared = request.headers.get("content-length", "")
        if declared.isascii() and declared.isdigit() and int(declared) > limit:
            raise errors.too_large(limit)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await request.receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise errors.too_large(limit)
            return message

        return await Request(request.scope, counted).form(
            max_fields=MAX_FORM_FIELDS, max_part_size=MAX_FIELD_BYTES
        )

    def _live(self, token: str) -> sessions.Live | None:
        with self.store.session() as s:
            return sessions.live(s, token, utcnow())

    def _to_sign_in(self, request: Request) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        where = url("/sign-in", next=target if request.method == "GET" else "")
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"hx-redirect": where})
        return RedirectResponse(where, status_code=303)

    def _refused(self, request: Request, live: sessions.Live | None) -> Response:
        log.warning(
            "console: refused a POST to %s without a valid CSRF token (origin %s)",
            request.url.path,
            request.headers.get("origin", "-"),
        )
        return self._error(
            request,
            live,
            403,
            "InvalidCsrfToken",
            "This form did not come from this console page, or it is too old: nothing was "
            "done. Reload the page and try again.",
        )

    def _error(
        self,
        request: Request,
        live: sessions.Live | None,
        status: int,
        code: str,
        message: str,
    ) -> Response:
        page = Page(self.gateway, self.store, request, live, None)
        if request.headers.get("hx-request"):
            return page.render("_error.html", status=status, code=code, message=message)
        return page.render("error.html", status=status, code=code, message=message)


def _same_site(request: Request) -> bool:
    """A browser says where a POST came from; another site's page is refused outright."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return hmac.compare_digest(origin, expected)


def _csrf_ok(request: Request, form: FormData, live: sessions.Live | None) -> bool:
    sent = form.get("csrf_token") or request.headers.get("x-csrf-token", "")
    if not isinstance(sent, str) or not sent:
        return False
    if live is not None:
        return hmac.compare_digest(sent, live.csrf_token)
    expected = cookie(request, SIGN_IN_COOKIE)
    return bool(expected) and hmac.compare_digest(sent, expected)


def cookie(request: Request, name: str) -> str:
    """The first value the Cookie header gives ``name``. Browsers send the cookie with the
    longest path first: the console's own (Path=/console). Starlette's ``request.cookies``
    keeps the last, which would be one set for Path=/ by a sibling subdomain ("cookie
    tossing"), shadowing the session the console issued."""
    for header in request.headers.getlist("cookie"):
        for chunk in header.split(";"):
            key, sep, value = chunk.partition("=")
            if sep and key.strip() == name:
                return value.strip()
    return ""


def set_session_cookie(response: Response, token: str, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path=PREFIX,
        secure=True,
        httponly=True,
        samesite="lax",
    )
