"""``opendms instance``: registered database servers, their DBA and their throttle."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from opendms.catalog import instances, queries
from opendms.catalog import sync as metadata
from opendms.cli.common import InTenant, note, out, print_json, shared_options, utc
from opendms.targets.registry import DEFAULT_PORTS

InstanceArg = Annotated[int, typer.Argument(help="InstanceId.")]


@shared_options
def register(
    engine: Annotated[str, typer.Option("--type", help="mysql, mariadb, postgresql or sqlite.")],
    host: Annotated[str, typer.Option(help="Host name or IP; a file path for sqlite.")],
    port: Annotated[int, typer.Option(help="Port; 0 for the engine's default.")] = 0,
    user: Annotated[str, typer.Option(help="Database user.")] = "",
    password: Annotated[
        str, typer.Option(help="Database password.", envvar="OPENDMS_TARGET_PASSWORD")
    ] = "",
    sid: Annotated[str, typer.Option(help="PostgreSQL: the database to connect to.")] = "",
    alias: Annotated[str, typer.Option(help="Display name.")] = "",
    env: Annotated[str, typer.Option(help="product, dev, test, …")] = "product",
    dba: Annotated[int | None, typer.Option(help="UserId of the instance's DBA.")] = None,
    *,
    at: InTenant,
) -> None:
    """Register a database server: connection checked, password encrypted, metadata read."""
    with at.session() as (rt, s):
        tid = at.tenant(s)
        if engine.lower() != "sqlite":  # on stderr: --json's stdout stays one object
            where = f"{host}:{port or DEFAULT_PORTS.get(engine.lower(), port)}"
            note(
                f"connecting to {engine} at {where} (gives up after "
                f"{rt.settings.target_test_connect_seconds} s)…"
            )
        inst = instances.register_instance(
            s,
            rt.means.secrets,
            rt.means.targets,
            tid,
            instances.InstanceSpec(
                alias=alias or host,
                instance_type=engine,
                host=host,
                port=port,
                sid=sid,
                database_user=user,
                database_password=password,
                env_type=env,
                dba_user_id=dba,
            ),
            actor=None,
        )
        dbs = queries.list_databases(s, tid, inst.instance_id, size=10_000)
        print_json(
            {"InstanceId": inst.instance_id, "Databases": dbs.total, "Version": inst.server_version}
        )


@shared_options
def dba(
    instance_id: InstanceArg,
    user_id: Annotated[int, typer.Argument(help="UserId of the instance's DBA.")],
    *,
    at: InTenant,
) -> None:
    """Assign an instance's DBA as the operator: the DBA then sees the instance's tickets,
    skips their permission check and approves its DBA node. (A DBA who named themselves, or
    one assigned before OpenDMS recorded who assigned it, holds none of that.)"""
    with at.session() as (rt, s):
        inst = instances.update_instance(
            s,
            rt.means.secrets,
            rt.means.targets,
            at.tenant(s),
            instance_id,
            instances.InstanceSpec(dba_user_id=user_id),
            actor=None,
        )
        out.print(f"Instance {inst.instance_id}: DBA is user {inst.dba_user_id}")


@shared_options
def list_(*, at: InTenant) -> None:
    """List registered instances."""
    with at.session() as (_, s):
        grid = Table("InstanceId", "Alias", "Type", "Address", "Env", "Databases", "Synced (UTC)")
        tid = at.tenant(s)
        for inst in queries.list_instances(s, tid, size=10_000).items:
            count = queries.list_databases(s, tid, inst.instance_id, size=1).total
            grid.add_row(
                str(inst.instance_id),
                inst.alias,
                inst.instance_type,
                f"{inst.host}:{inst.port}",
                inst.env_type,
                str(count),
                utc(inst.synced_at) or "-",
            )
        out.print(grid)


@shared_options
def sync(instance_id: InstanceArg, *, at: InTenant) -> None:
    """Read an instance's databases, tables and columns again."""
    with at.session() as (rt, s):
        tid = at.tenant(s)
        inst = metadata.sync_instance(s, rt.means.secrets, rt.means.targets, tid, instance_id)
        dbs = queries.list_databases(s, tid, inst.instance_id, size=1).total
        out.print(f"Instance {inst.instance_id}: {dbs} databases, synced")


@shared_options
def throttle(
    instance_id: InstanceArg,
    max_running: Annotated[
        int | None, typer.Option(help="Hold back while more statements than this run.")
    ] = None,
    max_lag: Annotated[
        float | None, typer.Option(help="Hold back while a replica lags more (seconds).")
    ] = None,
    replica: Annotated[
        int | None, typer.Option(help="InstanceId of a replica of this instance to watch.")
    ] = None,
    *,
    at: InTenant,
) -> None:
    """When lock-free changes and cleanups on an instance pause between chunks."""
    with at.session() as (_, s):
        found = instances.set_throttle(s, at.tenant(s), instance_id, max_running, max_lag, replica)
        print_json(found)
