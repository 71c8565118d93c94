"""``opendms policy``: RAM-style policies attached to users."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from opendms.cli.common import InTenant, out, print_json, read_text_or_file, shared_options
from opendms.identity import service as identity
from opendms.identity.policy import ROLE_POLICIES
from opendms.identity.roles import parse_roles

UidArg = Annotated[str, typer.Argument(help="Uid of the user.")]


@shared_options
def attach(
    uid: UidArg,
    document: Annotated[str, typer.Argument(help="Policy JSON, or @file to read it from.")],
    name: Annotated[str, typer.Option(help="Policy name; attaching again replaces it.")] = "custom",
    *,
    at: InTenant,
) -> None:
    """Attach a RAM-style policy to a user (explicit Deny wins over any Allow)."""
    document = read_text_or_file(document)
    with at.session() as (_, s):
        identity.attach_policy(s, at.tenant(s), uid, name, document, actor=None)
        out.print(f"Policy {name!r} attached to Uid {uid}")


@shared_options
def detach(
    uid: UidArg,
    name: Annotated[str, typer.Argument(help="Policy name.")],
    *,
    at: InTenant,
) -> None:
    """Detach a policy from a user."""
    with at.session() as (_, s):
        identity.detach_policy(s, at.tenant(s), uid, name, actor=None)
        out.print(f"Policy {name!r} detached from Uid {uid}")


@shared_options
def show(uid: UidArg, *, at: InTenant) -> None:
    """Show a user's role policies and attached policies."""
    with at.session() as (_, s):
        user = identity.find_user(s, at.tenant(s), uid=identity.check_uid(uid))
        shown: dict[str, Any] = {
            f"role:{r.value}": ROLE_POLICIES[r].model_dump() for r in parse_roles(user.roles)
        }
        for name, doc in identity.attached_policies(s, user.user_id):
            shown[name] = doc.model_dump()
    print_json(shown, indent=2)
