"""Review rules for data changes (INSERT, REPLACE, UPDATE, DELETE) and what every ticket's
statements are held to (the statement kinds and functions it may run, no transaction control,
no session settings). Rules that need the target's shape read it from the catalog; without
one (a script reviewed on its own) they stay silent rather than guess. Fixture cases for
every rule live in ``tests/fixtures/review/cases.yaml``.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

from opendms.sql import functions
from opendms.sql.review_base import DDL, DML, Subject, rule
from opendms.sql.statements import table_name
from opendms.sql.tables import TRANSACTIONAL_ENGINES, TableShape

PARTITION_STRATEGIES = frozenset({"RANGE", "LIST", "HASH"})
# Functions whose value differs between the ticket's run, its replicas and a re-run.
NONDETERMINISTIC = frozenset(
    {
        "now",
        "sysdate",
        "current_timestamp",
        "current_date",
        "current_time",
        "localtime",
        "localtimestamp",
        "rand",
        "random",
        "uuid",
        "uuid_short",
        "gen_random_uuid",
        "unix_timestamp",
        "utc_timestamp",
        "clock_timestamp",
        "statement_timestamp",
    }
)


# ------------------------------------------------------------------ helpers


def _where(node: exp.Expression) -> exp.Expression | None:
    found = node.args.get("where")
    return found.this if isinstance(found, exp.Where) else None


def _is_true(node: exp.Expression) -> bool:
    """A condition that holds for every row: TRUE, a non-zero number, 1 = 1, x = x, … OR …"""
    if isinstance(node, exp.Paren):
        return _is_true(node.this)
    if isinstance(node, exp.Boolean):
        return bool(node.this)
    if isinstance(node, exp.Literal) and node.is_number:
        return float(node.this) != 0
    if isinstance(node, exp.Literal) and node.is_string:
        return False
    if isinstance(node, exp.EQ | exp.GTE | exp.LTE | exp.NullSafeEQ):
        left, right = node.this, node.expression
        if isinstance(left, exp.Literal) and isinstance(right, exp.Literal):
            return bool(left.this == right.this)
        return left == right and not isinstance(left, exp.Null)
    if isinstance(node, exp.Or):
        return _is_true(node.this) or _is_true(node.expression)
    if isinstance(node, exp.And):
        return _is_true(node.this) and _is_true(node.expression)
    return False


def _written_tables(node: exp.Expression) -> list[exp.Table]:
    target = node.this
    if isinstance(node, exp.Delete) and node.args.get("tables"):
        return list(node.args["tables"])
    if isinstance(target, exp.Table):
        return [
            target,
            *(j.this for j in node.args.get("joins") or [] if isinstance(j.this, exp.Table)),
        ]
    if isinstance(target, exp.Schema) and isinstance(target.this, exp.Table):
        return [target.this]
    return []


def _functions(node: exp.Expression) -> Iterator[str]:
    for f in node.find_all(exp.Func):
        name = f.sql_name() if not isinstance(f, exp.Anonymous) else str(f.this)
        yield name.lower()


def _command_word(node: exp.Command) -> str:
    words = str(node.this).split()
    return words[0].upper() if words else ""


def leading_wildcards(where: exp.Expression) -> Iterator[exp.Like]:
    """LIKE patterns that start with a wildcard: no index can find their rows."""
    for like in where.find_all(exp.Like):
        pattern = like.expression
        if isinstance(pattern, exp.Literal) and pattern.this.startswith(("%", "_")):
            yield like


def wrapped_columns(where: exp.Expression) -> Iterator[exp.Func]:
    """Functions around a column compared in ``where``: they hide it from indexes."""
    for cmp in where.find_all(exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE):
        side = cmp.this
        if isinstance(side, exp.Func) and side.find(exp.Column) is not None:
            yield side


def _shape(subject: Subject, table: exp.Table) -> TableShape | None:
    return subject.catalog.table(table_name(table)) if subject.catalog else None


# ------------------------------------------------------------------ the rules


@rule(
    "STATEMENT_KIND_NOT_ALLOWED", "ERROR", "A statement this ticket type may not run.", fixed=True
)
def _kind_allowed(s: Subject) -> Iterator[str]:
    if s.kind not in s.allowed_kinds:
        allowed = ", ".join(sorted(s.allowed_kinds))
        yield f"{_statement_words(s)} is not allowed in this ticket; it runs {allowed}."


def _statement_words(s: Subject) -> str:
    """The statement as its first words name it: the kind, and for a schema change what it
    creates, alters or drops (CREATE PROCEDURE, DROP INDEX, COMMENT ON COLUMN)."""
    what = s.node.args.get("kind")
    if isinstance(s.node, exp.Create | exp.Drop | exp.Alter | exp.Comment) and what:
        return f"{s.kind} {'ON ' if s.kind == 'COMMENT' else ''}{str(what).upper()}"
    if isinstance(s.node, exp.Command):
        rest = s.node.expression
        text = rest.name if isinstance(rest, exp.Expression) else str(rest or "")
        first = [w.upper() for w in text.split()[:1] if w.isidentifier()]
        return " ".join([str(s.node.this).upper(), *first])
    return s.kind


@rule("DML_WITHOUT_WHERE", "ERROR", "UPDATE or DELETE without a WHERE clause.")
def _no_where(s: Subject) -> Iterator[str]:
    if s.kind in ("UPDATE", "DELETE") and _where(s.node) is None:
        yield f"{s.kind} without WHERE changes every row of the table."


@rule("DML_WHERE_ALWAYS_TRUE", "ERROR", "A WHERE clause that holds for every row.")
def _always_true(s: Subject) -> Iterator[str]:
    where = _where(s.node)
    if s.kind in ("UPDATE", "DELETE") and where is not None and _is_true(where):
        yield f"WHERE {where.sql()} holds for every row."


@rule("COMPARISON_WITH_NULL", "ERROR", "= NULL or <> NULL, which is never true.")
def _null_compare(s: Subject) -> Iterator[str]:
    # UPDATE's SET a = NULL is an assignment, not a comparison
    assignments = set(map(id, s.node.expressions)) if isinstance(s.node, exp.Update) else set()
    for cmp in s.node.find_all(exp.EQ, exp.NEQ):
        if id(cmp) in assignments:
            continue
        if isinstance(cmp.expression, exp.Null) or isinstance(cmp.this, exp.Null):
            yield f"{cmp.sql()} is never true; use IS NULL or IS NOT NULL."


@rule("UPDATE_SET_WITH_AND", "ERROR", "SET a = 1 AND b = 2: one boolean assignment, not two.")
def _set_and(s: Subject) -> Iterator[str]:
    if isinstance(s.node, exp.Update):
        for assignment in s.node.expressions:
            if isinstance(assignment, exp.EQ) and isinstance(assignment.expression, exp.And):
                yield f"SET {assignment.sql()} assigns a boolean; separate assignments with ','."


@rule(
    "FUNCTION_NOT_ALLOWED",
    "ERROR",
    "A function not on the allowlist (sql/functions.yaml): SLEEP, file access, locks, "
    "user-defined functions and the like.",
    fixed=True,
)
def _function_not_allowed(s: Subject) -> Iterator[str]:
    # A schema change's functions (DEFAULT nextval(…), generated columns) run as rows are
    # written: they are judged as a data change's are.
    change = bool(s.allowed_kinds & set(DML)) or s.kind in DDL
    names = functions.refused(_without_partition_strategy(s.node), s.engine, change=change)
    if names:
        yield functions.refusal(names).replace("it calls", "It calls", 1) + "."


def _partition_strategy(p: exp.PartitionedByProperty) -> bool:
    """PostgreSQL's PARTITION BY RANGE/LIST/HASH (…), which sqlglot reads as a call."""
    found = p.this
    if isinstance(found, exp.Anonymous):
        return str(found.this).upper() in PARTITION_STRATEGIES
    return type(found).__name__.upper() in PARTITION_STRATEGIES and isinstance(found, exp.Func)


