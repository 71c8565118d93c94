"""Property-based fuzzing of the whole gateway, over every action in ``opendms.actions.ALL``.

The property: no request, however malformed, gets a 5xx or logs a traceback. Every answer is
JSON with a ``RequestId``; it is either HTTP 200 with ``Success`` true/false (business errors
also carry ``ErrorCode``/``ErrorMessage``, and the body survives the SDK's response model), or
a 4xx with ``Code``/``Message``/``HostId``.

Two layers:

* signed: correctly signed V1 and V3 calls (``tests.signer``) whose business parameters are
  drawn from each action's request model, so validation and the handlers really run;
* raw: unsigned garbage -- random methods, paths, query strings (with broken percent-escapes
  and raw bytes), bodies, content types, ``Authorization`` and ``x-acs-*`` headers -- both over
  HTTP (the in-process client) and straight into the ASGI application, below any HTTP
  library's checks, with bodies in pieces and repeated headers.

A deterministic sweep adds every value of a fixed nasty dictionary to every field of every
action. Here the store is SQLite; ``tests/integration/gateway/test_fuzz_postgres.py`` runs the
same properties on PostgreSQL, which refuses things SQLite lets through (NUL characters,
over-long strings, integers out of range); its sweep sends the part of the dictionary a
store's types judge (``STORE_NASTY``).

Profiles: ``opendms-fuzz`` (random, 300 examples) or, when ``CI`` is set, ``opendms-fuzz-ci``
(derandomized, no example database). ``OPENDMS_FUZZ_EXAMPLES`` overrides the example count.
"""

from __future__ import annotations

import json
import logging
import os
import re
import typing
from collections import Counter
from collections.abc import Iterator
from copy import copy
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import quote, urlencode

import anyio.from_thread
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError, create_model
from pydantic.fields import FieldInfo

from opendms.actions import ALL
from opendms.gateway.errors import GatewayError
from opendms.gateway.pipeline import error_reply
from opendms.gateway.rpc import SYSTEM_PARAMS
from opendms.gateway.table import Access, Action
from opendms.gateway.wire import WireModel
from opendms.identity import service
from tests import sdk_spec
from tests.conftest import IN_CI, Api
from tests.signer import Prepared, Signer, now_stamp
from tests.wire_fields import field_choices

# ---------------------------------------------------------------------- hypothesis profiles

_COMMON: dict[str, Any] = {
    "deadline": None,
    # enough for every action to be reached several times, however long the table grows
    "max_examples": int(os.environ.get("OPENDMS_FUZZ_EXAMPLES", str(max(300, 12 * len(ALL))))),
    "suppress_health_check": [
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ],
}
settings.register_profile("opendms-fuzz", **_COMMON)
settings.register_profile(
    "opendms-fuzz-ci", derandomize=True, database=None, print_blob=True, **_COMMON
)
FUZZ = settings.get_profile("opendms-fuzz-ci" if IN_CI else "opendms-fuzz")

REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")
ACTION_NAMES = [a.name for a in ALL]
# Users the fuzzer may register, update, disable, enable and delete; never the admin.
VICTIMS = ("1000000000000001", "1000000000000002", "1000000000000003")


# ---------------------------------------------------------------------- the app


def seeded_api(make_api: Any, database_url: str | None) -> Api:
    """The app on ``database_url`` (SQLite when None) with the users the fuzz aims at."""
    # No network targets at all: fuzzed RegisterInstance calls must not dial anything.
    api: Api = make_api(database_url=database_url, rate_limit=1e9, target_hosts="")
    with api.store.session() as s:
        for uid in VICTIMS:
            service.register_user(s, None, api.tid, uid, nick_name=f"victim {uid}")
    return api


@pytest.fixture
def fuzz_api(make_api: Any) -> Api:
    return seeded_api(make_api, None)


class _Tracebacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def taken(self) -> list[logging.LogRecord]:
        """The records so far, which are then forgotten."""
        records, self.records = self.records, []
        return records


@pytest.fixture
def tracebacks() -> Iterator[_Tracebacks]:
    """Every ERROR (with or without a traceback) logged while the test runs."""
    handler = _Tracebacks()
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


