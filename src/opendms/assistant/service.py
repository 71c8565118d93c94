"""The four assistant actions, as a handler calls them inside its metadata transaction.

Fix and Optimize answer from OpenDMS's own analysis and add the model's opinion when one
is configured (a model that fails is reported in the answer, never fails the call).
Generate and Answer need the model: without one they fail with ``LlmNotConfigured``.
Every ``Model`` a request names is held to what the operator offers, configured or not.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from opendms.assistant import answers, llm, prompts
from opendms.assistant.answers import Generated
from opendms.assistant.fix import fix
from opendms.assistant.optimize import optimize
from opendms.assistant.report import fix_text, optimize_text
from opendms.assistant.scope import Scope, scope_of
from opendms.errors import DmsError, ErrorCode
from opendms.identity.caller import Caller
from opendms.means import Means
from opendms.sql.statements import ANALYSIS_LIMIT_BYTES

# What a request's Dialect may say for each engine (DMS spells them its own ways).
_DIALECT_NAMES = {
    "mysql": {"mysql", "mariadb"},
    "postgres": {"postgres", "postgresql", "pg"},
    "sqlite": {"sqlite"},
}


@dataclass(frozen=True)
class Advice:
    content: str
    session_id: str  # OpenDMS keeps no conversation: a fresh id per answer


def _session() -> str:
    return uuid.uuid4().hex


def _sized(sql: str) -> str:
    if not sql.strip():
        raise DmsError(ErrorCode.INVALID_PARAMETER, "Sql is empty.")
    if len(sql.encode()) > ANALYSIS_LIMIT_BYTES:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"Sql is over {ANALYSIS_LIMIT_BYTES:,} bytes: the assistant reads statements, "
            "not files.",
        )
    return sql


def _opinion(
    means: Means,
    model: str | None,
    scope: Scope,
    task: str,
    sql: str,
    error: str,
    remarks: str,
    analysis: str,
) -> str:
    """The model's view, appended to OpenDMS's analysis; '' when no model is configured."""
    if means.llm is None or model is None:
        return ""
    messages = prompts.second_opinion(scope, task, sql, error, remarks, analysis)
    try:
        said = llm.chat(means.llm, model, messages)
    except DmsError as exc:
        return f"\n\n## The model ({model})\n\nNot available: {exc.message}"
    return f"\n\n## The model ({model})\n\n" + answers.checked(said, scope.engine).strip()


def fix_sql(
    s: Session,
    means: Means,
    caller: Caller,
    db_id: int,
    sql: str,
    error: str = "",
    remarks: str = "",
    model: str | None = None,
) -> Advice:
    chosen = llm.pick_model(means.llm, model)
    scope = scope_of(s, caller, db_id)
    analysis = fix_text(fix(s, scope, _sized(sql), error))
    extra = _opinion(means, chosen, scope, "fix", sql, error, remarks, analysis)
    return Advice(analysis + extra, _session())


def optimize_sql(
    s: Session,
    means: Means,
    caller: Caller,
    db_id: int,
    sql: str,
    remarks: str = "",
    model: str | None = None,
) -> Advice:
    chosen = llm.pick_model(means.llm, model)
    scope = scope_of(s, caller, db_id)
    analysis = optimize_text(optimize(s, means, caller, scope, _sized(sql)))
    extra = _opinion(means, chosen, scope, "optimize", sql, "", remarks, analysis)
    return Advice(analysis + extra, _session())


def _only(scope: Scope, table_names: str | None) -> set[str] | None:
    names = [n.strip() for n in (table_names or "").split(",") if n.strip()]
    if not names:
        return None
    missing = [n for n in names if scope.table(n) is None]
    if missing:
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"TableNames: no table you may read named {', '.join(m[:64] for m in missing[:5])} "
            f"in {scope.db.schema_name}.",
        )
    return {n.lower().rpartition(".")[2] for n in names}


def _check_dialect(scope: Scope, dialect: str | None) -> None:
    if dialect and dialect.strip().lower() not in _DIALECT_NAMES.get(scope.dialect, set()):
        raise DmsError(
            ErrorCode.INVALID_PARAMETER,
            f"Dialect {dialect[:32]!r}: database {scope.db.db_id} is {scope.engine}; OpenDMS "
            "writes SQL in the database's own dialect.",
        )


def generate_sql(
    s: Session,
    means: Means,
    caller: Caller,
    db_id: int,
    question: str,
    knowledge: str | None = None,
    table_names: str | None = None,
    dialect: str | None = None,
    model: str | None = None,
) -> Generated:
    endpoint = llm.configured(means.llm)
    chosen = llm.pick_model(endpoint, model)
    assert chosen is not None  # configured: a model is set
    scope = scope_of(s, caller, db_id)
    _check_dialect(scope, dialect)
    only = _only(scope, table_names)
    said = llm.chat(endpoint, chosen, prompts.generate(scope, question, knowledge, only))
    return answers.generated(said, scope)


def answer_syntax(
    s: Session,
    means: Means,
    caller: Caller,
    db_id: int,
    question: str,
    model: str | None = None,
) -> Advice:
    endpoint = llm.configured(means.llm)
    chosen = llm.pick_model(endpoint, model)
    assert chosen is not None
    scope = scope_of(s, caller, db_id)
    # An answer about syntax shows grammar (``ALTER TABLE tbl_name ADD [COLUMN] …``) that
    # is no statement: it is passed on as the model wrote it, not held to the parser.
    said = llm.chat(endpoint, chosen, prompts.answer(scope, question))
    return Advice(said.strip(), _session())
