"""Gateway-level errors (dms-api.md C.2): HTTP 4xx/5xx with ``{RequestId, HostId, Code, Message}``.

Raised before any business logic runs; the SDKs turn them into exceptions carrying ``Code``.
"""

from __future__ import annotations


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        field: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        # The request parameter at fault, dotted into a JSON one (``Param.ExecSQL``): where
        # the web console shows the message.
        self.field = field


def missing(param: str) -> GatewayError:
    return GatewayError(
        400, f"Missing{param}", f"{param} is mandatory for this action.", field=param
    )


def invalid(param: str, why: str, field: str = "") -> GatewayError:
    return GatewayError(
        400,
        f"Invalid{param}",
        f"The specified parameter {param} is not valid: {why}",
        field=field or param,
    )


def invalid_parameter(why: str) -> GatewayError:
    return GatewayError(400, "InvalidParameter", why)


def action_not_found(action: str) -> GatewayError:
    return GatewayError(
        404,
        "InvalidAction.NotFound",
        f"Specified api {action!r} is not found, please check your url and method.",
    )


def invalid_version(version: str, expected: str) -> GatewayError:
    return GatewayError(
        400,
        "InvalidVersion",
        f"Specified parameter Version {version!r} is not valid; use {expected}.",
    )


def unsupported_method(method: str, action: str) -> GatewayError:
    return GatewayError(
        400, "UnsupportedHTTPMethod", f"HTTP method {method} is not supported for {action}."
    )


def access_key_not_found() -> GatewayError:
    return GatewayError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")


def access_key_inactive(why: str = "Specified access key is disabled.") -> GatewayError:
    return GatewayError(400, "InvalidAccessKeyId.Inactive", why)


def incomplete_signature(why: str) -> GatewayError:
    return GatewayError(400, "IncompleteSignature", f"The request signature is incomplete: {why}")


def signature_mismatch(detail: str = "") -> GatewayError:
    msg = "Specified signature is not matched with our calculation."
    return GatewayError(400, "SignatureDoesNotMatch", f"{msg} {detail}".strip())


def invalid_signature_method(method: str) -> GatewayError:
    return GatewayError(
        400, "InvalidSignatureMethod", f"Specified signature method {method!r} is not supported."
    )


def timestamp_format(value: str) -> GatewayError:
    return GatewayError(
        400,
        "InvalidTimeStamp.Format",
        f"Specified time stamp {value[:64]!r} is not in ISO 8601 UTC (YYYY-MM-DDThh:mm:ssZ).",
    )


def timestamp_expired(value: str, skew: int) -> GatewayError:
    return GatewayError(
        400,
        "InvalidTimeStamp.Expired",
        f"Specified time stamp {value} differs from the server time by more than {skew} seconds.",
    )


def nonce_used() -> GatewayError:
    return GatewayError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")


def security_token_unsupported() -> GatewayError:
    return GatewayError(
        400,
        "InvalidSecurityToken.NotSupported",
        "STS security tokens are not supported by this server; sign with an access key.",
    )


def forbidden_ram(action: str) -> GatewayError:
    return GatewayError(
        403, "Forbidden.RAM", f"User not authorized to operate on the specified resource: {action}."
    )


def forbidden_tenant(tid: int | None) -> GatewayError:
    if tid is None:
        return GatewayError(403, "Forbidden.Tenant", "The caller belongs to no tenant; pass Tid.")
    return GatewayError(
        403, "Forbidden.Tenant", f"The caller is not an active user of tenant {tid}."
    )


def format_unsupported() -> GatewayError:
    return GatewayError(400, "InvalidParameter.Format", "Only Format=JSON is supported.")


def store_unavailable() -> GatewayError:
    return GatewayError(503, "ServiceUnavailable", "The metadata store is unavailable; retry.")


def throttled(retry_after_ms: int) -> GatewayError:
    return GatewayError(
        400,
        "Throttling.User",
        "Request was denied due to user flow control.",
        {"x-acs-retry-after": str(max(1, retry_after_ms))},
    )


def too_large(limit: int) -> GatewayError:
    return GatewayError(413, "InvalidParameter.TooLarge", f"The request exceeds {limit} bytes.")


def internal_error() -> GatewayError:
    return GatewayError(
        500, "InternalError", "The request processing has failed due to some unknown error."
    )
