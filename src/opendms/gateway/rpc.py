"""An HTTP request read as a DMS RPC call: which action, which scheme, which parameters."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal
from urllib.parse import parse_qsl

from opendms.gateway import errors

# Parameters of the signing protocol itself, never passed to a handler.
SYSTEM_PARAMS = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "AccessKeyId",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureNonce",
        "Timestamp",
        "Signature",
        "SecurityToken",
        "SignatureType",
        "BearerToken",
        "RegionId",
    }
)
MAX_FIELDS = 1000
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class RawRequest:
    method: str
    path: str
    query_string: bytes
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: str = ""
    url_scheme: str = "http"  # https when the server, or a trusted proxy before it, speaks TLS

    @property
    def origin(self) -> str:
        """Where the client reached us (scheme and Host): the base of the links it is given."""
        return f"{self.url_scheme}://{self.headers.get('host', '127.0.0.1')}"


@dataclass(frozen=True)
class RpcCall:
    raw: RawRequest
    scheme: Literal["v1", "v3"]
    action: str
    version: str
    query: list[tuple[str, str]]
    form: list[tuple[str, str]]
    params: dict[str, str] = field(default_factory=dict)  # query and form merged

    @cached_property  # read several times per request (log binding, acting-for, the model)
    def business(self) -> dict[str, str]:
        return {k: v for k, v in self.params.items() if k not in SYSTEM_PARAMS}


def _pairs(data: bytes, where: str) -> list[tuple[str, str]]:
    if not data:
        return []
    try:
        return parse_qsl(
            data.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except UnicodeDecodeError:
        raise errors.invalid_parameter(f"The {where} is not valid UTF-8.") from None
    except ValueError:
        raise errors.invalid_parameter(
            f"The {where} has more than {MAX_FIELDS} parameters."
        ) from None


def parse_call(raw: RawRequest) -> RpcCall:
    query = _pairs(raw.query_string, "query string")
    content_type = raw.headers.get("content-type", "").split(";")[0].strip().lower()
    form = _pairs(raw.body, "form body") if content_type == FORM else []
    params: dict[str, str] = {}
    for name, value in (*query, *form):
        if "\x00" in name or "\x00" in value:
            raise errors.invalid_parameter(f"Parameter {name[:64]!r} contains a NUL character.")
        if name in params:
            raise errors.invalid_parameter(f"Parameter {name[:64]!r} is given more than once.")
        params[name] = value
    if raw.headers.get("authorization", "").startswith("ACS3-"):
        scheme: Literal["v1", "v3"] = "v3"
        action = raw.headers.get("x-acs-action", "")
        version = raw.headers.get("x-acs-version", "")
    else:
        scheme = "v1"
        action = params.get("Action", "")
        version = params.get("Version", "")
    if not action:
        raise errors.missing("Action")
    if not version:
        raise errors.missing("Version")
    return RpcCall(raw, scheme, action, version, query, form, params)
