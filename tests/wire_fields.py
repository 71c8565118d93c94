"""Introspection of our wire request models, shared by the fuzz and compatibility tests."""

from __future__ import annotations

import enum
import typing

from pydantic.fields import FieldInfo


def field_choices(fi: FieldInfo) -> list[str]:
    """Enumerated values of a Literal or Enum field, if it is one."""
    out: list[str] = []
    stack = [fi.annotation]
    while stack:
        t = stack.pop()
        if isinstance(t, type) and issubclass(t, enum.Enum):
            out += [str(m.value) for m in t]
        elif typing.get_origin(t) is typing.Literal:
            out += [str(a) for a in typing.get_args(t)]
        else:
            stack += list(typing.get_args(t))
    return out
