"""The parameter building blocks the ticket kinds share (``opendms.kinds.*`` hold each
kind's own model)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_pascal

# dms-api.md A.1.2: ExecSQL may be up to 15 MB.
MAX_SQL_BYTES = 15 * 1024 * 1024


def _within_bytes(value: str) -> str:
    if len(value.encode()) > MAX_SQL_BYTES:
        raise ValueError(f"is over {MAX_SQL_BYTES // (1024 * 1024)} MB")
    return value


# The character bound is a cheap first cut; the limit itself is in UTF-8 bytes.
SqlText = Annotated[
    str, Field(min_length=1, max_length=MAX_SQL_BYTES), AfterValidator(_within_bytes)
]
Name = Annotated[str, Field(min_length=1, max_length=256)]
Key = Annotated[str, Field(min_length=1, max_length=64)]
ExecMode = Literal["COMMITOR", "AUTO", "LAST_AUDITOR"]
SqlType = Literal["TEXT", "ATTACHMENT"]
Id = Annotated[int, Field(ge=1, le=2**63 - 1)]
Classify = Annotated[str, Field(max_length=256)]
# The statement kinds of a data change, and of a query.
DML = frozenset({"INSERT", "REPLACE", "UPDATE", "DELETE"})
QUERIES = frozenset({"SELECT"})


@dataclass(frozen=True)
class Intent:
    """What a ticket asks to do, as far as its parameters tell before any precheck: SQL to
    analyse, statement kinds and tables known without SQL, and whether that is all of it
    (an attachment not yet read is not)."""

    sql: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()
    tables: tuple[str, ...] = ()
    complete: bool = True


class Params(BaseModel):
    """A ticket type's parameters as the dedicated Create*Order calls spell them (PascalCase).
    ``CreateOrder`` sends the same keys in camelCase; :func:`pascal_keys` maps them here."""

    model_config = ConfigDict(
        alias_generator=to_pascal,
        extra="ignore",
        populate_by_name=False,
        frozen=True,
        hide_input_in_errors=True,
    )

    def wire(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")

    def intent(self) -> Intent:
        """What the ticket asks to do; a type that cannot tell says its intent is incomplete,
        and approval routing then assumes the worst of what it does not know."""
        return Intent(complete=False)

    def expected_rows(self) -> int | None:
        """The row count the submitter states, which the precheck's ROW_CHECK holds the
        ticket to; None when the type states none."""
        return None

    def rows_waiver(self) -> str | None:
        """Why the submitter waived the row check up front (IgnoreAffectRowsReason)."""
        return None


class DbItem(Params):
    db_id: Id
    logic: bool = False
    instance_id: Id | None = None

    @model_validator(mode="after")
    def _physical(self) -> DbItem:
        if self.logic:
            raise ValueError("logical databases are not supported")
        return self


class Rollback(Params):
    """Rollback SQL the submitter provides (TEXT) or attaches (ATTACHMENT)."""

    rollback_sql_type: SqlType | None = None
    rollback_sql: SqlText | None = Field(default=None, alias="RollbackSQL")
    rollback_attachment_name: Key | None = None

    @model_validator(mode="after")
    def _rollback_present(self) -> Rollback:
        if self.rollback_sql_type == "ATTACHMENT" and not self.rollback_attachment_name:
            raise ValueError("RollbackAttachmentName is required when RollbackSqlType=ATTACHMENT")
        return self


def pascal_keys(value: Any) -> Any:
    """camelCase keys (CreateOrder's PluginParam) to PascalCase, recursively; keys that are
    already PascalCase stay. ``specifyDuration`` keeps DMS's own spelling."""
    if isinstance(value, dict):
        return {
            (k if k == "specifyDuration" or not k else k[0].upper() + k[1:]): pascal_keys(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [pascal_keys(v) for v in value]
    return value
