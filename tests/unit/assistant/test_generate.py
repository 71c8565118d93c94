"""GenerateSqlFromNL and AnswerSqlSyntaxByMetaAgent against a local chat-completions
server: what the prompt holds (only tables the caller may read), how the model's SQL is
checked, and the error without a model. Fix and Optimize add the model's view."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from opendms.assistant import service
from opendms.errors import DmsError, ErrorCode
from tests.approval_world import World
from tests.fake_llm import FakeLlm, fake_llm
from tests.unit.assistant.conftest import grant_tables

KEY = "sk-test-key"


@pytest.fixture
def fake() -> Iterator[FakeLlm]:
    with fake_llm() as f:
        yield f


@pytest.fixture
def world(world: World, fake: FakeLlm) -> World:
    world.means = replace(world.means, llm=fake.endpoint(KEY, models=("bigger-model",)))
    return world


def generate(world: World, who: str, question: str = "How many orders?", **kw: object) -> object:
    with world.store.session() as s:
        return service.generate_sql(
            s,
            world.means,
            world.as_(who),
            world.db_id,
            question,
            **kw,  # type: ignore[arg-type]
        )


def refused(world: World, who: str, code: ErrorCode, **kw: object) -> str:
    with pytest.raises(DmsError) as caught:
        generate(world, who, **kw)
    assert caught.value.code == code
    return caught.value.message


def test_the_prompt_holds_the_question_the_engine_and_only_readable_tables(
    world: World, fake: FakeLlm
) -> None:
    grant_tables(world, "carol", "customers")
    fake.reply = "```sql\nSELECT count(*) FROM customers\n```\nCounts them."
    made = generate(world, "carol", "How many customers?", knowledge="customers are people")
    got = fake.last
    assert got.body["model"] == "test-model"
    assert got.headers["authorization"] == f"Bearer {KEY}"
    system, user = got.messages
    assert system["role"] == "system" and user == {
        "role": "user",
        "content": "How many customers?\n\nWhat I know that may help:\ncustomers are people",
    }
    assert "sqlite" in system["content"]
    assert "TABLE customers" in system["content"] and "email TEXT NOT NULL" in system["content"]
    assert "orders" not in got.prompt  # carol may not read it
    assert "customer 1" not in got.prompt and "@example.com" not in got.prompt  # no data
    assert made.sql == "SELECT count(*) FROM customers"  # type: ignore[attr-defined]
    assert made.thought == "Counts them." and made.tables == ("customers",)  # type: ignore[attr-defined]


def test_administrators_and_the_dba_see_every_table(world: World, fake: FakeLlm) -> None:
    for who in ("admin", "dba"):
        generate(world, who)
        assert "TABLE orders" in fake.last.prompt and "TABLE customers" in fake.last.prompt


def test_table_names_narrow_the_prompt_to_readable_tables(world: World, fake: FakeLlm) -> None:
    world.may("QUERY", "alice")
    generate(world, "alice", table_names="orders")
    assert "TABLE orders" in fake.last.prompt and "TABLE customers" not in fake.last.prompt
    grant_tables(world, "carol", "customers")
    message = refused(world, "carol", ErrorCode.INVALID_PARAMETER, table_names="orders")
    assert "no table you may read named orders" in message


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("```sql\nDELETE FROM orders WHERE id = 1\n```", "not a query"),
        ("```sql\nSELECT 1; SELECT 2\n```", "2 statements"),
        ("```sql\nSELECT FROM WHERE\n```", "is not one the SQL console runs"),
        ("```sql\nSELECT load_extension('x')\n```", "is not one the SQL console runs"),
        ("I cannot answer that from these tables.", "It answered: I cannot answer"),
    ],
)
def test_sql_the_console_would_not_run_is_refused(
    world: World, fake: FakeLlm, reply: str, why: str
) -> None:
    world.may("QUERY", "alice")
    fake.reply = reply
    assert why in refused(world, "alice", ErrorCode.GENERATED_SQL_REFUSED)


def test_sql_reading_a_table_the_caller_may_not_read_is_refused(
    world: World, fake: FakeLlm
) -> None:
    grant_tables(world, "carol", "customers")
    fake.reply = "```sql\nSELECT count(*) FROM orders\n```"
    assert "not a table you may read" in refused(world, "carol", ErrorCode.GENERATED_SQL_REFUSED)


def test_a_request_may_pick_only_an_offered_model(world: World, fake: FakeLlm) -> None:
    world.may("QUERY", "alice")
    generate(world, "alice", model="bigger-model")
    assert fake.last.body["model"] == "bigger-model"
    assert "offers test-model, bigger-model" in refused(
        world, "alice", ErrorCode.INVALID_PARAMETER, model="gpt-x"
    )


def test_a_dialect_other_than_the_databases_is_refused(world: World) -> None:
    world.may("QUERY", "alice")
    generate(world, "alice", dialect="SQLite")
    assert "is sqlite" in refused(world, "alice", ErrorCode.INVALID_PARAMETER, dialect="mysql")


def test_a_failing_model_is_a_dms_error(world: World, fake: FakeLlm) -> None:
    world.may("QUERY", "alice")
    fake.status = 503
    assert "HTTP 503" in refused(world, "alice", ErrorCode.LLM_FAILED)


def test_without_a_model_generate_and_answer_say_how_to_configure_one(world: World) -> None:
    world.means = replace(world.means, llm=None)
    world.may("QUERY", "alice")
    assert "OPENDMS_LLM_BASE_URL" in refused(world, "alice", ErrorCode.LLM_NOT_CONFIGURED)
    with world.store.session() as s, pytest.raises(DmsError) as caught:
        service.answer_syntax(s, world.means, world.as_("alice"), world.db_id, "LIMIT?")
    assert caught.value.code == ErrorCode.LLM_NOT_CONFIGURED


def test_answer_passes_the_question_and_returns_the_models_text(
    world: World, fake: FakeLlm
) -> None:
    world.may("QUERY", "alice")
    fake.reply = "Use `LIMIT n OFFSET m`."
    with world.store.session() as s:
        advice = service.answer_syntax(
            s, world.means, world.as_("alice"), world.db_id, "How do I page results?"
        )
    assert advice.content == "Use `LIMIT n OFFSET m`." and advice.session_id
    assert fake.last.messages[1] == {"role": "user", "content": "How do I page results?"}
    assert "sqlite" in fake.last.messages[0]["content"]


def test_fix_adds_the_models_view_with_only_sql_that_parses(world: World, fake: FakeLlm) -> None:
    world.may("QUERY", "alice")
    fake.reply = "Try:\n```sql\nSELECT status FROM orders\n```\nor\n```sql\nSELEC status FROM\n```"
    with world.store.session() as s:
        text = service.fix_sql(
            s,
            world.means,
            world.as_("alice"),
            world.db_id,
            "SELECT stauts FROM orders",
            "no such column: stauts",
        ).content
    assert "## The model (test-model)" in text
    assert "SELECT status FROM orders" in text
    assert "SELEC status" not in text and "left out SQL" in text
    assert "no such column: stauts" in fake.last.prompt  # the error went into the prompt
    assert "closest: status" in fake.last.prompt  # and OpenDMS's own analysis


def test_fix_and_optimize_answer_when_the_model_fails(world: World, fake: FakeLlm) -> None:
    world.may("QUERY", "alice")
    fake.status = 500
    with world.store.session() as s:
        text = service.optimize_sql(
            s, world.means, world.as_("alice"), world.db_id, "SELECT id FROM orders"
        ).content
    assert "### Plan" in text and "Not available" in text and "HTTP 500" in text
