"""What a schema-change statement defines or changes, read from its sqlglot tree into the
table model (:mod:`opendms.schema.model`).

``table_of`` reads a CREATE TABLE; ``altered`` applies an ALTER TABLE to a definition;
``index_of_create`` reads a CREATE INDEX. Names keep the spelling the statement gives them
(the database folds unquoted ones: MySQL compares them case-insensitively, PostgreSQL folds
them to lower case, which :func:`ident` does). Types are the dialect's own spelling,
lower-cased (``varchar(64)``, ``bigint unsigned``); an unnamed index gets the name its
server would give it, so that a later DROP INDEX finds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from sqlglot import exp

from opendms.schema.model import Check, Column, ForeignKey, Index, Table
from opendms.sql.statements import DIALECTS, table_name

# PostgreSQL's serial types: an integer column with a sequence behind it.
SERIALS = {
    exp.DataType.Type.SMALLSERIAL: "smallint",
    exp.DataType.Type.SERIAL: "integer",
    exp.DataType.Type.BIGSERIAL: "bigint",
}


def dialect_of(engine: str) -> str:
    return DIALECTS.get(engine, "mysql")


def ident(node: exp.Expression | str | None, engine: str) -> str:
    """A name as the database keeps it: PostgreSQL folds an unquoted name to lower case."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    name = node.name
    quoted = bool(node.args.get("quoted")) if isinstance(node, exp.Identifier) else False
    if isinstance(node, exp.Column | exp.Table) and isinstance(node.this, exp.Identifier):
        quoted = bool(node.this.args.get("quoted"))
    return name if quoted or engine != "postgresql" else name.lower()


def type_text(dtype: exp.DataType, engine: str) -> str:
    if dtype.this in SERIALS and engine == "postgresql":
        return SERIALS[dtype.this]
    return dtype.sql(dialect=dialect_of(engine)).lower()


def constraints(cdef: exp.ColumnDef) -> Iterator[exp.Expression]:
    """The kinds of a column definition's constraints (NOT NULL, DEFAULT, COMMENT…)."""
    for c in cdef.args.get("constraints") or ():
        kind = c.args.get("kind") if isinstance(c, exp.ColumnConstraint) else c
        if isinstance(kind, exp.Expression):
            yield kind


def constraint(cdef: exp.ColumnDef, kind: type[exp.Expression]) -> exp.Expression | None:
    return next((c for c in constraints(cdef) if isinstance(c, kind)), None)


def default_of(cdef: exp.ColumnDef) -> exp.Expression | None:
    """The DEFAULT expression a column definition gives (DEFAULT NULL included)."""
    found = constraint(cdef, exp.DefaultColumnConstraint)
    return found.this if found is not None else None


def column_of(cdef: exp.ColumnDef, engine: str) -> Column:
    dialect = dialect_of(engine)
    dtype = cdef.args.get("kind")
    text = type_text(dtype, engine) if isinstance(dtype, exp.DataType) else ""
    not_null = constraint(cdef, exp.NotNullColumnConstraint)
    primary = constraint(cdef, exp.PrimaryKeyColumnConstraint) is not None
    serial = isinstance(dtype, exp.DataType) and dtype.this in SERIALS and engine == "postgresql"
    auto = serial or any(
        isinstance(c, exp.AutoIncrementColumnConstraint | exp.GeneratedAsIdentityColumnConstraint)
        for c in constraints(cdef)
    )
    default = default_of(cdef)
    comment = constraint(cdef, exp.CommentColumnConstraint)
    charset = constraint(cdef, exp.CharacterSetColumnConstraint)
    collate = constraint(cdef, exp.CollateColumnConstraint)
    generated = constraint(cdef, exp.ComputedColumnConstraint)
    return Column(
        name=ident(cdef.this, engine),
        type=text,
        nullable=not (
            (not_null is not None and not not_null.args.get("allow_null")) or primary or auto
        ),
        default=None
        if default is None or isinstance(default, exp.Null)
        else default.sql(dialect=dialect),
        auto_increment=auto,
        comment=comment.this.name if comment is not None else "",
        charset=charset.this.name.lower() if charset is not None else "",
        collation=collate.this.name.lower() if collate is not None else "",
        generated=generated.this.sql(dialect=dialect) if generated is not None else "",
        generated_stored=bool(generated is not None and generated.args.get("persisted")),
    )


