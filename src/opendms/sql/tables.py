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