def _short(what: object, limit: int = 400) -> str:
    text = repr(what)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def _no_traceback(logged: _Tracebacks | list[logging.LogRecord], what: object) -> None:
    records = logged.records if isinstance(logged, _Tracebacks) else logged
    if records:
        first = records[0]
        exc = first.exc_info[1] if first.exc_info else None
        raise AssertionError(f"logged {first.getMessage()!r} ({exc!r}) for {_short(what)}")


# ---------------------------------------------------------------------- the property


EXTENSIONS = frozenset(a.name for a in ALL if a.extension)


def check_reply(status: int, body: Any, what: object, action: str | None = None) -> None:
    """The envelope every answer must have; ``body`` is the parsed JSON."""
    assert status < 500, f"HTTP {status} {body!r} for {_short(what)}"
    assert isinstance(body, dict), body
    assert isinstance(body.get("RequestId"), str) and REQUEST_ID.match(body["RequestId"]), body
    if status == 200:
        assert isinstance(body.get("Success"), bool), body
        if not body["Success"]:
            assert isinstance(body.get("ErrorCode"), str) and body["ErrorCode"], body
            assert isinstance(body.get("ErrorMessage"), str) and body["ErrorMessage"], body
        if action is not None and action not in EXTENSIONS:  # no SDK model for our own
            assert sdk_spec.roundtrip(action, body) == body, f"SDK drops part of {_short(body)}"
    else:
        assert 400 <= status < 500, f"HTTP {status} for {_short(what)}"
        for key in ("Code", "Message"):
            assert isinstance(body.get(key), str) and body[key], (key, body)
        assert isinstance(body.get("HostId"), str), body  # the Host header, may be empty
        assert "Traceback" not in body["Message"], body


def check_http(resp: Any, what: object, action: str | None = None) -> dict[str, Any] | None:
    if resp.request.method == "HEAD":  # no body by definition
        assert resp.status_code < 500, (resp.status_code, _short(what))
        return None
    if resp.request.url.path.startswith("/console"):  # the web console: pages, never a 5xx
        assert resp.status_code < 500, (resp.status_code, _short(what))
        assert "Traceback" not in resp.text, _short(what)
        return None
    assert resp.headers.get("content-type", "").startswith("application/json"), (
        resp.status_code,
        resp.headers,
        resp.text[:200],
    )
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"not JSON: {resp.text[:200]!r} for {_short(what)}") from None
    check_reply(resp.status_code, body, what, action)
    return typing.cast(dict[str, Any], body)


# ---------------------------------------------------------------------- values


def one_in(n: int) -> st.SearchStrategy[bool]:
    """True about once in ``n`` draws (``st.integers`` favours its bounds, so not that)."""
    return st.sampled_from([False] * (n - 1) + [True])


# fmt: off
INT_EDGES = [
    0, 1, -1, 2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**53, 2**63 - 1, 2**63, -(2**63),
    -(2**63) - 1, 2**64, 10**19, 10**20 - 1, 10**20, 10**25,
]
WEIRD_NUMBERS = [
    "+1", "-0", "+0", "+-1", "-+1", "--1", "++1", "²", "³", "¹²", "\u0661\u0662\u0663",
    "\u06f1", "\uff11\uff12", "1_000", "1e3", "1E3", "0x1F", "0o7", "0b1", " 7 ", "\t7\n",
    "7\x00", "\u00a07", "7.0", "7.", ".7", "NaN", "nan", "Infinity", "-inf", "", " ",
    "00000000000000000001", "0" * 25,
]
BOOL_WORDS = ["true", "True", "TRUE", "false", "False", "yes", "no", "1", "0", "on", "", "null"]
BROKEN_JSON = [
    "{", "}", "[", "[1,", '{"a":}', '{"a" 1}', "nul", "tru", "'x'", '{"a":1}}', "[]]",
    '"unterminated', "{'a': 1}", "[1,2,]", '{"a":NaN}', "\\", "\x00", "{" * 200, "[" * 2000,
]
RAW_ESCAPES = [
    "%ff", "%fe%ff", "%c3", "%e4%b8", "%ed%a0%80", "%c0%af", "%f8%88%80%80%80", "%", "%z",
    "%zz", "%2", "%00", "%0a", "%0d%0a", "%2B-1", "+", "%20", "%26", "%3D", "%25ff",
]
# fmt: on
HUGE_UNITS = ["9", "a", "中", "{", "%", " ", "\x00", "é"]
ROLE_WORDS = ["USER", "DBA", "ADMIN", "SECURITY_ADMIN", "STRUCT_READ_ONLY", "user", "KING"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=10,
)
json_texts = json_values.map(json.dumps)
broken_json = st.one_of(
    st.sampled_from(BROKEN_JSON),
    st.tuples(json_texts, st.integers(0, 50))
    .filter(lambda t: 0 < t[1] < len(t[0]))
    .map(lambda t: t[0][: t[1]]),
)
huge = st.tuples(st.sampled_from(HUGE_UNITS), st.integers(1_000, 100_000)).map(
    lambda t: t[0] * t[1]
)
# strings around the store's column sizes (64, 128, 256) and with NUL characters
sized_text = st.tuples(
    st.sampled_from(["x", "é", "中", "9"]),
    st.sampled_from([63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 1000]),
).map(lambda t: t[0] * t[1])
with_nul = st.tuples(st.text(max_size=5), st.text(max_size=5)).map("\x00".join)
role_lists = st.lists(st.sampled_from(ROLE_WORDS), max_size=4).map(",".join)
numbers = st.one_of(
    st.sampled_from(INT_EDGES).map(str),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(WEIRD_NUMBERS),
)
digits = st.from_regex(r"[0-9]{1,25}", fullmatch=True)
realistic = st.sampled_from(
    [
        *VICTIMS,
        "1",
        "2",
        "3",
        "4",
        "5",
        "1234567890123456",
        "DBA,USER",
        "NORMAL",
        "DISABLE",
        "DELETE",
        "DBA",
        "ADMIN",
        "13800000000",
        "héllo wörld 中文 *~'()!+/",
    ]
)


