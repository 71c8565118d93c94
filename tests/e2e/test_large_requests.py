"""Big requests over real HTTP (dms-api.md A.0 "Very long URLs", fact 10): DMS clients put
JSON ``Param`` values carrying whole SQL scripts in the query string, so request lines and
bodies of at least 16 MiB must be signed, parsed and answered; bodies over
OPENDMS_MAX_REQUEST_BYTES get 413 ``InvalidParameter.TooLarge``."""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
from aliyunsdkdms_enterprise.request.v20181101.ListUsersRequest import ListUsersRequest
from darabonba.runtime import RuntimeOptions

from tests.e2e.conftest import (
    NEW_SDK_FLAVORS,
    REQUEST_ID,
    Flavor,
    Server,
    assert_failure,
    assert_http_error,
    failure_of,
    new_sdk,
    old_sdk,
    running_server,
)
from tests.signer import Prepared

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

MiB = 1024 * 1024
SMALLEST_LIMIT = 16 * MiB  # OPENDMS_MAX_REQUEST_BYTES may not be set lower
SQL_LINE = "UPDATE orders SET status = 'closed', note = 'bulk fix' WHERE id = 1234567;\n"


def param_json(min_length: int) -> str:
    """A ``Param`` as CreateDataCorrectOrder sends it, with an ExecSQL script making the JSON
    text at least ``min_length`` characters long."""
    lines = math.ceil(min_length / len(json.dumps(SQL_LINE)[1:-1])) + 1
    text = json.dumps(
        {
            "DbItemList": [{"DbId": 1, "Logic": False}],
            "EstimateAffectRows": lines,
            "ExecSQL": SQL_LINE * lines,
            "SqlType": "TEXT",
        },
        separators=(",", ":"),
    )
    assert len(text) >= min_length
    return text


def param_for_query_of(min_query_bytes: int) -> str:
    """A ``Param`` whose urlencoded query string is at least ``min_query_bytes`` long."""
    per_line = len(quote_plus(json.dumps(SQL_LINE)[1:-1]))
    raw_per_line = len(json.dumps(SQL_LINE)[1:-1])
    return param_json(math.ceil(min_query_bytes / per_line) * raw_per_line)


@pytest.fixture(scope="module")
def one_mib_param() -> str:
    return param_json(MiB)


def _list_users_ok(resp: Any) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text[:500]
    body = resp.json()
    assert body["Success"] is True, body
    assert REQUEST_ID.match(body["RequestId"])
    assert body["TotalCount"] >= 1
    assert body["UserList"]["User"][0]["UserId"]
    return dict(body)


# ------------------------------------------------------------------ the 64 KiB boundary


@pytest.mark.parametrize("url_bytes", [60_000, 65_535, 65_536, 70_000])
def test_request_line_around_64kib(server: Server, url_bytes: int) -> None:
    """httptools refuses URLs over 65,535 bytes (16-bit offsets in the parser's URL struct) with
    a plain-text 400 the SDKs cannot parse; ``opendms serve`` runs h11 so that lines past 64 KiB
    reach the app."""
    signer = server.admin.signer(server)
    base = signer.v3("ListUsers", {"Param": ""})
    filler = "x" * (url_bytes - len(base.url))
    prepared = signer.v3("ListUsers", {"Param": filler})
    assert len(prepared.url) == url_bytes
    _list_users_ok(server.send_raw(prepared))


# ------------------------------------------------------------------ 1 MiB, every client


@pytest.mark.parametrize("scheme", ["v3", "v1"])
def test_signed_call_with_a_1mib_param_in_the_query(
    server: Server, one_mib_param: str, scheme: str
) -> None:
    """Unknown parameters are ignored, but they are signed (V3: canonical query; V1: the
    string to sign) and parsed; one wrong byte would fail the signature."""
    signer = server.admin.signer(server)
    query = {"PageSize": "20", "Param": one_mib_param}
    prepared = signer.v3("ListUsers", query) if scheme == "v3" else signer.v1("ListUsers", query)
    assert len(prepared.url) > MiB
    _list_users_ok(server.send_raw(prepared))

    tampered = signer.v3("ListUsers", query) if scheme == "v3" else signer.v1("ListUsers", query)
    tampered.url = tampered.url.replace("closed", "cloned", 1)
    assert_http_error(server, server.send_raw(tampered), 400, "SignatureDoesNotMatch")