def _part(node: exp.Expression, engine: str) -> tuple[str, int | None, bool]:
    """One key part: its column (or expression text), prefix length, and whether DESC."""
    desc = False
    if isinstance(node, exp.Ordered):
        desc = bool(node.args.get("desc"))
        node = node.this
    if isinstance(node, exp.ColumnPrefix):
        return ident(node.this, engine), int(node.expression.name), desc
    if isinstance(node, exp.Anonymous) and len(node.expressions) == 1:
        # MySQL's CREATE INDEX … (name(10)) reads as a call of "name"
        length = node.expressions[0]
        if isinstance(length, exp.Literal) and length.is_int:
            return ident(str(node.this), engine), int(length.name), desc
    if isinstance(node, exp.Column | exp.Identifier):
        return ident(node, engine), None, desc
    return node.sql(dialect=dialect_of(engine)), None, desc


def _index(
    name: str, parts: Iterable[exp.Expression], engine: str, *, unique: bool, method: str = ""
) -> Index:
    read = [_part(p, engine) for p in parts]
    lengths = tuple(length for _, length, _ in read)
    descending = tuple(desc for _, _, desc in read)
    return Index(
        name=name,
        columns=tuple(column for column, _, _ in read),
        unique=unique,
        lengths=lengths if any(x is not None for x in lengths) else (),
        descending=descending if any(descending) else (),
        method=method,
    )


def _key_columns(node: exp.Expression, engine: str) -> tuple[str, ...]:
    return tuple(_part(p, engine)[0] for p in node.expressions)


class _Keys:
    """The keys a CREATE TABLE's body or an ALTER TABLE's ADD declares, in order."""

    def __init__(self, table: str, engine: str, taken: Iterable[str] = ()) -> None:
        self.table, self.engine = table, engine
        self.primary_key: tuple[str, ...] | None = None
        self.primary_key_name = ""
        self.indexes: list[Index] = []
        self.foreign_keys: list[ForeignKey] = []
        self.checks: list[Check] = []
        self.taken = {n.lower() for n in taken}

    def name_for(self, columns: tuple[str, ...], unique: bool, given: str) -> str:
        """The name the server gives an unnamed key: MySQL its first column (then _2, _3…),
        PostgreSQL table_columns_key (or _idx for CREATE INDEX)."""
        if given:
            name = given
        elif self.engine == "postgresql":
            name = f"{self.table}_{'_'.join(columns)}_{'key' if unique else 'idx'}"
        else:
            name, n = columns[0] if columns else "key", 2
            while name.lower() in self.taken:
                name, n = f"{columns[0]}_{n}", n + 1
        self.taken.add(name.lower())
        return name

    def read(self, node: exp.Expression, name: str = "") -> None:
        engine = self.engine
        if isinstance(node, exp.Constraint):
            for inner in node.expressions:
                self.read(inner, ident(node.this, engine))
        elif isinstance(node, exp.PrimaryKey):
            self.primary_key, self.primary_key_name = _key_columns(node, engine), name
        elif isinstance(node, exp.IndexColumnConstraint):
            kind = str(node.args.get("kind") or "").lower()
            parts = node.expressions
            index = _index("", parts, engine, unique=kind == "unique", method=kind)
            if kind == "unique":
                index = replace(index, method="")
            named = self.name_for(index.columns, index.unique, ident(node.this, engine) or name)
            self.indexes.append(replace(index, name=named))
        elif isinstance(node, exp.UniqueColumnConstraint):
            schema = node.this
            parts = schema.expressions if isinstance(schema, exp.Schema) else []
            given = ident(schema.this, engine) if isinstance(schema, exp.Schema) else ""
            index = _index("", parts, engine, unique=True)
            named = self.name_for(index.columns, True, given or name)
            self.indexes.append(replace(index, name=named, constraint=engine == "postgresql"))
        elif isinstance(node, exp.ForeignKey):
            self.foreign_keys.append(_foreign_key(node, name, self.table, engine))
        elif isinstance(node, exp.CheckColumnConstraint):
            self.checks.append(Check(name, node.this.sql(dialect=dialect_of(engine))))

    def read_column(self, cdef: exp.ColumnDef) -> None:
        """Keys declared on the column itself: PRIMARY KEY, UNIQUE, REFERENCES."""
        column = ident(cdef.this, self.engine)
        for c in constraints(cdef):
            if isinstance(c, exp.PrimaryKeyColumnConstraint):
                self.primary_key = (column,)
            elif isinstance(c, exp.UniqueColumnConstraint):
                named = self.name_for((column,), True, "")
                pg = self.engine == "postgresql"
                self.indexes.append(Index(named, (column,), unique=True, constraint=pg))
            elif isinstance(c, exp.Reference):
                fk = exp.ForeignKey(expressions=[cdef.this.copy()], reference=c.copy())
                self.foreign_keys.append(_foreign_key(fk, "", self.table, self.engine))