FRESH = "<fresh uid>"  # replaced by a new account id when sent: RegisterUser then inserts
PLAIN = [
    FRESH,
    *VICTIMS,
    "1",
    "2",
    "3",
    "4",
    "5",
    "10",
    "100",
    "-1",
    "0",
    "1234567890123456",
    "DBA,USER",
    "DBA",
    "USER",
    "ADMIN",
    "NORMAL",
    "DISABLE",
    "13800000000",
    "x",
    "admin",
    "victim",
    "héllo wörld 中文 *~'()!+/",
    "true",
    "True",
    "false",
    '{"a": [1]}',
    "[1, 2]",
    "2099-01-01 00:00:00",
    "QUERY",
]


@cache
def accepted(action: Action, name: str) -> tuple[str, ...]:
    """The values among ``PLAIN`` (and the field's own choices) that our model takes for this
    one field: the fuzzer's way past validation to the handler."""
    fi = action.request.model_fields[name]
    wire = fi.alias or name
    if wire == "Tid":  # the common tenant selector: the test app has one tenant, tid 1
        return ("1", "-1", "0")
    one = create_model(  # the field alone, without cross-field validators
        f"Probe{action.name}{name}", __base__=WireModel, **{name: (fi.annotation, copy(fi))}
    )
    out = []
    for value in dict.fromkeys([*field_choices(fi), *PLAIN]):
        try:
            one.model_validate({wire: service.new_uid() if value == FRESH else value})
        except ValidationError:
            continue
        out.append(value)
    return tuple(out)


def nasty_values(fi: FieldInfo | None = None) -> st.SearchStrategy[str]:
    """Anything a client could put in one parameter, biased towards the field's own kind."""
    own = field_choices(fi) if fi is not None else []
    enum_like = (
        st.sampled_from(own).flatmap(
            lambda v: st.sampled_from([v, v.lower(), v.title(), f" {v} ", v + "X", f"{v},{v}"])
        )
        if own
        else realistic
    )
    common = st.one_of(
        numbers,
        numbers,
        digits,
        enum_like,
        realistic,
        st.text(max_size=40),
        sized_text,
        with_nul,
        st.sampled_from(BOOL_WORDS),
        role_lists,
        json_texts,
        broken_json,
    )
    # one value in 30 is huge: enough to find size bugs, few enough to stay fast
    return one_in(30).flatmap(lambda big: huge if big else common)


def field_values(action: Action, name: str) -> st.SearchStrategy[str]:
    """Half the time a value our model accepts for the field, half the time anything."""
    good = accepted(action, name)
    bad = nasty_values(action.request.model_fields[name])
    return st.one_of(st.sampled_from(good), bad) if good else bad


