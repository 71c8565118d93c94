"""SQL review of a ticket's SQL for one of its databases: the instance's dialect and
environment, the catalog's tables and columns, the ticket type's statement kinds and the
levels of the instance's security rule set."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy.orm import Session

from opendms.catalog import queries
from opendms.catalog.shapes import CatalogShapes
from opendms.errors import DmsError, ErrorCode
from opendms.rulebook import rule_sets
from opendms.sql.review import Finding, review, review_parsed
from opendms.sql.statements import Parsed
from opendms.sql.tables import Catalog
from opendms.store.models import Database, Instance
from opendms.tickets.params import DML
from opendms.tickets.registry import find


def review_for_database(
    s: Session,
    tid: int,
    db_id: int,
    sql: str,
    plugin_type: str | None = None,
    rule_set: str | None = None,
    reason: str = "",
) -> list[Finding]:
    """``sql`` reviewed as a ticket of ``plugin_type`` would be (None: as a data change),
    whose stated reason is ``reason``."""
    statement_kinds = DML
    if plugin_type is not None:
        kind = find(plugin_type)
        if kind is None or not kind.statement_kinds:
            raise DmsError(ErrorCode.INVALID_PARAMETER, f"{plugin_type} tickets carry no SQL.")
        statement_kinds = kind.statement_kinds
    db = queries.get_database(s, tid, db_id)
    inst = queries.get_instance(s, tid, db.instance_id)
    rules = (
        rule_sets.get(s, tid, rule_set) if rule_set else rule_sets.for_instance(s, inst)[0]
    ).rule_set
    return review(
        sql,
        inst.instance_type,
        statement_kinds,
        catalog=CatalogShapes(s, [db]),
        levels=rules.review,
        env_type=inst.env_type or "",
        reason=reason,
    )


def review_for_parsed(
    s: Session,
    inst: Instance,
    db: Database,
    parsed: Sequence[Parsed],
    statement_kinds: Collection[str],
    reason: str = "",
    catalog: Catalog | None = None,
) -> list[Finding]:
    """The precheck's review of a script already parsed, at the levels of the instance's
    rule set, for a ticket whose stated reason is ``reason``; ``catalog``: the tables as
    the ticket's kind read them (by default the metadata store's)."""
    levels = rule_sets.for_instance(s, inst)[0].rule_set.review
    return review_parsed(
        parsed,
        statement_kinds,
        inst.instance_type,
        catalog=catalog or CatalogShapes(s, [db]),
        levels=levels,
        env_type=inst.env_type or "",
        reason=reason,
    )
