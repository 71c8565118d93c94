"""How each engine spells a column type, a default and an expression once it has stored them.

The readers (``targets``) pass what a server reports through these functions, and the
translation from one engine to another passes its results through the same ones: so what a
server will report for a column asked of it is known before it is asked, and two servers that
agree on a column report it alike (MariaDB's ``int(11)`` and MySQL 8's ``int``, MariaDB's
``current_timestamp()`` and MySQL's ``CURRENT_TIMESTAMP``, PostgreSQL's ``character
varying(20)`` and ``varchar(20)``).
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

# sqlglot's dialect for each engine (instance type), as sql.statements names them
DIALECTS = {"mysql": "mysql", "mariadb": "mysql", "postgresql": "postgres", "sqlite": "sqlite"}


def dialect(engine: str) -> str:
    return DIALECTS.get(engine, "mysql")


def family(engine: str | None) -> str:
    """``mysql`` for MySQL and MariaDB (one dialect, one catalog shape); the engine otherwise."""
    return "mysql" if engine in (None, "mysql", "mariadb") else engine


def compact(text: str) -> str:
    """``text`` lower-cased and without optional blanks, outside quoted parts (ENUM values
    keep their case and spaces): ``DECIMAL(10, 2)`` → ``decimal(10,2)``."""
    out: list[str] = []
    quote = ""
    for ch in text.strip():
        if quote:
            out.append(ch)
            if ch == quote:
                quote = ""  # a doubled quote reopens at once on the next character
            continue
        if ch in "'\"`":
            quote = ch
            out.append(ch)
        elif ch.isspace():
            if out and out[-1] not in " (,":
                out.append(" ")
        elif ch in ",)" and out and out[-1] == " ":
            out[-1] = ch
        else:
            out.append(ch.lower())
    return "".join(out).strip()


_MYSQL_INTEGER = re.compile(
    r"^(integer|tinyint|smallint|mediumint|bigint|int|year)(\(\d+\))?(?=\s|$)(.*)$"
)
_MYSQL_ALIASES = {
    "bool": "tinyint(1)",
    "boolean": "tinyint(1)",
    "dec": "decimal",
    "numeric": "decimal",
    "fixed": "decimal",
    "real": "double",
    "double precision": "double",
    "character varying": "varchar",
    "character": "char",
}
# A type without its length means length one (CHAR, BINARY, BIT) or DECIMAL(10,0).
_MYSQL_BARE = {"char": "(1)", "binary": "(1)", "bit": "(1)", "decimal": "(10,0)"}


def mysql_type(text: str) -> str:
    """A MySQL/MariaDB column type as both report it: integer display widths dropped as MySQL
    8.0.19 drops them (kept for ``tinyint(1)`` and ZEROFILL columns, as it keeps them)."""
    t = compact(text)
    m = re.match(r"^(double precision|character varying|[a-z]+)(.*)$", t)
    if m and m.group(1) in _MYSQL_ALIASES:
        t = _MYSQL_ALIASES[m.group(1)] + m.group(2)
        if t.startswith("tinyint(1)(") or t.startswith("tinyint(1) ("):
            t = "tinyint(1)"  # BOOLEAN takes no length
    m = _MYSQL_INTEGER.match(t)
    if m:
        base, width, rest = m.group(1), m.group(2) or "", m.group(3)
        base = "int" if base == "integer" else base
        keep = "zerofill" in rest.split() or (base == "tinyint" and width == "(1)")
        return base + (width if keep else "") + rest
    m = re.match(r"^(char|binary|bit|decimal)(?=\s|$)(.*)$", t)
    if m:
        return m.group(1) + _MYSQL_BARE[m.group(1)] + m.group(2)
    m = re.match(r"^decimal\((\d+)\)(.*)$", t)
    if m:
        return f"decimal({m.group(1)},0){m.group(2)}"
    return t


_PG_ALIASES = {
    "character varying": "varchar",
    "character": "char",
    "bpchar": "char",
    "int": "integer",
    "int4": "integer",
    "int8": "bigint",
    "int2": "smallint",
    "decimal": "numeric",
    "float": "double precision",
    "float8": "double precision",
    "double": "double precision",
    "float4": "real",
    "bool": "boolean",
    "varbit": "bit varying",
}
_PG_TYPE = re.compile(
    r"^([a-z_][a-z0-9_ ]*?) ?(\(\d+(?:,\d+)?\))? ?(with time zone|without time zone)?$"
)


def postgres_type(text: str) -> str:
    """A PostgreSQL column type in ``format_type``'s words, with its two long spellings
    shortened (``varchar``, ``char``) and ``without time zone`` left out as the default."""
    t = compact(text)
    arrays = ""
    while t.endswith("[]"):
        arrays += "[]"
        t = t[:-2].rstrip()
    m = _PG_TYPE.match(t)
    if not m:
        return t + arrays  # a user-defined or schema-qualified type: as it is
    base, params, zone = _PG_ALIASES.get(m.group(1), m.group(1)), m.group(2) or "", m.group(3)
    if base in ("timestamptz", "timetz"):
        base, zone = base[:-2], "with time zone"
    suffix = " with time zone" if zone == "with time zone" else ""
    return base + params + suffix + arrays


def canonical_type(text: str, engine: str) -> str:
    """``text`` spelled as ``engine``'s catalog reports a column declared with it."""
    if family(engine) == "mysql":
        return mysql_type(text)
    if engine == "postgresql":
        return postgres_type(text)
    return compact(text)