param_names = st.one_of(
    st.sampled_from(
        sorted({fi.alias or n for a in ALL for n, fi in a.request.model_fields.items()})
    ),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12),
    st.text(min_size=1, max_size=6),
    st.sampled_from(
        [
            "Action",
            "Version",
            "Format",
            "Signature",
            "AccessKeyId",
            "RegionId",
            "SecurityToken",
            "Timestamp",
            "SignatureNonce",
            "Param.1",
            "Uid.1",
        ]
    ),
)


@st.composite
def business(draw: st.DrawFn, action: Action) -> dict[str, str]:
    """Parameters for ``action``. Mostly one field gets anything and the others (each there
    or not) get values our model accepts, so a bad value meets the handler and the store;
    otherwise every field is a free-for-all. Now and then unknown parameters ride along
    (they may collide with the signing parameters)."""
    fields = action.request.model_fields
    focus = draw(st.sampled_from([*fields, None, None]))
    params: dict[str, str] = {}
    for name, fi in fields.items():
        wire = fi.alias or name
        if name == focus:
            params[wire] = draw(nasty_values(fi))
        elif draw(one_in(10 if fi.is_required() else 3)) != fi.is_required():
            good = accepted(action, name)
            params[wire] = draw(
                st.sampled_from(good) if focus and good else field_values(action, name)
            )
    if draw(one_in(5)):
        for _ in range(draw(st.integers(1, 3))):
            params.setdefault(draw(param_names), draw(nasty_values()))
    return params


# ---------------------------------------------------------------------- layer 1: signed


@dataclass
class SignedCall:
    action: str
    params: dict[str, str]
    scheme: str
    method: str
    in_form: bool
    duplicate: str | None = None  # send this parameter a second time, in the query string
    tail: str | None = None  # raw text appended to the signed URL
    headers: dict[str, str] = field(default_factory=dict)

    def prepare(self, admin: Signer) -> Prepared:
        params = {k: service.new_uid() if v == FRESH else v for k, v in self.params.items()}
        query, form = ({}, params) if self.in_form else (params, {})
        sign = admin.v1 if self.scheme == "v1" else admin.v3
        prepared = sign(self.action, dict(query), dict(form), method=self.method)
        extra = []
        if self.duplicate is not None:  # a second copy, in the query string
            extra.append(urlencode({self.duplicate: params[self.duplicate]}))
        if self.tail:
            extra.append(self.tail)
        if extra:
            prepared.url += ("&" if "?" in prepared.url else "?") + "&".join(extra)
        prepared.headers.update(self.headers)
        return prepared


safe_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
extra_headers = st.dictionaries(
    # headers the signer does not sign (overwriting a signed one is a plain mismatch)
    st.sampled_from(
        ["x-forwarded-for", "user-agent", "x-request-id", "cookie", "accept-language", "x-custom"]
    ),
    safe_header_text,
    max_size=3,
)
methods = st.sampled_from(["POST"] * 12 + ["GET"] * 10 + ["PUT", "DELETE", "PATCH", "OPTIONS"])


@st.composite
def signed_calls(draw: st.DrawFn, scheme: str) -> SignedCall:
    action = draw(st.sampled_from(ALL))
    params = draw(business(action))
    call = SignedCall(
        action.name,
        params,
        scheme=scheme,
        method=draw(methods),
        in_form=draw(st.booleans()),
        headers=draw(extra_headers),
    )
    if len(urlencode(params)) > 20_000:
        call.in_form = True  # httpx refuses URLs over 64 KiB (the raw layer sends longer)
    elif params and draw(one_in(15)):
        call.duplicate = draw(st.sampled_from(sorted(params)))
    if draw(one_in(15)):
        call.tail = draw(st.sampled_from(RAW_ESCAPES)) + "=" + draw(st.sampled_from(RAW_ESCAPES))
    return call


@pytest.mark.parametrize("scheme", ["v1", "v3"])
def test_signed_calls_never_fail_the_server(
    fuzz_api: Api, tracebacks: _Tracebacks, scheme: str
) -> None:
    """Layer 1: signed by the admin, so auth passes and validation and handlers run."""
    outcomes: Counter[tuple[str, int, str]] = Counter()

    @FUZZ
    @given(call=signed_calls(scheme))
    def prop(call: SignedCall) -> None:
        tracebacks.records.clear()
        resp = fuzz_api.send(call.prepare(fuzz_api.admin))
        body = check_http(resp, call, call.action)
        _no_traceback(tracebacks, call)
        code = "-" if body is None else body.get("Code") or body.get("ErrorCode") or "OK"
        outcomes[(call.action, resp.status_code, code)] += 1

    prop()
    # the handlers really ran: calls of most actions got through validation
    reached = {action for action, status, _ in outcomes if status == 200}
    assert len(reached) >= len(ALL) // 2, sorted(outcomes.items())


