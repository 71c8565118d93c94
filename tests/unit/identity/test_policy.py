from __future__ import annotations

import pytest

from opendms.actions.structure import ACTIONS as STRUCTURE_ACTIONS
from opendms.errors import DmsError, ErrorCode
from opendms.identity.policy import ROLE_POLICIES, decide, parse_policy, policies_for
from opendms.identity.roles import Role


def doc(effect: str, *actions: str, resource: str | list[str] = "*") -> str:
    import json

    return json.dumps(
        {
            "Version": "1",
            "Statement": [{"Effect": effect, "Action": list(actions), "Resource": resource}],
        }
    )


def test_wildcards_and_case() -> None:
    p = parse_policy(doc("Allow", "dms:Create*Order", "dms:List?sers"))
    assert decide([p], "dms:CreateOrder")
    assert decide([p], "dms:CreateDataCorrectOrder")
    assert decide([p], "DMS:createorder")
    assert decide([p], "dms:ListUsers")
    assert not decide([p], "dms:ListUserTenants")
    assert not decide([p], "dms:CreateOrderX")


def test_explicit_deny_wins_and_no_match_denies() -> None:
    allow_all = parse_policy(doc("Allow", "dms:*"))
    deny_users = parse_policy(doc("Deny", "dms:*User"))
    assert decide([allow_all], "dms:DeleteUser")
    assert not decide([allow_all, deny_users], "dms:DeleteUser")
    assert not decide([deny_users, allow_all], "dms:DeleteUser")
    assert decide([allow_all, deny_users], "dms:ListUsers")
    assert not decide([], "dms:ListUsers")


def test_statement_resource_must_cover_the_action_resource() -> None:
    scoped = parse_policy(doc("Allow", "dms:*", resource="acs:dms:*:*:instance/1"))
    assert not decide([scoped], "dms:ListUsers")
    assert decide([parse_policy(doc("Allow", "dms:*", resource=["x", "*"]))], "dms:ListUsers")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "{}",
        '{"Version":"2","Statement":[{"Effect":"Allow","Action":"dms:*"}]}',
        '{"Version":"1","Statement":[]}',
        '{"Version":"1","Statement":[{"Effect":"Maybe","Action":"dms:*"}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":[]}]}',
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"dms:*","Extra":1}]}',
    ],
)
def test_malformed_documents_are_rejected(text: str) -> None:
    with pytest.raises(DmsError) as info:
        parse_policy(text)
    assert info.value.code is ErrorCode.POLICY_INVALID


def test_single_string_action_is_accepted() -> None:
    p = parse_policy('{"Version":"1","Statement":[{"Effect":"Allow","Action":"dms:GetUser"}]}')
    assert decide([p], "dms:GetUser")


@pytest.mark.parametrize(
    ("roles", "action", "allowed"),
    [
        ((Role.ADMIN,), "dms:RegisterUser", True),
        ((Role.USER,), "dms:CreateDataCorrectOrder", True),
        ((Role.USER,), "dms:ListUsers", True),
        ((Role.USER,), "dms:GetUserActiveTenant", True),
        ((Role.USER,), "dms:RegisterUser", False),
        ((Role.USER,), "dms:DisableUser", False),
        ((Role.USER,), "dms:GrantUserPermission", False),
        ((Role.USER,), "dms:RegisterInstance", False),
        ((Role.DBA,), "dms:RegisterInstance", True),
        ((Role.DBA,), "dms:RegisterUser", False),
        ((Role.SECURITY_ADMIN,), "dms:GrantUserPermission", True),
        ((Role.STRUCT_READ_ONLY,), "dms:ListUsers", True),
        ((Role.STRUCT_READ_ONLY,), "dms:CreateOrder", False),
        ((Role.USER, Role.DBA), "dms:RegisterInstance", True),
        ((Role.USER,), "dms:GenerateSqlFromNL", True),
        ((Role.USER,), "dms:FixSqlByMetaAgent", True),
        ((Role.DBA,), "dms:OptimizeSqlByMetaAgent", True),
        ((Role.SECURITY_ADMIN,), "dms:AnswerSqlSyntaxByMetaAgent", True),
        ((Role.STRUCT_READ_ONLY,), "dms:OptimizeSqlByMetaAgent", False),
        # schema changes: every ticket role files and carries them, the services decide whose
        ((Role.USER,), "dms:UpdateSchemaDesign", True),
        ((Role.USER,), "dms:CompareSchemaDesign", True),
        ((Role.USER,), "dms:ExecuteSchemaDesign", True),
        ((Role.DBA,), "dms:CompareSchemaDesign", True),
        ((Role.USER,), "dms:SubmitStructSyncOrderApproval", True),
        ((Role.STRUCT_READ_ONLY,), "dms:UpdateSchemaDesign", False),
        ((Role.STRUCT_READ_ONLY,), "dms:SubmitStructSyncOrderApproval", False),
    ],
)
def test_role_defaults(roles: tuple[Role, ...], action: str, allowed: bool) -> None:
    assert decide(policies_for(roles, []), action) is allowed


# Every act of a committer or an approver on their own ticket, whichever kind it is: a
# regular user files, submits, runs and watches schema changes as any other ticket.
TICKET_ACTS = (
    "CreateOrder",
    "SubmitOrderApproval",
    "ApproveOrder",
    "CloseOrder",
    *(a.name for a in STRUCTURE_ACTIONS),
)


@pytest.mark.parametrize("action", TICKET_ACTS)
@pytest.mark.parametrize("role", [Role.USER, Role.DBA, Role.SECURITY_ADMIN])
def test_ticket_acts_are_allowed_to_every_working_role(role: Role, action: str) -> None:
    assert decide(policies_for((role,), []), f"dms:{action}")


def test_attached_policy_extends_and_restricts_role_defaults() -> None:
    grant = parse_policy(doc("Allow", "dms:RegisterUser"))
    deny = parse_policy(doc("Deny", "dms:ListUsers"))
    assert decide(policies_for((Role.USER,), [grant]), "dms:RegisterUser")
    assert not decide(policies_for((Role.ADMIN,), [deny]), "dms:ListUsers")


def test_every_role_has_a_policy() -> None:
    assert set(ROLE_POLICIES) == set(Role)
