"""What a request leaves for operators: its log lines carry its RequestId (and the OrderId
it names) whatever logs them, and /metrics counts it once by action and code, signed or the
console's."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher

from opendms.errors import DmsError
from opendms.identity import passwords
from opendms.telemetry import metrics
from tests.conftest import Api
from tests.json_log import json_log as captured
from tests.unit.gateway.test_console_call import call, session_of


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The ``opendms.*`` lines as OPENDMS_LOG_FORMAT=json writes them."""
    with captured("opendms") as out:
        yield out


def lines_of(out: io.StringIO, request_id: str) -> list[dict[str, object]]:
    found = [json.loads(line) for line in out.getvalue().splitlines()]
    return [line for line in found if line.get("request_id") == request_id]


def counted(action: str, code: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value(
            "opendms_requests_total", {"action": action, "code": code}
        )
        or 0.0
    )


def timed(action: str) -> float:
    return (
        metrics.REGISTRY.get_sample_value("opendms_request_seconds_count", {"action": action})
        or 0.0
    )


def test_the_json_line_of_a_request_carries_its_request_id(api: Api, json_log: io.StringIO) -> None:
    resp = api.call("GetUserActiveTenant")
    request_id = resp.json()["RequestId"]
    (line,) = lines_of(json_log, request_id)
    assert line["logger"] == "opendms.gateway"
    assert (line["action"], line["status"], line["code"]) == ("GetUserActiveTenant", 200, "OK")
    assert f"request_id={request_id}" in str(line["message"])  # the text line, as before
    assert "order_id" not in line


def test_a_call_naming_a_ticket_carries_its_order_id(api: Api, json_log: io.StringIO) -> None:
    resp = api.call("GetOrderBaseInfo", OrderId=424242)
    body = resp.json()
    assert body["ErrorCode"] == "OrderNotFound"
    (line,) = lines_of(json_log, body["RequestId"])
    assert (line["order_id"], line["code"]) == (424242, "OrderNotFound")
    # a value that names no ticket binds none (the action's validation answers for it)
    bad = api.call("GetOrderBaseInfo", OrderId="x").json()
    (line,) = lines_of(json_log, bad["RequestId"])
    assert "order_id" not in line and line["code"] != "OK"


def test_a_line_logged_while_the_request_runs_carries_it_too(
    api: Api, json_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A handler's own line, on its worker thread, names the request."""
    gateway = api.app.gateway
    execute = gateway.execute

    async def logging_execute(*args: object) -> object:
        logging.getLogger("opendms.actions").info("the handler runs")
        return await execute(*args)

    monkeypatch.setattr(gateway, "execute", logging_execute)
    request_id = api.call("GetOrderBaseInfo", OrderId=77).json()["RequestId"]
    inside, reply = lines_of(json_log, request_id)
    assert (inside["message"], inside["order_id"]) == ("the handler runs", 77)
    assert reply["logger"] == "opendms.gateway" and reply["order_id"] == 77


def test_each_request_is_counted_once_by_action_and_code(api: Api) -> None:
    before = {
        key: counted(*key)
        for key in [
            ("GetUserActiveTenant", "OK"),
            ("ListUsers", "InvalidPageSize"),
            ("-", "InvalidAction.NotFound"),
            ("GetOrderBaseInfo", "OrderNotFound"),
        ]
    }
    seconds = timed("GetUserActiveTenant")
    api.call("GetUserActiveTenant")
    api.call("GetUserActiveTenant")
    api.call("ListUsers", PageSize="abc")
    api.call("NoSuchAction")
    api.call("GetOrderBaseInfo", OrderId=1)
    assert {key: counted(*key) - n for key, n in before.items()} == {
        ("GetUserActiveTenant", "OK"): 2,
        ("ListUsers", "InvalidPageSize"): 1,
        ("-", "InvalidAction.NotFound"): 1,
        ("GetOrderBaseInfo", "OrderNotFound"): 1,
    }
    assert timed("GetUserActiveTenant") - seconds == 2


def test_a_console_call_is_logged_and_counted_as_an_api_request_is(
    api: Api, json_log: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(1, 8, 1))
    live = session_of(api, api.admin_uid)
    before = counted("GetOrderBaseInfo", "OrderNotFound")
    with pytest.raises(DmsError, match="Ticket 31337"):
        call(api, live, "GetOrderBaseInfo", OrderId="31337")
    assert counted("GetOrderBaseInfo", "OrderNotFound") - before == 1
    (line,) = [json.loads(raw) for raw in json_log.getvalue().splitlines() if "via=console" in raw]
    assert line["order_id"] == 31337 and line["code"] == "OrderNotFound"
    assert str(line["message"]).startswith(f"request_id={line['request_id']} ")
