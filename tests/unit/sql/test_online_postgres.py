"""Which lock-light steps a PostgreSQL DDL statement becomes, which changes rewrite the table
(and so take a shadow copy), and the names the steps give what they add."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from opendms.schema.model import Column, Table
from opendms.sql.online_postgres import (
    CONCURRENT,
    DIRECT,
    SHADOW,
    Facts,
    Plan,
    choose_name,
    facts_from,
    facts_wanted,
    object_name,
    plan,
    type_change_rewrites,
)

BEFORE = Table(
    "t",
    (
        Column("id", "bigint", False),
        Column("a", "character varying(50)"),
        Column("n", "numeric(10,2)"),
        Column("b", "integer"),
        Column("at", "timestamp(3) without time zone"),
    ),
    ("id",),
    "t_pkey",
)
FACTS = facts_from(
    {"random": "v", "gen_random_uuid": "v", "lower": "i", "abs": "i", "now": "s", "pick": "i"},
    ["checked_dom"],
)


def planned(text: str, before: Table | None = BEFORE, facts: Facts = FACTS) -> Plan:
    node = sqlglot.parse_one(text, read="postgres")
    return plan(node, node.sql(dialect="postgres"), before, facts)


def statements(found: Plan) -> list[tuple[str, tuple[str, ...]]]:
    return [(s.kind, s.statements) for s in found.steps]


def test_create_index_is_built_concurrently_under_its_name() -> None:
    found = planned("CREATE UNIQUE INDEX t_a ON s.t (a)")
    assert found.strategy == CONCURRENT
    (step,) = found.steps
    assert (step.kind, step.index, step.writers_wait) == ("build_index", "s.t_a", False)
    assert step.statements == ("CREATE UNIQUE INDEX CONCURRENTLY t_a ON s.t(a)",)
    assert step.undo == ("DROP INDEX CONCURRENTLY IF EXISTS s.t_a",)


def test_an_unnamed_index_gets_the_name_postgresql_would_give_it() -> None:
    (step,) = planned("CREATE INDEX ON t (a, lower(b))").steps
    assert step.index == '"t_a_expr_idx"'
    assert step.statements[0].startswith('CREATE INDEX CONCURRENTLY "t_a_expr_idx" ON t')


def test_drop_index_is_concurrent_unless_it_cascades() -> None:
    assert statements(planned("DROP INDEX IF EXISTS t_a")) == [
        ("drop_index", ("DROP INDEX CONCURRENTLY IF EXISTS t_a",))
    ]
    cascade = planned("DROP INDEX t_a CASCADE")
    assert cascade.strategy == DIRECT
    assert statements(cascade) == [("run", ("DROP INDEX t_a CASCADE",))]


@pytest.mark.parametrize(
    "text",
    [
        "ALTER TABLE t ADD COLUMN c int",
        "ALTER TABLE t ADD COLUMN c int NOT NULL DEFAULT 0",
        "ALTER TABLE t ADD COLUMN c timestamptz DEFAULT now()",  # stable: evaluated once
        "ALTER TABLE t ADD COLUMN c text DEFAULT lower('X') || 'y'",
        "ALTER TABLE t ADD COLUMN c int DEFAULT pick()",
        "ALTER TABLE t ADD COLUMN c int DEFAULT coalesce(abs(-1), 2)",
        "ALTER TABLE t DROP COLUMN b",
        "ALTER TABLE t ALTER COLUMN b SET DEFAULT 3",
        "ALTER TABLE t ALTER COLUMN b DROP NOT NULL",
        "ALTER TABLE t RENAME COLUMN b TO c",
        "ALTER TABLE t ADD CONSTRAINT ck CHECK (b > 0) NOT VALID",
        "ALTER TABLE t ALTER COLUMN a TYPE varchar(80)",
        "ALTER TABLE t ALTER COLUMN a TYPE text",
        "ALTER TABLE t ALTER COLUMN n TYPE numeric(14,2)",
        "ALTER TABLE t ALTER COLUMN at TYPE timestamp(6)",
        "ALTER TABLE t VALIDATE CONSTRAINT ck",
        "ALTER TABLE t REPLICA IDENTITY FULL",
        "CREATE TABLE u (id int PRIMARY KEY)",
        "DROP TABLE u",
    ],
)
def test_what_holds_its_lock_for_moments_runs_as_written(text: str) -> None:
    found = planned(text)
    assert found.strategy == DIRECT, found
    assert len(found.steps) == 1 and found.steps[0].kind == "run"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("ALTER TABLE t ADD COLUMN r float8 DEFAULT random()", "calls random"),
        ("ALTER TABLE t ADD COLUMN u uuid DEFAULT gen_random_uuid()", "calls gen_random_uuid"),
        ("ALTER TABLE t ADD COLUMN u int DEFAULT mystery()", "calls mystery"),
        ("ALTER TABLE t ADD COLUMN s serial", "serial"),
        ("ALTER TABLE t ADD COLUMN i bigint GENERATED ALWAYS AS IDENTITY", "computed"),
        ("ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (b * 2) STORED", "computed"),
        ("ALTER TABLE t ADD COLUMN d checked_dom", "domain"),
        ("ALTER TABLE t ALTER COLUMN b TYPE bigint", "from integer to BIGINT"),
        ("ALTER TABLE t ALTER COLUMN a TYPE varchar(10)", "from character varying(50)"),
        ("ALTER TABLE t ALTER COLUMN n TYPE numeric(14,3)", "from numeric(10,2)"),
        ("ALTER TABLE t ALTER COLUMN b TYPE text USING b::text", "USING"),
        ('ALTER TABLE t ALTER COLUMN a TYPE text COLLATE "C"', "collation"),
        ("ALTER TABLE t ADD CONSTRAINT x EXCLUDE USING gist (b WITH =)", "under the lock"),
        ("ALTER TABLE t SET TABLESPACE elsewhere", "moves every row"),
    ],
)
def test_what_would_rewrite_the_table_is_a_shadow_copy(text: str, why: str) -> None:
    found = planned(text)
    assert found.strategy == SHADOW, found
    assert why in found.why
    assert found.shadow is not None and found.shadow.table == "t"


def test_a_shadow_plan_carries_the_statement_its_new_columns_and_using() -> None:
    found = planned(
        "ALTER TABLE t ALTER COLUMN b TYPE bigint USING b * 100, "
        "ADD COLUMN r float8 DEFAULT random()"
    )
    assert found.shadow is not None
    assert found.shadow.alter.startswith("ALTER TABLE opendms_shadow_placeholder ALTER COLUMN b")
    assert found.shadow.added == ("r",)
    assert found.shadow.using == (("b", "b * 100"),)


def test_a_type_change_on_a_table_not_described_is_a_rewrite() -> None:
    assert planned("ALTER TABLE t ALTER COLUMN a TYPE varchar(80)", before=None).strategy == SHADOW


def test_a_foreign_key_is_added_not_valid_then_validated() -> None:
    found = planned("ALTER TABLE t ADD FOREIGN KEY (b) REFERENCES u (id) ON DELETE CASCADE")
    assert found.strategy == CONCURRENT
    assert statements(found) == [
        (
            "run",
            (
                'ALTER TABLE t ADD CONSTRAINT "t_b_fkey" FOREIGN KEY (b) REFERENCES u (id) '
                "ON DELETE CASCADE NOT VALID",
            ),
        ),
        ("run", ('ALTER TABLE t VALIDATE CONSTRAINT "t_b_fkey"',)),
    ]
    assert found.steps[0].undo == ('ALTER TABLE t DROP CONSTRAINT IF EXISTS "t_b_fkey"',)
    assert found.steps[1].writers_wait is False


def test_an_unnamed_check_is_named_as_postgresql_names_it() -> None:
    one = planned("ALTER TABLE t ADD CHECK (b > 0)")
    assert one.steps[1].statements == ('ALTER TABLE t VALIDATE CONSTRAINT "t_b_check"',)
    two = planned("ALTER TABLE t ADD CHECK (b > 0 AND a <> '')")
    assert two.steps[1].statements == ('ALTER TABLE t VALIDATE CONSTRAINT "t_check"',)


def test_set_not_null_goes_through_a_check_that_is_dropped_after() -> None:
    found = planned("ALTER TABLE t ALTER COLUMN a SET NOT NULL")
    assert statements(found) == [
        ("run", ('ALTER TABLE t ADD CONSTRAINT "t_a_nn" CHECK ("a" IS NOT NULL) NOT VALID',)),
        ("run", ('ALTER TABLE t VALIDATE CONSTRAINT "t_a_nn"',)),
        (
            "run",
            (
                'ALTER TABLE t ALTER COLUMN "a" SET NOT NULL',
                'ALTER TABLE t DROP CONSTRAINT "t_a_nn"',
            ),
        ),
    ]


def test_a_unique_constraint_is_built_as_an_index_first() -> None:
    found = planned("ALTER TABLE t ADD CONSTRAINT t_ab UNIQUE (a, b)")
    assert statements(found) == [
        ("build_index", ('CREATE UNIQUE INDEX CONCURRENTLY "t_ab" ON t ("a", "b")',)),
        ("run", ('ALTER TABLE t ADD CONSTRAINT "t_ab" UNIQUE USING INDEX "t_ab"',)),
    ]


def test_a_primary_key_makes_its_nullable_columns_not_null_first() -> None:
    table = Table("k", (Column("a", "integer"), Column("b", "integer", False)))
    found = planned("ALTER TABLE k ADD PRIMARY KEY (a, b)", before=table)
    assert [s.what for s in found.steps] == [
        "alter the table",
        "validate constraint k_a_nn",
        "build unique index k_pkey",
        "set the new constraints",
    ]
    assert found.steps[-1].statements == (
        'ALTER TABLE k ALTER COLUMN "a" SET NOT NULL',
        'ALTER TABLE k ADD CONSTRAINT "k_pkey" PRIMARY KEY USING INDEX "k_pkey"',
        'ALTER TABLE k DROP CONSTRAINT "k_a_nn"',
    )


def test_constraints_written_on_a_new_column_are_added_after_it_and_validated() -> None:
    found = planned('ALTER TABLE "T" ADD COLUMN X int REFERENCES u (id) CHECK (X > 0)')
    first = found.steps[0]
    assert first.statements == (
        'ALTER TABLE "T" ADD COLUMN X INT, '
        'ADD CONSTRAINT "T_x_fkey" FOREIGN KEY ("x") REFERENCES u (id) NOT VALID, '
        'ADD CONSTRAINT "T_x_check" CHECK (X > 0) NOT VALID',
    )
    assert first.undo[-1] == 'ALTER TABLE "T" DROP COLUMN IF EXISTS "x"'
    assert [s.what for s in found.steps[1:]] == [
        "validate constraint T_x_fkey",
        "validate constraint T_x_check",
    ]


def test_a_column_that_was_there_is_not_undone() -> None:
    found = planned("ALTER TABLE t ADD COLUMN IF NOT EXISTS b int REFERENCES u (id)")
    assert all("DROP COLUMN" not in u for u in found.steps[0].undo)


@pytest.mark.parametrize(
    "text",
    [
        "ALTER TABLE t ALTER COLUMN b SET (n_distinct = 5)",
        "ALTER TABLE t REPLICA IDENTITY FULL, ALTER COLUMN b TYPE bigint",
    ],
)
def test_what_it_cannot_read_is_refused(text: str) -> None:
    found = planned(text)
    assert found.strategy == "" and "DdlOnline 0" in found.refusal


def test_mode_of_the_server_facts_asked_for() -> None:
    node = sqlglot.parse_one(
        "ALTER TABLE t ADD COLUMN c int DEFAULT abs(pick()), ADD COLUMN d checked_dom",
        read="postgres",
    )
    assert facts_wanted(node) == ({"abs", "pick"}, {"checked_dom"})


def test_a_plan_reads_back_as_it_was_written() -> None:
    for text in (
        "ALTER TABLE t ALTER COLUMN a SET NOT NULL",
        "ALTER TABLE t ALTER COLUMN b TYPE bigint USING b * 2",
        "CREATE INDEX ON t (a)",
    ):
        found = planned(text)
        assert Plan.loads(found.dumps()) == found


TYPE_RULES = [
    ("character varying(10)", "varchar(20)", False),
    ("character varying(10)", "varchar(10)", False),
    ("character varying(20)", "varchar(10)", True),
    ("character varying(20)", "varchar", False),
    ("character varying(20)", "text", False),
    ("text", "varchar", False),
    ("text", "varchar(30)", True),
    ("numeric(10,2)", "numeric(12,2)", False),
    ("numeric(10,2)", "numeric(12,3)", True),
    ("numeric(10,2)", "numeric(9,2)", True),
    ("numeric(10,2)", "numeric", False),
    ("numeric", "numeric(10,2)", True),
    ("numeric(10)", "numeric(12)", False),
    ("timestamp(3) without time zone", "timestamp(6)", False),
    ("timestamp(3) without time zone", "timestamp", False),
    ("timestamp without time zone", "timestamp(3)", True),
    ("timestamp without time zone", "timestamptz", True),
    ("time(1) without time zone", "time(3)", False),
    ("integer", "bigint", True),
    ("integer", "integer", False),
    ("bigint", "integer", True),
    ("character(5)", "char(10)", True),
    ("xml", "text", False),
    ("json", "jsonb", True),
    ("bit varying(5)", "varbit(10)", True),  # sqlglot does not read varbit faithfully
    ("mydomain", "text", True),
    ("character varying(10)[]", "varchar(20)[]", True),
    (None, "text", True),
]


@pytest.mark.parametrize(("old", "new", "rewrites"), TYPE_RULES)
def test_which_type_changes_rewrite(old: str | None, new: str, rewrites: bool) -> None:
    assert (
        type_change_rewrites(old, exp.DataType.build(new, dialect="postgres", udt=True)) is rewrites
    )


def test_names_are_cut_as_postgresql_cuts_them() -> None:
    long = "x" * 70
    assert len(object_name(long, "col", "fkey")) == 63
    assert object_name(long, "col", "fkey").endswith("_col_fkey")
    assert object_name("t", "a" * 80, "key") == "t_" + "a" * 57 + "_key"
    assert object_name("t", None, "pkey") == "t_pkey"


def test_a_taken_name_gets_a_number_as_postgresql_numbers_it() -> None:
    assert choose_name("t", "a", "check", ["t_a_check"]) == "t_a_check1"
    assert choose_name("t", "a", "check", ["T_A_CHECK", "t_a_check1"]) == "t_a_check2"