# ---------------------------------------------------------------------- layer 2: raw


SYSTEM_NAMES = [*sorted(SYSTEM_PARAMS), "Tid"]
plausible_values = st.sampled_from(
    [
        *ACTION_NAMES,
        "2018-11-01",
        "2099-01-01",
        "HMAC-SHA1",
        "HMAC-MD5",
        "1.0",
        "2.0",
        "JSON",
        "json",
        "XML",
        "ODMSnosuchkey000000000000",
        "2024-01-01T00:00:00Z",
        "bm9uY2U=",
        "-1",
        "1",
    ]
)


def _encoded(text: str) -> str:
    return quote(text, safe="")


query_keys = st.one_of(
    st.sampled_from(SYSTEM_NAMES).map(_encoded),
    param_names.map(_encoded),
    st.sampled_from(RAW_ESCAPES),
)
query_values = st.one_of(
    plausible_values.map(_encoded),
    nasty_values().map(_encoded),
    st.sampled_from(RAW_ESCAPES),
    st.lists(st.sampled_from(RAW_ESCAPES), min_size=2, max_size=5).map("".join),
)


@st.composite
def query_strings(draw: st.DrawFn) -> str:
    if draw(one_in(40)):  # past the parameter-count limit
        return "&".join(f"p{i}=1" for i in range(draw(st.integers(1000, 1100))))
    parts = []
    for _ in range(draw(st.integers(0, 8))):
        key, value = draw(query_keys), draw(query_values)
        parts.append(draw(st.sampled_from([f"{key}={value}", key, f"{key}=", f"={value}"])))
    sep = draw(st.sampled_from(["&", "&", "&", ";", "&&"]))
    return sep.join(parts)


v3_headers = st.fixed_dictionaries(
    {},
    optional={
        "x-acs-action": st.sampled_from(ACTION_NAMES) | safe_header_text,
        "x-acs-version": st.sampled_from(["2018-11-01", "2019-01-01", ""]) | safe_header_text,
        "x-acs-date": st.sampled_from(["now", "2024-01-01T00:00:00Z", "yesterday"])
        | safe_header_text,
        "x-acs-signature-nonce": safe_header_text,
        "x-acs-content-sha256": st.sampled_from(
            ["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "x"]
        )
        | st.text("0123456789abcdef", max_size=64),
        "x-acs-security-token": safe_header_text,
        "x-acs-bearer-token": safe_header_text,
        "x-acs-signature-method": safe_header_text,
    },
)
authorizations = st.one_of(
    safe_header_text,
    st.builds(
        lambda alg, cred, signed, sig: (
            f"{alg} Credential={cred},SignedHeaders={signed},Signature={sig}"
        ),
        st.sampled_from(["ACS3-HMAC-SHA256", "ACS3-HMAC-SM3", "ACS3-RSA-SHA256", "ACS3-", "ACS3"]),
        st.sampled_from(["ODMSnosuchkey000000000000", "REALKEY", ""]) | safe_header_text,
        st.sampled_from(
            [
                "host;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce",
                "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;"
                "x-acs-version",
                "",
                ";;",
                "HOST;X-ACS-DATE",
                "nosuch",
            ]
        )
        | safe_header_text,
        st.text("0123456789abcdef", max_size=64),
    ),
    st.sampled_from(
        [
            "ACS3-HMAC-SHA256",
            "ACS3-HMAC-SHA256 ",
            "ACS3-HMAC-SHA256 Credential=,SignedHeaders=,Signature=",
            "ACS3-HMAC-SHA256 Credential=a,Credential=b",
            "Bearer x",
            "Basic eA==",
        ]
    ),
)
content_types = st.sampled_from(
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "APPLICATION/X-WWW-FORM-URLENCODED",
        "application/json",
        "multipart/form-data; boundary=x",
        "text/plain",
        "",
        "application/octet-stream",
        "x/y; a=b",
    ]
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=512),
    query_strings().map(str.encode),
    json_texts.map(str.encode),
    huge.map(str.encode),
)


