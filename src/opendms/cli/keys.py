"""``opendms key``: access keys (AccessKeyId / AccessKeySecret)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from opendms.cli.common import Place, out, print_json, shared_options, utc
from opendms.identity import service as identity


@shared_options
def create(
    uid: Annotated[str, typer.Argument(help="Uid of the account that owns the key.")],
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
    *,
    at: Place,
) -> None:
    """Create an access key; the secret is printed once and stored encrypted."""
    with at.session() as (rt, s):
        key, secret = identity.create_access_key(s, rt.means.secrets, uid, description, actor=None)
    print_json({"AccessKeyId": key.access_key_id, "AccessKeySecret": secret, "Uid": uid})


@shared_options
def list_(
    uid: Annotated[str | None, typer.Option(help="Only this account's keys.")] = None,
    *,
    at: Place,
) -> None:
    """List access keys (never their secrets)."""
    with at.session() as (_, s):
        table = Table("AccessKeyId", "Uid", "Status", "Created (UTC)", "Description")
        for k in identity.list_access_keys(s, uid):
            table.add_row(k.access_key_id, k.uid, k.status, utc(k.created_at), k.description)
        out.print(table)


@shared_options
def revoke(
    access_key_id: Annotated[str, typer.Argument(help="The key to deactivate.")],
    *,
    at: Place,
) -> None:
    """Deactivate an access key; requests signed with it fail from now on."""
    with at.session() as (_, s):
        key = identity.set_access_key_status(s, access_key_id, active=False, actor=None)
        out.print(f"{key.access_key_id} is now {key.status}")
