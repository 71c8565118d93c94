"""A DMS API request signed as the official SDK signs it (ACS3-HMAC-SHA256), for the
benches that call OpenDMS over HTTP without the SDK's own cost per call."""

from __future__ import annotations

import http.client
import json
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from opendms.gateway import signing


def signed(
    port: int, access_key_id: str, secret: str, action: str, params: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """The URL and headers of a POST of ``action`` with ``params`` to 127.0.0.1:``port``,
    signed now (to be sent within the allowed clock skew)."""
    headers = {
        "host": f"127.0.0.1:{port}",
        "x-acs-version": "2018-11-01",
        "x-acs-action": action,
        "x-acs-date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "accept": "application/json",
        "x-acs-content-sha256": signing.EMPTY_SHA256,
    }
    canonical = signing.v3_canonical_request(
        "POST", "/", sorted(params.items()), headers, headers, signing.EMPTY_SHA256
    )
    headers["authorization"] = signing.v3_authorization(
        access_key_id, headers, signing.v3_signature(secret, canonical)
    )
    query = "&".join(f"{_q(k)}={_q(v)}" for k, v in sorted(params.items()))
    return f"/?{query}", headers


def send(conn: http.client.HTTPConnection, url: str, headers: dict[str, str]) -> dict[str, Any]:
    """A signed request (see signed) sent on ``conn``: its answer, or the bench stops."""
    conn.request("POST", url, body=b"", headers=headers)
    resp = conn.getresponse()
    body = json.loads(resp.read())
    if resp.status != 200 or not body.get("Success"):
        raise SystemExit(f"{headers['x-acs-action']} failed: {resp.status} {body}")
    return dict(body)


def _q(value: str) -> str:
    return quote(value, safe="-_.~")