def _without_partition_strategy(node: exp.Expression) -> exp.Expression:
    """The statement with PostgreSQL's partition strategy word taken out of its PARTITION BY
    (the columns and expressions it partitions by stay, and are judged)."""
    if not any(_partition_strategy(p) for p in node.find_all(exp.PartitionedByProperty)):
        return node
    node = node.copy()
    for p in list(node.find_all(exp.PartitionedByProperty)):
        if _partition_strategy(p):
            p.set("this", exp.Tuple(expressions=[e.copy() for e in p.this.expressions]))
    return node


@rule("TRANSACTION_CONTROL", "ERROR", "BEGIN, COMMIT, ROLLBACK, LOCK TABLES in the script.")
def _transaction_control(s: Subject) -> Iterator[str]:
    if isinstance(s.node, exp.Transaction | exp.Commit | exp.Rollback):
        yield "OpenDMS runs the transactions itself; leave BEGIN, COMMIT and ROLLBACK out."
    elif isinstance(s.node, exp.Command) and _command_word(s.node) in ("LOCK", "UNLOCK"):
        yield "LOCK TABLES would hold locks across statements; leave it out."


@rule("SESSION_SETTING", "ERROR", "SET of session or global variables.")
def _session_setting(s: Subject) -> Iterator[str]:
    if isinstance(s.node, exp.Set) or (
        isinstance(s.node, exp.Command) and _command_word(s.node) == "SET"
    ):
        yield "SET changes the session (or the server); a data change must not."


