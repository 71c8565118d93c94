"""Reviewing SQL for one of a ticket's databases: catalog, statement kinds, rule-set levels."""

from __future__ import annotations

from pathlib import Path

import pytest

from opendms.errors import DmsError
from opendms.identity.secrets import SecretBox
from opendms.precheck.review import review_for_database
from opendms.rulebook import rule_sets
from opendms.store.db import Store
from tests.approval_world import World

SQL = "UPDATE orders SET status = 'x';\nUPDATE orders SET nope = 1 WHERE id = 7;\nSELECT 1"
TEMPLATES = "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"


def test_review_uses_the_catalog_the_type_and_the_rule_set(
    store: Store, box: SecretBox, tmp_path: Path
) -> None:
    world = World.build(store, box, tmp_path / "targets")
    with store.session() as s:
        found = review_for_database(s, world.tid, world.db_id, SQL)
        assert [(f.statement, f.code, f.level) for f in found] == [
            (1, "DML_WITHOUT_WHERE", "ERROR"),
            (2, "UNKNOWN_COLUMN", "ERROR"),
            (3, "STATEMENT_KIND_NOT_ALLOWED", "ERROR"),
        ]
        # an export ticket runs SELECT and nothing else
        exported = review_for_database(
            s, world.tid, world.db_id, "SELECT * FROM orders", "DATA_EXPORT"
        )
        assert exported == []
        rule_sets.load(
            s, world.tid, "lenient", TEMPLATES + "review: {DML_WITHOUT_WHERE: WARNING}\n"
        )
        rule_sets.assign(s, world.tid, world.instance_id, "lenient")
        levels = [f.level for f in review_for_database(s, world.tid, world.db_id, SQL)]
        assert levels == ["WARNING", "ERROR", "ERROR"]
        # a schema design runs DDL, and no data change
        design = review_for_database(s, world.tid, world.db_id, SQL, "NDDL")
        assert {f.code for f in design if f.level == "ERROR"} >= {"STATEMENT_KIND_NOT_ALLOWED"}
        ddl = "ALTER TABLE orders ADD COLUMN note_text VARCHAR(20) COMMENT 'why'"
        kinds = {f.code for f in review_for_database(s, world.tid, world.db_id, ddl, "NDDL")}
        assert "STATEMENT_KIND_NOT_ALLOWED" not in kinds
        with pytest.raises(DmsError):
            review_for_database(s, world.tid, world.db_id, SQL, "NO_SUCH_TYPE")
        with pytest.raises(DmsError):
            review_for_database(s, world.tid, 10**9, SQL)
