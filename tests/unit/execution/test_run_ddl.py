"""The ddl walk's check that a database is still as its plan compared it (``drift``)."""

from __future__ import annotations

from dataclasses import replace

from opendms.execution.run_ddl import drift
from opendms.schema.model import Column, Table
from opendms.store.models import SchemaPlan

BEFORE = Table("acct", (Column("id", "bigint", False), Column("note", "varchar(50)")), ("id",))
WANTED = replace(BEFORE, columns=(BEFORE.columns[0], Column("note", "varchar(200)")))
NEW = Table("tag", (Column("id", "bigint", False),), ("id",))


def _plan() -> SchemaPlan:
    return SchemaPlan(
        before={"acct": BEFORE.to_json()},
        desired={"acct": WANTED.to_json(), "tag": NEW.to_json()},
    )


def test_tables_as_compared_or_already_as_wanted_are_no_drift() -> None:
    assert drift(_plan(), {"acct": BEFORE}, "mysql") == []
    # a run cut short after its first statement committed finds its table as wanted
    assert drift(_plan(), {"acct": WANTED, "tag": NEW}, "mysql") == []


def test_anything_else_is_drift_and_says_how() -> None:
    other = replace(BEFORE, columns=(*BEFORE.columns, Column("sneaky", "int")))
    found = drift(_plan(), {"acct": other}, "mysql")
    assert len(found) == 1 and found[0].startswith("acct:") and "sneaky" in found[0]
    assert drift(_plan(), {}, "mysql") == ["table acct is gone"]
    made = replace(NEW, columns=(*NEW.columns, Column("x", "int")))
    assert drift(_plan(), {"acct": BEFORE, "tag": made}, "mysql") == ["table tag exists now"]
