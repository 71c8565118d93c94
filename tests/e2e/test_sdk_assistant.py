"""The assistant actions through the official SDK against ``opendms serve``, its language
model a local chat-completions server (tests/fake_llm.py): Fix and Optimize on a copy of the
demo database, Generate and Answer through the model, which is told only the tables the
caller may read and whose key never reaches the server's log."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models

from tests.e2e.conftest import Creds, Dms, Server, new_sdk, refused, running_server
from tests.e2e.test_sdk_approvals import add_demo_instance
from tests.fake_llm import FakeLlm, fake_llm

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-secret-key"


@dataclass(frozen=True)
class World:
    server: Server
    fake: FakeLlm
    admin: Dms
    reader: Creds  # QUERY on the customers table only
    db_id: int


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with fake_llm() as fake:
        env = {
            "OPENDMS_LLM_BASE_URL": fake.base_url,
            "OPENDMS_LLM_MODEL": "test-model",
            "OPENDMS_LLM_API_KEY": KEY,
        }
        with running_server(env) as server:
            admin = Dms(server, server.admin, "v3")
            dba = server.create_user("DBA", nick="dba")
            _inst, db_id = add_demo_instance(admin, server, "assist", env="dev", dba=dba)
            reader = server.create_user("USER", nick="reader")
            granted = admin.call(
                "GrantUserPermission",
                user_id=str(reader.user_id),
                ds_type="TABLE",
                db_id=str(db_id),
                logic=False,
                table_name="customers",
                perm_types="QUERY",
                expire_date="2099-01-01 00:00:00",
            )
            assert granted.success is True, admin.last_raw
            yield World(server, fake, admin, reader, db_id)
            assert KEY not in server.log()
            assert "Traceback" not in server.log(), server.log()[-4000:]


def sdk(world: World, creds: Creds | None = None) -> object:
    return new_sdk(world.server, creds or world.server.admin)


def test_fix_corrects_dialect_and_names(world: World) -> None:
    world.fake.reply = "```sql\nSELECT name FROM customers LIMIT 3\n```"
    resp = sdk(world).fix_sql_by_meta_agent(  # type: ignore[attr-defined]
        dms_models.FixSqlByMetaAgentRequest(
            db_id=str(world.db_id),
            sql="SELECT TOP 3 nme FROM customer",
            error='near "3": syntax error',
        )
    )
    body = resp.body
    assert body.success is True, body.to_map()
    content = body.data.content
    assert "```sql\nSELECT name FROM customers LIMIT 3\n```" in content
    assert "read as tsql and written for sqlite" in content
    assert "## The model (test-model)" in content
    assert body.data.session_id


def test_optimize_reads_the_plan_and_suggests_an_index(world: World) -> None:
    resp = sdk(world).optimize_sql_by_meta_agent(  # type: ignore[attr-defined]
        dms_models.OptimizeSqlByMetaAgentRequest(
            db_id=str(world.db_id), sql="SELECT id FROM orders WHERE status = 'shipped'"
        )
    )
    body = resp.body
    assert body.success is True, body.to_map()
    assert "The plan reads all of orders." in body.data.content
    assert "CREATE INDEX ix_orders_status ON orders (status)" in body.data.content


def test_generate_asks_the_model_with_only_readable_tables(world: World) -> None:
    world.fake.reply = "```sql\nSELECT count(*) AS n FROM customers\n```\nCounts the customers."
    resp = sdk(world, world.reader).generate_sql_from_nl(  # type: ignore[attr-defined]
        dms_models.GenerateSqlFromNLRequest(
            db_id=str(world.db_id), question="How many customers are there?"
        )
    )
    body = resp.body
    assert body.success is True, body.to_map()
    assert body.data.sql == "SELECT count(*) AS n FROM customers"
    assert [t.table_name for t in body.data.tables] == ["customers"]
    assert body.data.thought == "Counts the customers."
    got = world.fake.last
    assert got.headers["authorization"] == f"Bearer {KEY}"
    assert got.body["model"] == "test-model"
    assert got.messages[-1]["content"] == "How many customers are there?"
    assert "TABLE customers" in got.prompt and "TABLE orders" not in got.prompt


def test_generated_sql_the_console_would_not_run_is_refused(world: World) -> None:
    world.fake.reply = "```sql\nDELETE FROM customers\n```"
    resp = sdk(world, world.reader).generate_sql_from_nl(  # type: ignore[attr-defined]
        dms_models.GenerateSqlFromNLRequest(db_id=str(world.db_id), question="Clean up")
    )
    refused(resp.body, "GeneratedSqlRefused", "not a query")


def test_answer_and_a_failing_model(world: World) -> None:
    world.fake.reply = "Use LIMIT n OFFSET m."
    client = sdk(world)
    resp = client.answer_sql_syntax_by_meta_agent(  # type: ignore[attr-defined]
        dms_models.AnswerSqlSyntaxByMetaAgentRequest(db_id=str(world.db_id), query="Paging?")
    )
    assert resp.body.success is True and resp.body.data.content == "Use LIMIT n OFFSET m."
    world.fake.status = 502
    try:
        resp = client.answer_sql_syntax_by_meta_agent(  # type: ignore[attr-defined]
            dms_models.AnswerSqlSyntaxByMetaAgentRequest(db_id=str(world.db_id), query="?")
        )
    finally:
        world.fake.status = 200
    refused(resp.body, "LlmRequestFailed", "HTTP 502")
