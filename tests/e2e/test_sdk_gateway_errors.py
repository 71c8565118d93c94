"""Gateway errors over real HTTP (dms-api.md C.2, C.3, D): what each SDK raises for bad keys,
foreign tenants, RAM denials, replays, skewed clocks, unknown actions and throttling, and that
every error body is well-formed JSON whose RequestId the server logged."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models
from alibabacloud_tea_openapi.exceptions import ClientException, ThrottlingException
from alibabacloud_tea_openapi.utils_models import OpenApiRequest, Params
from aliyunsdkcore.acs_exception.exceptions import ServerException as OldServerException
from aliyunsdkcore.request import CommonRequest
from darabonba.runtime import RuntimeOptions

from tests.e2e.conftest import (
    FLAVORS,
    NEW_SDK_FLAVORS,
    REQUEST_ID,
    Creds,
    Dms,
    Failure,
    Flavor,
    Server,
    assert_failure,
    assert_http_error,
    failure_of,
    new_sdk,
    old_sdk,
    running_server,
)
from tests.signer import now_stamp

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

DENY_LIST_USERS = json.dumps(
    {
        "Version": "1",
        "Statement": [{"Effect": "Deny", "Action": ["dms:ListUsers"], "Resource": "*"}],
    }
)
ALLOW_REGISTER = json.dumps(
    {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["dms:RegisterUser"], "Resource": "*"}],
    }
)


def _ok(body: Any) -> None:
    assert body.success is True, body.to_map()
    assert REQUEST_ID.match(body.request_id)


# ------------------------------------------------------------------ access keys


@pytest.mark.parametrize("flavor", NEW_SDK_FLAVORS)
def test_wrong_secret(server: Server, flavor: Flavor) -> None:
    failure = Dms(server, server.admin, flavor, secret="not-the-secret").fail("GetUser")
    assert isinstance(failure.exc, ClientException)
    assert_failure(server, failure, 400, "SignatureDoesNotMatch")
    # the SDK's own message format (dms-api.md C.3)
    assert failure.exc.message == (
        f"code: 400, {failure.body['Message'] if failure.body else ''} "
        f"request id: {failure.request_id}"
    )


def test_old_sdk_wrong_secret_reports_signature_mismatch(server: Server) -> None:
    """aliyunsdkcore's client, on a 400 SignatureDoesNotMatch, does
    ``server_error_message.split(':')[1]`` to compare the server's string-to-sign with its own
    (Alibaba's message ends ``... server string to sign is:<StringToSign>``); without that suffix
    it crashes with IndexError. Expected: a ServerException with code SignatureDoesNotMatch (or
    InvalidAccessKeySecret, which the old SDK substitutes when the strings to sign agree)."""
    dms = Dms(server, server.admin, "old", secret="not-the-secret")
    try:
        failure = dms.fail("GetUser")
    except IndexError as exc:
        pytest.fail(
            "aliyunsdkcore crashed with IndexError on the SignatureDoesNotMatch message "
            f"(it expects 'server string to sign is:<StringToSign>'): {exc!r}"
        )
    assert failure.status == 400
    assert failure.code in ("SignatureDoesNotMatch", "InvalidAccessKeySecret"), failure
    server.log_line(failure.request_id)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_unknown_access_key(server: Server, flavor: Flavor) -> None:
    stranger = Creds(server.admin.tid, "1", "ODMSnoSuchKeyAtAll000000", "whatever")
    assert_failure(
        server, Dms(server, stranger, flavor).fail("GetUser"), 404, "InvalidAccessKeyId.NotFound"
    )


def test_revoked_key_is_refused(server: Server) -> None:
    user = server.create_user("USER")
    for flavor in FLAVORS:
        _ok(Dms(server, user, flavor).call("GetUser"))
    server.cli("key", "revoke", user.access_key_id)
    for flavor in FLAVORS:
        failure = Dms(server, user, flavor).fail("GetUser")
        assert_failure(server, failure, 400, "InvalidAccessKeyId.Inactive")
    # the administrator's key is unaffected
    _ok(Dms(server, server.admin, "v3").call("GetUser"))


def test_disabled_user_key_stops_on_the_very_next_call(server: Server) -> None:
    user = server.create_user("USER")
    admin = Dms(server, server.admin, "v3")
    clients = {f: Dms(server, user, f) for f in FLAVORS}
    for dms in clients.values():
        _ok(dms.call("GetUser"))

    # through the API
    _ok(admin.call("DisableUser", uid=user.uid))
    for dms in clients.values():
        assert_failure(server, dms.fail("GetUser"), 400, "InvalidAccessKeyId.Inactive")
    _ok(admin.call("EnableUser", uid=user.uid))
    for dms in clients.values():
        _ok(dms.call("GetUser"))

    # through the operator's CLI, while the server keeps running
    server.cli("user", "disable", user.uid)
    assert_failure(server, clients["v3"].fail("ListUsers"), 400, "InvalidAccessKeyId.Inactive")
    server.cli("user", "enable", user.uid)
    _ok(clients["v3"].call("ListUsers"))


# ------------------------------------------------------------------ tenants


@dataclass(frozen=True)
class TenantB:
    tid: int
    admin: Creds


@pytest.fixture(scope="module")
def tenant_b(server: Server) -> TenantB:
    tid = server.create_tenant("tenant-b")
    return TenantB(tid, server.create_user("ADMIN", tid=tid, nick="admin-b"))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_tid_of_a_foreign_tenant_is_forbidden(
    server: Server, tenant_b: TenantB, flavor: Flavor
) -> None:
    admin_a = Dms(server, server.admin, flavor)
    for tid in (tenant_b.tid, 987_654):  # somebody else's tenant; no tenant at all
        failure = admin_a.fail("ListUsers", tid=tid)
        assert_failure(server, failure, 403, "Forbidden.Tenant")
    # Tid of one's own tenant, and the documented "-1" (= active), are fine
    _ok(admin_a.call("ListUsers", tid=server.admin.tid))
    _ok(admin_a.call("ListUsers", tid=-1))


@pytest.mark.parametrize("flavor", FLAVORS)
def test_tenant_isolation(server: Server, tenant_b: TenantB, flavor: Flavor) -> None:
    """An ADMIN of tenant B can neither see nor change users of tenant A, whatever it passes."""
    admin_a = Dms(server, server.admin, "v3")
    victim_uid = str(7_400_000_000_000_000 + FLAVORS.index(flavor))
    _ok(admin_a.call("RegisterUser", uid=victim_uid, user_nick=f"victim-{flavor}"))
    victim = admin_a.call("GetUser", uid=victim_uid).user

    b = Dms(server, tenant_b.admin, flavor)
    for selector in ({"user_id": victim.user_id}, {"uid": victim_uid}):
        body = b.call("GetUser", **selector)
        assert (body.success, body.error_code) == (False, "UserNotFound"), body.to_map()
        assert body.user is None
        assert_failure(
            server, b.fail("GetUser", tid=server.admin.tid, **selector), 403, "Forbidden.Tenant"
        )

    listed = b.call("ListUsers", page_size=100)
    _ok(listed)
    assert victim_uid not in [u.uid for u in listed.user_list.user]
    assert b.call("ListUsers", search_key=f"victim-{flavor}").total_count == 0
    assert_failure(server, b.fail("ListUsers", tid=server.admin.tid), 403, "Forbidden.Tenant")

    for action in ("DisableUser", "DeleteUser"):
        body = b.call(action, uid=victim_uid)
        assert (body.success, body.error_code) == (False, "UserNotFound"), body.to_map()
        assert_failure(
            server, b.fail(action, uid=victim_uid, tid=server.admin.tid), 403, "Forbidden.Tenant"
        )
    body = b.call("UpdateUser", uid=int(victim_uid), user_nick="pwned", role_names="ADMIN")
    assert (body.success, body.error_code) == (False, "UserNotFound"), body.to_map()
    assert_failure(
        server,
        b.fail("UpdateUser", uid=int(victim_uid), user_nick="pwned", tid=server.admin.tid),
        403,
        "Forbidden.Tenant",
    )
    assert_failure(
        server,
        b.fail("RegisterUser", uid="7499999999999999", tid=server.admin.tid),
        403,
        "Forbidden.Tenant",
    )

    after = admin_a.call("GetUser", uid=victim_uid).user
    assert after.to_map() == victim.to_map()  # untouched


# ------------------------------------------------------------------ RAM


@pytest.fixture(scope="module")
def plain_user(server: Server) -> Creds:
    return server.create_user("USER", nick="plain")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_regular_user_cannot_manage_users(
    server: Server, plain_user: Creds, flavor: Flavor
) -> None:
    dms = Dms(server, plain_user, flavor)
    refusals: list[Failure] = [
        dms.fail("RegisterUser", uid="7500000000000001"),
        dms.fail("DisableUser", uid=server.admin.uid),
        dms.fail("EnableUser", uid=server.admin.uid),
        dms.fail("DeleteUser", uid=server.admin.uid),
        dms.fail("UpdateUser", uid=int(plain_user.uid), role_names="ADMIN"),
    ]
    for failure in refusals:
        assert_failure(server, failure, 403, "Forbidden.RAM")
    if flavor != "old":
        assert "dms:RegisterUser" in str(refusals[0].body)

    listed = dms.call("ListUsers")
    _ok(listed)
    assert listed.total_count >= 2
    _ok(dms.call("GetUser"))
    _ok(dms.call("GetUserActiveTenant"))
    admin = Dms(server, server.admin, "v3")
    assert admin.call("GetUser").user.state == "NORMAL"
    refused = admin.call("GetUser", uid="7500000000000001")
    assert refused.error_code == "UserNotFound"  # nothing was registered


def test_deny_policy_takes_effect_on_the_next_call(server: Server) -> None:
    user = server.create_user("USER", nick="to-be-denied")
    clients = [Dms(server, user, f) for f in FLAVORS]
    for dms in clients:
        _ok(dms.call("ListUsers"))
    server.cli("policy", "attach", user.uid, DENY_LIST_USERS, "--name", "no-listing")
    for dms in clients:
        failure = dms.fail("ListUsers")
        assert_failure(server, failure, 403, "Forbidden.RAM")
        _ok(dms.call("GetUser"))  # everything else the USER role allows still works
    server.cli("policy", "detach", user.uid, "no-listing")
    _ok(clients[0].call("ListUsers"))


def test_allow_policy_lets_a_user_register_users_but_not_admins(server: Server) -> None:
    registrar = server.create_user("USER", nick="registrar")
    v3 = Dms(server, registrar, "v3")
    assert_failure(server, v3.fail("RegisterUser", uid="7600000000000001"), 403, "Forbidden.RAM")
    server.cli("policy", "attach", registrar.uid, ALLOW_REGISTER, "--name", "may-register")

    for i, flavor in enumerate(FLAVORS):
        dms = Dms(server, registrar, flavor)
        uid = str(7_600_000_000_000_010 + i)
        _ok(dms.call("RegisterUser", uid=uid, user_nick=f"recruit-{flavor}"))
        user = dms.call("GetUser", uid=uid).user
        assert (user.nick_name, user.role_name_list.role_names) == (f"recruit-{flavor}", ["USER"])
        assert user.parent_uid == int(registrar.uid)

        for roles in ("ADMIN", "SECURITY_ADMIN", "USER,ADMIN"):
            body = dms.call("RegisterUser", uid=str(7_600_000_000_000_100 + i), role_names=roles)
            assert (body.success, body.error_code) == (False, "PermissionDenied"), body.to_map()
            assert body.error_message
        # the policy allows RegisterUser only
        assert_failure(server, dms.fail("DisableUser", uid=uid), 403, "Forbidden.RAM")

    admin = Dms(server, server.admin, "v3")
    assert admin.call("GetUser", uid="7600000000000100").error_code == "UserNotFound"


# ------------------------------------------------------------------ signatures, clocks, replays


@pytest.mark.parametrize("scheme", ["v1", "v3"])
def test_replayed_request_is_refused(server: Server, scheme: str) -> None:
    signer = server.admin.signer(server)
    prepared = (
        signer.v1("ListUsers", {"PageSize": "20"})
        if scheme == "v1"
        else signer.v3("ListUsers", {"PageSize": "20"})
    )
    first = server.send(prepared)
    assert first.status_code == 200, first.text
    assert first.json()["Success"] is True
    again = server.send(prepared)
    body = assert_http_error(server, again, 400, "SignatureNonceUsed")
    assert body["HostId"] == server.endpoint
    # a fresh nonce is fine
    fresh = signer.v1("ListUsers") if scheme == "v1" else signer.v3("ListUsers")
    assert server.send(fresh).status_code == 200


@pytest.mark.parametrize("scheme", ["v1", "v3"])
@pytest.mark.parametrize("shift_minutes", [-16, 16])
def test_skewed_clock_is_refused(server: Server, scheme: str, shift_minutes: int) -> None:
    signer = server.admin.signer(server)
    stamp = now_stamp(shift_minutes * 60)
    prepared = (
        signer.v1("GetUser", timestamp=stamp)
        if scheme == "v1"
        else signer.v3("GetUser", timestamp=stamp)
    )
    assert_http_error(server, server.send(prepared), 400, "InvalidTimeStamp.Expired")
    inside = now_stamp((abs(shift_minutes) - 2) * 60 * (1 if shift_minutes > 0 else -1))
    prepared = (
        signer.v1("GetUser", timestamp=inside)
        if scheme == "v1"
        else signer.v3("GetUser", timestamp=inside)
    )
    assert server.send(prepared).status_code == 200


@pytest.mark.parametrize(
    ("scheme", "stamp"),
    [("v1", "yesterday"), ("v1", "2026-11-27 10:00:00"), ("v3", "1764237600"), ("v3", "")],
)
def test_malformed_timestamp(server: Server, scheme: str, stamp: str) -> None:
    signer = server.admin.signer(server)
    if scheme == "v1":
        prepared = signer.v1("GetUser", override={"Timestamp": stamp})
    else:
        prepared = signer.v3("GetUser")
        prepared.headers["x-acs-date"] = stamp
    assert_http_error(server, server.send(prepared), 400, "InvalidTimeStamp.Format")


def _without_query_param(url: str, name: str) -> str:
    path, _, query = url.partition("?")
    return path + "?" + urlencode([(k, v) for k, v in parse_qsl(query) if k != name])


def test_incomplete_signatures(server: Server) -> None:
    signer = server.admin.signer(server)
    v1_no_key = signer.v1("GetUser", drop=("AccessKeyId",))
    v1_no_signature = signer.v1("GetUser")
    v1_no_signature.url = _without_query_param(v1_no_signature.url, "Signature")
    v3_unsigned_date = signer.v3("GetUser", unsigned=("x-acs-date",))
    v3_no_signature = signer.v3("GetUser")
    v3_no_signature.headers["authorization"] = v3_no_signature.headers["authorization"].rsplit(
        ",Signature=", 1
    )[0]
    v3_missing_signed_header = signer.v3("GetUser")
    del v3_missing_signed_header.headers["x-acs-signature-nonce"]
    for prepared in (
        v1_no_key,
        v1_no_signature,
        v3_unsigned_date,
        v3_no_signature,
        v3_missing_signed_header,
    ):
        assert_http_error(server, server.send(prepared), 400, "IncompleteSignature")


# ------------------------------------------------------------------ actions and versions


def _rpc_params(action: str, version: str) -> Params:
    return Params(
        action=action,
        version=version,
        protocol="HTTP",
        pathname="/",
        method="POST",
        auth_type="AK",
        style="RPC",
        req_body_type="formData",
        body_type="json",
    )


def _generic_call(server: Server, flavor: Flavor, action: str, version: str) -> Failure:
    """A call the typed SDK cannot make: through the new SDK's call_api, or the old SDK's
    CommonRequest."""
    if flavor == "old":
        request = CommonRequest(
            domain=server.endpoint, version=version, action_name=action, product="dms-enterprise"
        )
        request.set_method("POST")
        request.set_protocol_type("http")
        try:
            old_sdk(server.admin).do_action_with_exception(request)
        except OldServerException as exc:
            return failure_of(exc)
        pytest.fail(f"{action} {version} succeeded")
    client = new_sdk(server, server.admin, v1=flavor == "v1")
    try:
        client.call_api(_rpc_params(action, version), OpenApiRequest(query={}), RuntimeOptions())
    except ClientException as exc:
        return failure_of(exc)
    pytest.fail(f"{action} {version} succeeded")


@pytest.mark.parametrize("flavor", FLAVORS)
def test_unknown_action(server: Server, flavor: Flavor) -> None:
    failure = _generic_call(server, flavor, "DescribeNoSuchThing", "2018-11-01")
    assert_failure(server, failure, 404, "InvalidAction.NotFound")
    if failure.body is not None:
        assert "DescribeNoSuchThing" in failure.body["Message"]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_wrong_version(server: Server, flavor: Flavor) -> None:
    failure = _generic_call(server, flavor, "GetUser", "2099-01-01")
    assert_failure(server, failure, 400, "InvalidVersion")
    if failure.body is not None:
        assert "2018-11-01" in failure.body["Message"]


def test_generic_call_of_a_known_action_succeeds(server: Server) -> None:
    """The control for the two tests above: call_api itself works against the server."""
    client = new_sdk(server, server.admin)
    params = _rpc_params("GetUserActiveTenant", "2018-11-01")
    result = client.call_api(params, OpenApiRequest(query={}), RuntimeOptions())
    assert result["statusCode"] == 200
    assert result["body"]["Tenant"]["Tid"] == server.admin.tid


def test_unknown_path_gets_a_json_error(server: Server) -> None:
    with httpx.Client(base_url=server.base_url, trust_env=False) as http:
        for method, path in (("GET", "/console/nothing"), ("POST", "/v1/orders")):
            resp = http.request(method, path)
            body = assert_http_error(server, resp, 404, "InvalidAction.NotFound", logged=False)
            assert path in body["Message"]


def test_unknown_path_error_is_logged_with_its_request_id(server: Server) -> None:
    """Errors produced outside the RPC pipeline (no route: 404/405) are logged with their
    RequestId too, so every RequestId a client sees can be found in the server log."""
    with httpx.Client(base_url=server.base_url, trust_env=False) as http:
        resp = http.get("/console/nothing")
    assert_http_error(server, resp, 404, "InvalidAction.NotFound", logged=True)


# ------------------------------------------------------------------ throttling


@pytest.fixture(scope="module")
def throttled_server() -> Iterator[Server]:
    with running_server({"OPENDMS_RATE_LIMIT": "3"}) as s:
        yield s


@pytest.mark.parametrize("flavor", NEW_SDK_FLAVORS)
def test_throttling_raises_throttling_exception(throttled_server: Server, flavor: Flavor) -> None:
    server = throttled_server
    user = server.create_user("USER") if flavor == "v1" else server.admin  # one bucket each
    client = new_sdk(server, user, v1=flavor == "v1")
    admitted = 0
    throttled: list[ThrottlingException] = []
    for _ in range(10):
        try:
            resp = client.get_user(dms_models.GetUserRequest())
        except ThrottlingException as exc:
            throttled.append(exc)
        else:
            assert resp.body.success is True
            admitted += 1
    assert 3 <= admitted < 10, admitted
    assert throttled
    exc = throttled[0]
    assert exc.retry_after is not None and 0 < exc.retry_after <= 1000, exc.retry_after
    assert_failure(server, failure_of(exc), 400, "Throttling.User")

    # another action has its own bucket; after the advertised wait the action works again
    assert client.list_users(dms_models.ListUsersRequest()).body.success is True
    time.sleep(max(e.retry_after or 0 for e in throttled) / 1000 + 0.05)
    assert client.get_user(dms_models.GetUserRequest()).body.success is True


def test_throttling_over_raw_http_and_old_sdk(throttled_server: Server) -> None:
    server = throttled_server
    user = server.create_user("USER")
    signer = user.signer(server)
    statuses: list[int] = []
    limited = None
    for _ in range(10):
        resp = server.send(signer.v3("ListUserTenants"))
        statuses.append(resp.status_code)
        if resp.status_code != 200 and limited is None:
            limited = resp
    assert statuses[:3] == [200, 200, 200], statuses
    assert limited is not None, statuses
    assert_http_error(server, limited, 400, "Throttling.User")
    assert int(limited.headers["x-acs-retry-after"]) > 0

    old = Dms(server, user, "old")
    codes = []
    for _ in range(8):
        try:
            old.call("GetUserActiveTenant")
            codes.append("OK")
        except OldServerException as exc:
            assert exc.get_http_status() == 400
            codes.append(exc.get_error_code())
    assert "Throttling.User" in codes, codes
