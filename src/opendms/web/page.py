"""What a console page handler is given: the request, who is signed in, and the means to
call an action, read through a service, render a template or redirect."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from opendms.gateway.errors import GatewayError
from opendms.gateway.pipeline import Gateway
from opendms.gateway.table import Payload
from opendms.identity import sessions
from opendms.identity.caller import Caller
from opendms.store.db import Store
from opendms.store.models.base import utcnow
from opendms.web.render import PREFIX, render, url

__all__ = ["PREFIX", "Page", "url", "wire_value"]  # PREFIX and url: for the pages

T = TypeVar("T")


def wire_value(value: object) -> str:
    """A Python value as a request parameter: JSON for objects and lists, as the SDKs send."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


class Page:
    def __init__(
        self,
        gateway: Gateway,
        store: Store,
        request: Request,
        live: sessions.Live | None,
        form: FormData | None,
    ) -> None:
        self.gateway = gateway
        self.store = store
        self.request = request
        self.live = live
        self.form = form

    @property
    def caller(self) -> Caller:
        if self.live is None:
            raise RuntimeError("a public page asked who is signed in")
        return self.live.caller

    @property
    def origin(self) -> str:
        return f"{self.request.url.scheme}://{self.request.headers.get('host', '127.0.0.1')}"

    def field(self, name: str, default: str = "") -> str:
        """A form field (POST) or query parameter (GET), as text."""
        if self.form is not None:
            value = self.form.get(name, default)
            return value if isinstance(value, str) else default
        return self.request.query_params.get(name, default)

    async def call(self, action: str, **params: object) -> Payload:
        """Run an API action as the signed-in user: its RAM policy, validation and handler."""
        assert self.live is not None
        wire = {k: wire_value(v) for k, v in params.items() if v is not None}
        client = self.request.client
        return await self.gateway.call(
            self.live.caller,
            self.live.auth_version,
            action,
            wire,
            origin=self.origin,
            client=f"{client.host}:{client.port}" if client else "",
        )

    async def read(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A read through a service where the action's reply shape is not enough: allowed
        when the user's RAM policy allows ``action``; ``fn(session, caller, …)`` decides
        visibility as it does for the action."""
        await self.authorize(action)
        return await run_in_threadpool(self._read, fn, args, kwargs)

    async def authorize(self, action: str) -> None:
        """Refuse (Forbidden.RAM, the API's own words) unless the user's RAM policy allows
        ``action``."""
        assert self.live is not None
        await self.gateway.authorize(
            self.live.caller, self.live.auth_version, self.gateway.table[action]
        )

    async def may(self, action: str) -> bool:
        """Whether the user's RAM policy allows ``action``: to show a link, form or button.
        The action asks again when it is called."""
        try:
            await self.authorize(action)
        except GatewayError:
            return False
        return True

    def _read(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        with self.store.session() as s:
            return fn(s, self.caller, *args, **kwargs)

    async def in_store(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in one metadata transaction, on a worker thread."""

        def run() -> T:
            with self.store.session() as s:
                return fn(s)

        return await run_in_threadpool(run)

    async def once(self) -> bool:
        """Whether this POST is the first use of its form's one-time token (field ``once``):
        false for a double click's second request, which must do nothing."""
        user_id, token = self.caller.user_id, self.field("once")
        return await self.in_store(lambda s: sessions.claim_once(s, user_id, token, utcnow()))

    def context(self, extra: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "me": self.live.caller if self.live else None,
            "csrf": self.live.csrf_token if self.live else "",
            "path": self.request.url.path,
            "notice": self.request.query_params.get("notice", ""),
            "new_once": lambda: secrets.token_urlsafe(16),
            **extra,
        }

    def render(self, template: str, status: int = 200, **extra: Any) -> HTMLResponse:
        return HTMLResponse(render(template, self.context(extra)), status_code=status)

    def redirect(self, path: str, **query: object) -> Response:
        return RedirectResponse(url(path, **query), status_code=303)