@dataclass
class RawCall:
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@st.composite
def raw_calls(draw: st.DrawFn) -> RawCall:
    headers = draw(
        st.dictionaries(
            st.sampled_from(["x-junk", "accept", "user-agent"]), safe_header_text, max_size=2
        )
    )
    if draw(st.booleans()):
        headers["authorization"] = draw(authorizations)
    headers.update(draw(v3_headers))
    if draw(st.booleans()):
        headers["content-type"] = draw(content_types)
    path = draw(
        st.sampled_from(["/", "/", "/", "//", "/?", "/console", "/%ff", "/a/b"])
        | st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20).map(
            # "//host:port..." would be read by the HTTP client as an authority, not a path
            lambda p: "/" + p.replace("?", "").replace("#", "").lstrip("/")
        )
    )
    return RawCall(
        method=draw(
            st.sampled_from(
                [
                    "GET",
                    "POST",
                    "POST",
                    "PUT",
                    "DELETE",
                    "PATCH",
                    "OPTIONS",
                    "HEAD",
                    "TRACE",
                    "FOO",
                    "CONNECTX",
                ]
            )
        ),
        path=path,
        query=draw(query_strings()),
        headers=headers,
        body=draw(bodies),
    )


def _realize(call: RawCall, api: Api) -> RawCall:
    """Swap placeholders for live values, so some calls get as far as the key lookup."""
    headers = {k: v.replace("REALKEY", api.admin.access_key_id) for k, v in call.headers.items()}
    if headers.get("x-acs-date") == "now":
        headers["x-acs-date"] = now_stamp()
    return RawCall(call.method, call.path, call.query, headers, call.body)


def test_raw_http_garbage_never_fails_the_server(fuzz_api: Api, tracebacks: _Tracebacks) -> None:
    """Layer 2 over HTTP: nothing is signed right, much is not even well-formed."""

    @FUZZ
    @given(call=raw_calls())
    def prop(call: RawCall) -> None:
        tracebacks.records.clear()
        call = _realize(call, fuzz_api)
        # httpx refuses URLs over 64 KiB; longer query strings go through the ASGI test
        url = (call.path + ("?" + call.query if call.query else ""))[:60_000]
        resp = fuzz_api.client.request(call.method, url, headers=call.headers, content=call.body)
        check_http(resp, call)
        _no_traceback(tracebacks, call)

    prop()


@dataclass
class AsgiCall:
    method: str
    path: str
    query_string: bytes
    headers: list[tuple[bytes, bytes]]
    body: bytes
    chunks: int  # the body arrives in this many ``http.request`` messages

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": self.method,
            "scheme": "http",
            "path": self.path,
            "raw_path": self.path.encode("utf-8", "replace"),
            "root_path": "",
            "query_string": self.query_string,
            "headers": self.headers,
            "client": ("203.0.113.9", 40000),
            "server": ("testserver", 80),
        }


# What an HTTP server can hand over: header names are lower-case tokens, values any bytes
# but controls (obs-text 0x80-0xFF included); methods are tokens. The query string should be
# percent-encoded ASCII (uvicorn's h11 and httptools refuse raw bytes >= 0x80 in the request
# line), but the gateway at "/" is held to more: any bytes at all.
TOKEN = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
header_names = st.one_of(
    st.sampled_from(
        [
            b"authorization",
            b"content-type",
            b"host",
            b"x-acs-date",
            b"x-acs-action",
            b"content-length",
            b"x-acs-version",
            b"x-acs-x",
        ]
    ),
    st.text(TOKEN, min_size=1, max_size=20).map(str.encode),
)
raw_header_bytes = st.one_of(
    safe_header_text.map(str.encode),
    st.binary(max_size=40).map(
        lambda b: bytes(c for c in b if c == 9 or 0x20 <= c != 0x7F).strip()
    ),
)


