"""Every review rule against its fixture cases (tests/fixtures/review/cases.yaml)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from opendms.schema.model import Column, Index, Table
from opendms.sql.review import RULES, Limits, TableShape, review

CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (Path(__file__).parents[2] / "fixtures" / "review" / "cases.yaml").read_text()
)
DC_KINDS = ("INSERT", "REPLACE", "UPDATE", "DELETE")
# what a schema design ticket runs (a case's `allowed: ddl`)
DDL_KINDS = ("CREATE", "ALTER", "DROP", "TRUNCATE", "RENAME", "COMMENT")


def _int(name: str, **more: Any) -> Column:
    return Column(name, "int", **more)


class FixtureCatalog:
    """The fixture tables described at the top of cases.yaml."""

    DEFINITIONS = {
        "t": Table(
            "t",
            (
                _int("id", nullable=False),
                _int("a"),
                _int("b"),
                Column("name", "varchar(100)", comment="the name"),
                _int("x"),
            ),
            primary_key=("id",),
            indexes=(Index("idx_a", ("a",)), Index("uk_name", ("name",), unique=True)),
            engine="innodb",
            charset="utf8mb4",
            rows=5000,
        ),
        "u": Table(
            "u",
            (_int("id", nullable=False), _int("t_id"), _int("c")),
            primary_key=("id",),
            indexes=(Index("idx_t_id", ("t_id",)),),
            rows=100,
        ),
        "nopk": Table("nopk", (_int("a"), _int("b"))),
        "s.t2": Table("t2", (_int("id", nullable=False), _int("v")), primary_key=("id",)),
        "log": Table(
            "log", (_int("id", nullable=False), Column("msg", "text")), ("id",), engine="myisam"
        ),
        "big": Table(
            "big",
            (
                Column("id", "bigint", nullable=False, auto_increment=True),
                _int("a", nullable=False, default="0", comment="a"),
                Column("v", "varchar(100)"),
                Column("s", "varchar(60)"),
                Column("n", "decimal(10,2)"),
                Column("note", "text"),
                Column("code", "char(10)"),
            ),
            primary_key=("id",),
            indexes=(Index("idx_a_v", ("a", "v")),),
            engine="innodb",
            charset="utf8mb4",
            rows=2_000_000,
        ),
    }
    TABLES = {
        name: TableShape(frozenset(c.name for c in t.columns), t.primary_key, engine=t.engine)
        for name, t in DEFINITIONS.items()
    }

    def table(self, name: str) -> TableShape | None:
        return self.TABLES.get(name)

    def definition(self, name: str) -> Table | None:
        return self.DEFINITIONS.get(name)


def test_every_rule_has_cases_both_ways() -> None:
    assert [r.code for r in RULES] == list(CASES), "one fixture entry per rule, in table order"
    for code, cases in CASES.items():
        assert any(c["finds"] for c in cases) and any(not c["finds"] for c in cases), code
    assert len(RULES) >= 70


@pytest.mark.parametrize(
    ("code", "case"),
    [(code, case) for code, cases in CASES.items() for case in cases],
    ids=[f"{code}-{i}" for code, cases in CASES.items() for i, _ in enumerate(cases)],
)
def test_rule_fixture(code: str, case: dict[str, Any]) -> None:
    allowed = case.get("allowed", DC_KINDS)
    found = review(
        case["sql"],
        case.get("engine", "mysql"),
        DDL_KINDS if allowed == "ddl" else allowed,
        catalog=FixtureCatalog(),
        limits=Limits(
            **{
                key: case[key]
                for key in (
                    "max_statements",
                    "max_in_list",
                    "max_columns",
                    "max_indexes",
                    "max_index_columns",
                    "big_table_rows",
                )
                if key in case
            }
        ),
        env_type=case.get("env", ""),
        reason=case.get("reason", ""),
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


def test_schema_change_levels_can_be_overridden_and_turned_off() -> None:
    sql = "DROP TABLE t"
    product = {"catalog": FixtureCatalog(), "env_type": "product"}
    assert [(f.code, f.level) for f in review(sql, "mysql", DDL_KINDS, **product)] == [
        ("DESTRUCTIVE_DDL_WITHOUT_REASON", "ERROR")
    ]
    lowered = review(
        sql, "mysql", DDL_KINDS, levels={"DESTRUCTIVE_DDL_WITHOUT_REASON": "WARNING"}, **product
    )
    assert [(f.code, f.level) for f in lowered] == [("DESTRUCTIVE_DDL_WITHOUT_REASON", "WARNING")]
    off = review(
        sql, "mysql", DDL_KINDS, levels={"DESTRUCTIVE_DDL_WITHOUT_REASON": "OFF"}, **product
    )
    assert off == []
    raised = review(
        "ALTER TABLE t ADD COLUMN c INT",
        "postgresql",
        DDL_KINDS,
        catalog=FixtureCatalog(),
        levels={"COLUMN_WITHOUT_COMMENT": "ERROR"},
    )
    assert [(f.code, f.level) for f in raised] == [("COLUMN_WITHOUT_COMMENT", "ERROR")]
    assert not any(r.fixed for r in RULES if r.kinds is not None)


def test_a_product_drop_needs_a_reason() -> None:
    def found(env: str, reason: str) -> list[tuple[str, str]]:
        return [
            (f.code, f.level)
            for f in review(
                "TRUNCATE TABLE t; ALTER TABLE u DROP COLUMN c",
                "postgresql",
                DDL_KINDS,
                catalog=FixtureCatalog(),
                env_type=env,
                reason=reason,
            )
        ]

    assert found("product", "") == [("DESTRUCTIVE_DDL_WITHOUT_REASON", "ERROR")] * 2
    assert found("PRODUCT ", "  ") == [("DESTRUCTIVE_DDL_WITHOUT_REASON", "ERROR")] * 2
    assert found("product", "archived to s3://bucket/t") == [("DESTRUCTIVE_DDL", "WARNING")] * 2
    assert found("test", "") == [("DESTRUCTIVE_DDL", "WARNING")] * 2
    assert found("", "") == [("DESTRUCTIVE_DDL", "WARNING")] * 2  # not said: not product
    (finding,) = review(
        "DROP TABLE big", "mysql", DDL_KINDS, catalog=FixtureCatalog(), env_type="product"
    )
    message = finding.message
    assert "big" in message and "2,000,000 rows" in message and "reason" in message


def test_data_change_tickets_see_no_schema_change_findings() -> None:
    # a DDL statement in a data change ticket is refused for its kind, and nothing more
    found = review(
        "ALTER TABLE t ADD COLUMN c TEXT DEFAULT 'x'; DROP TABLE t; CREATE TABLE n1 (a INT)",
        "mysql",
        DC_KINDS,
        catalog=FixtureCatalog(),
        env_type="product",
    )
    assert {f.code for f in found} == {"STATEMENT_KIND_NOT_ALLOWED"}
    assert [f.message.split(" is not")[0] for f in found] == [
        "ALTER TABLE",
        "DROP TABLE",
        "CREATE TABLE",
    ]
    # and a schema change ticket's DML is refused the same way
    (refused,) = review("UPDATE t SET a = 1 WHERE id = 1", "mysql", DDL_KINDS)
    assert refused.code == "STATEMENT_KIND_NOT_ALLOWED"
    assert refused.message.endswith("it runs ALTER, COMMENT, CREATE, DROP, RENAME, TRUNCATE.")


def test_every_schema_change_rule_names_what_it_reads() -> None:
    ddl_rules = RULES[[r.code for r in RULES].index("DDL_NOT_PARSED") :]
    assert len(ddl_rules) >= 30 and all(r.kinds for r in ddl_rules)
    assert all(r.kinds is None for r in RULES[: len(RULES) - len(ddl_rules)])


def test_the_schema_change_rules_are_listed_for_users() -> None:
    doc = (Path(__file__).parents[3] / "docs" / "security-rules.md").read_text()
    listed = dict(re.findall(r"^\| `([A-Z0-9_]+)` \| (ERROR|WARNING) \|", doc, re.MULTILINE))
    assert listed == {r.code: r.level for r in RULES if r.kinds is not None}
