"""RAM-style policies: the document grammar, the built-in role policies, and evaluation.

An explicit Deny in any applicable policy wins; otherwise any Allow admits; no match denies.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from opendms.errors import DmsError, ErrorCode
from opendms.identity.roles import Role


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Patterns = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=256)]],
    BeforeValidator(_as_list),
    Field(min_length=1),
]


class PolicyStatement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    Effect: Literal["Allow", "Deny"]
    Action: Patterns
    Resource: Patterns = ["*"]


class PolicyDocument(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    Version: Literal["1"]
    Statement: list[PolicyStatement] = Field(min_length=1, max_length=100)


@lru_cache(maxsize=4096)
def _compile(pattern: str) -> re.Pattern[str]:
    # RAM wildcards: '*' any run, '?' one character; action names compare case-insensitively.
    parts = (".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def _matches(patterns: Iterable[str], value: str) -> bool:
    return any(_compile(p).fullmatch(value) for p in patterns)


# Every action today names the whole service as its resource (dms-api.md A.0: no ARNs).
RESOURCE = "*"


def decide(policies: Iterable[PolicyDocument], action: str, resource: str = RESOURCE) -> bool:
    """Whether ``action`` (e.g. ``dms:CreateOrder``) is allowed by the union of ``policies``."""
    allowed = False
    for policy in policies:
        for st in policy.Statement:
            if not (_matches(st.Action, action) and _matches(st.Resource, resource)):
                continue
            if st.Effect == "Deny":
                return False
            allowed = True
    return allowed


def parse_policy(text: str) -> PolicyDocument:
    try:
        return PolicyDocument.model_validate_json(text)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'document'}: {e['msg']}"
            for e in exc.errors(include_url=False)[:5]
        )
        raise DmsError(
            ErrorCode.POLICY_INVALID,
            f"{problems}. A policy looks like "
            '{"Version":"1","Statement":[{"Effect":"Allow","Action":["dms:List*"],'
            '"Resource":"*"}]}.',
        ) from exc


def _allow(*actions: str) -> PolicyDocument:
    return PolicyDocument(
        Version="1", Statement=[PolicyStatement(Effect="Allow", Action=list(actions))]
    )


# What a regular user needs to work with tickets and read the catalog; nothing that manages
# users, access keys, permissions or instances.
_READ = ("dms:Get*", "dms:List*", "dms:Search*", "dms:Describe*")
_TICKETS = (
    "dms:Create*Order",
    "dms:SubmitOrderApproval",
    "dms:ApproveOrder",
    "dms:CloseOrder",
    "dms:Execute*",
    "dms:Retry*",
    "dms:Suspend*",
    "dms:Restart*",
    "dms:Resume*",
    "dms:Skip*",
    "dms:Pause*",
    "dms:ModifyDataCorrectExecSQL",
    "dms:Preview*",
    "dms:CreateUploadFileJob",
    "dms:UploadFile",
    "dms:CreateUploadOSSFileJob",
    "dms:Update*Order*",
    "dms:Change*Order*",
    "dms:ReDeploy*",
    # schema changes: a structure sync's submission, a schema design given and compared
    "dms:SubmitStructSyncOrderApproval",
    "dms:UpdateSchemaDesign",
    "dms:CompareSchemaDesign",
)
# The assistant actions: advice on SQL (Optimize reads plans through the SQL console, under
# the caller's QUERY permission, like ExecuteScript).
_ASSISTANT = (
    "dms:FixSqlByMetaAgent",
    "dms:OptimizeSqlByMetaAgent",
    "dms:GenerateSqlFromNL",
    "dms:AnswerSqlSyntaxByMetaAgent",
)
_USER_ADMINISTRATION = (
    "dms:RegisterUser",
    "dms:UpdateUser",
    "dms:DeleteUser",
    "dms:EnableUser",
    "dms:DisableUser",
)

ROLE_POLICIES: dict[Role, PolicyDocument] = {
    Role.ADMIN: _allow("dms:*"),
    Role.DBA: _allow(
        *_READ, *_TICKETS, *_ASSISTANT, "dms:*Instance*", "dms:*Database*", "dms:*Table*"
    ),
    Role.SECURITY_ADMIN: _allow(
        *_READ,
        *_TICKETS,
        *_ASSISTANT,
        *_USER_ADMINISTRATION,
        "dms:Grant*",
        "dms:Revoke*",
        "dms:*StandardGroup*",
        "dms:*WorkFlow*",
        "dms:*Authority*",
    ),
    Role.USER: _allow(*_READ, *_TICKETS, *_ASSISTANT),
    Role.STRUCT_READ_ONLY: _allow(*_READ),
}


def policies_for(roles: Iterable[Role], attached: Iterable[PolicyDocument]) -> list[PolicyDocument]:
    return [ROLE_POLICIES[r] for r in roles] + list(attached)
