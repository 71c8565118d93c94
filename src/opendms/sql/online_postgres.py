"""How a DDL statement runs on a live PostgreSQL table without locking its writers out for long:
the plan of lock-light steps (lock-free DDL, ``execution.online_postgres``).

PostgreSQL's ALTER TABLE takes an ACCESS EXCLUSIVE lock, which stops reads and writes for as
long as the statement runs; what matters is how long that is. Metadata-only changes (a column
added with a constant default, a default set, a constraint dropped) hold it for milliseconds;
what scans or rewrites the table holds it for minutes. So a statement becomes:

- ``CREATE INDEX`` → ``CREATE INDEX CONCURRENTLY``; ``DROP INDEX`` → ``DROP INDEX CONCURRENTLY``;
- ``ADD FOREIGN KEY`` / ``ADD CHECK`` → added ``NOT VALID`` (no scan), then ``VALIDATE
  CONSTRAINT``, which scans under SHARE UPDATE EXCLUSIVE (writers go on);
- ``SET NOT NULL`` → ``CHECK (c IS NOT NULL) NOT VALID``, validated, then ``SET NOT NULL``,
  which PostgreSQL 12+ proves from the valid check without a scan, then the check dropped;
- ``ADD UNIQUE`` / ``ADD PRIMARY KEY`` → ``CREATE UNIQUE INDEX CONCURRENTLY``, then ``ADD
  CONSTRAINT … USING INDEX`` (after the not-null steps for a primary key's columns);
- ``ADD COLUMN`` with no default or a non-volatile one: as written (since PostgreSQL 11 the
  default is kept in the catalog, nothing is rewritten); ``ALTER COLUMN TYPE`` to a type the
  server reaches without touching the data (:func:`type_change_rewrites`): as written;
- what would rewrite the table (a volatile default, a type change that converts the data, an
  identity or stored generated column, an exclusion constraint, SET TABLESPACE…): a shadow copy
  (``sql.online_postgres_shadow``).

A plan is decided once and recorded on the target before any of it runs, so a resumed run
follows the same steps even if the catalog it was planned from has changed since (by its own
first steps, say).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from opendms.schema.model import Table

DIRECT, CONCURRENT, SHADOW = "DIRECT", "CONCURRENT", "SHADOW"  # execution.online.Strategy
NAME_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1
# Where the shadow table's name goes in a shadow plan's ALTER (it is chosen on the target).
SHADOW_PLACEHOLDER = "opendms_shadow_placeholder"
# The label of the CHECK (c IS NOT NULL) a SET NOT NULL goes through; not "not_null", which
# PostgreSQL 18 gives its own NOT NULL constraints.
NOT_NULL_LABEL = "nn"


@dataclass(frozen=True)
class Step:
    """One lock-light piece of a statement.

    ``kind``: ``run``: ``statements`` in one transaction, committed with the step's marker;
    ``build_index``: ``CREATE [UNIQUE] INDEX CONCURRENTLY`` (no transaction: done when
    ``index`` is there and valid); ``drop_index``: ``DROP INDEX CONCURRENTLY`` (done when
    ``index`` is gone). ``undo`` puts back what the step added, should the statement fail or
    be cancelled before it ends (a ``build_index``'s undo runs outside a transaction too)."""

    kind: str
    what: str
    statements: tuple[str, ...]
    index: str = ""  # build_index / drop_index: the index, as a regclass text ("s.i" or "i")
    undo: tuple[str, ...] = ()
    writers_wait: bool = True  # False: its lock does not stop writers (SHARE UPDATE EXCLUSIVE)


@dataclass(frozen=True)
class ShadowSpec:
    """A statement that rewrites the table, run on a copy instead.

    ``alter`` is the statement with :data:`SHADOW_PLACEHOLDER` for the table; ``added``: the
    columns it adds (filled by their defaults, not copied); ``using``: a column's new value
    as its ``USING`` expression, over the table's columns unqualified."""

    table: str  # the table, as the statement names it (rendered, quoted where needed)
    alter: str
    added: tuple[str, ...] = ()
    using: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Plan:
    strategy: str  # DIRECT, CONCURRENT, SHADOW; "" when refused
    steps: tuple[Step, ...] = ()
    shadow: ShadowSpec | None = None
    refusal: str = ""  # why it cannot be run lock-free
    why: str = ""  # why a shadow copy: what would rewrite the table

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> Plan:
        found = json.loads(text)
        steps = tuple(
            Step(**{**s, "statements": tuple(s["statements"]), "undo": tuple(s["undo"])})
            for s in found.get("steps", [])
        )
        shadow = found.get("shadow")
        spec = None
        if shadow is not None:
            spec = ShadowSpec(
                shadow["table"],
                shadow["alter"],
                tuple(shadow.get("added", [])),
                tuple((c, e) for c, e in shadow.get("using", [])),
            )
        return cls(
            found.get("strategy", ""),
            steps,
            spec,
            found.get("refusal", ""),
            found.get("why", ""),
        )


@dataclass(frozen=True)
class Facts:
    """What the planner asks the server: a function's volatility (``i``, ``s``, ``v``; the
    most volatile of its overloads; None: no such function) and whether a type is a domain
    with constraints (adding a column of it checks every row)."""

    volatility: Callable[[str], str | None] = field(default=lambda name: None)
    checked_domain: Callable[[str], bool] = field(default=lambda name: False)


def _render(node: exp.Expr) -> str:
    return node.sql(dialect="postgres", comments=False, normalize_functions=False)


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect="postgres")


