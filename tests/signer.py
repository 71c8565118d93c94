"""A minimal client-side signer for tests: builds requests exactly as the SDKs do (D.1, D.2),
from the same primitives the gateway verifies with, with knobs to break each part."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlencode

from opendms.gateway import signing


def now_stamp(shift_seconds: int = 0) -> str:
    ts = datetime.now(UTC).timestamp() + shift_seconds
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Prepared:
    method: str
    url: str  # path + query
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Signer:
    access_key_id: str
    secret: str
    host: str = "testserver"
    version: str = "2018-11-01"
    extra_headers: dict[str, str] = field(default_factory=dict)

    def v1(
        self,
        action: str,
        query: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        *,
        method: str = "POST",
        nonce: str | None = None,
        timestamp: str | None = None,
        secret: str | None = None,
        drop: tuple[str, ...] = (),
        override: dict[str, str] | None = None,
    ) -> Prepared:
        params = {
            "Action": action,
            "Format": "json",
            "Version": self.version,
            "Timestamp": timestamp or now_stamp(),
            "SignatureNonce": nonce or uuid.uuid4().hex,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "AccessKeyId": self.access_key_id,
            **(query or {}),
        }
        for name in drop:
            params.pop(name, None)
        signed = {**params, **(form or {})}
        params["Signature"] = signing.v1_signature(secret or self.secret, method, signed)
        params.update(override or {})
        headers = {"host": self.host}
        body = b""
        if form:
            body = urlencode(sorted(form.items())).encode()
            headers["content-type"] = "application/x-www-form-urlencoded"
        return Prepared(method, "/?" + urlencode(params), headers, body)

    def v3(
        self,
        action: str,
        query: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        *,
        method: str = "POST",
        nonce: str | None = None,
        timestamp: str | None = None,
        secret: str | None = None,
        unsigned: tuple[str, ...] = (),
        body_override: bytes | None = None,
        raw_body: bytes | None = None,
    ) -> Prepared:
        """``raw_body``: send (and sign) these bytes as application/octet-stream instead of a
        form; ``body_override``: send other bytes than the ones signed."""
        query = query or {}
        body = urlencode(sorted(form.items())).encode() if form else b""
        if raw_body is not None:
            body = raw_body
        headers = {
            "host": self.host,
            "x-acs-version": self.version,
            "x-acs-action": action,
            "x-acs-date": timestamp or now_stamp(),
            "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
            "accept": "application/json",
            "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
            **self.extra_headers,
        }
        if form:
            headers["content-type"] = "application/x-www-form-urlencoded"
        elif raw_body is not None:
            headers["content-type"] = "application/octet-stream"
        signed = [h for h in headers if h not in unsigned]
        canonical = signing.v3_canonical_request(
            method, "/", query.items(), headers, signed, headers["x-acs-content-sha256"]
        )
        signature = signing.v3_signature(secret or self.secret, canonical)
        headers["authorization"] = signing.v3_authorization(self.access_key_id, signed, signature)
        url = "/?" + urlencode(query) if query else "/"
        return Prepared(method, url, headers, body if body_override is None else body_override)