def _foreign_key(node: exp.ForeignKey, name: str, table: str, engine: str) -> ForeignKey:
    ref = node.args.get("reference")
    target = ref.this if isinstance(ref, exp.Reference) else None
    ref_table = ""
    ref_columns: tuple[str, ...] = ()
    if isinstance(target, exp.Schema) and isinstance(target.this, exp.Table):
        ref_table = table_name(target.this)
        ref_columns = tuple(ident(c, engine) for c in target.expressions)
    elif isinstance(target, exp.Table):
        ref_table = table_name(target)
    columns = tuple(ident(c, engine) for c in node.expressions)
    return ForeignKey(name or f"{table}_{'_'.join(columns)}_fkey", columns, ref_table, ref_columns)


def _properties(node: exp.Expression) -> list[exp.Expression]:
    props = node.args.get("properties")
    found = list(props.expressions) if isinstance(props, exp.Properties) else []
    return found + list(node.args.get("options") or ())


def table_options(node: exp.Expression) -> dict[str, str]:
    """ENGINE, CHARSET, COLLATE and COMMENT a CREATE or ALTER TABLE gives (lower-cased but
    the comment), by name."""
    out: dict[str, str] = {}
    for p in _properties(node):
        if isinstance(p, exp.EngineProperty):
            out["engine"] = p.name.lower()
        elif isinstance(p, exp.CharacterSetProperty):
            out["charset"] = p.name.lower()
        elif isinstance(p, exp.CollateProperty):
            out["collation"] = p.name.lower()
        elif isinstance(p, exp.SchemaCommentProperty):
            out["comment"] = p.name
    return out


def partitioned(node: exp.Expression) -> bool:
    return any(
        isinstance(
            p,
            exp.PartitionedByProperty | exp.PartitionByRangeProperty | exp.PartitionByListProperty,
        )
        for p in _properties(node)
    )


def created_table(node: exp.Expression) -> exp.Table | None:
    """The table a CREATE TABLE names (with or without a column list)."""
    if not isinstance(node, exp.Create) or str(node.args.get("kind") or "").upper() != "TABLE":
        return None
    target = node.this
    if isinstance(target, exp.Schema):
        target = target.this
    return target if isinstance(target, exp.Table) else None


def table_of(node: exp.Create, engine: str) -> Table | None:
    """The table a CREATE TABLE with a column list defines; None for another CREATE, and for
    CREATE TABLE … AS SELECT and … LIKE (their columns come from elsewhere)."""
    target = created_table(node)
    if target is None or not isinstance(node.this, exp.Schema):
        return None
    name = ident(target, engine)
    keys = _Keys(name, engine)
    columns: list[Column] = []
    for item in node.this.expressions:
        if isinstance(item, exp.ColumnDef):
            columns.append(column_of(item, engine))
            keys.read_column(item)
        else:
            keys.read(item)
    opts = table_options(node)
    return Table(
        name=name,
        columns=tuple(columns),
        primary_key=keys.primary_key or (),
        primary_key_name=keys.primary_key_name,
        indexes=tuple(keys.indexes),
        foreign_keys=tuple(keys.foreign_keys),
        checks=tuple(keys.checks),
        comment=opts.get("comment", ""),
        engine=opts.get("engine", ""),
        charset=opts.get("charset", ""),
        collation=opts.get("collation", ""),
    )