def _clip(text: str, size: int) -> str:
    """``text`` cut to at most ``size`` bytes of UTF-8, never inside a character."""
    raw = text.encode()[:size]
    return raw.decode(errors="ignore")


def object_name(name1: str, name2: str | None, label: str) -> str:
    """PostgreSQL's ``makeObjectName``: ``name1_name2_label`` in at most 63 bytes, taking
    from the longer of the two names first, as the server names indexes and constraints."""
    overhead = (len(label) + 1 if label else 0) + (1 if name2 else 0)
    n1, n2 = len(name1.encode()), len(name2.encode()) if name2 else 0
    while n1 + n2 > NAME_BYTES - overhead:
        if n1 > n2:
            n1 -= 1
        else:
            n2 -= 1
    parts = [_clip(name1, n1)]
    if name2:
        parts.append(_clip(name2, n2))
    if label:
        parts.append(label)
    return "_".join(parts)


def choose_name(name1: str, name2: str | None, label: str, taken: Iterable[str]) -> str:
    """PostgreSQL's ``ChooseConstraintName``: the first of ``…_label``, ``…_label1``, … not
    ``taken``."""
    used = {t.lower() for t in taken}
    attempt, number = object_name(name1, name2, label), 0
    while attempt.lower() in used:
        number += 1
        attempt = object_name(name1, name2, f"{label}{number}")
    return attempt


def _taken(before: Table | None) -> list[str]:
    if before is None:
        return []
    return [
        *(i.name for i in before.indexes),
        *(f.name for f in before.foreign_keys),
        *(c.name for c in before.checks),
        *([before.primary_key_name] if before.primary_key_name else []),
    ]


# ---------------------------------------------------------------------------------------
# Which type changes rewrite the table


# Types whose typmod (length, precision) the server raises without touching the data: its
# support functions (varchar_support, numeric_support, timestamp_support, time_support)
# make the length coercion a no-op when the new limit is no smaller.
_WIDENED_FREELY = {
    exp.DataType.Type.VARCHAR,
    exp.DataType.Type.TIMESTAMP,
    exp.DataType.Type.TIMESTAMPTZ,
    exp.DataType.Type.TIME,
    exp.DataType.Type.TIMETZ,
}
_TIME_PRECISION = 6  # the most the time types keep: (6) is the same as no limit
# Types sqlglot reads faithfully enough to compare (others: only the same text is the same
# type; sqlglot reads ``bit varying(5)`` as ``bit``, say).
_UNDERSTOOD = _WIDENED_FREELY | {
    exp.DataType.Type.TEXT,
    exp.DataType.Type.DECIMAL,
    exp.DataType.Type.INT,
    exp.DataType.Type.BIGINT,
    exp.DataType.Type.SMALLINT,
    exp.DataType.Type.BOOLEAN,
    exp.DataType.Type.DATE,
    exp.DataType.Type.UUID,
    exp.DataType.Type.JSON,
    exp.DataType.Type.JSONB,
    exp.DataType.Type.XML,
    exp.DataType.Type.DOUBLE,
    exp.DataType.Type.FLOAT,
    exp.DataType.Type.VARBINARY,
    exp.DataType.Type.CHAR,
    exp.DataType.Type.INET,
}
# Binary-coercible casts (pg_cast.castmethod 'b') with no length check after them.
_RELABELLED = {
    (exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT),
    (exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR),  # to varchar without a limit only
    (exp.DataType.Type.XML, exp.DataType.Type.TEXT),
    (exp.DataType.Type.XML, exp.DataType.Type.VARCHAR),  # likewise
}