@st.composite
def asgi_calls(draw: st.DrawFn) -> AsgiCall:
    call = draw(raw_calls())
    query = draw(st.one_of(st.just(call.query.encode()), st.binary(max_size=300)))
    if draw(st.booleans()):  # raw non-UTF-8 bytes next to a plausible call
        query = b"Action=GetUser&Version=2018-11-01&" + draw(st.binary(min_size=1, max_size=40))
    if draw(one_in(30)):  # far beyond what an HTTP client library would send
        query = b"Action=ListUsers&Version=2018-11-01&SearchKey=" + draw(huge).encode()
    headers = [(k.encode(), v.encode("latin-1", "replace")) for k, v in call.headers.items()]
    for _ in range(draw(st.integers(0, 3))):  # repeated names are allowed
        headers.append((draw(header_names), draw(raw_header_bytes)))
    path = draw(st.sampled_from(["/", "/", call.path, "/\x00", "/\ufffd", "/a b"]))
    if path != "/":  # ASGI says percent-encoded: only the gateway itself copes with raw bytes
        query = b"".join(bytes([c]) if 0x21 <= c <= 0x7E else b"%%%02X" % c for c in query)
    return AsgiCall(
        method=draw(st.sampled_from(["GET", "POST", "get", "HEAD", "BREW", "M-SEARCH"])),
        path=path,
        query_string=query,
        headers=headers,
        body=call.body,
        chunks=draw(st.integers(1, 3)),
    )