@rule("UNKNOWN_TABLE", "ERROR", "A table the target database does not have.")
def _unknown_table(s: Subject) -> Iterator[str]:
    if s.catalog is None or s.kind not in DML:
        return
    ctes = {c.alias_or_name.lower() for c in s.node.find_all(exp.CTE)}
    for table in s.node.find_all(exp.Table):
        name = table_name(table)
        if table.name and name not in ctes and s.catalog.table(name) is None:
            yield f"Table {name} does not exist."


@rule("UNKNOWN_COLUMN", "ERROR", "A column its table does not have.")
def _unknown_column(s: Subject) -> Iterator[str]:
    if s.catalog is None or s.kind not in DML:
        return
    tables = {t.alias_or_name.lower(): _shape(s, t) for t in s.node.find_all(exp.Table)}
    single = next(iter(tables.values())) if len(tables) == 1 else None
    for column in s.node.find_all(exp.Column):
        if not column.name or isinstance(column.this, exp.Star):
            continue
        shape = tables.get(column.table.lower()) if column.table else single
        if shape is not None and column.name.lower() not in shape.columns:
            yield f"Column {column.sql()} does not exist."
    target = s.node.this
    if isinstance(s.node, exp.Insert) and isinstance(target, exp.Schema):
        shape = _shape(s, target.this) if isinstance(target.this, exp.Table) else None
        for ident in target.expressions:
            if shape is not None and ident.name.lower() not in shape.columns:
                yield f"Column {ident.name} does not exist."


@rule("UPDATE_PRIMARY_KEY", "WARNING", "An UPDATE that changes primary-key columns.")
def _update_pk(s: Subject) -> Iterator[str]:
    if not isinstance(s.node, exp.Update) or s.catalog is None:
        return
    tables = _written_tables(s.node)
    shape = _shape(s, tables[0]) if tables else None
    if shape is None:
        return
    for assignment in s.node.expressions:
        column = assignment.this if isinstance(assignment, exp.EQ) else None
        if isinstance(column, exp.Column) and column.name.lower() in shape.primary_key:
            yield f"SET {column.name} changes the primary key."


