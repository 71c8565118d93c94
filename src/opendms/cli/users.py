"""``opendms user``: the users of a tenant."""

from __future__ import annotations

import secrets
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from opendms.cli.common import InTenant, out, print_json, shared_options
from opendms.identity import service as identity
from opendms.store.states import UserState

UidArg = Annotated[str, typer.Argument(help="Uid of the user.")]


@shared_options
def create(
    uid: Annotated[str | None, typer.Option(help="Account Uid (digits); new if omitted.")] = None,
    nick: Annotated[str, typer.Option(help="Nickname.")] = "",
    roles: Annotated[str, typer.Option(help="Comma-separated: USER, DBA, ADMIN, …")] = "USER",
    with_key: Annotated[bool, typer.Option("--with-key", help="Also create a key.")] = False,
    *,
    at: InTenant,
) -> None:
    """Register a user in a tenant."""
    with at.session() as (rt, s):
        tid = at.tenant(s)
        user = identity.register_user(
            s, None, tid, uid or identity.new_uid(), nick_name=nick, roles=roles
        )
        result: dict[str, Any] = {
            "Tid": tid,
            "UserId": user.user_id,
            "Uid": user.uid,
            "Roles": user.roles,
        }
        if with_key:
            key, secret = identity.create_access_key(s, rt.means.secrets, user.uid, actor=None)
            result |= {"AccessKeyId": key.access_key_id, "AccessKeySecret": secret}
    print_json(result)


@shared_options
def list_(*, at: InTenant) -> None:
    """List the users of a tenant."""
    with at.session() as (_, s):
        tid = at.tenant(s)
        table = Table("UserId", "Uid", "Nick", "Roles", "State", title=f"Tenant {tid}")
        for u in identity.list_users(s, tid, size=10_000).users:
            table.add_row(str(u.user_id), u.uid, u.nick_name, u.roles, u.state)
        out.print(table)


def _set_state(at: InTenant, uid: str, state: UserState) -> None:
    with at.session() as (_, s):
        user = identity.set_user_state(s, None, at.tenant(s), uid, state)
        out.print(f"User {user.user_id} (Uid {user.uid}) is now {user.state}")


@shared_options
def disable(uid: UidArg, *, at: InTenant) -> None:
    """Disable a user; their access keys stop working at once."""
    _set_state(at, uid, UserState.DISABLE)


@shared_options
def enable(uid: UidArg, *, at: InTenant) -> None:
    """Enable a disabled user."""
    _set_state(at, uid, UserState.NORMAL)


@shared_options
def password(
    uid: Annotated[str, typer.Argument(help="Uid (or nick name) of the user.")],
    generate: Annotated[
        bool, typer.Option("--generate", help="Make up a strong password and print it once.")
    ] = False,
    *,
    at: InTenant,
) -> None:
    """Set the password the user signs in to the web console with (the account's, in every
    tenant). Read from standard input when it is not a terminal, else asked twice; its
    sessions end."""
    if generate:
        chosen = secrets.token_urlsafe(15)
    elif sys.stdin.isatty():
        chosen = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        chosen = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    with at.session() as (_, s):
        tid = at.tenant(s)
        user = identity.set_console_password(s, None, tid, uid, chosen)
    if generate:
        print_json({"Uid": user.uid, "NickName": user.nick_name, "Password": chosen})
    else:
        out.print(f"Password set for Uid {user.uid}; its console sessions ended.")
