"""``Gateway.call``: an action run for a console session goes through the rules a signed API
request does (rate limit, RAM policy, wire validation, the handler) and nothing that lets a
call act as somebody else."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import pytest
from argon2 import PasswordHasher

from opendms.errors import DmsError, ErrorCode
from opendms.gateway.errors import GatewayError
from opendms.gateway.ratelimit import TokenBuckets
from opendms.identity import passwords, service, sessions
from opendms.store.models import utcnow
from tests.conftest import Api

PASSWORD = "a long console password"
NO_LISTS = '{"Version":"1","Statement":[{"Effect":"Deny","Action":"dms:List*","Resource":"*"}]}'


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(1, 8, 1))


def session_of(api: Api, uid: str) -> sessions.Live:
    """A console session of ``uid``, as the site finds it for a request."""
    with api.store.session() as s:
        sessions.set_password(s, uid, PASSWORD)
        opened = sessions.sign_in(
            s, uid, PASSWORD, client_host="127.0.0.1", user_agent="t", now=utcnow()
        )
    return refreshed(api, opened.token)


def refreshed(api: Api, token: str) -> sessions.Live:
    with api.store.session() as s:
        found = sessions.live(s, token, utcnow())
    assert found is not None
    return found


def call(api: Api, live: sessions.Live, action: str, **params: str) -> Any:
    run = partial(
        api.app.gateway.call,
        live.caller,
        live.auth_version,
        action,
        params,
        origin="https://testserver",
    )
    assert api.client.portal is not None
    return api.client.portal.call(run)


def refusal(api: Api, live: sessions.Live, action: str, **params: str) -> Exception:
    with pytest.raises((GatewayError, DmsError)) as err:
        call(api, live, action, **params)
    return err.value


def test_the_same_answer_as_the_api_gives(api: Api) -> None:
    admin = session_of(api, api.admin_uid)
    for action, params in (
        ("GetUser", {}),
        ("GetUserActiveTenant", {}),
        ("ListUsers", {"PageSize": "5"}),
    ):
        wire = api.call(action, **params).json()
        assert wire.pop("Success") is True
        wire.pop("RequestId")
        assert call(api, admin, action, **params) == wire


def test_a_ram_policy_that_denies_an_action_is_forbidden(api: Api) -> None:
    uid, signer = api.new_user("USER")
    user = session_of(api, uid)
    assert call(api, user, "ListUsers")["TotalCount"] >= 1
    with api.store.session() as s:
        service.attach_policy(s, api.tid, uid, "no-lists", NO_LISTS, actor=None)
    user = refreshed(api, _token_of(api, uid))
    denied = refusal(api, user, "ListUsers")
    assert isinstance(denied, GatewayError)
    assert (denied.status, denied.code) == (403, "Forbidden.RAM")
    assert "dms:ListUsers" in denied.message
    # The API refuses it in the same words.
    wire = api.call("ListUsers", signer).json()
    assert (wire["Code"], wire["Message"]) == (denied.code, denied.message)
    # Other actions are still allowed; detached, the policy denies nothing any more.
    assert call(api, user, "GetUser")["User"]["Uid"] == uid
    with api.store.session() as s:
        service.detach_policy(s, api.tid, uid, "no-lists", actor=None)
    assert call(api, refreshed(api, _token_of(api, uid)), "ListUsers")["TotalCount"] >= 1


def test_a_roles_limits_hold_as_they_do_for_the_api(api: Api) -> None:
    uid, signer = api.new_user("STRUCT_READ_ONLY")
    reader = session_of(api, uid)
    for action, params in (
        ("RegisterUser", {"Uid": "5151"}),
        ("CreateDataCorrectOrder", {"Comment": "x", "Param": "{}"}),
    ):
        refused = refusal(api, reader, action, **params)
        assert isinstance(refused, GatewayError)
        wire = api.call(action, signer, **params).json()
        assert (refused.code, refused.message) == (wire["Code"], wire["Message"])
        assert refused.code == "Forbidden.RAM"


def test_a_wrong_parameter_names_its_field(api: Api) -> None:
    admin = session_of(api, api.admin_uid)
    cases = [
        ("ListUsers", {"PageSize": "abc"}, "InvalidPageSize", "PageSize"),
        ("ListUsers", {"PageSize": "1000"}, "InvalidPageSize", "PageSize"),
        ("RegisterUser", {}, "MissingUid", "Uid"),
        ("RegisterUser", {"Uid": "not-digits"}, "InvalidUid", "Uid"),
        (
            "CreateDataCorrectOrder",
            {"Comment": "x", "Param": "{}", "RelatedUserList": "[1, 0]"},
            "InvalidRelatedUserList",
            "RelatedUserList.1",
        ),
        ("CreateDataCorrectOrder", {"Comment": "x", "Param": "{nope"}, "InvalidParam", "Param"),
    ]
    for action, params, code, field in cases:
        err = refusal(api, admin, action, **params)
        assert isinstance(err, GatewayError), (action, params)
        assert (err.status, err.code, err.field) == (400, code, field)
        # The API's answer to the same parameters: the same code and words.
        wire = api.call(action, **params).json()
        assert (wire["Code"], wire["Message"]) == (err.code, err.message)


def test_a_business_rule_names_the_fields_inside_a_json_parameter(api: Api) -> None:
    admin = session_of(api, api.admin_uid)
    param = '{"DbItemList": [], "EstimateAffectRows": -1, "SqlType": "TEXT", "ExecSQL": "x"}'
    err = refusal(api, admin, "CreateDataCorrectOrder", Comment="x", Param=param)
    assert isinstance(err, DmsError)
    assert err.code == ErrorCode.INVALID_PARAMETER
    assert set(err.fields) == {"Param.DbItemList", "Param.EstimateAffectRows"}
    assert all(err.fields.values())
    wire = api.call("CreateDataCorrectOrder", Comment="x", Param=param).json()
    assert (wire["ErrorCode"], wire["ErrorMessage"]) == (err.code, err.message)


def test_real_login_user_uid_and_tid_are_not_honoured(api: Api) -> None:
    """A console session acts as its own user in its own tenant: the parameters that let a
    signed call act for another user or tenant are ignored."""
    other_uid, _ = api.new_user("USER")
    with api.store.session() as s:
        elsewhere = service.create_tenant(s, "elsewhere").tid
    admin = session_of(api, api.admin_uid)
    me = call(api, admin, "GetUser", RealLoginUserUid=other_uid)
    assert me["User"]["Uid"] == api.admin_uid
    # A signed call with the same parameter does act for that user (so the test means it).
    acted = api.call("GetUser", RealLoginUserUid=other_uid).json()
    assert acted["User"]["Uid"] == other_uid
    tenant = call(api, admin, "GetUserActiveTenant", Tid=str(elsewhere))
    assert tenant["Tenant"]["Tid"] == api.tid


def test_the_rate_limit_holds_per_user(api: Api) -> None:
    # One call a second, and a clock that does not move: the second call finds no token.
    api.app.gateway.limiter = TokenBuckets(1.0, clock=lambda: 1000.0)
    admin = session_of(api, api.admin_uid)
    uid, _ = api.new_user("USER")
    user = session_of(api, uid)
    assert call(api, admin, "GetUser")
    throttled = refusal(api, admin, "GetUser")
    assert isinstance(throttled, GatewayError)
    assert (throttled.status, throttled.code) == (400, "Throttling.User")
    assert int(throttled.headers["x-acs-retry-after"]) > 0
    assert call(api, admin, "ListUsers")  # per action, as the API's buckets are
    assert call(api, user, "GetUser")  # and per user
    # The API's bucket is the access key's own: the console spent none of it.
    assert api.call("GetUser").json()["Success"] is True


def test_an_unknown_parameter_is_ignored_as_the_api_ignores_it(api: Api) -> None:
    admin = session_of(api, api.admin_uid)
    assert call(api, admin, "GetUser", NoSuchParameter="x")["User"]["Uid"] == api.admin_uid


def _token_of(api: Api, uid: str) -> str:
    """A fresh session's token for ``uid`` (its password is already set)."""
    with api.store.session() as s:
        return sessions.sign_in(
            s, uid, PASSWORD, client_host="127.0.0.1", user_agent="t", now=utcnow()
        ).token


def test_each_call_is_logged_as_an_api_request_is(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    admin = session_of(api, api.admin_uid)
    with caplog.at_level(logging.INFO, logger="opendms.gateway"):
        call(api, admin, "GetUser")
        refusal(api, admin, "ListUsers", PageSize="abc")
        refusal(api, admin, "GetUser", Uid="987654")
    lines = [r.getMessage() for r in caplog.records if "via=console" in r.getMessage()]
    assert len(lines) == 3
    for line, action, status, code in zip(
        lines,
        ("GetUser", "ListUsers", "GetUser"),
        (200, 400, 200),
        ("OK", "InvalidPageSize", "UserNotFound"),
        strict=True,
    ):
        assert f"action={action} status={status} code={code} " in line
        assert f"user={api.admin_uid}" in line