def _type(text: str) -> exp.DataType | None:
    try:
        return exp.DataType.build(text, dialect="postgres", udt=True)
    except (SqlglotError, ValueError):
        return None


def _modifiers(node: exp.DataType) -> tuple[int, ...] | None:
    """A type's numeric modifiers ((50,), (10, 2), ()); None when one is not a number."""
    found = []
    for param in node.expressions:
        text = param.sql(dialect="postgres")
        if not text.isdigit():
            return None
        found.append(int(text))
    return tuple(found)


def type_change_rewrites(old: str | None, new: exp.DataType) -> bool:
    """Whether ``ALTER COLUMN … TYPE new`` (no USING, no COLLATE) rewrites a column of type
    ``old`` (as the catalog spells it): PostgreSQL keeps the data when the cast is binary
    coercible (varchar ↔ text) or a length coercion its support function proves a no-op
    (varchar(n) → varchar(m ≥ n), numeric(p, s) → numeric(q ≥ p, s), timestamp(p) →
    timestamp(q ≥ p)…). Unknown types, domains and arrays: a rewrite, unless unchanged."""
    if old is None:
        return True
    before = _type(old)
    if before is None:
        return True
    if " ".join(old.lower().split()) == " ".join(_render(new).lower().split()):
        return False
    if before.this not in _UNDERSTOOD or new.this not in _UNDERSTOOD:
        return True
    was, now = _modifiers(before), _modifiers(new)
    if was is None or now is None:
        return True
    if before.this == new.this:
        if was == now:
            return False
        if before.this in _WIDENED_FREELY:
            if not now:
                return False
            if before.this is not exp.DataType.Type.VARCHAR and now[0] >= _TIME_PRECISION:
                return False
            return not (was and now[0] >= was[0])
        if before.this is exp.DataType.Type.DECIMAL:
            if not now:
                return False  # to numeric without a limit
            if not was:
                return True
            scale_was, scale_now = (*was, 0)[1], (*now, 0)[1]
            return not (scale_now == scale_was and now[0] >= was[0])
        return True
    if (before.this, new.this) in _RELABELLED:
        return new.this is exp.DataType.Type.VARCHAR and bool(now)
    return True


# ---------------------------------------------------------------------------------------
# Which defaults are volatile

# SQL constructs sqlglot renders like function calls that are not functions of pg_proc.
_SYNTAX = {"cast", "coalesce", "nullif", "greatest", "least", "array", "row", "try_cast"}


def called_functions(node: exp.Expression) -> set[str]:
    """The names of the functions ``node`` calls, as PostgreSQL names them (lower case);
    SQL value functions (CURRENT_TIMESTAMP, CURRENT_USER…) are left out: they are stable."""
    names = set()
    for call in node.find_all(exp.Func):
        if isinstance(call, exp.Anonymous):
            names.add(str(call.name).lower())
            continue
        text = _render(call)
        if "(" not in text:
            continue  # CURRENT_TIMESTAMP and its kind: stable, evaluated once
        name = text.split("(", 1)[0].strip().lower()
        if name not in _SYNTAX:
            names.add(name)
    return names


def volatile_calls(node: exp.Expression, facts: Facts) -> list[str]:
    """The functions ``node`` calls that may give each row another value (volatile, or
    unknown to the server: an unknown function is not known to be safe)."""
    return sorted(n for n in called_functions(node) if facts.volatility(n) in (None, "v"))


