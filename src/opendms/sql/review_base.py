"""The review rule table: what a rule is, what it is given and what it finds.

A rule is a generator over one statement (a :class:`Subject`) registered in definition order
by :func:`rule`, with a code, a default level (``ERROR`` stops a ticket's precheck,
``WARNING`` is reported, ``OFF`` is not run) that a security rule set may override unless the
rule is ``fixed``, and a summary. The rules themselves live in ``review_dml`` (data changes)
and ``review_ddl_*`` (schema changes); ``review`` runs them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from sqlglot import exp

from opendms.sql.overlay import Overlay
from opendms.sql.script import Piece
from opendms.sql.tables import Catalog

LEVELS = ("ERROR", "WARNING", "OFF")
DML = ("INSERT", "REPLACE", "UPDATE", "DELETE")
# Statement kinds that change a schema (statements.KINDS): what the schema-change rules read.
DDL = frozenset({"CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT"})


@dataclass(frozen=True)
class Limits:
    max_statements: int = 1000
    max_in_list: int = 1000
    # Schema changes (docs/security-rules.md, "Schema change rules"): past these a table is
    # hard to read, to index well and to change online.
    max_columns: int = 64
    max_indexes: int = 16  # secondary indexes of one table
    max_index_columns: int = 5
    # From this many rows (the catalog's estimate) rewriting a table takes long enough to
    # matter: the rules that warn of a rewrite say so only for tables this big.
    big_table_rows: int = 1_000_000


@dataclass(frozen=True)
class Subject:
    """One statement under review and what a rule may consult."""

    node: exp.Expression
    kind: str
    piece: Piece
    allowed_kinds: frozenset[str]
    catalog: Catalog | None
    limits: Limits
    statements: int  # how many the script has
    engine: str = "mysql"  # the instance type the script is for
    # The environment of the database the script runs in (an instance's EnvType: dev, test,
    # product…); "" when the caller does not say.
    env_type: str = ""
    # Why the ticket makes this change, in its committer's words; "" when none was given.
    reason: str = ""
    # The tables as the statements before this one leave them (None: a statement reviewed on
    # its own, against the catalog alone).
    overlay: Overlay | None = field(default=None, compare=False)

    @property
    def tables(self) -> Overlay:
        """The tables as this statement finds them: the catalog's, changed by the script so
        far."""
        return self.overlay if self.overlay is not None else Overlay(self.catalog, self.engine)


@dataclass(frozen=True)
class Finding:
    code: str
    level: str
    statement: int  # 1-based; 0 for the script as a whole
    line: int
    column: int
    message: str


Check = Callable[[Subject], Iterator[str]]


@dataclass(frozen=True)
class ReviewRule:
    code: str
    level: str
    summary: str
    check: Check = field(repr=False)
    # A security rule: a rule set cannot change its level.
    fixed: bool = False
    # The statement kinds the rule reads (None: every statement). It runs only on those the
    # ticket may run: a statement of another kind is refused by STATEMENT_KIND_NOT_ALLOWED,
    # and more findings on it would only hide that one.
    kinds: frozenset[str] | None = None


RULES: list[ReviewRule] = []


def rule(
    code: str,
    level: str,
    summary: str,
    *,
    fixed: bool = False,
    kinds: frozenset[str] | None = None,
) -> Callable[[Check], Check]:
    """Register a check in the table, in definition order."""

    def register(check: Check) -> Check:
        RULES.append(ReviewRule(code, level, summary, check, fixed, kinds))
        return check

    return register


def applies(r: ReviewRule, s: Subject) -> bool:
    return r.kinds is None or (s.kind in r.kinds and s.kind in s.allowed_kinds)