def index_of_create(node: exp.Create, engine: str) -> tuple[exp.Table, Index] | None:
    """The table and index a CREATE INDEX makes."""
    index = node.this
    if str(node.args.get("kind") or "").upper() != "INDEX" or not isinstance(index, exp.Index):
        return None
    table = index.args.get("table")
    params = index.args.get("params")
    if not isinstance(table, exp.Table) or not isinstance(params, exp.IndexParameters):
        return None
    using = params.args.get("using")
    method = str(using.name if isinstance(using, exp.Expression) else using or "").lower()
    read = _index(
        "",
        params.args.get("columns") or (),
        engine,
        unique=bool(node.args.get("unique")),
        method="" if method == "btree" else method,
    )
    where = params.args.get("where")
    if isinstance(where, exp.Where):
        read = replace(read, where=where.this.sql(dialect=dialect_of(engine)))
    keys = _Keys(ident(table, engine), engine)
    given = ident(index.this, engine) if index.this else ""
    return table, replace(read, name=keys.name_for(read.columns, False, given))


# ------------------------------------------------------------------ ALTER TABLE


def _without_column(t: Table, name: str) -> Table:
    low = name.lower()
    indexes = []
    for index in t.indexes:
        kept = [i for i, c in enumerate(index.columns) if c.lower() != low]
        if not kept:
            continue  # MySQL drops an index whose columns are all gone; PostgreSQL any
        indexes.append(
            replace(
                index,
                columns=tuple(index.columns[i] for i in kept),
                lengths=tuple(index.lengths[i] for i in kept) if index.lengths else (),
                descending=tuple(index.descending[i] for i in kept) if index.descending else (),
            )
        )
    return replace(
        t,
        columns=tuple(c for c in t.columns if c.name.lower() != low),
        primary_key=() if low in {c.lower() for c in t.primary_key} else t.primary_key,
        indexes=tuple(indexes),
        foreign_keys=tuple(f for f in t.foreign_keys if low not in {c.lower() for c in f.columns}),
    )