# ---------------------------------------------------------------------------------------
# The plan


@dataclass
class _Alter:
    """An ALTER TABLE taken apart: what runs at once, what is added NOT VALID and validated,
    which columns become NOT NULL through a check, which keys are built concurrently."""

    table: exp.Table
    name: str  # the table's name (unqualified), for constraint names
    before: Table | None
    facts: Facts
    immediate: list[str] = field(default_factory=list)  # actions of the first ALTER
    validate: list[str] = field(default_factory=list)  # constraint names
    not_null: dict[str, str] = field(default_factory=dict)  # column -> its check's name
    keys: list[tuple[str, str, tuple[str, ...], bool]] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    added_constraints: list[str] = field(default_factory=list)
    rewrites: list[str] = field(default_factory=list)  # why the table would be rewritten
    refusal: str = ""
    changed: bool = False  # the statement is run other than as written

    def taken(self) -> list[str]:
        return [
            *_taken(self.before),
            *self.validate,
            *self.not_null.values(),
            *(k[0] for k in self.keys),
        ]

    def old_type(self, column: str) -> str | None:
        found = self.before.column(column) if self.before is not None else None
        return found.type if found is not None else None

    def nullable(self, column: str) -> bool:
        found = self.before.column(column) if self.before is not None else None
        return found is None or found.nullable


def folded(node: exp.Expression | None) -> str:
    """A name as the catalog keeps it: PostgreSQL folds an unquoted identifier to lower case."""
    if isinstance(node, exp.Column | exp.Table):
        node = node.this
    if isinstance(node, exp.Identifier):
        return str(node.name) if node.args.get("quoted") else str(node.name).lower()
    return _render(node) if node is not None else ""


def _add_column(plan: _Alter, action: exp.ColumnDef) -> None:
    column = folded(action.this)
    if not (action.args.get("exists") and (plan.before is None or plan.before.column(column))):
        plan.added.append(column)  # (ADD COLUMN IF NOT EXISTS of one there: not ours to drop)
    kind = action.args.get("kind")
    if isinstance(kind, exp.DataType):
        if kind.this in (
            exp.DataType.Type.SERIAL,
            exp.DataType.Type.BIGSERIAL,
            exp.DataType.Type.SMALLSERIAL,
        ):
            plan.rewrites.append(f"column {column} is a serial: every row gets a new number")
        elif kind.this is exp.DataType.Type.USERDEFINED and plan.facts.checked_domain(
            _render(kind)
        ):
            plan.rewrites.append(f"column {column}'s type is a domain whose checks read every row")
    kept: list[exp.Expression] = []
    later: list[str] = []  # its constraints, added NOT VALID after it and validated
    for constraint in action.args.get("constraints") or []:
        rule = constraint.args.get("kind")
        named = constraint.args.get("this")
        if isinstance(rule, exp.DefaultColumnConstraint):
            volatile = volatile_calls(rule.this, plan.facts)
            if volatile:
                plan.rewrites.append(
                    f"column {column}'s default calls {', '.join(volatile)}, which is "
                    "volatile (or unknown): each row needs its own value"
                )
        elif isinstance(
            rule, exp.GeneratedAsIdentityColumnConstraint | exp.ComputedColumnConstraint
        ):
            plan.rewrites.append(f"column {column} is computed for every row")
        elif isinstance(rule, exp.CheckColumnConstraint | exp.Reference):
            check = isinstance(rule, exp.CheckColumnConstraint)
            name = (
                folded(named)
                if named
                else choose_name(plan.name, column, "check" if check else "fkey", plan.taken())
            )
            body = (
                f"CHECK ({_render(rule.this)})"
                if check
                else f"FOREIGN KEY ({_ident(column)}) {_render(rule)}"
            )
            later.append(f"ADD CONSTRAINT {_ident(name)} {body} NOT VALID")
            plan.validate.append(name)
            plan.added_constraints.append(name)
            plan.changed = True
            continue
        elif isinstance(rule, exp.UniqueColumnConstraint | exp.PrimaryKeyColumnConstraint):
            plan.rewrites.append(f"column {column} is added with a key, built under the lock")
        kept.append(constraint)
    column_def = action.copy()
    column_def.set("constraints", [c.copy() for c in kept])
    plan.immediate.append(f"ADD COLUMN {_render(column_def)}")
    plan.immediate.extend(later)


