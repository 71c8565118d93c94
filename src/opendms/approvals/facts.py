"""The risk factors of a ticket, from its parameters, its SQL and the catalog.

Until a ticket type's precheck measures it, the affected-row figure is a bound taken from
the catalog's table statistics: an UPDATE or DELETE may touch every row of its table, an
INSERT … VALUES writes its tuples. What no bound covers (INSERT … SELECT, a CALL, a table the
catalog does not know) is unknown, and the rules treat unknown as large.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opendms.rulebook.rules import Facts
from opendms.sql.statements import Statement, analyse
from opendms.store.models import Database, DbTable, Instance, Order, PrecheckStatement
from opendms.tickets import service as tickets
from opendms.tickets.params import DML, QUERIES
from opendms.tickets.registry import kind_of, params_of

# Statements that may touch every row of the first table they name.
_WHOLE_TABLE = frozenset({"UPDATE", "DELETE", "MERGE", "ALTER", "DROP", "TRUNCATE", "RENAME"})
_NO_ROWS = frozenset({"SELECT", "CREATE", "SET", "GRANT", "REVOKE"})


@dataclass(frozen=True)
class InstanceDatabases:
    """An instance and the ticket's databases on it (the rules weigh each instance's
    environment)."""

    instance: Instance
    databases: tuple[Database, ...]


def targets_of(s: Session, order: Order) -> list[InstanceDatabases]:
    """The ticket's databases grouped by instance, in instance order."""
    grouped: dict[int, tuple[Instance, list[Database]]] = {}
    for db, inst in tickets.databases_of(s, order.order_id):
        grouped.setdefault(inst.instance_id, (inst, []))[1].append(db)
    return [InstanceDatabases(inst, tuple(dbs)) for inst, dbs in grouped.values()]


class _Tables:
    """Row estimates of the tables a ticket names, looked up in the catalog once."""

    def __init__(self, s: Session, targets: list[InstanceDatabases], names: set[str]) -> None:
        instance_ids = [t.instance.instance_id for t in targets]
        self.home = [db for t in targets for db in t.databases]
        self.rows: dict[tuple[int, str], int] = {}
        self.schemas: dict[str, list[int]] = {}
        short = {n.rsplit(".", 1)[-1] for n in names}
        for db_id, schema, name, num_rows in s.execute(
            select(Database.db_id, Database.schema_name, DbTable.name, DbTable.num_rows)
            .join(DbTable, DbTable.db_id == Database.db_id)
            .where(Database.instance_id.in_(instance_ids), func.lower(DbTable.name).in_(short))
        ):
            self.rows[(db_id, name.lower())] = num_rows
            ids = self.schemas.setdefault(schema.lower(), [])
            if db_id not in ids:
                ids.append(db_id)

    def qualified(self, table: str) -> list[str]:
        if "." in table:
            return [table]
        return [f"{db.schema_name.lower()}.{table}" for db in self.home]

    def estimate(self, table: str) -> int | None:
        """Rows of ``table`` summed over the databases the ticket runs it in."""
        if "." in table:
            schema, name = table.rsplit(".", 1)
            db_ids = self.schemas.get(schema, [])
        else:
            name, db_ids = table, [db.db_id for db in self.home]
        found = [self.rows[(d, name)] for d in db_ids if (d, name) in self.rows]
        return sum(found) if found else None


def _affected(st: Statement, tables: _Tables, copies: int) -> int | None:
    if st.kind in _NO_ROWS:
        return 0
    if st.literal_rows is not None:
        return st.literal_rows * copies
    if st.kind in _WHOLE_TABLE and st.tables:
        return tables.estimate(st.tables[0])
    return None


def _exported(st: Statement, tables: _Tables) -> int | None:
    # one table read once: at most its rows; a join or a union may return more
    bound = tables.estimate(st.tables[0]) if st.references == 1 else None
    if st.limit is not None:
        return st.limit if bound is None else min(bound, st.limit)
    return bound


def _counted(s: Session, order: Order, kinds: frozenset[str]) -> int | None:
    """The rows the ticket's statements of ``kinds`` change (or, queries, read) as its
    precheck counted them, when it counted every one exactly (an EXPLAIN estimate or a
    missing count leaves the bounds to decide)."""
    found = s.execute(
        select(PrecheckStatement.affect_rows, PrecheckStatement.rows_source).where(
            PrecheckStatement.order_id == order.order_id,
            PrecheckStatement.sql_type.in_(kinds),
        )
    ).all()
    if not found or any(source not in ("COUNT", "LITERAL") for _, source in found):
        return None
    return sum(rows or 0 for rows, _ in found)


def _total(values: list[int | None]) -> int | None:
    return None if any(v is None for v in values) else sum(v or 0 for v in values)


def ticket_facts(s: Session, order: Order, targets: list[InstanceDatabases]) -> Facts:
    intent = params_of(order).intent()
    engine = targets[0].instance.instance_type if targets else "mysql"
    statements: list[Statement] = []
    complete = intent.complete
    for text in intent.sql:
        analysis = analyse(text, engine)
        statements.extend(analysis.statements)
        complete = complete and analysis.complete
    kinds = set(intent.kinds) | {st.kind for st in statements}
    named = [t.lower() for t in intent.tables if t] + [t for st in statements for t in st.tables]
    tables = _Tables(s, targets, set(named))
    copies = max(1, len(tables.home))

    affected: list[int | None] = [_affected(st, tables, copies) for st in statements]
    if intent.kinds & {"DELETE", "UPDATE"}:
        affected.extend(tables.estimate(t.lower()) for t in intent.tables)
    if not complete:
        affected.append(None)
    counted = _counted(s, order, DML)
    if counted is not None:  # the precheck counted on the live databases: better than bounds
        affected = [counted]
    export_rows = None
    if kind_of(order.plugin_type).verb == "export" and complete:
        export_rows = _counted(s, order, QUERIES)
        if export_rows is None:
            export_rows = _total([_exported(st, tables) for st in statements if st.kind in QUERIES])
    return Facts(
        plugin_type=order.plugin_type,
        env_types=frozenset(t.instance.env_type for t in targets),
        statement_kinds=frozenset(kinds),
        tables=frozenset(q for t in named for q in tables.qualified(t)),
        affected_rows=_total(affected),
        export_rows=export_rows,
        complete=complete,
    )
