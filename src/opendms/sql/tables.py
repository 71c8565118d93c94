"""What SQL review and execution know of a target's tables, and where they ask for it.

A :class:`Catalog` answers for the tables of the database a script runs in: their shape
(columns, keys, engine: what the data-change rules and backups read) and, where it can, their
whole definition (:class:`opendms.schema.model.Table`: what the schema-change rules read).
``catalog.shapes.CatalogShapes`` answers from the metadata store's catalog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from opendms.schema.model import Table

# Storage engines whose changes commit and roll back with the transaction (MySQL/MariaDB;
# every PostgreSQL and SQLite table is transactional).
TRANSACTIONAL_ENGINES = frozenset({"", "innodb", "xtradb", "rocksdb", "tokudb", "ndbcluster"})


@dataclass(frozen=True)
class TableShape:
    columns: frozenset[str]  # lower-cased
    primary_key: tuple[str, ...]  # lower-cased, in key order; empty: none
    engine: str = ""  # lower-cased storage engine (MySQL/MariaDB); empty where not applicable
    # What a chunked change walks, as the database spells it: the primary key, else a
    # unique key of NOT NULL columns. Also what backups go by (the primary key, if any).
    walk_key: tuple[str, ...] = ()
    auto_increment: str = ""  # lower-cased AUTO_INCREMENT column (MySQL/MariaDB), if any


class Catalog(Protocol):
    def table(self, name: str) -> TableShape | None:
        """``name`` as written ("t" or "schema.t", lower-cased); None if it does not exist."""

    def definition(self, name: str) -> Table | None:
        """The table's definition as its database last reported it (``name`` as for
        :meth:`table`); None if it does not exist or its definition is not known, in which
        case the rules that need one stay silent."""


def shape_of(table: Table) -> TableShape:
    """What the data-change rules read of a definition."""
    columns = {c.name.lower(): c for c in table.columns}
    unique = [
        i.columns
        for i in table.indexes
        if i.unique
        and i.columns
        and all(c.lower() in columns and not columns[c.lower()].nullable for c in i.columns)
    ]
    auto = next((c.name.lower() for c in table.columns if c.auto_increment), "")
    return TableShape(
        frozenset(columns),
        tuple(c.lower() for c in table.primary_key),
        table.engine.lower(),
        table.primary_key or min(unique, key=len, default=()),
        auto,
    )


class LiveCatalog:
    """A :class:`Catalog` of definitions read from the live database just now (a schema
    change's comparison): authoritative for the tables it read (``read``: the names asked
    for, lower-cased; a name read and not found does not exist), and ``fallback`` (the
    metadata store's catalog) for any other."""

    def __init__(self, tables: dict[str, Table], read: set[str], fallback: Catalog) -> None:
        self.tables = {name.lower(): t for name, t in tables.items()}
        self.read = {name.lower() for name in read} | set(self.tables)
        self.fallback = fallback

    def definition(self, name: str) -> Table | None:
        key = name.lower()
        if key in self.read:
            return self.tables.get(key)
        return self.fallback.definition(name)

    def table(self, name: str) -> TableShape | None:
        key = name.lower()
        if key in self.read:
            found = self.tables.get(key)
            return shape_of(found) if found is not None else None
        return self.fallback.table(name)