def _alter_column(plan: _Alter, action: exp.AlterColumn) -> None:
    column = folded(action.this)
    dtype = action.args.get("dtype")
    if isinstance(dtype, exp.DataType):
        using = action.args.get("using")
        collate = action.args.get("collate")
        plain_using = not using or (
            isinstance(using, exp.Column) and not using.table and folded(using) == column
        )
        if not plain_using:
            plan.rewrites.append(f"column {column} is converted by its USING expression")
        elif collate:
            plan.rewrites.append(f"column {column} changes collation (its indexes are rebuilt)")
        elif type_change_rewrites(plan.old_type(column), dtype):
            old = plan.old_type(column) or "an unknown type"
            plan.rewrites.append(f"column {column} changes from {old} to {_render(dtype)}")
        plan.immediate.append(_render(action))
        return
    if action.args.get("allow_null") is False and not action.args.get("drop"):
        if column not in plan.not_null:
            plan.not_null[column] = choose_name(plan.name, column, NOT_NULL_LABEL, plan.taken())
        plan.changed = True
        return
    plan.immediate.append(_render(action))


def _key_columns(rule: exp.Expression) -> tuple[str, ...] | None:
    """A UNIQUE / PRIMARY KEY's plain columns; None when it has more than columns (INCLUDE,
    WITH, NULLS NOT DISTINCT…), which only the statement as written says right."""
    include = rule.args.get("include")
    if include is not None and any(v for k, v in include.args.items() if k != "with_storage"):
        return None
    if isinstance(rule, exp.UniqueColumnConstraint):
        if rule.args.get("nulls") or rule.args.get("index_type") or rule.args.get("on_conflict"):
            return None
        schema = rule.this
        columns = schema.expressions if isinstance(schema, exp.Schema) else []
    else:
        columns = rule.expressions
    if not columns or not all(isinstance(c, exp.Identifier | exp.Column) for c in columns):
        return None
    return tuple(folded(c) for c in columns)


_RULES = (exp.PrimaryKey, exp.ForeignKey, exp.UniqueColumnConstraint, exp.CheckColumnConstraint)


def _add_constraint(plan: _Alter, action: exp.AddConstraint, not_valid: bool) -> None:
    for constraint in action.expressions:
        if isinstance(constraint, _RULES):
            named, rules = None, [constraint]
        elif isinstance(constraint, exp.Constraint):
            named, rules = constraint.this, list(constraint.expressions)
        else:
            plan.refusal = f"OpenDMS cannot tell how {_render(action)} locks the table"
            return
        if len(rules) != 1:
            plan.refusal = f"OpenDMS cannot tell how {_render(action)} locks the table"
            return
        rule = rules[0]
        name = folded(named) if isinstance(named, exp.Identifier) else None
        if name == UNNAMED:
            name = None
        if isinstance(rule, exp.ForeignKey | exp.CheckColumnConstraint):
            if not_valid:  # asked for as is: no scan now, none later
                plan.immediate.append(f"{_render(action)} NOT VALID")
                return
            if name is None:
                if isinstance(rule, exp.ForeignKey):
                    cols = "_".join(folded(c) for c in rule.expressions)
                    name = choose_name(plan.name, cols, "fkey", plan.taken())
                else:
                    cols_in = {folded(c) for c in rule.find_all(exp.Column)}
                    only = next(iter(cols_in)) if len(cols_in) == 1 else None
                    name = choose_name(plan.name, only, "check", plan.taken())
            body = _render(rule)
            if isinstance(rule, exp.CheckColumnConstraint):
                body = f"CHECK ({_render(rule.this)})"
            plan.immediate.append(f"ADD CONSTRAINT {_ident(name)} {body} NOT VALID")
            plan.validate.append(name)
            plan.added_constraints.append(name)
            plan.changed = True
        elif isinstance(rule, exp.UniqueColumnConstraint | exp.PrimaryKey):
            columns = _key_columns(rule)
            primary = isinstance(rule, exp.PrimaryKey)
            if columns is None:
                plan.rewrites.append(f"{_render(action)} builds its index under the lock")
                return
            if name is None:
                name = (
                    choose_name(plan.name, None, "pkey", plan.taken())
                    if primary
                    else choose_name(plan.name, "_".join(columns), "key", plan.taken())
                )
            plan.keys.append((name, _ident(name), columns, primary))
            if primary:
                for column in columns:
                    if plan.nullable(column) and column not in plan.not_null:
                        plan.not_null[column] = choose_name(
                            plan.name, column, NOT_NULL_LABEL, plan.taken()
                        )
            plan.changed = True
        else:
            plan.rewrites.append(f"{_render(action)} builds its index under the lock")


