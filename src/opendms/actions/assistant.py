"""The assistant actions on the wire: ``FixSqlByMetaAgent``, ``OptimizeSqlByMetaAgent``,
``GenerateSqlFromNL``, ``AnswerSqlSyntaxByMetaAgent`` (what Alibaba's DMS MCP server calls
for its fixSql, optimizeSql, generateSql/askDatabase and answerSqlSyntax tools)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from opendms.assistant import service as assistant
from opendms.gateway.table import Access, Action, Context, Payload
from opendms.gateway.wire import Digits, WireModel

DbId = Digits  # the SDK types these DbIds as strings
Model = Annotated[str, Field(max_length=128)]
Question = Annotated[str, Field(min_length=1, max_length=16_000)]
Remarks = Annotated[str, Field(max_length=16_000)]


class FixSqlByMetaAgentRequest(WireModel):
    db_id: DbId
    sql: Annotated[str, Field(min_length=1)]
    error: Remarks | None = None
    query: Remarks | None = None
    model: Model | None = None


class OptimizeSqlByMetaAgentRequest(WireModel):
    db_id: DbId
    sql: Annotated[str, Field(min_length=1)]
    query: Remarks | None = None
    model: Model | None = None


class GenerateSqlFromNLRequest(WireModel):
    db_id: DbId
    question: Question
    knowledge: Annotated[str, Field(max_length=64_000)] | None = None
    table_names: Annotated[str, Field(max_length=64_000)] | None = None
    dialect: Annotated[str, Field(max_length=32)] | None = None
    # DMS's generation levels have no counterpart here: accepted, and read by nothing.
    level: Annotated[str, Field(max_length=32)] | None = None
    model: Model | None = None


class AnswerSqlSyntaxByMetaAgentRequest(WireModel):
    db_id: DbId
    query: Question
    model: Model | None = None


def _advice(advice: assistant.Advice) -> Payload:
    return {"Data": {"Content": advice.content, "SessionId": advice.session_id}}


def fix_sql(ctx: Context, req: FixSqlByMetaAgentRequest) -> Payload:
    return _advice(
        assistant.fix_sql(
            ctx.session,
            ctx.means,
            ctx.caller,
            int(req.db_id),
            req.sql,
            error=req.error or "",
            remarks=req.query or "",
            model=req.model,
        )
    )


def optimize_sql(ctx: Context, req: OptimizeSqlByMetaAgentRequest) -> Payload:
    return _advice(
        assistant.optimize_sql(
            ctx.session,
            ctx.means,
            ctx.caller,
            int(req.db_id),
            req.sql,
            remarks=req.query or "",
            model=req.model,
        )
    )


def generate_sql(ctx: Context, req: GenerateSqlFromNLRequest) -> Payload:
    made = assistant.generate_sql(
        ctx.session,
        ctx.means,
        ctx.caller,
        int(req.db_id),
        req.question,
        knowledge=req.knowledge,
        table_names=req.table_names,
        dialect=req.dialect,
        model=req.model,
    )
    return {
        "Data": {
            "Sql": made.sql,
            "Question": req.question,
            "Thought": made.thought,
            "Tables": [{"TableName": t} for t in made.tables],
            "SimilarSql": [],
            "KnowledgeReferences": [],
        }
    }


def answer_syntax(ctx: Context, req: AnswerSqlSyntaxByMetaAgentRequest) -> Payload:
    return _advice(
        assistant.answer_syntax(
            ctx.session, ctx.means, ctx.caller, int(req.db_id), req.query, model=req.model
        )
    )


ACTIONS = (
    Action(
        "FixSqlByMetaAgent",
        FixSqlByMetaAgentRequest,
        fix_sql,
        Access.GET,
        "Why a statement fails (parse position, unknown names, SQL review) and a corrected "
        "statement where OpenDMS can make one; the model's view too when one is configured.",
    ),
    Action(
        "OptimizeSqlByMetaAgent",
        OptimizeSqlByMetaAgentRequest,
        optimize_sql,
        Access.GET,
        "A statement's plan (EXPLAIN through the SQL console), index suggestions from the "
        "catalog and SQL review findings; the model's view too when one is configured.",
    ),
    Action(
        "GenerateSqlFromNL",
        GenerateSqlFromNLRequest,
        generate_sql,
        Access.GET,
        "A query for a question, written by the configured language model from the tables "
        "the caller may read, checked to be a read the SQL console runs.",
    ),
    Action(
        "AnswerSqlSyntaxByMetaAgent",
        AnswerSqlSyntaxByMetaAgentRequest,
        answer_syntax,
        Access.GET,
        "The configured language model's answer to a SQL syntax question for the "
        "database's engine.",
    ),
)
