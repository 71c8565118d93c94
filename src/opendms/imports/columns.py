"""How a CSV or XLSX file's columns land in a table, and whether a value fits its column.

One rule for empty fields on every engine: ``\\N`` is NULL; an empty field is NULL in a
column that is not text (where '' is no value anyway) and the empty string in a text
column. XLSX cells are turned into the same text a CSV would hold.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from opendms.store.models import DbColumn

NULL = "\\N"
_INT = re.compile(r"[+-]?\d+")
_TRUE_FALSE = {"0", "1", "true", "false", "t", "f", "yes", "no", "y", "n", "on", "off"}


class ColumnProblem(ValueError):
    """The file's columns do not fit the table; the message says how."""


def kind_of(column_type: str) -> str:
    """The family of a catalog column type, as far as checking values goes."""
    t = column_type.lower()
    if "interval" in t:
        return "other"
    if t.startswith(("tinyint(1)", "bool", "boolean")) or t == "bit(1)":
        return "bool"
    if "int" in t or "serial" in t:
        return "int"
    if "decimal" in t or "numeric" in t:
        return "decimal"
    if "float" in t or "double" in t or "real" in t:
        return "float"
    if "timestamp" in t or "datetime" in t:
        return "datetime"
    if t.startswith("date"):
        return "date"
    if t.startswith("time"):
        return "time"
    if "blob" in t or "binary" in t or "bytea" in t:
        return "binary"
    if "char" in t or "text" in t or "enum" in t or "set" in t or "json" in t or "uuid" in t:
        return "text"
    return "other"


@dataclass(frozen=True)
class Column:
    name: str  # as the database spells it
    kind: str
    nullable: bool
    has_default: bool  # a default or auto-increment: it may be left out
    length: int | None  # characters, for text columns

    @classmethod
    def of(cls, c: DbColumn) -> Column:
        kind = kind_of(c.column_type)
        return cls(
            c.name,
            kind,
            c.nullable,
            c.default_value is not None or c.auto_increment,
            c.data_length if kind == "text" else None,
        )

    def value(self, raw: str) -> str | None:
        """The field as loaded: None for NULL (see the module)."""
        if raw == NULL or (raw == "" and self.kind != "text"):
            return None
        return raw

    def problem(self, value: str | None) -> str | None:
        """Why ``value`` does not fit this column; None when it does."""
        if value is None:
            return None if self.nullable else f"{self.name} may not be NULL"
        try:
            fits = self._fits(value)
        except (ValueError, decimal.InvalidOperation):
            fits = False
        if fits:
            return None
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"{shown!r} is not a valid {self.kind} for {self.name}"

    def _fits(self, value: str) -> bool:
        v = value.strip()
        if self.kind == "int":
            return bool(_INT.fullmatch(v))
        if self.kind == "decimal":
            return decimal.Decimal(v).is_finite()
        if self.kind == "float":
            float(v)
            return True
        if self.kind == "bool":
            return v.lower() in _TRUE_FALSE
        if self.kind == "datetime":
            dt.datetime.fromisoformat(v)
            return True
        if self.kind == "date":
            dt.date.fromisoformat(v)
            return True
        if self.kind == "time":
            dt.time.fromisoformat(v)
            return True
        if self.kind == "text" and self.length:
            return len(value) <= self.length
        return True


def cell_text(value: Any) -> str:
    """An XLSX cell as a CSV field would hold it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)


def match(header: Sequence[str] | None, table: str, columns: Sequence[DbColumn]) -> list[Column]:
    """The table's columns the file's fields go to, in the file's order: by the header's
    names (any case), or without one, every column of the table in its order."""
    known = [Column.of(c) for c in sorted(columns, key=lambda c: c.position)]
    if header is None:
        return known
    by_name = {c.name.lower(): c for c in known}
    chosen: list[Column] = []
    for name in header:
        found = by_name.get(name.strip().lower())
        if found is None:
            raise ColumnProblem(f"the header names {name.strip()[:64]!r}, which {table} lacks")
        if found in chosen:
            raise ColumnProblem(f"the header names {found.name} twice")
        chosen.append(found)
    missing = [c.name for c in known if c not in chosen and not c.nullable and not c.has_default]
    if missing:
        raise ColumnProblem(
            f"the file has no field for {', '.join(missing)}, which {table} requires"
        )
    return chosen