def test_signed_call_with_a_1mib_param_in_the_form_body(server: Server, one_mib_param: str) -> None:
    signer = server.admin.signer(server)
    prepared = signer.v3("ListUsers", {"PageSize": "20"}, {"Param": one_mib_param})
    assert len(prepared.body) > MiB
    _list_users_ok(server.send(prepared))
    prepared = signer.v1("ListUsers", {"PageSize": "20"}, {"Param": one_mib_param})
    _list_users_ok(server.send(prepared))


def _generic(action: str) -> Params:
    return Params(
        action=action,
        version="2018-11-01",
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )


@pytest.mark.parametrize("flavor", NEW_SDK_FLAVORS)
def test_new_sdk_call_api_with_a_1mib_param(
    server: Server, one_mib_param: str, flavor: Flavor
) -> None:
    client = new_sdk(server, server.admin, v1=flavor == "v1")
    for request in (
        OpenApiRequest(query={"PageSize": "20", "Param": one_mib_param}),
        OpenApiRequest(query={"PageSize": "20"}, body={"Param": one_mib_param}),
    ):
        result = client.call_api(_generic("ListUsers"), request, RuntimeOptions())
        assert result["statusCode"] == 200
        body = result["body"]
        assert body["Success"] is True, body
        parsed = dms_models.ListUsersResponseBody().from_map(body)
        assert parsed.total_count >= 1
        assert parsed.user_list.user[0].uid == server.admin.uid


@pytest.mark.parametrize("flavor", NEW_SDK_FLAVORS)
def test_new_sdk_typed_request_with_a_1mib_field_is_validated(
    server: Server, flavor: Flavor
) -> None:
    """The typed models have no free-form 1 MiB field among the user actions; RegisterUser's
    UserNick is the closest, and is capped at 256 characters. The 1 MiB request must travel,
    be verified and reach validation: a clean 400 InvalidUserNick, not a transport failure."""
    client = new_sdk(server, server.admin, v1=flavor == "v1")
    uid = "7700000000000001" if flavor == "v3" else "7700000000000002"
    with pytest.raises(ClientException) as caught:
        client.register_user(dms_models.RegisterUserRequest(uid=uid, user_nick="n" * MiB))
    assert_failure(server, failure_of(caught.value), 400, "InvalidUserNick")
    assert "256" in caught.value.message
    # nothing was registered; a nick of the allowed size works
    assert client.get_user(dms_models.GetUserRequest(uid=uid)).body.error_code == "UserNotFound"
    resp = client.register_user(dms_models.RegisterUserRequest(uid=uid, user_nick="n" * 256))
    assert resp.body.success is True
    assert client.get_user(dms_models.GetUserRequest(uid=uid)).body.user.nick_name == "n" * 256


def test_old_sdk_with_a_1mib_param(server: Server, one_mib_param: str) -> None:
    request = ListUsersRequest()
    request.set_PageSize(20)
    request.add_query_param("Param", one_mib_param)
    request.set_endpoint(server.endpoint)
    request.set_protocol_type("http")
    body = json.loads(old_sdk(server.admin).do_action_with_exception(request))
    assert body["Success"] is True, body
    assert body["UserList"]["User"][0]["Uid"] == server.admin.uid


# ------------------------------------------------------------------ 16 MiB


def test_16mib_query_string_gets_a_json_answer(server: Server) -> None:
    """A request line of 16 MiB: no 414, no reset; signed, verified and answered."""
    param = param_for_query_of(SMALLEST_LIMIT)
    query = urlencode({"Param": param})
    assert len(query) >= SMALLEST_LIMIT
    prepared = server.admin.signer(server).v3("ListUsers", {"Param": param})
    resp = server.send_raw(prepared)
    body = _list_users_ok(resp)
    assert resp.headers["content-type"].startswith("application/json")
    server.log_line(body["RequestId"])


