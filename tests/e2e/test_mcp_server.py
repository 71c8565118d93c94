"""Alibaba Cloud's own DMS MCP server (``alibabacloud-dms-mcp-server`` 0.1.23, the way AI agents
reach DMS), unchanged, driven over stdio with the ``mcp`` client library as an agent's host
would, against ``opendms serve`` over HTTPS with a self-signed certificate.

The MCP server always speaks HTTPS (its SDK calls say ``protocol='HTTPS'``) and trusts the
certificate through ``SSL_CERT_FILE``; it reads its key and endpoint from the environment,
and ``DMS_REAL_LOGIN_UID`` makes every call act for that user (``RealLoginUserUid``)."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from tests.certs import self_signed
from tests.conftest import mysql_database
from tests.e2e.conftest import ROOT, Creds, Dms, Server, running_server
from tests.fake_llm import FakeLlm, fake_llm

MCP_SERVER = shutil.which("alibabacloud-dms-mcp-server", path=str(ROOT / ".venv" / "bin"))
# The tools it offers: all of them, or (CONNECTION_STRING names one database) those that
# work on that database, with askDatabase (a question answered by generated SQL, run).
_COMMON = {
    "listTables",
    "getTableDetailInfo",
    "executeScript",
    "createDataChangeOrder",
    "getOrderInfo",
    "submitOrderApproval",
    "approveOrder",
    "fixSql",
    "answerSqlSyntax",
    "optimizeSql",
}
TOOLS = _COMMON | {
    "addInstance",
    "listInstances",
    "getInstance",
    "searchDatabase",
    "getDatabase",
    "generateSql",
}
TOOLS_ON_ONE_DATABASE = _COMMON | {"askDatabase"}


@dataclass
class Agent:
    """One MCP server process as an agent's host starts it: its key, our endpoint, our
    certificate, and (optionally) the user every call acts for."""

    server: Server
    creds: Creds
    acting_for: str | None = None
    connection_string: str | None = None  # one database for every call: "db@host:port"

    @property
    def cert(self) -> Path:
        assert self.server.tls is not None
        return self.server.tls.cert

    def env(self) -> dict[str, str]:
        env = {
            "PATH": str(ROOT / ".venv" / "bin") + ":/usr/bin:/bin",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": self.creds.access_key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": self.creds.access_key_secret,
            "ALIBABA_CLOUD_DMS_ENDPOINT": self.server.endpoint,
            "SSL_CERT_FILE": str(self.cert),
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
        }
        if self.acting_for is not None:
            env["DMS_REAL_LOGIN_UID"] = self.acting_for
        if self.connection_string is not None:
            env["CONNECTION_STRING"] = self.connection_string
        return env

    def session(self, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
        """Start the MCP server, call each tool in turn, stop it: the tools' answers."""
        return asyncio.run(self._session(list(calls)))

    async def _session(self, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
        assert MCP_SERVER is not None, "alibabacloud-dms-mcp-server is not installed in .venv"
        params = StdioServerParameters(command=MCP_SERVER, env=self.env())
        out = []
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await asyncio.wait_for(session.initialize(), 30)
            listed = {t.name for t in (await session.list_tools()).tools}
            expected = TOOLS_ON_ONE_DATABASE if self.connection_string else TOOLS
            assert listed == expected, sorted(listed ^ expected)
            for tool, args in calls:
                result = await asyncio.wait_for(session.call_tool(tool, args), 60)
                text = "".join(getattr(c, "text", "") for c in result.content)
                assert not result.isError, f"{tool}: {text}"
                out.append(_answer(result.structuredContent, text))
        return out

    def call(self, tool: str, **args: Any) -> Any:
        (answer,) = self.session((tool, args))
        return answer


def _answer(structured: dict[str, Any] | None, text: str) -> Any:
    """What a tool returned: FastMCP's structured content (a value that is no object comes
    wrapped as ``{"result": …}``), else its text, as JSON where it is JSON."""
    if structured is not None:
        return structured["result"] if set(structured) == {"result"} else structured
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLlm]:
    with fake_llm() as fake:
        yield fake


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, llm: FakeLlm) -> Iterator[Server]:
    files = self_signed(tmp_path_factory.mktemp("tls"))
    env = {
        "OPENDMS_TARGET_HOSTS": "127.0.0.1",
        "OPENDMS_LLM_BASE_URL": llm.base_url,
        "OPENDMS_LLM_MODEL": "test-model",
    }
    with running_server(env, tls=files) as server:
        yield server