def _alter_set(plan: _Alter, action: exp.AlterSet) -> None:
    moves = [
        k for k in ("tablespace", "access_method", "option", "file_format") if action.args.get(k)
    ]
    if moves:
        plan.rewrites.append(f"{_render(action)} moves every row")
    plan.immediate.append(_render(action))


def _take_apart(node: exp.Alter, before: Table | None, facts: Facts) -> _Alter:
    table = node.this
    plan = _Alter(table, folded(table), before, facts)
    not_valid = bool(node.args.get("not_valid"))
    for action in node.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            _add_column(plan, action)
        elif isinstance(action, exp.AlterColumn):
            _alter_column(plan, action)
        elif isinstance(action, exp.AddConstraint):
            _add_constraint(plan, action, not_valid)
        elif isinstance(action, exp.AlterSet):
            _alter_set(plan, action)
        elif isinstance(action, exp.Drop | exp.RenameColumn | exp.AlterRename):
            plan.immediate.append(_render(action))
        else:
            plan.refusal = (
                f"OpenDMS cannot tell how {_render(action)} locks the table; run it with "
                "DdlOnline 0 (as written, under a short lock wait)"
            )
        if plan.refusal:
            break
    return plan


def _head(node: exp.Alter) -> str:
    """``ALTER TABLE [IF EXISTS] [ONLY] t``."""
    words = ["ALTER TABLE"]
    if node.args.get("exists"):
        words.append("IF EXISTS")
    if node.args.get("only"):
        words.append("ONLY")
    words.append(_render(node.this))
    return " ".join(words)


def _shadow(node: exp.Alter, plan: _Alter) -> Plan:
    copy = node.copy()
    copy.set("this", exp.to_table(SHADOW_PLACEHOLDER))
    copy.set("exists", False)
    copy.set("only", False)
    using = []
    for action in node.args.get("actions") or []:
        if isinstance(action, exp.AlterColumn) and action.args.get("using"):
            using.append((folded(action.this), _render(action.args["using"])))
    spec = ShadowSpec(_render(node.this), _render(copy), tuple(plan.added), tuple(using))
    return Plan(SHADOW, shadow=spec, why="; ".join(plan.rewrites))


def _concurrent(node: exp.Alter, plan: _Alter) -> Plan:
    head = _head(node)
    steps: list[Step] = []
    undo_columns = [f"{head} DROP COLUMN IF EXISTS {_ident(c)}" for c in plan.added]
    checks = [
        f"ADD CONSTRAINT {_ident(name)} CHECK ({_ident(column)} IS NOT NULL) NOT VALID"
        for column, name in plan.not_null.items()
    ]
    first = [*plan.immediate, *checks]
    added = [*plan.added_constraints, *plan.not_null.values()]
    if first:
        undo = tuple(
            [f"{head} DROP CONSTRAINT IF EXISTS {_ident(n)}" for n in added] + undo_columns
        )
        steps.append(Step("run", "alter the table", (f"{head} {', '.join(first)}",), undo=undo))
    for name in [*plan.validate, *plan.not_null.values()]:
        steps.append(
            Step(
                "run",
                f"validate constraint {name}",
                (f"{head} VALIDATE CONSTRAINT {_ident(name)}",),
                writers_wait=False,
            )
        )
    schema = plan.table.args.get("db")
    for name, quoted, columns, _primary in plan.keys:
        index = f"{_render(schema)}.{quoted}" if schema else quoted
        cols = ", ".join(_ident(c) for c in columns)
        steps.append(
            Step(
                "build_index",
                f"build unique index {name}",
                (f"CREATE UNIQUE INDEX CONCURRENTLY {quoted} ON {_render(plan.table)} ({cols})",),
                index=index,
                undo=(f"DROP INDEX CONCURRENTLY IF EXISTS {index}",),
                writers_wait=False,
            )
        )
    last: list[str] = [
        f"{head} ALTER COLUMN {_ident(column)} SET NOT NULL" for column in plan.not_null
    ]
    for _name, quoted, _columns, primary in plan.keys:
        kind = "PRIMARY KEY" if primary else "UNIQUE"
        last.append(f"{head} ADD CONSTRAINT {quoted} {kind} USING INDEX {quoted}")
    last += [f"{head} DROP CONSTRAINT {_ident(name)}" for name in plan.not_null.values()]
    if last:
        steps.append(Step("run", "set the new constraints", tuple(last)))
    return Plan(CONCURRENT, tuple(steps))