@pytest.fixture(scope="module")
def small_server() -> Iterator[Server]:
    """A server at the smallest allowed limit."""
    with running_server({"OPENDMS_MAX_REQUEST_BYTES": str(SMALLEST_LIMIT)}) as s:
        yield s


def test_body_just_under_the_smallest_limit_is_accepted(small_server: Server) -> None:
    server = small_server
    param = param_for_query_of(SMALLEST_LIMIT - 64 * 1024)
    prepared = server.admin.signer(server).v3("ListUsers", form={"Param": param})
    assert SMALLEST_LIMIT - 64 * 1024 <= len(prepared.body) <= SMALLEST_LIMIT
    _list_users_ok(server.send(prepared))


@pytest.fixture(scope="module")
def too_large(small_server: Server) -> Prepared:
    """A V3-signed ListUsers with a ~17 MiB form body. The 413 comes before authentication,
    so the same request can be sent more than once."""
    param = param_for_query_of(17 * MiB)
    prepared = small_server.admin.signer(small_server).v3("ListUsers", form={"Param": param})
    assert len(prepared.body) > SMALLEST_LIMIT
    return prepared


def test_body_over_the_limit_gets_413(small_server: Server, too_large: Prepared) -> None:
    server = small_server
    prepared = too_large
    resp = server.send(prepared)  # with Content-Length: refused before the body is read
    body = assert_http_error(server, resp, 413, "InvalidParameter.TooLarge", logged=False)
    assert str(SMALLEST_LIMIT) in body["Message"]

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(prepared.body), MiB):
            yield prepared.body[i : i + MiB]

    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=60) as http:
        chunked = http.post(prepared.url, headers=prepared.headers, content=chunks())
    assert "content-length" not in chunked.request.headers
    assert_http_error(server, chunked, 413, "InvalidParameter.TooLarge", logged=False)

    # the server is fine afterwards
    _list_users_ok(server.send(server.admin.signer(server).v3("ListUsers")))


@pytest.mark.parametrize("flavor", NEW_SDK_FLAVORS)
def test_new_sdk_raises_client_exception_on_413(small_server: Server, flavor: Flavor) -> None:
    server = small_server
    client = new_sdk(server, server.admin, v1=flavor == "v1")
    request = OpenApiRequest(query={}, body={"Param": "x" * (17 * MiB)})
    with pytest.raises(ClientException) as caught:
        client.call_api(_generic("ListUsers"), request, RuntimeOptions())
    failure = failure_of(caught.value)
    assert (failure.status, failure.code) == (413, "InvalidParameter.TooLarge")
    assert REQUEST_ID.match(failure.request_id)


def test_413_is_logged_with_its_request_id(small_server: Server, too_large: Prepared) -> None:
    """The 413 is answered before the gateway pipeline runs, and logged with its RequestId like
    every pipeline error."""
    server = small_server
    resp = server.send(too_large)
    assert_http_error(server, resp, 413, "InvalidParameter.TooLarge", logged=True)


def test_query_string_over_the_limit_gets_a_json_refusal(small_server: Server) -> None:
    """A request line a little over the limit is refused like an oversized body: JSON with Code,
    RequestId, HostId, Message, which the SDKs can parse (dms-api.md C.3). The HTTP layer takes
    lines up to the limit + 1 MiB so that the app gets to say so; beyond that uvicorn's
    plain-text 400 is all a client gets."""
    server = small_server
    param = param_for_query_of(SMALLEST_LIMIT + MiB // 4)
    prepared = server.admin.signer(server).v3("ListUsers", {"Param": param})
    assert len(prepared.url) > SMALLEST_LIMIT
    try:
        resp = server.send_raw(prepared)
    except (OSError, http.client.HTTPException) as exc:
        pytest.fail(f"the connection failed instead of a JSON refusal: {exc!r}")
    assert resp.status_code in (400, 413, 414), (resp.status_code, resp.text[:300])
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.text[:300]
    body = resp.json()
    assert body["Code"] == "InvalidParameter.TooLarge", body
    assert REQUEST_ID.match(body["RequestId"]), body