@pytest.fixture(scope="module")
def mariadb() -> Iterator[tuple[str, str, str]]:
    """A MariaDB database with a table of customers, and a login (user, password) that
    may use it: the MCP server refuses an empty password."""
    user, password = f"mcp_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with mysql_database() as (name, conn), conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, "
            "email VARCHAR(128) NOT NULL, KEY by_email (email))"
        )
        cur.execute(
            "INSERT INTO customers VALUES (1, 'ada', 'ada@example.com'), "
            "(2, 'bob', 'bob@example.com'), (3, 'cy', 'cy@example.com')"
        )
        cur.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        try:
            cur.execute(f"GRANT ALL ON `{name}`.* TO '{user}'@'%'")
            yield name, user, password
        finally:
            cur.execute(f"DROP USER '{user}'@'%'")


def _order_status(agent: Agent, order_id: int) -> dict[str, Any]:
    info = agent.call("getOrderInfo", order_id=str(order_id))
    return info["OrderBaseInfo"]


def test_an_agent_drives_opendms_through_alibabas_mcp_server(
    tls_server: Server, mariadb: tuple[str, str, str]
) -> None:
    server = tls_server
    name, db_user, db_password = mariadb
    admin = Agent(server, server.admin)
    sdk = Dms(server, server.admin, "v3")
    alice = server.create_user("USER", nick="alice")
    carol = server.create_user("USER", nick="carol")
    olga = server.create_user("USER", nick="olga")
    dan = server.create_user("DBA", nick="dan")

    added, instances, found = admin.session(
        (
            "addInstance",
            {"db_user": db_user, "db_password": db_password, "host": "127.0.0.1", "port": "3306"},
        ),
        ("listInstances", {}),
        ("searchDatabase", {"search_key": name}),
    )
    assert added["Host"] == "127.0.0.1" and int(added["Port"]) == 3306 and added["InstanceId"]
    assert any(str(i["InstanceId"]) == str(added["InstanceId"]) for i in instances)
    (db,) = [d for d in found if d["SchemaName"] == name]
    db_id = str(db["DatabaseId"])

    tables, detail, rows = admin.session(
        ("listTables", {"database_id": db_id}),
        ("getTableDetailInfo", {"table_guid": f"IDB_{db_id}.{name}.customers"}),
        ("executeScript", {"database_id": db_id, "script": "SELECT id, name FROM customers"}),
    )
    (table,) = tables["TableList"]["Table"]
    assert table["TableName"] == "customers" and table["TableGuid"].endswith(".customers")
    assert [c["ColumnName"] for c in detail["ColumnList"]] == ["id", "name", "email"]
    assert {i["IndexName"] for i in detail["IndexList"]} >= {"PRIMARY", "by_email"}
    assert re.search(r"\|\s*2\s*\|\s*bob\s*\|", rows), rows

    # carol holds no QUERY permission: no rows, and the reason
    refused = Agent(server, server.admin, acting_for=carol.uid).call(
        "executeScript", database_id=db_id, script="SELECT name FROM customers"
    )
    assert "QUERY permission" in refused and "bob" not in refused

    # a product instance takes no change from the console: the message names the ticket;
    # dan becomes its DBA
    sdk.call(
        "UpdateInstance",
        instance_id=str(added["InstanceId"]),
        env_type="product",
        dba_id=str(dan.user_id),
    )
    said = admin.call(
        "executeScript", database_id=db_id, script="UPDATE customers SET name = 'x' WHERE id = 1"
    )
    assert "DC_COMMON" in said and "product" in said

    # ... so alice files a ticket, submits it, and the instance's DBA approves it
    sdk.call(
        "GrantUserPermission",
        user_id=str(alice.user_id),
        ds_type="DATABASE",
        db_id=db_id,
        logic=False,
        perm_types="CORRECT",
        expire_date="2099-01-01 00:00:00",
    )
    sdk.call(
        "SetOwners",
        resource_id=db_id,
        owner_type="DATABASE",
        owner_ids=str(olga.user_id),
    )
    alice_agent = Agent(server, alice)
    created = alice_agent.call(
        "createDataChangeOrder",
        database_id=db_id,
        script="UPDATE customers SET name = 'ada lovelace' WHERE id = 1",
    )
    # this tool hands the agent the Python text of the SDK's answer, not JSON
    order_id = int(ast.literal_eval(created)["CreateOrderResult"][0])
    deadline = time.monotonic() + 60
    while _order_status(alice_agent, order_id).get("StatusCode") == "new":
        submitted = alice_agent.call("submitOrderApproval", order_id=str(order_id))
        if submitted.get("Success"):
            break
        assert time.monotonic() < deadline, submitted
        time.sleep(0.5)
    info = _order_status(alice_agent, order_id)
    assert info["StatusCode"] == "toaudit", info
    # a product change goes to the database's owner, then the instance's DBA (named by the
    # admin: the admin's own naming at addInstance grants no rights): each approves through
    # an agent of their own
    flow = int(info["WorkflowInstanceId"])
    for approver in (Agent(server, olga), Agent(server, dan)):
        approved = approver.call("approveOrder", workflow_instance_id=flow, approval_type="AGREE")
        assert approved["Success"], approved
    assert _order_status(alice_agent, order_id)["StatusCode"] == "Approved"