def base_type(text: str) -> str:
    """The type's name without its length or precision: ``varchar(20)`` → ``varchar``,
    ``timestamp(3) with time zone`` → ``timestamp with time zone``."""
    return re.sub(r" ?\([^)]*\)", "", text).strip()


_NUMERIC = {
    "tinyint",
    "smallint",
    "mediumint",
    "int",
    "integer",
    "bigint",
    "decimal",
    "numeric",
    "float",
    "double",
    "real",
    "double precision",
    "year",
}


def numeric_type(text: str) -> bool:
    """Whether a column of this (canonical) type holds numbers: its literal defaults are
    written unquoted."""
    words = base_type(text).split()
    name = " ".join(w for w in words if w not in ("unsigned", "signed", "zerofill"))
    return name in _NUMERIC


_CURRENT = re.compile(
    r"^(?:current_timestamp|now|localtimestamp|localtime)\s*(?:\(\s*(\d*)\s*\))?$", re.IGNORECASE
)


def mysql_default(text: str) -> str:
    """A MySQL/MariaDB default expression in one spelling: MariaDB writes
    ``current_timestamp()``, MySQL ``CURRENT_TIMESTAMP``; both mean the same."""
    m = _CURRENT.match(text.strip())
    if m:
        digits = m.group(1)
        return "CURRENT_TIMESTAMP" + (f"({digits})" if digits and digits != "0" else "")
    return text.strip()


_PG_CAST = re.compile(r"^'((?:[^']|'')*)'::(.+)$", re.DOTALL)
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")


def postgres_default(text: str, column_type: str) -> str | None:
    """A PostgreSQL default as ``pg_get_expr`` shows it, without the cast it adds to a
    literal of the column's own type: ``'a'::character varying`` → ``'a'``, ``'-1'::integer``
    → ``-1``. ``NULL`` (with or without a cast) is no default."""
    t = text.strip()
    if t.upper() == "NULL" or t.upper().startswith("NULL::"):
        return None
    m = _PG_CAST.match(t)
    if m and base_type(postgres_type(m.group(2))) == base_type(postgres_type(column_type)):
        value = m.group(1)
        if numeric_type(postgres_type(column_type)) and _NUMBER.match(value):
            return value
        return f"'{value}'"
    return t


def _plain(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Identifier):
        return exp.to_identifier(node.name.lower(), quoted=False)
    if isinstance(node, exp.Cast):
        inner = node.this
        while isinstance(inner, exp.Paren):
            inner = inner.this
        if isinstance(inner, exp.Literal):
            node = inner  # PostgreSQL's cast of a literal to the type it is compared with
    if isinstance(node, exp.Literal) and not node.is_string:
        try:  # MariaDB pads a DECIMAL's default to its scale: 0.00 is 0
            return exp.Literal.number(format(Decimal(node.name).normalize(), "f"))
        except ArithmeticError:
            return node
    return node


@lru_cache(maxsize=8192)
def expression_key(text: str, engine: str | None) -> str:
    """What an expression (a default, a CHECK, a generated column, an index part) means, for
    comparing: the same text whatever quotes, parentheses and letter case the server used."""
    try:
        parsed = sqlglot.parse_one(text, read=dialect(engine or "mysql"))
    except SqlglotError:
        return " ".join(text.lower().split())
    node = _plain(parsed).transform(_plain)
    return node.sql(dialect=dialect(engine or "mysql"), normalize_functions="lower")


def unwrapped(text: str) -> str:
    """``text`` without parentheses around the whole of it, as servers add them to CHECK
    clauses, generated columns and index predicates (``((a > 0))`` → ``a > 0``)."""
    t = text.strip()
    while t.startswith("(") and t.endswith(")"):
        depth, quote = 0, ""
        for i, ch in enumerate(t):
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"`":
                quote = ch
            elif ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth == 0 and i < len(t) - 1:
                    return t  # "(a) + (b)": the first parenthesis closes early
        t = t[1:-1].strip()
    return t
