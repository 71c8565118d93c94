"""How a page module declares its routes: a path, the handler, and who may reach it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.responses import Response

from opendms.web.page import Page

Handler = Callable[[Page], Awaitable[Response]]


@dataclass(frozen=True)
class PageRoute:
    path: str  # below /console
    handler: Handler
    method: str = "GET"
    # Reachable without a session (the sign-in page). A POST always needs a CSRF token.
    public: bool = False


def get(path: str, handler: Handler, *, public: bool = False) -> PageRoute:
    return PageRoute(path, handler, "GET", public)


def post(path: str, handler: Handler, *, public: bool = False) -> PageRoute:
    return PageRoute(path, handler, "POST", public)
