"""Wire value types: how the SDKs spell longs, booleans and JSON-string parameters.

Every parameter arrives as text (dms-api.md A.0); these annotated types parse it strictly and
turn pydantic's complaints into the gateway's ``Missing<Param>`` / ``Invalid<Param>`` errors.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_pascal
from pydantic_core import PydanticCustomError

from opendms.gateway import errors
from opendms.gateway.errors import GatewayError

_INTEGER = re.compile(r"[+-]?[0-9]{1,20}")
INT64 = (-(2**63), 2**63 - 1)
INT32 = (-(2**31), 2**31 - 1)


def parse_integer(value: object, bounds: tuple[int, int] = INT64) -> int:
    """The wire's integers: optional sign, ASCII digits, inside ``bounds``."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("must be an integer")
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER.fullmatch(text):
            raise ValueError("must be an integer")
        value = int(text)
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError("is out of range")
    return value


def _integer(bounds: tuple[int, int]) -> Any:
    return BeforeValidator(lambda v: v if v is None else parse_integer(v, bounds))


def _boolean(value: object) -> object:
    # The Python SDK sends str(True) == "True"; others send "true".
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        raise ValueError("must be true or false")
    return value


def _json_text(value: object) -> object:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON ({exc.msg} at position {exc.pos})") from None
        except RecursionError:
            raise ValueError("is JSON nested too deeply") from None
    return value


Long = Annotated[int, _integer(INT64)]
Int = Annotated[int, _integer(INT32)]
Bool = Annotated[bool, BeforeValidator(_boolean)]


def _digits(value: object) -> object:
    """Ids the SDK types as strings but that are numbers (UserId, Uid)."""
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return str(parse_integer(value, (0, INT64[1])))
    raise ValueError("must be a non-negative integer")


Digits = Annotated[str, BeforeValidator(_digits)]


def _wire_time(value: str) -> str:
    datetime.strptime(value, WIRE_TIME)  # ValueError says what is wrong
    return value


WIRE_TIME = "%Y-%m-%d %H:%M:%S"


def wire_time(value: datetime | None) -> str | None:
    """A stored UTC time as the API writes it; None stays None (the key is then left out)."""
    return f"{value:{WIRE_TIME}}" if value else None


def wire_times(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with each time written as the API writes it: the layers below hand the edge
    datetimes (``TicketKind.detail_config``), and the wire spells them."""
    return {k: wire_time(v) if isinstance(v, datetime) else v for k, v in fields.items()}


def _comma_ids(value: object) -> object:
    if not isinstance(value, str):
        return value
    if len(value) > 4096:
        raise ValueError("is too long")
    ids = []
    for raw in value.split(","):
        part = raw.strip()
        if not part:
            continue
        if not (part.isascii() and part.isdigit() and len(part) < 19):
            raise ValueError("must be comma-separated ids")
        ids.append(int(part))
    return ids


# ``"5,7, 9"``: ids in one comma-separated string (RelatedUserList, NewApproverList).
CommaIds = Annotated[list[int], BeforeValidator(_comma_ids), Field(max_length=1000)]

# Times as DMS sends them: ``2026-11-27 18:35:44``.
WireTime = Annotated[str, Field(max_length=32), AfterValidator(_wire_time)]

# For parameters that carry an object or array serialised as one JSON string:
# ``Annotated[dict[str, Any], JsonText]``.
JsonText = BeforeValidator(_json_text)


class WireModel(BaseModel):
    """A request as the SDK sends it: PascalCase names, unknown parameters ignored."""

    model_config = ConfigDict(
        alias_generator=to_pascal,
        extra="ignore",
        frozen=True,
        str_max_length=16 * 1024 * 1024,
        hide_input_in_errors=True,
    )

    @classmethod
    def from_params(cls, params: dict[str, str]) -> Self:
        try:
            return cls.model_validate(params)
        except ValidationError as exc:
            raise to_gateway_error(exc) from None


class TenantScoped(WireModel):
    """Every DMS action takes an optional ``Tid``; the gateway resolves it before dispatch."""

    tid: Long | None = None


def missing_param(name: str) -> PydanticCustomError:
    """For a model validator: a parameter required only in combination with others."""
    return PydanticCustomError(
        "missing_param", "{param} is mandatory for this action.", {"param": name}
    )


def to_gateway_error(exc: ValidationError) -> GatewayError:
    first = exc.errors(include_url=False, include_input=False)[0]
    if first["type"] == "missing_param":
        return errors.missing(str(first.get("ctx", {}).get("param", "Parameter")))
    loc = [str(p) for p in first["loc"]]
    param = loc[0] if loc else "Parameter"
    if first["type"] == "missing" and len(loc) == 1:
        return errors.missing(param)
    message = str(first["msg"]).removeprefix("Value error, ")
    where = ".".join(loc[1:])
    return errors.invalid(
        param, f"{where}: {message}" if where else message, field=".".join(loc) or param
    )
