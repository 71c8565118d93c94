"""Our signature verifier agrees with the official SDKs' own signers, byte for byte.

Signatures are computed with the code installed from the SDK packages themselves:

* new SDK, V1 (``signature_algorithm='v2'``): ``alibabacloud_tea_openapi.utils.Utils``
  ``.get_rpcsignature``
* new SDK, V3 (the default): ``Utils.get_authorization`` (ACS3-HMAC-SHA256)
* old SDK (``aliyun-python-sdk-core``), V1: ``rpc_signature_composer.get_signed_url``

and compared with ``opendms.gateway.signing``. The last tests run the SDK clients' whole
request pipeline against the in-process app (only the socket is replaced), so whatever the SDKs
add on the way (headers, encodings, ``SignatureType=``) is covered too.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from alibabacloud_dms_enterprise20181101 import models as sdk_models
from alibabacloud_dms_enterprise20181101.client import Client as SdkClient
from alibabacloud_tea_openapi.utils import Utils
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.auth.composer import rpc_signature_composer
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.http.http_response import HttpResponse
from darabonba.core import DaraCore
from darabonba.request import DaraRequest
from darabonba.runtime import RuntimeOptions

from opendms.gateway import signing
from tests.conftest import Api, route_new_sdk_to
from tests.signer import now_stamp

SECRET = "testSecretKEY0123456789abcdef"
ACCESS_KEY = "ODMStestaccesskey0000000"
TRICKY = "* ~ ' ( ) ! + /"

# Business parameters worth signing: non-ASCII, RFC 3986 reserved and "sub-delims" that the
# various URL encoders disagree on, spaces, empty values, and characters that look like syntax.
VALUE_CASES: dict[str, dict[str, str]] = {
    "ascii": {"SearchKey": "admin", "PageSize": "20"},
    "latin1": {"SearchKey": "héllo wörld"},
    "cjk": {"UserNick": "中文", "SearchKey": "数据库"},
    "tricky": {"SearchKey": TRICKY},
    "each-tricky": {f"K{i}": ch for i, ch in enumerate("*~'()!+/")},
    "spaces": {"SearchKey": "  two  spaces  ", "UserNick": " "},
    "empty": {"SearchKey": "", "UserNick": ""},
    "syntax": {"SearchKey": "a=b&c=d?e#f%20g%", "Mobile": "+86 138-0000-0000"},
    "emoji-newline": {"UserNick": "😀 line1\nline2\ttab"},
    "flattened": {"Param.1": "a", "Param.2.Name": "b", "Tags.1.Key": "k v"},  # repeat lists
    "json": {"Param": json.dumps({"k": ["v", 1, None], "s": "中 *"}, ensure_ascii=False)},
    "long": {"Comment": "x" * 5000 + "é" * 100},  # not a ListUsers field: signed, then ignored
}
CASES = pytest.mark.parametrize("business", VALUE_CASES.values(), ids=VALUE_CASES.keys())
METHODS = pytest.mark.parametrize("method", ["GET", "POST"])


def _v1_params(business: dict[str, str], action: str = "ListUsers") -> dict[str, str]:
    """The system parameters exactly as the new SDK's ``do_rpcrequest`` sets them."""
    return {
        "Action": action,
        "Format": "json",
        "Version": "2018-11-01",
        "Timestamp": now_stamp(),
        "SignatureNonce": uuid.uuid4().hex,
        **business,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
        "AccessKeyId": ACCESS_KEY,
    }


# ------------------------------------------------------------------ V1, new SDK


@CASES
@METHODS
def test_v1_matches_new_sdk_rpc_signature(business: dict[str, str], method: str) -> None:
    params = _v1_params(business)
    expected = Utils.get_rpcsignature(params, method, SECRET)
    assert signing.v1_signature(SECRET, method, params) == expected


def test_v1_new_sdk_skips_none_values_like_absent_ones() -> None:
    params = _v1_params({"SearchKey": "x"})
    with_none: dict[str, Any] = {**params, "Role": None}
    assert Utils.get_rpcsignature(with_none, "POST", SECRET) == signing.v1_signature(
        SECRET, "POST", params
    )


# ------------------------------------------------------------------ V1, old SDK


