"""Authentication of a signed call: timestamp, access key, signature, then the nonce.

The nonce is stored only after the signature checks out, so unsigned traffic cannot fill the
replay table or burn another client's nonces.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from opendms.gateway import errors, signing
from opendms.gateway.rpc import RpcCall
from opendms.identity.credentials import Credential, CredentialStore

_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z")
MAX_NONCE = 128
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,%d}" % MAX_NONCE)  # noqa: UP031
_V3_REQUIRED = ("host", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256")


@dataclass(frozen=True)
class Proof:
    """What a verified signature vouches for."""

    access_key_id: str
    nonce: str
    signed_at: datetime


def _parse_time(value: str) -> datetime:
    """ISO 8601 in UTC as the SDKs send it: ``2026-11-27T18:35:44Z`` (fraction allowed)."""
    if _TIMESTAMP.fullmatch(value):
        try:
            return datetime.fromisoformat(value[:-1])
        except ValueError:  # e.g. month 13
            pass
    raise errors.timestamp_format(value)


@dataclass(frozen=True)
class _Claim:
    access_key_id: str
    nonce: str
    timestamp: str
    check: Callable[[str], bool]  # secret -> signature matches
    # What a mismatch's message names (the SDKs' error parsers expect it after a colon; the
    # old one crashes without). Made only then: a good signature never needs it.
    string_to_sign: Callable[[], str]


def _v1_claim(call: RpcCall) -> _Claim:
    p = call.params
    if p.get("SecurityToken"):
        raise errors.security_token_unsupported()
    for name in ("AccessKeyId", "Signature"):
        if not p.get(name):
            raise errors.incomplete_signature(f"{name} is missing.")
    method = p.get("SignatureMethod", "")
    if method != "HMAC-SHA1":
        raise errors.invalid_signature_method(method)
    if p.get("SignatureVersion", "1.0") != "1.0":
        raise errors.invalid_parameter("SignatureVersion must be 1.0.")
    for name in ("SignatureNonce", "Timestamp"):
        if not p.get(name):
            raise errors.missing(name)
    signed = {k: v for k, v in p.items() if k != "Signature"}
    given = p["Signature"]

    def check(secret: str) -> bool:
        return signing.same(signing.v1_signature(secret, call.raw.method, signed), given)

    return _Claim(
        p["AccessKeyId"],
        p["SignatureNonce"],
        p["Timestamp"],
        check,
        lambda: signing.v1_string_to_sign(call.raw.method, signed),
    )


def _v3_claim(call: RpcCall) -> _Claim:
    headers = call.raw.headers
    auth = signing.parse_v3_authorization(headers["authorization"])
    if auth is None:
        raise errors.incomplete_signature("the Authorization header is malformed.")
    if auth.algorithm != signing.V3_ALGORITHM:
        raise errors.invalid_signature_method(auth.algorithm)
    if headers.get("x-acs-security-token") or headers.get("x-acs-bearer-token"):
        raise errors.security_token_unsupported()
    signed = set(auth.signed_headers)
    must_sign = {*_V3_REQUIRED, *(h for h in headers if h.startswith("x-acs-"))}
    if "content-type" in headers:
        must_sign.add("content-type")
    unsigned = sorted(must_sign - signed)
    if unsigned:
        raise errors.incomplete_signature(f"header(s) {', '.join(unsigned)} must be signed.")
    absent = sorted(h for h in signed if h not in headers)
    if absent:
        raise errors.incomplete_signature(f"signed header(s) {', '.join(absent)} are missing.")
    payload_hash = headers["x-acs-content-sha256"]
    if not signing.same(payload_hash, hashlib.sha256(call.raw.body).hexdigest()):
        raise errors.signature_mismatch("x-acs-content-sha256 does not match the body.")
    canonical = signing.v3_canonical_request(
        call.raw.method, call.raw.path, call.query, headers, auth.signed_headers, payload_hash
    )

    def check(secret: str) -> bool:
        return signing.same(signing.v3_signature(secret, canonical), auth.signature)

    return _Claim(
        auth.access_key_id,
        headers["x-acs-signature-nonce"],
        headers["x-acs-date"],
        check,
        lambda: signing.v3_string_to_sign(canonical),
    )


class Authenticator:
    def __init__(
        self,
        credentials: CredentialStore,
        clock_skew_seconds: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC).replace(tzinfo=None),
    ) -> None:
        self.credentials = credentials
        self.skew = timedelta(seconds=clock_skew_seconds)
        self.now = now

    async def verify(self, call: RpcCall) -> Proof:
        """Check the timestamp and the signature; raises GatewayError on any failure."""
        claim = _v3_claim(call) if call.scheme == "v3" else _v1_claim(call)
        if not _PRINTABLE.fullmatch(claim.nonce):
            raise errors.invalid("SignatureNonce", f"1 to {MAX_NONCE} printable ASCII characters.")
        if not _PRINTABLE.fullmatch(claim.access_key_id):
            raise errors.access_key_not_found()
        signed_at = _parse_time(claim.timestamp)
        if abs(self.now() - signed_at) > self.skew:
            raise errors.timestamp_expired(claim.timestamp, int(self.skew.total_seconds()))
        secret = await self.credentials.secret(claim.access_key_id)
        if secret is None:
            raise errors.access_key_not_found()
        if not claim.check(secret):
            raise errors.signature_mismatch(f"server string to sign is:{claim.string_to_sign()}")
        return Proof(claim.access_key_id, claim.nonce, signed_at)

    async def admit(self, proof: Proof, tid: int | None) -> Credential:
        """Spend the nonce and read the key's current state (one metadata round trip)."""
        # A replay is refused for as long as its timestamp could still pass the skew check.
        expires = max(proof.signed_at, self.now()) + self.skew + timedelta(seconds=60)
        admission = await self.credentials.admit(proof.access_key_id, proof.nonce, expires, tid)
        if admission is None:
            raise errors.access_key_not_found()
        if not admission.credential.key_active:
            raise errors.access_key_inactive()
        if not admission.fresh_nonce:
            raise errors.nonce_used()
        return admission.credential
