"""ActionDetail: the JSON object ExecuteDataCorrect and ExecuteDataExport take beside their
parameters, its keys in camelCase (``startTime``, ``backupData``, ``fileType``).

Each of those actions reads it with a model of its own (``data_correct.ExecuteActionDetail``,
``exports.ExportActionDetail``) that hands its service a typed plan through the service's
``checked_plan``, where the command line's options arrive too. A fault is the business
error InvalidParameter naming the key (``ActionDetail.endTime: …``), as DMS answers it, not
the gateway's InvalidActionDetail: the request's own parameters were read without fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from opendms.errors import DmsError, ErrorCode


def given(value: Any) -> str | None:
    """A value a service reads as text: None when absent or empty, else its text."""
    return None if value in (None, "") else str(value)


class ActionDetail(BaseModel):
    """An action's ActionDetail. Its validators raise ``DmsError``, which pydantic passes on
    as it is (it collects only ValueError and its own errors), so the first fault in the
    order the fields are declared is the one told, after any unknown key."""

    model_config = ConfigDict(alias_generator=to_camel, frozen=True, hide_input_in_errors=True)

    # How the message about an unknown key ends: "…; it takes <takes>."
    takes: ClassVar[str]

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        known = {f.alias or name for name, f in cls.model_fields.items()}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DmsError(
                ErrorCode.INVALID_PARAMETER,
                f"ActionDetail: unknown key {', '.join(k[:32] for k in unknown[:3])}; it takes "
                f"{cls.takes}.",
            )
        return data

    @classmethod
    def read(cls, detail: Mapping[str, Any] | None) -> Self:
        """``detail`` as sent (absent: every default), checked."""
        try:
            return cls.model_validate(dict(detail or {}))
        except ValidationError as exc:  # a field without a validator of ours
            first = exc.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DmsError(
                ErrorCode.INVALID_PARAMETER, f"ActionDetail.{where}: {first['msg']}"
            ) from None