@CASES
@METHODS
def test_v1_matches_old_sdk_signature_composer(business: dict[str, str], method: str) -> None:
    query = {"Action": "ListUsers", "Version": "2018-11-01", "RegionId": "cn-hangzhou"}
    query.update({k: v for k, v in business.items() if not k.startswith("K")})
    body = {k: v for k, v in business.items() if k.startswith("K")}  # some ride in the body
    url, string_to_sign = rpc_signature_composer.get_signed_url(
        dict(query), ACCESS_KEY, SECRET, "JSON", method, dict(body)
    )
    sent = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True, errors="strict"))
    given = sent.pop("Signature")
    signed = {**sent, **body}
    assert sent["SignatureType"] == ""  # the old SDK signs an empty SignatureType
    assert signing.v1_string_to_sign(method, signed) == string_to_sign
    assert signing.v1_signature(SECRET, method, signed) == given


# ------------------------------------------------------------------ V3, new SDK


def _v3_request(
    method: str, query: dict[str, str], body: bytes, extra_headers: dict[str, str] | None = None
) -> tuple[Any, str]:
    """A request shaped like the new SDK's ``do_request`` builds it, before signing."""
    payload_hash = hashlib.sha256(body).hexdigest()
    headers = {
        "host": "testserver",
        "x-acs-version": "2018-11-01",
        "x-acs-action": "ListUsers",
        "user-agent": "AlibabaCloud (Linux; x86_64) Python/3.11 Core/0.4.3 TeaDSL/2",
        "x-acs-date": now_stamp(),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "accept": "application/json",
        "x-acs-content-sha256": payload_hash,
        **(extra_headers or {}),
    }
    if body:
        headers["content-type"] = "application/x-www-form-urlencoded"
    request = SimpleNamespace(method=method, pathname="/", query=dict(query), headers=headers)
    return request, payload_hash


def _our_v3(request: Any, payload_hash: str, auth: signing.V3Authorization) -> str:
    canonical = signing.v3_canonical_request(
        request.method,
        request.pathname,
        request.query.items(),
        {k.lower(): v for k, v in request.headers.items()},
        auth.signed_headers,
        payload_hash,
    )
    return signing.v3_signature(SECRET, canonical)


@CASES
@METHODS
def test_v3_matches_new_sdk_authorization(business: dict[str, str], method: str) -> None:
    body = Utils.to_form(business).encode() if method == "POST" else b""
    query = {} if method == "POST" else business
    request, payload_hash = _v3_request(method, query, body)
    header = Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload_hash, ACCESS_KEY, SECRET)
    auth = signing.parse_v3_authorization(header)
    assert auth is not None
    assert auth.algorithm == signing.V3_ALGORITHM
    assert auth.access_key_id == ACCESS_KEY
    assert list(auth.signed_headers) == sorted(request.headers)
    assert _our_v3(request, payload_hash, auth) == auth.signature
    # and we would write the very same header
    assert signing.v3_authorization(ACCESS_KEY, auth.signed_headers, auth.signature) == header


def test_v3_header_values_are_trimmed_and_names_lowered_like_the_sdk() -> None:
    request, payload_hash = _v3_request(
        "POST", {"SearchKey": TRICKY}, b"", {"X-Acs-Custom": "  padded value  "}
    )
    header = Utils.get_authorization(request, "ACS3-HMAC-SHA256", payload_hash, ACCESS_KEY, SECRET)
    auth = signing.parse_v3_authorization(header)
    assert auth is not None and "x-acs-custom" in auth.signed_headers
    assert _our_v3(request, payload_hash, auth) == auth.signature


def test_v3_empty_payload_hash_is_the_sdks() -> None:
    assert Utils.hash(b"", "ACS3-HMAC-SHA256").hex() == signing.EMPTY_SHA256


# ------------------------------------------------------------------ the SDK clients, whole


@pytest.fixture
def fast_api(make_api: Any) -> Api:
    return make_api(rate_limit=1e6)


