"""The gateway's answers to good and bad calls, in process (no sockets)."""

from __future__ import annotations

import re

from tests.conftest import Api
from tests.signer import Signer, now_stamp

REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")


def _error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["Code"] == code, body
    assert REQUEST_ID.match(body["RequestId"])
    assert body["HostId"] and body["Message"]
    return body


def test_v1_and_v3_signed_calls_succeed(api: Api) -> None:
    for prepared in (api.admin.v1("GetUserActiveTenant"), api.admin.v3("GetUserActiveTenant")):
        resp = api.send(prepared)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["Success"] is True
        assert REQUEST_ID.match(body["RequestId"])
        assert body["Tenant"] == {"Tid": api.tid, "TenantName": "default", "Status": "ACTIVE"}


def test_v1_signs_form_body_parameters(api: Api) -> None:
    resp = api.send(api.admin.v1("ListUsers", {"PageSize": "20"}, {"SearchKey": "admin"}))
    assert resp.json()["TotalCount"] == 1
    # the same body with a changed value no longer matches the signature
    prepared = api.admin.v1("ListUsers", {"PageSize": "20"}, {"SearchKey": "admin"})
    prepared.body = prepared.body.replace(b"admin", b"other")
    _error(api.send(prepared), 400, "SignatureDoesNotMatch")


def test_v3_body_hash_is_checked(api: Api) -> None:
    prepared = api.admin.v3("ListUsers", form={"SearchKey": "admin"}, body_override=b"SearchKey=x")
    _error(api.send(prepared), 400, "SignatureDoesNotMatch")


def test_unknown_action_and_version(api: Api) -> None:
    _error(api.send(api.admin.v3("NoSuchAction")), 404, "InvalidAction.NotFound")
    bad = Signer(api.admin.access_key_id, api.admin.secret, version="2099-01-01")
    _error(api.send(bad.v3("GetUser")), 400, "InvalidVersion")
    _error(api.client.get("/console/nothing"), 404, "InvalidAction.NotFound")


def test_missing_action_and_version(api: Api) -> None:
    _error(api.client.post("/"), 400, "MissingAction")
    _error(api.client.post("/?Action=GetUser"), 400, "MissingVersion")


def test_unknown_and_inactive_access_key(api: Api) -> None:
    stranger = Signer("ODMSnosuchkey000000000000", "x")
    _error(api.send(stranger.v3("GetUser")), 404, "InvalidAccessKeyId.NotFound")
    from opendms.identity import service

    with api.store.session() as s:
        service.set_access_key_status(s, api.admin.access_key_id, active=False, actor=None)
    _error(api.send(api.admin.v1("GetUser")), 400, "InvalidAccessKeyId.Inactive")


def test_wrong_secret(api: Api) -> None:
    _error(api.send(api.admin.v1("GetUser", secret="wrong")), 400, "SignatureDoesNotMatch")
    _error(api.send(api.admin.v3("GetUser", secret="wrong")), 400, "SignatureDoesNotMatch")


def test_incomplete_signatures(api: Api) -> None:
    _error(api.send(api.admin.v1("GetUser", drop=("AccessKeyId",))), 400, "IncompleteSignature")
    _error(api.send(api.admin.v3("GetUser", unsigned=("x-acs-date",))), 400, "IncompleteSignature")
    prepared = api.admin.v3("GetUser")
    prepared.headers["authorization"] = "ACS3-HMAC-SHA256 garbage"
    _error(api.send(prepared), 400, "IncompleteSignature")
    prepared = api.admin.v1("GetUser", override={"SignatureMethod": "HMAC-MD5"})
    _error(api.send(prepared), 400, "InvalidSignatureMethod")


def test_timestamps(api: Api) -> None:
    _error(api.send(api.admin.v1("GetUser", timestamp="yesterday")), 400, "InvalidTimeStamp.Format")
    _error(
        api.send(api.admin.v3("GetUser", timestamp="2026-11-27 10:00:00")),
        400,
        "InvalidTimeStamp.Format",
    )
    old = now_stamp(-16 * 60)
    _error(api.send(api.admin.v1("GetUser", timestamp=old)), 400, "InvalidTimeStamp.Expired")
    future = now_stamp(16 * 60)
    _error(api.send(api.admin.v3("GetUser", timestamp=future)), 400, "InvalidTimeStamp.Expired")
    # inside the window both ways is fine
    assert api.send(api.admin.v3("GetUser", timestamp=now_stamp(-14 * 60))).status_code == 200
    assert api.send(api.admin.v1("GetUser", timestamp=now_stamp(14 * 60))).status_code == 200