async def _asgi(app: Any, call: AsgiCall) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request straight into the ASGI application, below any HTTP library's checks."""
    size = max(1, -(-len(call.body) // call.chunks))
    parts = [call.body[i : i + size] for i in range(0, len(call.body), size)] or [b""]
    inbox = [
        {"type": "http.request", "body": part, "more_body": i < len(parts) - 1}
        for i, part in enumerate(parts)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(call.scope(), receive, send)
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], list(start.get("headers", [])), body


def test_raw_asgi_bytes_never_fail_the_app(fuzz_api: Api, tracebacks: _Tracebacks) -> None:
    """Layer 2 below HTTP: arbitrary bytes in the query string and header values, repeated
    headers, bodies in pieces -- straight into the ASGI application."""
    app = fuzz_api.client.app
    real_key = fuzz_api.admin.access_key_id.encode()

    with anyio.from_thread.start_blocking_portal() as portal:

        @FUZZ
        @given(call=asgi_calls())
        def prop(call: AsgiCall) -> None:
            tracebacks.records.clear()
            call.headers = [(k, v.replace(b"REALKEY", real_key)) for k, v in call.headers]
            status, headers, body = portal.call(_asgi, app, call)
            for name, value in headers:
                assert isinstance(name, bytes) and isinstance(value, bytes), headers
            if call.method == "HEAD" or call.path.startswith("/console"):
                assert status < 500, (status, _short(call))  # the web console answers HTML
            else:
                assert dict(headers).get(b"content-type", b"").startswith(b"application/json")
                check_reply(status, json.loads(body.decode("utf-8")), call)
            _no_traceback(tracebacks, call)

        prop()


# ---------------------------------------------------------------------- deterministic sweep

# What a store's own types decide (integer ranges, text lengths and encodings, NUL, LIKE's
# wildcards and escape): the part of NASTY worth sending again to another store.
STORE_NASTY: list[str] = [
    *[str(n) for n in INT_EDGES],
    "\x00",
    "a\x00b",
    *["x" * n for n in (63, 64, 65, 127, 128, 129, 255, 256, 257)],  # around column sizes
    "é" * 129,
    "9" * 100_000,
    "中" * 30_000,
    "héllo wörld 中文 *~'()!+/",
    "%",
    "_",
    "\\",
]
NASTY: list[str] = [
    *STORE_NASTY,
    *WEIRD_NUMBERS,
    *BOOL_WORDS,
    *BROKEN_JSON,
    '{"a": [1, {"b": null}]}',
    "[]",
    "' OR 1=1 --",
    "DBA,USER,KING",
    ",,,",
]


@pytest.fixture
def nasty() -> list[str]:
    """The values the sweep puts in every field (the PostgreSQL module sends STORE_NASTY)."""
    return NASTY


def _valid_base(action: Action) -> dict[str, str]:
    """Parameters our model accepts as a whole: the required fields, plus optional ones until
    any cross-field rule (UpdateUser wants Uid or UidString) is met. Ids name victims."""

    def first(name: str) -> str:
        good = accepted(action, name)
        return next((g for g in good if g != FRESH), good[0] if good else "")

    fields = action.request.model_fields
    base = {fi.alias or n: first(n) for n, fi in fields.items() if fi.is_required()}
    optional = [
        {fi.alias or n: first(n)}
        for n, fi in fields.items()
        if not fi.is_required() and accepted(action, n)
    ]
    for extra in [{}, *optional]:  # the fewest extras: an odd Tid would make every call a 403
        try:
            action.request.model_validate({**base, **extra})
        except ValidationError:
            continue
        return {**base, **extra}
    pytest.fail(f"{action.name}: found no valid parameters among {PLAIN}")


@pytest.mark.parametrize("action", ALL, ids=ACTION_NAMES)
def test_every_nasty_value_in_every_field(
    fuzz_api: Api, tracebacks: _Tracebacks, nasty: list[str], action: Action
) -> None:
    """Every value of a fixed dictionary in every field of every action, one at a time, on
    top of otherwise valid parameters, so that a value that passes validation meets the
    handler and the store (over HTTP, signed); a value the wire model refuses is checked
    in-process, against the same parser and error envelope the gateway uses (the HTTP path
    before the parser does not look at business values; the property tests below send
    refused values over HTTP too). An action that creates runs again with a fresh id where the valid
    parameters name an existing user (RegisterUser only inserts a new one)."""
    base = _valid_base(action)
    creates = action.access == Access.CREATE and any(v in VICTIMS for v in base.values())
    variants = [False, True] if creates else [False]
    failures: list[str] = []
    sent: list[tuple[str, Prepared]] = []
    names = sorted({fi.alias or n for n, fi in action.request.model_fields.items()})
    for wire, fresh, value in ((w, f, v) for w in names for f in variants for v in nasty):
        params = {k: service.new_uid() if fresh and v in VICTIMS else v for k, v in base.items()}
        params[wire] = value
        what = f"{action.name} {wire}={value[:40]!r}{'...' if len(value) > 40 else ''}"
        what += " (fresh id)" if fresh else ""
        try:  # what the wire model refuses never reaches a handler: check it in-process
            action.request.from_params(params)
        except GatewayError as exc:
            reply = error_reply({}, exc)
            try:
                check_reply(reply.status, json.loads(json.dumps(reply.body)), what)
            except AssertionError as err:
                failures.append(f"{what}: {str(err).splitlines()[0][:200]}")
            continue
        if len(urlencode(params)) > 20_000:  # keep URLs well under 64 KiB: send a form
            sent.append((what, fuzz_api.admin.v3(action.name, form=params)))
        else:
            sent.append((what, fuzz_api.admin.v3(action.name, params)))
    tracebacks.records.clear()
    answers = fuzz_api.send_all([p for _, p in sent], tracebacks.taken)
    for (what, _), (resp, logged) in zip(sent, answers, strict=True):
        try:
            check_http(resp, what, action.name)
            _no_traceback(logged, what)
        except AssertionError as exc:
            failures.append(f"{what}: {str(exc).splitlines()[0][:200]}")
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------- bugs fuzzing found, pinned

# Each of these was found by the properties above; they assert the correct behaviour and fail
# until the product is fixed.


@pytest.mark.parametrize(
    "tid",
    ["+-1", "-+1", "--5", "++5", "²", "¹²", "9" * 5000],
    ids=["+-1", "-+1", "--5", "++5", "superscript-2", "superscript-12", "5000-digits"],
)
def test_malformed_tid_is_refused_before_auth(make_api: Any, tid: str) -> None:
    """BUG: ``pipeline._tid`` checks ``text.lstrip('+-').isdigit()`` and then calls
    ``int(text)``, which raises ValueError for ``'+-1'`` (the check strips both signs), for
    ``'²'`` (``str.isdigit`` is true for superscripts) and for more than 4300 digits (Python's
    int-from-str limit). It runs before authentication: any unsigned request gets a 500."""
    api = make_api()
    resp = api.client.post(f"/?Action=GetUser&Version=2018-11-01&Tid={quote(tid)}")
    body = check_http(resp, tid)
    assert resp.status_code == 400 and body is not None and body["Code"] == "InvalidTid"


@pytest.mark.parametrize("user_id", [str(2**63), "99999999999999999999"])
def test_get_user_by_user_id_beyond_int64_is_refused(fuzz_api: Api, user_id: str) -> None:
    """BUG: GetUser's ``UserId`` is ``Digits`` (up to 20 digits) and the handler binds
    ``int(user_id)`` into the query: beyond 2**63-1 SQLite raises OverflowError and
    PostgreSQL an out-of-range error. Expected InvalidUserId, or UserNotFound."""
    check_http(fuzz_api.call("GetUser", UserId=user_id), user_id, "GetUser")