@pytest.fixture
def new_sdk(fast_api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The new SDK's transport, replaced by the in-process app (everything else is the SDK's)."""
    route_new_sdk_to(fast_api, monkeypatch)
    yield fast_api


@pytest.fixture
def old_sdk(fast_api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    """The old SDK's transport, replaced by the in-process app."""

    def get_response_object(self: HttpResponse) -> tuple[int, dict[str, str], bytes]:
        resp = fast_api.client.request(
            self.get_method(), self.get_url(), headers=self.get_headers(), content=self.get_body()
        )
        return resp.status_code, dict(resp.headers), resp.content

    monkeypatch.setattr(HttpResponse, "get_response_object", get_response_object)
    yield fast_api


NICKS = ["héllo wörld", "中文 用户", TRICKY, "a=b&c=d?e#f%20g%", "😀", "x" * 120]


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3", "v1"])
def test_new_sdk_client_round_trips_tricky_values(new_sdk: Api, algorithm: str | None) -> None:
    client = SdkClient(
        Config(
            access_key_id=new_sdk.admin.access_key_id,
            access_key_secret=new_sdk.admin.secret,
            endpoint="testserver",
            protocol="http",
            signature_algorithm=algorithm,
        )
    )
    runtime = RuntimeOptions()
    for nick in NICKS:
        client.update_user_with_options(
            sdk_models.UpdateUserRequest(uid_string=new_sdk.admin_uid, user_nick=nick), runtime
        )
        user = client.get_user_with_options(sdk_models.GetUserRequest(), runtime).body.user
        assert user.nick_name == nick
        found = client.list_users_with_options(
            sdk_models.ListUsersRequest(search_key=nick, page_size=100), runtime
        ).body
        assert found.success is True
        assert [u.uid for u in found.user_list.user] == [new_sdk.admin_uid]


def test_old_sdk_client_round_trips_tricky_values(old_sdk: Api) -> None:
    from aliyunsdkdms_enterprise.request.v20181101.GetUserRequest import GetUserRequest
    from aliyunsdkdms_enterprise.request.v20181101.ListUsersRequest import ListUsersRequest
    from aliyunsdkdms_enterprise.request.v20181101.UpdateUserRequest import UpdateUserRequest

    client = AcsClient(old_sdk.admin.access_key_id, old_sdk.admin.secret, "cn-hangzhou")

    def call(request: Any) -> dict[str, Any]:
        request.set_endpoint("testserver")
        request.set_protocol_type("http")
        return dict(json.loads(client.do_action_with_exception(request)))

    for nick in NICKS:
        update = UpdateUserRequest()
        update.set_Uid(old_sdk.admin_uid)
        update.set_UserNick(nick)
        assert call(update)["Success"] is True
        assert call(GetUserRequest())["User"]["NickName"] == nick
        search = ListUsersRequest()
        search.set_SearchKey(nick)
        search.set_PageSize(100)
        found = call(search)
        assert [u["Uid"] for u in found["UserList"]["User"]] == [old_sdk.admin_uid]


@CASES
def test_old_sdk_signed_url_is_accepted(fast_api: Api, business: dict[str, str]) -> None:
    """The URL the old SDK composes, sent as is: our verifier recomputes the same signature."""
    query = {"Action": "ListUsers", "Version": "2018-11-01", "RegionId": "cn-hangzhou"}
    query.update({k: v for k, v in business.items() if k != "PageSize"})
    url, _ = rpc_signature_composer.get_signed_url(
        query, fast_api.admin.access_key_id, fast_api.admin.secret, "JSON", "POST", {}
    )
    resp = fast_api.client.post(url)
    assert resp.status_code == 200, resp.text
    assert resp.json()["Success"] is True


@CASES
@METHODS
def test_new_sdk_v3_signed_request_is_accepted(
    fast_api: Api, business: dict[str, str], method: str
) -> None:
    """A request signed by ``Utils.get_authorization`` and sent the way darabonba sends it."""
    body = Utils.to_form(business).encode() if method == "POST" else b""
    query = {} if method == "POST" else business
    request, payload_hash = _v3_request(method, query, body)
    request.headers["authorization"] = Utils.get_authorization(
        request,
        "ACS3-HMAC-SHA256",
        payload_hash,
        fast_api.admin.access_key_id,
        fast_api.admin.secret,
    )
    dara = DaraRequest()
    dara.method, dara.pathname, dara.query = method, "/", query
    dara.headers = request.headers
    resp = fast_api.client.request(
        method, DaraCore.compose_url(dara), headers=request.headers, content=body
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["Success"] is True