@rule("TABLE_WITHOUT_PRIMARY_KEY", "WARNING", "A change to a table without a primary key.")
def _no_pk(s: Subject) -> Iterator[str]:
    if s.kind not in ("UPDATE", "DELETE") or s.catalog is None:
        return
    for table in _written_tables(s.node):
        shape = _shape(s, table)
        if shape is not None and not shape.primary_key:
            yield (
                f"Table {table_name(table)} has no primary key: its rows cannot be backed up "
                "and restored one by one."
            )


@rule(
    "NON_TRANSACTIONAL_TABLE",
    "ERROR",
    "A change to a table whose engine cannot roll back (MyISAM, MEMORY, Aria…).",
)
def _non_transactional(s: Subject) -> Iterator[str]:
    if s.kind not in DML or s.catalog is None:
        return
    for table in _written_tables(s.node):
        shape = _shape(s, table)
        if shape is not None and shape.engine not in TRANSACTIONAL_ENGINES:
            yield (
                f"Table {table_name(table)} uses {shape.engine.upper()}, which cannot roll back: "
                "a failure half-way would leave part of the change applied, so OpenDMS does not "
                "run changes on it."
            )


@rule("DML_LIMIT_WITHOUT_ORDER_BY", "WARNING", "UPDATE/DELETE … LIMIT without ORDER BY.")
def _limit_no_order(s: Subject) -> Iterator[str]:
    if s.kind in ("UPDATE", "DELETE") and s.node.args.get("limit") and not s.node.args.get("order"):
        yield "LIMIT without ORDER BY changes whichever rows come first: not repeatable."


@rule("INSERT_WITHOUT_COLUMNS", "WARNING", "INSERT without a column list.")
def _insert_no_columns(s: Subject) -> Iterator[str]:
    if isinstance(s.node, exp.Insert) and not isinstance(s.node.this, exp.Schema):
        yield "INSERT without a column list breaks when the table's columns change."


@rule("INSERT_COLUMN_COUNT", "ERROR", "INSERT … VALUES with a different number of values.")
def _insert_count(s: Subject) -> Iterator[str]:
    target, values = s.node.this, s.node.args.get("expression")
    if not (isinstance(s.node, exp.Insert) and isinstance(target, exp.Schema)):
        return
    if isinstance(values, exp.Values):
        wanted = len(target.expressions)
        for i, row in enumerate(values.expressions, start=1):
            if isinstance(row, exp.Tuple) and len(row.expressions) != wanted:
                yield f"Row {i} has {len(row.expressions)} values for {wanted} columns."
    names = [c.name.lower() for c in target.expressions]
    for name in sorted({n for n in names if names.count(n) > 1}):
        yield f"Column {name} is listed twice."


@rule("INSERT_SELECT_WITHOUT_WHERE", "WARNING", "INSERT … SELECT that copies a whole table.")
def _insert_select(s: Subject) -> Iterator[str]:
    query = s.node.args.get("expression") if isinstance(s.node, exp.Insert) else None
    if not isinstance(query, exp.Select) or _where(query) is not None:
        return
    if query.find(exp.From) is not None and not query.args.get("limit"):
        yield "INSERT … SELECT without WHERE copies every row of its source."


@rule("INSERT_SELECT_STAR", "WARNING", "INSERT … SELECT *.")
def _insert_star(s: Subject) -> Iterator[str]:
    query = s.node.args.get("expression") if isinstance(s.node, exp.Insert) else None
    if isinstance(query, exp.Select) and any(isinstance(e, exp.Star) for e in query.expressions):
        yield "SELECT * in an INSERT breaks when either table's columns change."


@rule("MULTI_TABLE_DML", "WARNING", "UPDATE or DELETE over several tables.")
def _multi_table(s: Subject) -> Iterator[str]:
    if s.kind in ("UPDATE", "DELETE"):
        names = {
            table_name(t)
            for t in s.node.find_all(exp.Table)
            if t.find_ancestor(exp.Subquery) is None
        }
        if len(names) > 1:
            yield f"The statement joins {', '.join(sorted(names))}: check what each row matches."