def index_name(node: exp.Index) -> str:
    """The name PostgreSQL gives an unnamed index (``ChooseIndexName``, without the number it
    adds when the name is taken: then the build fails and says so)."""
    table = node.args["table"]
    params = node.args.get("params")
    columns = params.args.get("columns") if params is not None else None
    names: list[str] = []
    for part in columns or []:
        inner = part.this if isinstance(part, exp.Ordered) else part
        if isinstance(inner, exp.Column):
            names.append(folded(inner))
        else:
            names.append("expr")
    return object_name(folded(table), "_".join(names) or None, "idx")


def _create_index(node: exp.Create, text: str) -> Plan:
    index = node.this
    if not isinstance(index, exp.Index) or not isinstance(index.args.get("table"), exp.Table):
        return Plan(DIRECT, (Step("run", "run the statement", (text,)),))
    concurrent = node.copy()
    concurrent.set("concurrently", True)
    built = concurrent.this
    if built.this is None:
        built.set("this", exp.to_identifier(index_name(index), quoted=True))
    name = built.this
    table = index.args["table"]
    schema = table.args.get("db")
    regclass = f"{_render(schema)}.{_render(name)}" if schema else _render(name)
    return Plan(
        CONCURRENT,
        (
            Step(
                "build_index",
                f"build index {name.name}",
                (_render(concurrent),),
                index=regclass,
                undo=(f"DROP INDEX CONCURRENTLY IF EXISTS {regclass}",),
                writers_wait=False,
            ),
        ),
    )


def _drop_index(node: exp.Drop, text: str) -> Plan:
    tables = node.expressions or node.args.get("tables") or []
    if node.args.get("cascade") or len(tables) != 1:
        # CONCURRENTLY takes one index and no CASCADE: as written, under the short lock wait
        return Plan(DIRECT, (Step("run", "run the statement", (text,)),))
    concurrent = node.copy()
    concurrent.set("concurrently", True)
    return Plan(
        CONCURRENT,
        (
            Step(
                "drop_index",
                f"drop index {tables[0].name}",
                (_render(concurrent),),
                index=_render(tables[0]),
                writers_wait=False,
            ),
        ),
    )


def plan(node: exp.Expr, text: str, before: Table | None, facts: Facts) -> Plan:
    """The steps that run ``node`` (whose text is ``text``) on a live PostgreSQL table
    whose definition was ``before``."""
    if isinstance(node, exp.Create) and str(node.args.get("kind", "")).upper() == "INDEX":
        return _create_index(node, text)
    if isinstance(node, exp.Drop) and str(node.args.get("kind", "")).upper() == "INDEX":
        return _drop_index(node, text)
    if isinstance(node, exp.Command) and str(node.this).upper() == "ALTER":
        return _command(text, before, facts)
    if not isinstance(node, exp.Alter) or str(node.args.get("kind", "")).upper() != "TABLE":
        return Plan(DIRECT, (Step("run", "run the statement", (text,)),))
    if not isinstance(node.this, exp.Table):
        return Plan("", refusal="the statement names no table")
    parts = _take_apart(node, before, facts)
    if parts.refusal:
        return Plan("", refusal=parts.refusal)
    if parts.rewrites:
        return _shadow(node, parts)
    if not parts.changed:
        return Plan(DIRECT, (Step("run", "run the statement", (text,)),))
    return _concurrent(node, parts)


