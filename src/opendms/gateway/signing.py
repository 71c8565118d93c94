"""The two Alibaba Cloud request signatures, as pure functions (dms-api.md D.1, D.2).

The same functions sign (tests, benchmark, CLI clients) and verify (the gateway), so the two
sides cannot drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

V3_ALGORITHM = "ACS3-HMAC-SHA256"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def percent_encode(text: str) -> str:
    """RFC 3986: unreserved characters stay, everything else is %XX of its UTF-8 bytes."""
    return quote(text, safe="~")


def _canonical_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    return "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(pairs, key=lambda p: p[0])
    )


# ------------------------------------------------------------------ V1 (HMAC-SHA1)


def v1_string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """``params``: every query and form parameter except ``Signature``, decoded."""
    canonical = _canonical_pairs(params.items())
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def v1_signature(secret: str, method: str, params: Mapping[str, str]) -> str:
    digest = hmac.new(
        (secret + "&").encode(), v1_string_to_sign(method, params).encode(), hashlib.sha1
    ).digest()
    return base64.b64encode(digest).decode()


# ------------------------------------------------------------------ V3 (ACS3-HMAC-SHA256)


@dataclass(frozen=True)
class V3Authorization:
    algorithm: str
    access_key_id: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_v3_authorization(value: str) -> V3Authorization | None:
    """``ACS3-HMAC-SHA256 Credential=ak,SignedHeaders=a;b,Signature=hex`` or None if malformed."""
    algorithm, _, rest = value.strip().partition(" ")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, val = part.strip().partition("=")
        if not sep:
            return None
        fields[name] = val
    try:
        credential, headers, signature = (
            fields["Credential"],
            fields["SignedHeaders"],
            fields["Signature"],
        )
    except KeyError:
        return None
    signed = tuple(h.strip().lower() for h in headers.split(";") if h.strip())
    if not (algorithm and credential and signed and signature):
        return None
    return V3Authorization(algorithm, credential, signed, signature)


def v3_canonical_request(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    signed_headers: Iterable[str],
    payload_hash: str,
) -> str:
    """``headers`` must be keyed by lower-case name; only ``signed_headers`` are used."""
    names = sorted(signed_headers)
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in names)
    return "\n".join(
        (
            method.upper(),
            path or "/",
            _canonical_pairs(query),
            canonical_headers,
            ";".join(names),
            payload_hash,
        )
    )


def v3_string_to_sign(canonical_request: str, algorithm: str = V3_ALGORITHM) -> str:
    return f"{algorithm}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"


def v3_signature(secret: str, canonical_request: str, algorithm: str = V3_ALGORITHM) -> str:
    string_to_sign = v3_string_to_sign(canonical_request, algorithm)
    return hmac.new(secret.encode(), string_to_sign.encode(), hashlib.sha256).hexdigest()


def v3_authorization(access_key_id: str, signed_headers: Iterable[str], signature: str) -> str:
    return (
        f"{V3_ALGORITHM} Credential={access_key_id},"
        f"SignedHeaders={';'.join(sorted(signed_headers))},Signature={signature}"
    )


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