@rule("NONDETERMINISTIC_FUNCTION", "WARNING", "NOW(), RAND(), UUID() … in a write.")
def _nondeterministic(s: Subject) -> Iterator[str]:
    if s.kind in DML:
        for name in sorted(set(_functions(s.node)) & NONDETERMINISTIC):
            yield f"{name.upper()}() gives another value on a replica or a re-run."


@rule("LEADING_WILDCARD_LIKE", "WARNING", "LIKE '%…' in the WHERE of a change: a full scan.")
def _leading_wildcard(s: Subject) -> Iterator[str]:
    where = _where(s.node) if s.kind in ("UPDATE", "DELETE") else None
    for like in leading_wildcards(where) if where is not None else ():
        yield f"{like.sql()} cannot use an index: every row is read and locked."


@rule("FUNCTION_ON_FILTERED_COLUMN", "WARNING", "A function around a column in the WHERE.")
def _function_on_column(s: Subject) -> Iterator[str]:
    where = _where(s.node) if s.kind in ("UPDATE", "DELETE") else None
    for side in wrapped_columns(where) if where is not None else ():
        yield f"{side.sql()} hides its column from indexes: every row is read and locked."


@rule("LARGE_IN_LIST", "WARNING", "An IN list longer than the limit.")
def _large_in(s: Subject) -> Iterator[str]:
    for found in s.node.find_all(exp.In):
        if len(found.expressions) > s.limits.max_in_list:
            yield (
                f"IN with {len(found.expressions):,} values (limit {s.limits.max_in_list:,}): "
                "split the change or use a temporary table."
            )


@rule("CROSS_JOIN_IN_DML", "WARNING", "A change over a comma join without a condition.")
def _cross_join(s: Subject) -> Iterator[str]:
    if s.kind not in ("UPDATE", "DELETE"):
        return
    for join in s.node.find_all(exp.Join):
        if not join.args.get("on") and not join.args.get("using") and _where(s.node) is None:
            yield "A join without a condition matches every row with every row."


@rule("SUBQUERY_ON_TARGET", "WARNING", "A change that reads its own target in a subquery.")
def _self_subquery(s: Subject) -> Iterator[str]:
    if s.kind not in ("UPDATE", "DELETE"):
        return
    written = {table_name(t) for t in _written_tables(s.node)}
    for sub in s.node.find_all(exp.Subquery):
        read = {table_name(t) for t in sub.find_all(exp.Table)}
        for name in sorted(written & read):
            yield f"A subquery reads {name}, which the statement changes (MySQL refuses it)."


@rule("TOO_MANY_STATEMENTS", "WARNING", "More statements than the limit in one ticket.")
def _too_many(s: Subject) -> Iterator[str]:
    if s.piece.number == 1 and s.statements > s.limits.max_statements:
        yield (
            f"{s.statements:,} statements (limit {s.limits.max_statements:,}): use an import "
            "ticket or a lock-free change."
        )


@rule("DELETE_ALL_VIA_TRUNCATE", "ERROR", "TRUNCATE in a data change.")
def _truncate(s: Subject) -> Iterator[str]:
    # a schema change ticket's TRUNCATE is DESTRUCTIVE_DDL's to judge
    if s.kind == "TRUNCATE" and s.allowed_kinds & set(DML):
        yield "TRUNCATE cannot be backed up or rolled back; use DELETE with a WHERE."


@rule("ORDER_BY_RAND", "WARNING", "ORDER BY RAND() in a change.")
def _order_by_rand(s: Subject) -> Iterator[str]:
    order = s.node.args.get("order")
    if s.kind in DML and order is not None and set(_functions(order)) & {"rand", "random"}:
        yield "ORDER BY RAND() picks other rows on every run."
