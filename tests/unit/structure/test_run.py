"""What a stage lacks of a design (``structure.run.compare_stage``), and the DDL that makes a
design's tables in a scratch space (``setup_statements``)."""

from __future__ import annotations

from dataclasses import replace

from opendms.schema.model import Column, ForeignKey, Table
from opendms.store.states import PlanState
from opendms.structure.run import compare_stage, setup_statements

ACCT = Table("acct", (Column("id", "bigint", False), Column("note", "varchar(50)")), ("id",))
WIDE = replace(ACCT, columns=(*ACCT.columns, Column("email", "varchar(100)")))
TAG = Table(
    "tag",
    (Column("id", "bigint", False), Column("acct_id", "bigint")),
    ("id",),
    foreign_keys=(ForeignKey("fk_tag_acct", ("acct_id",), "acct", ("id",)),),
)
SCRIPT = ["ALTER TABLE acct ADD COLUMN email VARCHAR(100)", "CREATE TABLE tag (…)"]
NAMES = ["acct", "tag"]
BEFORE: dict[str, Table | None] = {"acct": ACCT, "tag": None}
DESIRED = {"acct": WIDE, "tag": TAG}


def test_a_stage_as_the_design_found_the_base_runs_the_script_as_written() -> None:
    found = compare_stage(NAMES, BEFORE, DESIRED, {"acct": ACCT}, "mysql", SCRIPT)
    assert found.state == PlanState.COMPARED
    assert found.statements == SCRIPT
    assert [t["compare_type"] for t in found.tables] == ["ALTER_TABLE", "CREATE_TABLE"]
    assert found.message == ""


def test_a_stage_that_has_the_design_runs_nothing() -> None:
    found = compare_stage(NAMES, BEFORE, DESIRED, DESIRED, "mysql", SCRIPT)
    assert (found.state, found.statements) == (PlanState.EQUAL, [])


def test_a_stage_that_drifted_runs_only_what_it_lacks_and_says_how_it_drifted() -> None:
    found = compare_stage(NAMES, BEFORE, DESIRED, {"acct": WIDE}, "mysql", SCRIPT)
    assert found.state == PlanState.COMPARED
    assert len(found.statements) >= 1
    assert all("CREATE TABLE" in st or "FOREIGN KEY" in st for st in found.statements)
    by_table = {t["target"]: t for t in found.tables}
    assert by_table["acct"]["compare_type"] == "EQUAL_TABLE"
    assert by_table["tag"]["drift"] is False  # it is only missing, as the design found it
    assert found.message == ""
    drifted = compare_stage(
        NAMES, BEFORE, DESIRED, {"acct": replace(ACCT, comment="hand-made")}, "mysql", SCRIPT
    )
    assert "drifted" in drifted.message and "acct" in drifted.message
    assert {t["target"]: t.get("drift") for t in drifted.tables}["acct"] is True


def test_the_scratch_tables_are_made_before_their_foreign_keys() -> None:
    statements = setup_statements([TAG, ACCT], "mysql")
    creates = [i for i, st in enumerate(statements) if st.startswith("CREATE TABLE")]
    keys = [i for i, st in enumerate(statements) if "FOREIGN KEY" in st]
    assert len(creates) == 2 and keys and max(creates) < min(keys)
    # a key to a table the scratch space does not have is left out
    alone = setup_statements([TAG], "mysql")
    assert not any("FOREIGN KEY" in st for st in alone)


def test_a_stage_without_a_table_the_design_changes_fails_naming_the_statements() -> None:
    found = compare_stage(NAMES, BEFORE, DESIRED, {}, "mysql", SCRIPT, {"acct": [1], "tag": [2]})
    assert found.state == PlanState.FAILED
    assert found.statements == []
    assert "statement 1 changes table acct" in found.message
    assert "tag" not in found.message  # the design makes that one
