"""Which functions a ticket's SQL may call: an allowlist per dialect (``functions.yaml``).

A name is judged as the statement that runs spells it. OpenDMS runs the text it generates
from the parsed statement (:func:`opendms.sql.statements.render`), so each function call in
the tree is named from its own generated text: quotes are removed (``"pg_read_file"`` and
```load_file``` are the functions they quote), case is folded (PostgreSQL: only where the
quoted name is already lower-case, since a quoted name is case-sensitive there and
``"Lower"`` would be some other function), and a schema qualification is allowed only for
the system catalog (``pg_catalog.lower``). Anything not on the list is refused, naming it:
user-defined functions included, because the checks cannot follow what they do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml
from sqlglot import exp

from opendms.sql.statements import DIALECTS

# A schema a qualified function may name: the system catalog, which holds the built-ins.
SYSTEM_SCHEMAS = {"postgres": frozenset({"pg_catalog"})}
_CALL = re.compile(r'\s*(?:"((?:[^"]|"")+)"|`((?:[^`]|``)+)`|([A-Za-z_][A-Za-z0-9_$]*))\s*(\()?')


@dataclass(frozen=True)
class Allowed:
    read: frozenset[str]
    change: frozenset[str]


@cache
def allowed(dialect: str) -> Allowed:
    """The allowlist of one sqlglot dialect (``mysql``, ``postgres``, ``sqlite``)."""
    data = yaml.safe_load(resources.files("opendms.sql").joinpath("functions.yaml").read_text())
    common, own = data["common"], data.get(dialect, {})
    return Allowed(
        frozenset(common["read"]) | frozenset(own.get("read") or ()),
        frozenset(common["change"] or ()) | frozenset(own.get("change") or ()),
    )


@dataclass(frozen=True)
class Call:
    name: str  # as it runs, unquoted
    quoted: bool
    schema: str  # the qualifying schema, lower-cased; empty when unqualified

    @property
    def shown(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name


def _call(node: exp.Func, dialect: str) -> Call | None:
    """The function ``node`` calls when it runs, or None when it runs as an operator or a
    construct of the language (``a AND b``, ``CASE``, ``x ->> 'k'``), whose parts are
    judged on their own."""
    text = node.sql(dialect=dialect, comments=False, normalize_functions=False)
    found = _CALL.match(text)
    if found is None:
        return None
    double, back, bare, paren = found.groups()
    if bare is not None and paren is None and found.end() != len(text):
        return None  # a bare word followed by more: an operator form, not a call
    name = double.replace('""', '"') if double else back.replace("``", "`") if back else bare
    schema = ""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        schema = parent.this.sql(dialect=dialect).strip('`"').lower()
    return Call(name, bare is None, schema)


def _name_allowed(call: Call, dialect: str, names: frozenset[str]) -> bool:
    if call.schema and call.schema not in SYSTEM_SCHEMAS.get(dialect, frozenset()):
        return False
    folded = call.name.lower()
    if call.quoted and dialect == "postgres" and call.name != folded:
        return False  # "Lower" is not lower in PostgreSQL
    return folded in names


def calls(node: exp.Expr, dialect: str) -> Iterator[Call]:
    for func in node.find_all(exp.Func):
        if isinstance(func, exp.Connector | exp.Binary | exp.Unary):
            continue
        call = _call(func, dialect)
        if call is not None:
            yield call


def refused(node: exp.Expr, engine: str, *, change: bool) -> list[str]:
    """The functions ``node`` calls that are not allowed (in a data change when ``change``,
    otherwise in a read), as they are spelled, sorted, without repeats."""
    dialect = DIALECTS.get(engine, "mysql")
    listed = allowed(dialect)
    names = listed.read | listed.change if change else listed.read
    return sorted({c.shown for c in calls(node, dialect) if not _name_allowed(c, dialect, names)})


def refusal(names: list[str]) -> str:
    """The message for :func:`refused`'s answer."""
    shown = ", ".join(f"{n}()" for n in names)
    one = len(names) == 1
    return (
        f"it calls {shown}, which {'is' if one else 'are'} not among the functions a ticket "
        "may call (OpenDMS allows built-in functions that only compute a value; anything that "
        "reads files, settings or other sessions, waits, locks, or is user-defined is refused)"
    )