def test_every_other_tool_answers(
    tls_server: Server, mariadb: tuple[str, str, str], llm: FakeLlm
) -> None:
    server = tls_server
    name, db_user, db_password = mariadb
    admin = Agent(server, server.admin)
    llm.reply = "SELECT name FROM customers WHERE id = 2"
    added, found = admin.session(
        (
            "addInstance",
            {"db_user": db_user, "db_password": db_password, "host": "127.0.0.1", "port": "3306"},
        ),
        ("searchDatabase", {"search_key": name}),
    )
    (db,) = [d for d in found if d["SchemaName"] == name]
    db_id = str(db["DatabaseId"])
    instance, database, fixed, optimized, generated, answered = admin.session(
        ("getInstance", {"host": "127.0.0.1", "port": "3306"}),
        ("getDatabase", {"host": "127.0.0.1", "port": "3306", "schema_name": name}),
        (
            "fixSql",
            {
                "database_id": db_id,
                "sql": "SELECT TOP 2 name FROM customer",
                "error": "You have an error in your SQL syntax",
            },
        ),
        ("optimizeSql", {"database_id": db_id, "sql": "SELECT id FROM customers WHERE name = 'x'"}),
        ("generateSql", {"database_id": db_id, "question": "the name of customer 2"}),
        ("answerSqlSyntax", {"database_id": db_id, "question": "how do I add a column?"}),
    )
    assert str(instance["InstanceId"]) == str(added["InstanceId"])
    assert database["SchemaName"] == name and str(database["DatabaseId"]) == db_id
    assert "LIMIT 2" in json.dumps(fixed) and "customers" in json.dumps(fixed)
    assert "name" in json.dumps(optimized)
    assert generated == {"sql": "SELECT name FROM customers WHERE id = 2"}
    assert "customers" in llm.last.prompt and answered["Success"], answered


def test_an_agent_set_to_one_database_asks_it_questions(
    tls_server: Server, mariadb: tuple[str, str, str], llm: FakeLlm
) -> None:
    server = tls_server
    name, db_user, db_password = mariadb
    Agent(server, server.admin).call(
        "addInstance", db_user=db_user, db_password=db_password, host="127.0.0.1", port="3306"
    )
    llm.reply = "SELECT name FROM customers WHERE id = 2"
    agent = Agent(server, server.admin, connection_string=f"{name}@127.0.0.1:3306")
    tables, asked = agent.session(
        ("listTables", {}), ("askDatabase", {"question": "the name of customer 2"})
    )
    assert [t["TableName"] for t in tables["TableList"]["Table"]] == ["customers"]
    assert asked["executed_sql"] == "SELECT name FROM customers WHERE id = 2"
    assert re.search(r"\|\s*bob\s*\|", asked["execution_result"]), asked