def test_replayed_nonce_is_refused(api: Api) -> None:
    prepared = api.admin.v3("GetUser", nonce="fixed-nonce-1")
    assert api.send(prepared).status_code == 200
    _error(api.send(prepared), 400, "SignatureNonceUsed")
    v1 = api.admin.v1("GetUser", nonce="fixed-nonce-2")
    assert api.send(v1).status_code == 200
    _error(api.send(v1), 400, "SignatureNonceUsed")


def test_failed_signature_does_not_burn_the_nonce(api: Api) -> None:
    _error(
        api.send(api.admin.v3("GetUser", nonce="n-3", secret="bad")), 400, "SignatureDoesNotMatch"
    )
    assert api.send(api.admin.v3("GetUser", nonce="n-3")).status_code == 200


def test_missing_and_invalid_business_parameters(api: Api) -> None:
    _error(api.call("RegisterUser"), 400, "MissingUid")
    _error(api.call("RegisterUser", Uid="not-digits"), 400, "InvalidUid")
    _error(api.call("ListUsers", PageSize="abc"), 400, "InvalidPageSize")
    _error(api.call("ListUsers", PageSize="1000"), 400, "InvalidPageSize")
    _error(api.call("ListUsers", Role="KING"), 400, "InvalidRole")
    _error(api.call("GetUser", Tid="x"), 400, "InvalidTid")
    _error(api.call("UpdateUser", UserNick="x"), 400, "MissingUid")


def test_duplicate_parameter_and_bad_utf8(api: Api) -> None:
    prepared = api.admin.v1("GetUser", {"Uid": "1"}, {"Uid": "2"})
    _error(api.send(prepared), 400, "InvalidParameter")
    resp = api.client.post("/?Action=GetUser&Version=2018-11-01&Uid=%ff%fe")
    _error(resp, 400, "InvalidParameter")


def test_business_error_is_http_200(api: Api) -> None:
    resp = api.call("GetUser", UserId="999999")
    assert resp.status_code == 200
    body = resp.json()
    assert body["Success"] is False
    assert body["ErrorCode"] == "UserNotFound"
    assert "999999" in body["ErrorMessage"]
    assert REQUEST_ID.match(body["RequestId"])


def test_throttling_sets_retry_after(make_api) -> None:
    api = make_api(rate_limit=2)
    codes = [api.call("GetUser").status_code for _ in range(4)]
    assert codes[:2] == [200, 200]
    resp = api.call("GetUser")
    body = _error(resp, 400, "Throttling.User")
    assert int(resp.headers["x-acs-retry-after"]) > 0
    assert body["Message"]
    # another action has its own bucket
    assert api.call("ListUsers").status_code == 200


def test_security_token_is_refused(api: Api) -> None:
    prepared = api.admin.v1("GetUser", {"SecurityToken": "sts"})
    _error(api.send(prepared), 400, "InvalidSecurityToken.NotSupported")


def test_xml_format_is_refused(api: Api) -> None:
    prepared = api.admin.v1("GetUser", override={"Format": "XML"})
    _error(api.send(prepared), 400, "InvalidParameter.Format")


def test_unexpected_failure_is_a_json_internal_error_with_a_logged_request_id(
    api: Api, monkeypatch, caplog
) -> None:
    from opendms.identity import service

    def boom(*_args, **_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service, "list_users", boom)
    with caplog.at_level("INFO", logger="opendms"):
        resp = api.call("ListUsers")
    body = _error(resp, 500, "InternalError")
    assert "disk on fire" not in resp.text  # no internals leak to the caller
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"request_id={body['RequestId']}" in logged
    assert any(r.exc_info for r in caplog.records)  # the traceback is in the server log


def test_store_free_action_cannot_touch_the_store(api: Api) -> None:
    import pytest

    from opendms.gateway.table import Context
    from opendms.identity.caller import Caller
    from opendms.identity.roles import Role

    services = api.client.app.means
    ctx = Context(Caller("AK", "1", 1, 1, "t", (Role.USER,)), services)
    with pytest.raises(RuntimeError, match="blocking=False"):
        _ = ctx.session


def test_get_method_is_accepted(api: Api) -> None:
    resp = api.send(api.admin.v1("GetUserActiveTenant", method="GET"))
    assert resp.status_code == 200, resp.text
    resp = api.send(api.admin.v3("GetUserActiveTenant", method="GET"))
    assert resp.status_code == 200, resp.text


def test_locked_or_unreachable_store_is_a_503(api: Api, monkeypatch) -> None:
    import sqlite3

    gateway = api.client.app.gateway

    async def locked(*_args, **_kwargs):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(gateway.credentials, "admit", locked)
    body = _error(api.call("ListUsers"), 503, "ServiceUnavailable")
    assert "locked" not in body["Message"]