_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_HEAD = rf"ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?{_NAME}(?:\s*\.\s*{_NAME})?\s+"
# ALTER TABLE forms sqlglot keeps as bare commands that hold no lock a writer waits on for
# long (SHARE UPDATE EXCLUSIVE, or a catalog change): each must be the whole statement.
_SAFE_COMMANDS = [
    re.compile(_HEAD + clause + r"\s*;?\s*$", re.IGNORECASE | re.DOTALL)
    for clause in (
        rf"VALIDATE\s+CONSTRAINT\s+{_NAME}",
        rf"ALTER\s+(?:COLUMN\s+)?{_NAME}\s+SET\s+(?:STATISTICS\s+-?\d+|STORAGE\s+\w+)",
        rf"ADD\s+(?:CONSTRAINT\s+{_NAME}\s+)?(?:UNIQUE|PRIMARY\s+KEY)\s+USING\s+INDEX\s+{_NAME}"
        r"(?:\s+(?:NOT\s+)?DEFERRABLE)?(?:\s+INITIALLY\s+(?:DEFERRED|IMMEDIATE))?",
        rf"REPLICA\s+IDENTITY\s+(?:DEFAULT|FULL|NOTHING|USING\s+INDEX\s+{_NAME})",
        rf"OWNER\s+TO\s+{_NAME}",
        rf"(?:ENABLE|DISABLE)\s+(?:(?:ALWAYS|REPLICA)\s+)?TRIGGER\s+{_NAME}",
        rf"CLUSTER\s+ON\s+{_NAME}",
        r"SET\s+WITHOUT\s+CLUSTER",
        rf"RENAME\s+CONSTRAINT\s+{_NAME}\s+TO\s+{_NAME}",
    )
]
# ``ADD CHECK (…)`` without a name, which sqlglot does not read: named for the parse, then
# named as PostgreSQL would.
_UNNAMED_CHECK = re.compile(rf"^({_HEAD})ADD\s+(CHECK\s*\(.*)$", re.IGNORECASE | re.DOTALL)
UNNAMED = "opendms_unnamed_constraint"


def _command(text: str, before: Table | None, facts: Facts) -> Plan:
    if any(p.match(text.strip()) for p in _SAFE_COMMANDS):
        return Plan(DIRECT, (Step("run", "run the statement", (text,)),))
    found = _UNNAMED_CHECK.match(text.strip())
    if found is not None:
        try:
            named = sqlglot.parse_one(
                f"{found.group(1)}ADD CONSTRAINT {UNNAMED} {found.group(2)}", read="postgres"
            )
        except SqlglotError:
            named = None
        if isinstance(named, exp.Alter):
            return plan(named, text, before, facts)
    return Plan(
        "",
        refusal=(
            "OpenDMS cannot read this ALTER TABLE, so it cannot tell whether it would lock "
            "writers out while it scans or rewrites the table; run it with DdlOnline 0"
        ),
    )


def facts_wanted(node: exp.Expr) -> tuple[set[str], set[str]]:
    """What :func:`plan` will ask :class:`Facts` about ``node``: function names, type names."""
    functions: set[str] = set()
    types: set[str] = set()
    if isinstance(node, exp.Alter):
        for action in node.args.get("actions") or []:
            if not isinstance(action, exp.ColumnDef):
                continue
            kind = action.args.get("kind")
            if isinstance(kind, exp.DataType) and kind.this is exp.DataType.Type.USERDEFINED:
                types.add(_render(kind))
            for constraint in action.args.get("constraints") or []:
                rule = constraint.args.get("kind")
                if isinstance(rule, exp.DefaultColumnConstraint):
                    functions |= called_functions(rule.this)
    return functions, types


def facts_from(volatility: Mapping[str, str], domains: Iterable[str]) -> Facts:
    checked = {d.lower() for d in domains}
    return Facts(volatility.get, lambda name: name.lower() in checked)
