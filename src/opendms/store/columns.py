"""Column types that keep what they store in plain columns (no migration, nothing a database
does differently): a state enum in a VARCHAR, JSON in a TEXT."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import Dialect, String, Text
from sqlalchemy.types import TypeDecorator

E = TypeVar("E", bound=StrEnum)


class State(TypeDecorator[E], Generic[E]):
    """A ``StrEnum`` stored as its value in a VARCHAR, read back as the member.

    Writing takes a member or its value (a filter may name a value that is never stored, and
    then matches nothing); reading a value the enum does not know fails loudly, as a row no
    version of OpenDMS wrote."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)

    @property
    def python_type(self) -> type[E]:
        return self.enum


class Json(TypeDecorator[Any]):
    """A JSON document in a TEXT column: callers read and write dicts and lists.

    Written compact, non-ASCII as it is. The loaded value is a fresh object the session
    also keeps as the committed state, so change it by assigning a new value, not in place
    (an in-place change would also change what the session compares against, and nothing
    would be written)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None or value == "" else json.loads(value)

    @property
    def python_type(self) -> type[Any]:
        return object
