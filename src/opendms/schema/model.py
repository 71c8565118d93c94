"""A table's definition as its database reports it, in a form that compares, stores as JSON
and reads the same on every engine.

Names are spelled as the database spells them. Types are the database's own spelling,
lower-cased, with what the server adds on its own taken off by the reader (MySQL 8's
dropped display widths, PostgreSQL's ``character varying`` for ``varchar``), so that two
servers of one engine that agree on a column report it alike. Defaults are SQL expressions
as the server shows them (``'a'``, ``0``, ``CURRENT_TIMESTAMP``, ``nextval(…)``); None means
the column has none. What only describes the data (row and size estimates) is carried for
the review rules but is not part of the definition: two tables that differ only there are
equal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # "varchar(50)", "bigint unsigned", "numeric(10,2)", "timestamp with time zone"
    nullable: bool = True
    default: str | None = None  # an SQL expression; None: no default
    # MySQL/MariaDB AUTO_INCREMENT; PostgreSQL an identity column or a serial's sequence
    auto_increment: bool = False
    comment: str = ""
    charset: str = ""  # MySQL/MariaDB character columns, when the server names one
    collation: str = ""
    generated: str = ""  # a generated column's expression; "" for a stored value
    generated_stored: bool = False
    # MySQL/MariaDB ON UPDATE (``CURRENT_TIMESTAMP``, ``CURRENT_TIMESTAMP(3)``); "" when none
    on_update: str = ""


@dataclass(frozen=True)
class Index:
    """A secondary index (the primary key is the table's ``primary_key``)."""

    name: str
    # Column names in key order; an expression part (PostgreSQL ``lower(name)``) as its text.
    columns: tuple[str, ...]
    unique: bool = False
    # MySQL/MariaDB prefix lengths, one per column (None: the whole column); () when none.
    lengths: tuple[int | None, ...] = ()
    descending: tuple[bool, ...] = ()  # one per column when any is DESC; () when none is
    method: str = ""  # "", "fulltext", "spatial", "hash", "gin", "gist", … ("" is the b-tree)
    where: str = ""  # a partial index's predicate (PostgreSQL)
    # PostgreSQL: made by a UNIQUE constraint (ALTER TABLE … ADD CONSTRAINT), not CREATE INDEX
    constraint: bool = False
    comment: str = ""


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str  # as written in the referencing table's schema: "t" or "schema.t"
    ref_columns: tuple[str, ...]
    on_delete: str = ""  # "", "CASCADE", "SET NULL", "SET DEFAULT", "RESTRICT"; "" = NO ACTION
    on_update: str = ""


@dataclass(frozen=True)
class Check:
    name: str
    expression: str


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]  # in the table's order
    primary_key: tuple[str, ...] = ()
    primary_key_name: str = ""  # PostgreSQL names its constraint; MySQL's is always PRIMARY
    indexes: tuple[Index, ...] = ()  # by name
    foreign_keys: tuple[ForeignKey, ...] = ()  # by name
    checks: tuple[Check, ...] = ()  # by name
    comment: str = ""
    engine: str = ""  # MySQL/MariaDB storage engine, lower-cased ("innodb")
    charset: str = ""  # MySQL/MariaDB table default character set and collation
    collation: str = ""
    rows: int = field(default=0, compare=False)  # the server's estimate
    size_bytes: int = field(default=0, compare=False)

    def column(self, name: str) -> Column | None:
        """The column ``name``, case-insensitively (as MySQL and unquoted PostgreSQL names
        compare)."""
        wanted = name.lower()
        return next((c for c in self.columns if c.name.lower() == wanted), None)

    def index(self, name: str) -> Index | None:
        wanted = name.lower()
        return next((i for i in self.indexes if i.name.lower() == wanted), None)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, found: dict[str, Any]) -> Table:
        def tuples(item: dict[str, Any]) -> dict[str, Any]:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in item.items()}

        return cls(
            **{
                **tuples(found),
                "columns": tuple(Column(**c) for c in found.get("columns", [])),
                "indexes": tuple(Index(**tuples(i)) for i in found.get("indexes", [])),
                "foreign_keys": tuple(
                    ForeignKey(**tuples(f)) for f in found.get("foreign_keys", [])
                ),
                "checks": tuple(Check(**c) for c in found.get("checks", [])),
            }
        )
