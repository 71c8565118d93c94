"""Every review rule against its fixture cases (tests/fixtures/review/cases.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from opendms.sql.review import RULES, Limits, TableShape, review

CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (Path(__file__).parents[2] / "fixtures" / "review" / "cases.yaml").read_text()
)
DC_KINDS = ("INSERT", "REPLACE", "UPDATE", "DELETE")


class FixtureCatalog:
    TABLES = {
        "t": TableShape(frozenset({"id", "a", "b", "name", "x"}), ("id",)),
        "u": TableShape(frozenset({"id", "t_id", "c"}), ("id",)),
        "nopk": TableShape(frozenset({"a", "b"}), ()),
        "s.t2": TableShape(frozenset({"id", "v"}), ("id",)),
        "log": TableShape(frozenset({"id", "msg"}), ("id",), engine="myisam"),
    }

    def table(self, name: str) -> TableShape | None:
        return self.TABLES.get(name)


def test_every_rule_has_cases_both_ways() -> None:
    assert [r.code for r in RULES] == list(CASES), "one fixture entry per rule, in table order"
    for code, cases in CASES.items():
        assert any(c["finds"] for c in cases) and any(not c["finds"] for c in cases), code
    assert len(RULES) >= 25


@pytest.mark.parametrize(
    ("code", "case"),
    [(code, case) for code, cases in CASES.items() for case in cases],
    ids=[f"{code}-{i}" for code, cases in CASES.items() for i, _ in enumerate(cases)],
)
def test_rule_fixture(code: str, case: dict[str, Any]) -> None:
    found = review(
        case["sql"],
        case.get("engine", "mysql"),
        case.get("allowed", DC_KINDS),
        catalog=FixtureCatalog(),
        limits=Limits(
            max_statements=case.get("max_statements", 1000),
            max_in_list=case.get("max_in_list", 1000),
        ),
    )
    assert not [f for f in found if f.code == "SQL_PARSE"], found
    mine = [f for f in found if f.code == code]
    assert len(mine) == case["finds"], mine or found
    assert all(f.message for f in mine)


def test_levels_can_be_overridden_and_rules_turned_off() -> None:
    sql = "UPDATE t SET a = 1"
    assert [(f.code, f.level) for f in review(sql, "mysql", DC_KINDS)] == [
        ("DML_WITHOUT_WHERE", "ERROR")
    ]
    assert [
        f.level for f in review(sql, "mysql", DC_KINDS, levels={"DML_WITHOUT_WHERE": "WARNING"})
    ] == ["WARNING"]
    assert review(sql, "mysql", DC_KINDS, levels={"DML_WITHOUT_WHERE": "OFF"}) == []
    with pytest.raises(ValueError, match="NO_SUCH_RULE"):
        review(sql, "mysql", DC_KINDS, levels={"NO_SUCH_RULE": "OFF"})


def test_without_a_catalog_the_catalog_rules_stay_silent() -> None:
    found = review("UPDATE ghost SET id = 1 WHERE nope = 2", "mysql", DC_KINDS)
    assert found == []


def test_parse_failures_name_the_statement_line_and_column() -> None:
    (finding,) = review("DELETE FROM t WHERE id = 1;\nDELETE FROM WHERE;", "mysql", DC_KINDS)
    assert (finding.code, finding.level, finding.statement, finding.line) == (
        "SQL_PARSE",
        "ERROR",
        2,
        2,
    )
    assert "statement 2 (line 2, column 13)" in finding.message
    (finding,) = review("UPDATE t SET a = 'open", "mysql", DC_KINDS)
    assert (finding.code, finding.statement, finding.line, finding.column) == (
        "SQL_PARSE",
        0,
        1,
        18,
    )
