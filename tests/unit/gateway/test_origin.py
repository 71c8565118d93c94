"""The base of the links the server hands out (download URLs): the scheme the request came
over and its Host, unless OPENDMS_PUBLIC_URL names where clients reach the server."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from opendms.gateway.table import Context
from tests.conftest import Api


def _base_url_answer(api: Api, monkeypatch: pytest.MonkeyPatch) -> Callable[[], str]:
    """GetUserActiveTenant, made to answer the base its handler would build links on."""
    table: Any = api.app.gateway.table
    action = table["GetUserActiveTenant"]

    def handler(ctx: Context, _req: Any) -> dict[str, Any]:
        return {"Base": ctx.base_url}

    monkeypatch.setitem(table, action.name, replace(action, handler=handler))

    def ask() -> str:
        resp = api.send(api.admin.v3("GetUserActiveTenant"))
        assert resp.status_code == 200, resp.text
        return str(resp.json()["Base"])

    return ask


def test_links_follow_the_scheme_the_request_came_over(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    ask = _base_url_answer(api, monkeypatch)
    assert ask() == "http://testserver"
    api.client.base_url = "https://testserver"  # what uvicorn says when it speaks TLS
    assert ask() == "https://testserver"


def test_a_configured_public_url_wins(
    make_api: Callable[..., Api], monkeypatch: pytest.MonkeyPatch
) -> None:
    api = make_api(public_url="https://dms.example.com")
    ask = _base_url_answer(api, monkeypatch)
    assert ask() == "https://dms.example.com"
    api.client.base_url = "https://testserver"
    assert ask() == "https://dms.example.com"