def _renamed_column(t: Table, old: str, new: str) -> Table:
    low = old.lower()

    def swap(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(new if n.lower() == low else n for n in names)

    return replace(
        t,
        columns=tuple(replace(c, name=new) if c.name.lower() == low else c for c in t.columns),
        primary_key=swap(t.primary_key),
        indexes=tuple(replace(i, columns=swap(i.columns)) for i in t.indexes),
        foreign_keys=tuple(replace(f, columns=swap(f.columns)) for f in t.foreign_keys),
    )


def _with_column(t: Table, column: Column, position: exp.Expression | None) -> Table:
    columns = list(t.columns)
    at = len(columns)
    if isinstance(position, exp.ColumnPosition):
        if str(position.args.get("position") or "").upper() == "FIRST":
            at = 0
        else:
            after = position.this.name.lower() if position.this else ""
            at = next((i + 1 for i, c in enumerate(columns) if c.name.lower() == after), at)
    columns.insert(at, column)
    return replace(t, columns=tuple(columns))


def _replaced_column(t: Table, old: str, column: Column) -> Table:
    low = old.lower()
    renamed = _renamed_column(t, old, column.name) if old.lower() != column.name.lower() else t
    return replace(
        renamed,
        columns=tuple(
            column if c.name.lower() in (low, column.name.lower()) else c for c in renamed.columns
        ),
    )


def _altered_column(t: Table, action: exp.AlterColumn, engine: str) -> Table:
    name = ident(action.this, engine)
    found = t.column(name)
    if found is None:
        return t
    changed = found
    dtype = action.args.get("dtype")
    if isinstance(dtype, exp.DataType):
        changed = replace(changed, type=type_text(dtype, engine))
    collate = action.args.get("collate")
    if isinstance(collate, exp.Expression):
        changed = replace(changed, collation=collate.name.lower())
    if "allow_null" in action.args and action.args["allow_null"] is not None:
        changed = replace(changed, nullable=bool(action.args["allow_null"]))
    elif action.args.get("drop"):
        changed = replace(changed, default=None)
    default = action.args.get("default")
    if isinstance(default, exp.Expression):
        changed = replace(changed, default=default.sql(dialect=dialect_of(engine)))
    comment = action.args.get("comment")
    if isinstance(comment, exp.Expression):
        changed = replace(changed, comment=comment.name)
    return replace(t, columns=tuple(changed if c is found else c for c in t.columns))


def _dropped(t: Table, action: exp.Drop, engine: str) -> Table:
    kind = str(action.args.get("kind") or "").upper()
    names = [ident(x, engine) for x in action.args.get("tables") or ()]
    low = {n.lower() for n in names}
    if kind == "COLUMN":
        for name in names:
            t = _without_column(t, name)
        return t
    if kind == "PRIMARY KEY":
        return replace(t, primary_key=(), primary_key_name="")
    if kind in ("INDEX", "KEY", "CONSTRAINT"):
        t = replace(t, indexes=tuple(i for i in t.indexes if i.name.lower() not in low))
        if kind == "CONSTRAINT" and t.primary_key_name.lower() in low:
            t = replace(t, primary_key=(), primary_key_name="")
    if kind in ("FOREIGN KEY", "CONSTRAINT"):
        t = replace(t, foreign_keys=tuple(f for f in t.foreign_keys if f.name.lower() not in low))
    if kind in ("CHECK", "CONSTRAINT"):
        t = replace(t, checks=tuple(c for c in t.checks if c.name.lower() not in low))
    return t


def altered(t: Table, node: exp.Alter, engine: str) -> Table:
    """``t`` as the ALTER TABLE ``node`` leaves it (its name too, when it renames it)."""
    keys = _Keys(t.name, engine, (i.name for i in t.indexes))
    for action in node.args.get("actions") or ():
        if isinstance(action, exp.ColumnDef):
            t = _with_column(t, column_of(action, engine), action.args.get("position"))
            keys.read_column(action)
        elif isinstance(action, exp.ModifyColumn) and isinstance(action.this, exp.ColumnDef):
            redefined = column_of(action.this, engine)
            was = ident(action.args.get("rename_from"), engine) or redefined.name
            t = _replaced_column(t, was, redefined)
            keys.read_column(action.this)
        elif isinstance(action, exp.RenameColumn):
            old, new = ident(action.this, engine), ident(action.args.get("to"), engine)
            t = _renamed_column(t, old, new)
        elif isinstance(action, exp.AlterColumn):
            t = _altered_column(t, action, engine)
        elif isinstance(action, exp.Drop):
            t = _dropped(t, action, engine)
        elif isinstance(action, exp.DropPrimaryKey):
            t = replace(t, primary_key=(), primary_key_name="")
        elif isinstance(action, exp.AddConstraint):
            for item in action.expressions:
                keys.read(item)
        elif isinstance(action, exp.RenameIndex):
            old, new = ident(action.this, engine), ident(action.args.get("to"), engine)
            t = replace(
                t,
                indexes=tuple(
                    replace(i, name=new) if i.name.lower() == old.lower() else i for i in t.indexes
                ),
            )
        elif isinstance(action, exp.AlterRename) and isinstance(action.this, exp.Table):
            t = replace(t, name=ident(action.this, engine))
    if keys.primary_key is not None:
        t = replace(t, primary_key=keys.primary_key, primary_key_name=keys.primary_key_name)
    opts = table_options(node)
    return replace(
        t,
        indexes=t.indexes + tuple(keys.indexes),
        foreign_keys=t.foreign_keys + tuple(keys.foreign_keys),
        checks=t.checks + tuple(keys.checks),
        comment=opts.get("comment", t.comment),
        engine=opts.get("engine", t.engine),
        charset=opts.get("charset", t.charset),
        collation=opts.get("collation", t.collation),
    )


def renamed_to(node: exp.Alter) -> exp.Table | None:
    """The new name an ALTER TABLE … RENAME TO gives its table."""
    for action in node.args.get("actions") or ():
        if isinstance(action, exp.AlterRename) and isinstance(action.this, exp.Table):
            return action.this
    return None
