"""The ``opendms`` command line. It calls the services; it never speaks the wire protocol."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TaskProgressColumn, TextColumn
from rich.progress import Progress as Bar
from rich.table import Table
from sqlalchemy import inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from opendms import actions, datadir
from opendms.approvals import facts as ticket_facts
from opendms.approvals import flow
from opendms.catalog import sensitive
from opendms.catalog import service as catalog
from opendms.config import Settings
from opendms.errors import DESCRIPTIONS, DmsError
from opendms.execution import cleanup
from opendms.execution import service as execution
from opendms.exports import service as exports
from opendms.files import service as files
from opendms.files.storage import FileStore
from opendms.gateway.table import build_table
from opendms.gateway.wire import wire_time
from opendms.identity import service
from opendms.identity.caller import Caller
from opendms.identity.secrets import KEY_FILE, SecretBox, SecretBoxError
from opendms.jobs.runner import Checkpoint, Executor, Step, Work
from opendms.means import target_policy
from opendms.notify import webhooks
from opendms.orders import progress as underway
from opendms.precheck import service as precheck
from opendms.precheck.review import review_for_database
from opendms.rulebook import rule_sets, rules, templates
from opendms.runtime import Runtime
from opendms.sql import review
from opendms.store.db import Store, StoreUnavailable, describe_failure
from opendms.targets.base import TargetPolicy
from opendms.targets.registry import DEFAULT_PORTS
from opendms.tickets import lifecycle
from opendms.tickets import service as tickets

# What a script can tell from the exit code (README "Exit codes"; also `opendms --help`).
EXIT_DONE = 0  # what was asked for happened
EXIT_FAILED = 1  # refused (a DMS error), not found, or the work it waited for failed
EXIT_USAGE = 2  # the command line itself is wrong (Typer/Click's own code)
EXIT_NO_STORE = 3  # no OpenDMS data there, or the metadata store cannot be opened
EXIT_CODES = (
    "Exit codes: 0 done; 1 refused or failed (a DMS error, not found, a failed precheck, "
    "execution or export); 2 usage error; 3 no OpenDMS data, or the metadata store cannot "
    "be opened."
)


app = typer.Typer(
    help="OpenDMS: database change tickets behind a DMS-Enterprise-compatible API.",
    epilog=EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
user_app = typer.Typer(help="Users of a tenant.", no_args_is_help=True)
key_app = typer.Typer(help="Access keys (AccessKeyId / AccessKeySecret).", no_args_is_help=True)
policy_app = typer.Typer(help="RAM-style policies attached to users.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants (Tid).", no_args_is_help=True)
instance_app = typer.Typer(help="Registered database instances.", no_args_is_help=True)
order_app = typer.Typer(help="Tickets (orders).", no_args_is_help=True)
workflow_app = typer.Typer(help="Approval nodes and templates.", no_args_is_help=True)
rules_app = typer.Typer(
    help="Security rule sets: which approval a ticket needs (docs/security-rules.md).",
    no_args_is_help=True,
)
sql_app = typer.Typer(help="SQL checks, before a ticket is filed.", no_args_is_help=True)
jobs_app = typer.Typer(
    help="Background work (prechecks, executions), without the HTTP server.",
    no_args_is_help=True,
)
column_app = typer.Typer(
    help="Sensitive columns: what exports mask, and how.", no_args_is_help=True
)
webhook_app = typer.Typer(
    help="The tenant's webhook for ticket events (docs/webhooks.md).", no_args_is_help=True
)
app.add_typer(user_app, name="user")
app.add_typer(key_app, name="key")
app.add_typer(policy_app, name="policy")
app.add_typer(tenant_app, name="tenant")
app.add_typer(instance_app, name="instance")
app.add_typer(order_app, name="order")
app.add_typer(workflow_app, name="workflow")
app.add_typer(rules_app, name="rules")
app.add_typer(webhook_app, name="webhook")
app.add_typer(sql_app, name="sql")
app.add_typer(jobs_app, name="jobs")
app.add_typer(column_app, name="column")

out = Console()
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (env OPENDMS_DATA_DIR, default ~/.opendms)."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Metadata store URL (env OPENDMS_DATABASE_URL)."),
]
TidOpt = Annotated[int | None, typer.Option("--tid", help="Tenant id; default: the first one.")]


class CliError(Exception):
    """A failure to report as one line."""

    exit_code = EXIT_FAILED


class NoStore(CliError):
    """The store a command would read is not there (or cannot be opened)."""

    exit_code = EXIT_NO_STORE


def _settings(data_dir: Path | None, database_url: str | None, **extra: Any) -> Settings:
    given: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        given["data_dir"] = data_dir
    if database_url is not None:
        given["database_url"] = database_url
    try:
        return Settings(**given)
    except ValueError as exc:
        raise CliError(f"invalid settings: {exc}") from exc


def _prepare_data_dir(settings: Settings) -> None:
    """The one place a command makes its data directory ready, before the store is opened:
    private modes (``opendms.datadir``), then a check that it can be written."""
    path = settings.data_dir
    try:
        repair = datadir.prepare(settings)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise NoStore(f"data directory {path} is not writable: {exc.strerror or exc}") from exc
    if repair:
        err.print(f"warning: {repair.summary()}", markup=False, highlight=False)


def _no_data(settings: Settings, why: str) -> NoStore:
    place = "the metadata store" if why == "no tables" else str(settings.data_dir)
    return NoStore(
        f"no OpenDMS data in {place} ({why}): run `opendms init` or `opendms serve` first"
    )


def _check_data(settings: Settings, store: Store | None) -> None:
    """What a command that does not set up would otherwise create: the SQLite store file
    (before ``store`` is opened), the tables of a store elsewhere, and the master key file
    (a new key could read nothing stored)."""
    if store is None:
        if not settings.database_url and not (settings.data_dir / "opendms.db").is_file():
            raise _no_data(settings, "no store")
        if not settings.secret_key and not settings.data_dir.is_dir():
            raise _no_data(settings, "no master key")
        return
    try:
        tables = inspect(store.engine).has_table("alembic_version")
    except SQLAlchemyError as exc:
        raise StoreUnavailable(describe_failure(store.url, exc)) from exc
    if not tables:
        raise _no_data(settings, "no tables")
    if not settings.secret_key and not (settings.data_dir / KEY_FILE).is_file():
        raise _no_data(settings, "no master key")


@contextmanager
def runtime(
    data_dir: Path | None, database_url: str | None, *, setup: bool = False, **extra: Any
) -> Iterator[Runtime]:
    """The settings, store and secret box of one command. Only ``setup`` commands (init,
    serve) create a data directory, store and master key; any other one on a place without
    them says so and creates nothing."""
    settings = _settings(data_dir, database_url, **extra)
    if not setup:
        _check_data(settings, None)
    _prepare_data_dir(settings)
    store = Store(settings.metadata_url)
    try:
        if not setup:
            _check_data(settings, store)
        store.migrate()
        yield Runtime.from_settings(settings, store)
    finally:
        store.dispose()


def _default_tid(s: Session, tid: int | None) -> int:
    if tid is not None:
        return service.get_tenant(s, tid).tid
    tenants = service.list_tenants(s)
    if not tenants:
        raise CliError("no tenant yet: run `opendms init` first")
    return tenants[0].tid


# ------------------------------------------------------------------ serve / init


HostOpt = Annotated[
    str | None,
    typer.Option(
        help="Address to listen on (env OPENDMS_HOST).",
        show_default=str(Settings.model_fields["host"].default),
    ),
]
PortOpt = Annotated[
    int | None,
    typer.Option(
        help="Port to listen on (env OPENDMS_PORT).",
        show_default=str(Settings.model_fields["port"].default),
    ),
]


@app.command()
def init(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    host: HostOpt = None,
    port: PortOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create the store if missing, the default tenant and an administrator; print a fresh key.
    Its Endpoint is where `opendms serve` with the same settings (--host, --port, or
    OPENDMS_HOST / OPENDMS_PORT) listens."""
    with (
        runtime(data_dir, database_url, setup=True, host=host, port=port) as rt,
        rt.store.session() as s,
    ):
        boot = service.bootstrap_admin(s, rt.means.secrets)
        result = {
            "Tid": boot.tenant.tid,
            "Uid": boot.admin.uid,
            "UserName": boot.admin.nick_name,
            "AccessKeyId": boot.access_key_id,
            "AccessKeySecret": boot.access_key_secret,
            "Endpoint": rt.settings.endpoint,
        }
    if as_json:
        print(json.dumps(result))
        return
    _print_credentials(result)


def _print_credentials(
    result: dict[str, Any], title: str = "OpenDMS administrator (the secret is shown once)"
) -> None:
    table = Table(show_header=False, title=title)
    for k, v in result.items():
        table.add_row(k, str(v))
    out.print(table)


@app.command()
def serve(
    host: HostOpt = None,
    port: PortOpt = None,
    workers: Annotated[
        int | None,
        typer.Option(
            help="Server processes (env OPENDMS_WORKERS).",
            show_default=str(Settings.model_fields["workers"].default),
        ),
    ] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Also create the demo target.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run the DMS API with its job runner (prechecks, executions, exports, uploads): create
    the data directory, store and an administrator on first start."""
    import uvicorn

    with runtime(data_dir, database_url, setup=True, host=host, port=port, workers=workers) as rt:
        settings = rt.settings
        with rt.store.session() as s:
            fresh = not service.list_tenants(s)
            boot = service.bootstrap_admin(s, rt.means.secrets) if fresh else None
        if boot is not None:
            _print_credentials(
                {
                    "Tid": boot.tenant.tid,
                    "Uid": boot.admin.uid,
                    "AccessKeyId": boot.access_key_id,
                    "AccessKeySecret": boot.access_key_secret,
                    "Endpoint": settings.endpoint,
                }
            )
        else:
            out.print(
                f"Endpoint {settings.endpoint}. Use the access key printed at first start, or "
                "`opendms init --json` for a fresh one."
            )
        if demo:
            _register_demo(rt)
    os.environ.update(settings.environ())
    uvicorn.run(
        "opendms.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        # h11, not httptools: httptools refuses request lines over 64 KiB, and DMS clients put
        # big SQL in the URL. The slack lets the app answer a slightly-too-long line with a
        # JSON 413 instead of the server's plain-text 400.
        http="h11",
        loop="uvloop",
        h11_max_incomplete_event_size=settings.max_request_bytes + 1024 * 1024,
        access_log=False,
        log_config=_log_config(),
        timeout_keep_alive=30,
    )


def _log_config() -> dict[str, Any]:
    """uvicorn's logging plus one line per API request; applied in every worker process."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = json.loads(json.dumps(LOGGING_CONFIG))
    config["formatters"]["opendms"] = {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}
    config["handlers"]["opendms"] = {
        "class": "logging.StreamHandler",
        "formatter": "opendms",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["opendms"] = {"handlers": ["opendms"], "level": "INFO", "propagate": False}
    return config


DEMO_DBA = "demo-dba"


def _register_demo(rt: Runtime) -> None:
    """The demo target, and the people a first ticket needs: the administrator files it, and
    ``demo-dba``, the target's DBA, approves it (nobody approves their own ticket)."""
    from opendms.targets.demo import ensure_demo_target

    path = ensure_demo_target(rt.settings.sqlite_targets)
    with rt.store.session() as s:
        boot_tid = service.list_tenants(s)[0].tid
        dba_id, dba_uid, secret = _demo_dba(s, rt.means.secrets, boot_tid)
        inst = catalog.ensure_registered(
            s,
            rt.means.secrets,
            rt.means.targets,
            boot_tid,
            catalog.InstanceSpec(
                alias="demo",
                instance_type="sqlite",
                host=str(path),
                env_type="dev",
                dba_user_id=dba_id,
                safe_rule="default",
            ),
            actor=None,  # the operator names the DBA: it holds a DBA's rights
        )
    out.print(f"Demo target: instance {inst.instance_id} ({path}), its DBA is {DEMO_DBA}")
    if secret is not None:
        _print_credentials(
            {
                "Uid": dba_uid,
                "Nick": DEMO_DBA,
                "AccessKeyId": secret[0],
                "AccessKeySecret": secret[1],
            },
            title=f"{DEMO_DBA}, the demo target's DBA (the secret is shown once)",
        )


def _demo_dba(s: Session, box: SecretBox, tid: int) -> tuple[int, str, tuple[str, str] | None]:
    """The demo's DBA (UserId, Uid), made with an access key (returned) on the first start."""
    found = service.user_by_nick(s, tid, DEMO_DBA)
    if found is not None:
        return found.user_id, found.uid, None
    user = service.register_user(s, None, tid, service.new_uid(), nick_name=DEMO_DBA, roles="DBA")
    key, secret = service.create_access_key(s, box, user.uid, actor=None)
    return user.user_id, user.uid, (key.access_key_id, secret)


def _targets(settings: Settings) -> TargetPolicy:
    return target_policy(settings)


# ------------------------------------------------------------------ instances


@instance_app.command("register")
def instance_register(
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
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a database server: connection checked, password encrypted, metadata read."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        target = _default_tid(s, tid)
        if engine.lower() != "sqlite":  # on stderr: --json's stdout stays one object
            where = f"{host}:{port or DEFAULT_PORTS.get(engine.lower(), port)}"
            err.print(
                f"connecting to {engine} at {where} (gives up after "
                f"{rt.settings.target_test_connect_seconds} s)…",
                markup=False,
                highlight=False,
            )
        inst = catalog.register_instance(
            s,
            rt.means.secrets,
            rt.means.targets,
            target,
            catalog.InstanceSpec(
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
        dbs = catalog.list_databases(s, target, inst.instance_id, size=10_000)
        print(
            json.dumps(
                {
                    "InstanceId": inst.instance_id,
                    "Databases": dbs.total,
                    "Version": inst.server_version,
                }
            )
        )


@instance_app.command("dba")
def instance_dba(
    instance_id: Annotated[int, typer.Argument(help="InstanceId.")],
    user_id: Annotated[int, typer.Argument(help="UserId of the instance's DBA.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Assign an instance's DBA as the operator: the DBA then sees the instance's tickets,
    skips their permission check and approves its DBA node. (A DBA who named themselves, or
    one assigned before OpenDMS recorded who assigned it, holds none of that.)"""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        inst = catalog.update_instance(
            s,
            rt.means.secrets,
            rt.means.targets,
            _default_tid(s, tid),
            instance_id,
            catalog.InstanceSpec(dba_user_id=user_id),
            actor=None,
        )
        out.print(f"Instance {inst.instance_id}: DBA is user {inst.dba_user_id}")


@instance_app.command("list")
def instance_list(
    tid: TidOpt = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List registered instances."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        grid = Table("InstanceId", "Alias", "Type", "Address", "Env", "Databases", "Synced (UTC)")
        target = _default_tid(s, tid)
        for inst in catalog.list_instances(s, target, size=10_000).items:
            count = catalog.list_databases(s, target, inst.instance_id, size=1).total
            synced = f"{inst.synced_at:%Y-%m-%d %H:%M:%S}" if inst.synced_at else "-"
            grid.add_row(
                str(inst.instance_id),
                inst.alias,
                inst.instance_type,
                f"{inst.host}:{inst.port}",
                inst.env_type,
                str(count),
                synced,
            )
        out.print(grid)


@instance_app.command("sync")
def instance_sync(
    instance_id: Annotated[int, typer.Argument(help="InstanceId.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Read an instance's databases, tables and columns again."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        target = _default_tid(s, tid)
        inst = catalog.sync_instance(s, rt.means.secrets, rt.means.targets, target, instance_id)
        dbs = catalog.list_databases(s, target, inst.instance_id, size=1).total
        out.print(f"Instance {inst.instance_id}: {dbs} databases, synced")


@instance_app.command("throttle")
def instance_throttle(
    instance_id: Annotated[int, typer.Argument(help="InstanceId.")],
    max_running: Annotated[
        int | None, typer.Option(help="Hold back while more statements than this run.")
    ] = None,
    max_lag: Annotated[
        float | None, typer.Option(help="Hold back while a replica lags more (seconds).")
    ] = None,
    replica: Annotated[
        int | None, typer.Option(help="InstanceId of a replica of this instance to watch.")
    ] = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """When lock-free changes and cleanups on an instance pause between chunks."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        found = catalog.set_throttle(
            s, _default_tid(s, tid), instance_id, max_running, max_lag, replica
        )
        print(json.dumps(found))


# ------------------------------------------------------------------ tickets

UidOpt = Annotated[
    str | None,
    typer.Option(
        "--as", "--uid", help="Act as this user: a Uid or a nick name (default: an ADMIN)."
    ),
]


def _read_file(path: Path) -> str:
    """A text file the user named, or one line saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def _read_json(text: str) -> Any:
    if text.startswith("@"):
        text = _read_file(Path(text[1:]))
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CliError(f"--param is not JSON: {exc}") from exc


def _shortcut_params(kind: str, db: int, sql: str, rows: int) -> dict[str, Any]:
    if kind == "DATA_EXPORT":
        return {
            "DbId": db,
            "ExeSQL": sql,
            "Classify": "cli",
            "AffectRows": rows,
            "IgnoreAffectRows": False,
        }
    params: dict[str, Any] = {"DbItemList": [{"DbId": db}], "SqlType": "TEXT", "ExecSQL": sql}
    if kind == "DC_COMMON":
        params["EstimateAffectRows"] = rows
    return params


@order_app.command("create")
def order_create(
    kind: Annotated[
        str,
        typer.Option(
            "--type", help="DC_COMMON, DC_CHUNK, DC_CRON_CLEAR, DC_BIG_FILE, DATA_EXPORT or NDDL."
        ),
    ],
    comment: Annotated[str, typer.Option(help="Why.")],
    param: Annotated[str | None, typer.Option(help="Param JSON (PascalCase), or @file.")] = None,
    db: Annotated[int | None, typer.Option(help="DbId, with --sql, instead of --param.")] = None,
    sql: Annotated[str | None, typer.Option(help="SQL, with --db, instead of --param.")] = None,
    rows: Annotated[int, typer.Option(help="Estimated affected rows (with --sql).")] = 0,
    related: Annotated[str, typer.Option(help="Related UserIds, comma-separated.")] = "",
    attachment: Annotated[str | None, typer.Option(help="AttachmentKey to attach.")] = None,
    optimize_every: Annotated[
        int | None,
        typer.Option(help="DC_CRON_CLEAR: reclaim space (OPTIMIZE TABLE, VACUUM) every N runs."),
    ] = None,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """File a ticket; prints its OrderId."""
    if param is not None:
        params = _read_json(param)
    elif db is not None and sql is not None:
        params = _shortcut_params(kind, db, sql, rows)
    else:
        raise CliError("give --param, or --db with --sql")
    if optimize_every is not None:
        if kind != "DC_CRON_CLEAR" or not isinstance(params, dict):
            raise CliError("--optimize-every is for DC_CRON_CLEAR tickets")
        params["OptimizeTableAfterEveryClearTimes"] = optimize_every
    try:
        related_ids = [int(p) for p in related.split(",") if p.strip()]
    except ValueError as exc:
        raise CliError("--related takes comma-separated UserIds") from exc
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        order = tickets.create_order(
            s,
            caller,
            kind,
            params,
            comment=comment,
            related_user_ids=related_ids,
            attachment_key=attachment,
        )
        print(json.dumps({"OrderId": order.order_id, "StatusCode": order.status_code}))


@order_app.command("list")
def order_list(
    scope: Annotated[
        str, typer.Option(help="AS_COMMITTER, AS_Related, AS_HANDLER, AS_OWNER, AS_ADMIN.")
    ] = "AS_ADMIN",
    status: Annotated[str | None, typer.Option(help="ALL, RUNNING or FINISHED.")] = None,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List tickets."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        page = tickets.list_orders(
            s, caller, tickets.OrderFilter(scope=scope, status=status), 1, 100
        )
        grid = Table(
            "OrderId",
            "Type",
            "Status",
            "Committer",
            "Created (UTC)",
            "Comment",
            title=f"{page.total} ticket{'' if page.total == 1 else 's'}",
        )
        for o in page.items:
            grid.add_row(
                str(o.order_id),
                o.plugin_type,
                o.status_code,
                str(o.committer_id),
                f"{o.created_at:%Y-%m-%d %H:%M:%S}",
                o.comment[:60],
            )
        out.print(grid)


@order_app.command("show")
def order_show(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    follow: Annotated[
        bool, typer.Option("--follow", help="Show its progress until it ends; exit 1 if it fails.")
    ] = False,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show a ticket, its parameters and its execution or export (state, progress, backups);
    with --follow, follow that work to its end instead."""
    with runtime(data_dir, database_url) as rt:
        if follow:
            _follow(rt, tid, uid, order_id)
            return
        with rt.store.session() as s:
            caller = service.caller_for(s, _default_tid(s, tid), uid)
            o = tickets.get_order(s, caller, order_id)
            shown: dict[str, Any] = {
                "OrderId": o.order_id,
                "PluginType": o.plugin_type,
                "StatusCode": o.status_code,
                "CommitterId": o.committer_id,
                "Comment": o.comment,
                "RelatedUserIds": tickets.related_ids(o),
                "AttachmentKey": o.attachment_key,
                "CreateTime": f"{o.created_at:%Y-%m-%d %H:%M:%S}",
                "Param": json.loads(o.params),
                "CloseReason": o.close_reason,
            }
            work = underway.underway(s, caller, o)
            if work is not None:
                shown["Execution"] = work.shown()
    print(json.dumps(shown, indent=2, ensure_ascii=False))


# ------------------------------------------------------------------ following a ticket's work

FOLLOW_SECONDS = 0.5  # how often --follow reads the store
NO_RUNNER = "no job runner is running: start `opendms serve`, or run `opendms jobs run`"


def _server_answers(settings: Settings) -> bool:
    """Whether something listens where `opendms serve` with these settings would: its
    runner would take queued work."""
    host, _, port = settings.endpoint.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.3):
            return True
    except OSError:
        return False


def _hint_runner(s: Session, settings: Settings, job_id: int) -> None:
    if _no_runner(s, settings, job_id):
        err.print(f"note: {NO_RUNNER}", markup=False, highlight=False)


def _no_runner(s: Session, settings: Settings, job_id: int) -> bool:
    """Whether a queued job looks like it waits for a runner that is not there: no job is
    held by any runner, and no server answers at the settings' endpoint."""
    return underway.waiting_unclaimed(s, job_id) and not _server_answers(settings)


def _follow(rt: Runtime, tid: int | None, uid: str | None, order_id: int) -> None:
    """Show a ticket's execution or export as it goes, until it is over; exit 1 unless it
    succeeded."""
    seen: dict[tuple[int, int], str] = {}
    status = ""
    warned = False
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TextColumn("{task.fields[eta]}"),
    )
    # a bar only on a terminal: piped, the lines below are the whole story
    with Bar(*columns, console=out, transient=True, disable=not out.is_terminal) as bar:
        task = bar.add_task(f"ticket {order_id}", total=None, rate="", eta="")
        while True:
            with rt.store.session() as s:
                caller = service.caller_for(s, _default_tid(s, tid), uid)
                order = tickets.get_order(s, caller, order_id)
                work = underway.underway(s, caller, order)
                if work is None:
                    raise CliError(f"ticket {order_id} has no execution or export to follow")
                if (
                    not warned
                    and work.state == "queued"
                    and _no_runner(s, rt.settings, work.job_id)
                ):
                    err.print(f"note: {NO_RUNNER}", markup=False, highlight=False)
                    warned = True
                final = order.status_code
            if work.status != status:
                status = work.status
                out.print(f"{work.kind} {work.job_id}: {status}", markup=False, highlight=False)
            for st in work.statements:
                key = (st.sql_job_id, st.number)
                if seen.get(key) != st.status and st.status != "INIT":
                    seen[key] = st.status
                    rows = "" if st.rows is None else f", {_rows(st.rows)}"
                    out.print(
                        f"  statement {st.number} on DbId {st.db_id}: {st.status}{rows}",
                        markup=False,
                        highlight=False,
                    )
            _advance(bar, task, work)
            if work.over:
                break
            time.sleep(FOLLOW_SECONDS)
    out.print(f"Ticket {order_id}: {final}, {work.state} ({_rows(work.rows)})", markup=False)
    if not work.succeeded:
        why = work.failure or (
            f"paused: `opendms order restart {order_id}` goes on"
            if work.state == "paused"
            else work.status
        )
        err.print(f"error: {work.kind} {work.job_id} {work.state}: {why}", markup=False)
        raise typer.Exit(EXIT_FAILED)


def _rows(n: int) -> str:
    return f"{n:,} row{'' if n == 1 else 's'}"


def _advance(bar: Bar, task: Any, work: underway.Underway) -> None:
    """The bar: rows against the precheck's count for long statements, else statements."""
    total: float | None = None
    completed: float = work.rows
    if work.estimate:
        total, completed = work.estimate, min(work.rows, work.estimate)
    elif work.statements:
        total = len(work.statements)
        completed = sum(st.status in ("SUCCESS", "FAIL") for st in work.statements)
    eta = work.eta_seconds
    bar.update(
        task,
        total=total,
        completed=completed,
        rate=f"{work.rows_per_second:,.0f} rows/s" if work.rows_per_second else "",
        eta=f"ETA {eta:,} s" if eta is not None else "",
    )


@order_app.command("close")
def order_close(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    reason: Annotated[str, typer.Option(help="Why it is closed.")],
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Close a ticket that has not finished."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        o = lifecycle.close(s, caller, order_id, reason)
        out.print(f"Ticket {o.order_id} is {o.status_code}")


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(help="The file to attach.")],
    source: Annotated[
        str, typer.Option(help="datacorrect, order_info_attachment, big-file, sqlreview.")
    ] = "datacorrect",
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Store a file as an attachment; prints its AttachmentKey for tickets."""
    if source not in files.FILE_SOURCES:
        raise CliError(f"--source must be one of {', '.join(files.FILE_SOURCES)}")

    def chunks() -> Iterator[bytes]:
        with file.open("rb") as fh:
            while block := fh.read(1 << 20):
                yield block

    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        try:
            attachment = files.save_attachment(
                s,
                FileStore(rt.settings.files),
                caller,
                file.name,
                source,
                chunks(),
                files.UploadLimits(
                    rt.settings.upload_max_bytes, rt.settings.upload_timeout_seconds
                ),
            )
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror or exc}") from exc
        print(
            json.dumps(
                {
                    "AttachmentKey": attachment.attachment_key,
                    "Size": attachment.size_bytes,
                    "Sha256": attachment.sha256,
                }
            )
        )


# ------------------------------------------------------------------ approval workflows


@workflow_app.command("list")
def workflow_list(
    tid: TidOpt = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List approval templates and their nodes, in order."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        grid = Table("TemplateId", "Name", "System", "Nodes")
        for view in templates.list_templates(s, _default_tid(s, tid)):
            grid.add_row(
                str(view.template.template_id),
                view.template.name,
                "yes" if view.template.is_system else "",
                " -> ".join(n.name for _, n in view.nodes),
            )
        out.print(grid)


@workflow_app.command("node")
def workflow_node(
    name: Annotated[str, typer.Argument(help="Node name.")],
    approvers: Annotated[str, typer.Option(help="Approver UserIds, comma-separated.")],
    comment: Annotated[str, typer.Option(help="What the node is for.")] = "",
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a USER_LIST node: any one of its approvers may approve."""
    try:
        ids = [int(p) for p in approvers.split(",") if p.strip()]
    except ValueError as exc:
        raise CliError("--approvers takes comma-separated UserIds") from exc
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        node = templates.create_node(s, _default_tid(s, tid), name, ids, comment=comment)
        out.print(f"Node {node.node_id} ({node.name})")


@workflow_app.command("template")
def workflow_template(
    name: Annotated[str, typer.Argument(help="Template name.")],
    nodes: Annotated[str, typer.Option(help="Node names in order, comma-separated.")],
    comment: Annotated[str, typer.Option(help="What the template is for.")] = "",
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an approval template from existing nodes."""
    chain = [n.strip() for n in nodes.split(",") if n.strip()]
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        made = templates.create_template(s, _default_tid(s, tid), name, chain, comment=comment)
        out.print(f"Template {made.template_id} ({made.name}): {' -> '.join(chain)}")


# ------------------------------------------------------------------ approving tickets


def _workflow_of(s: Session, caller: Caller, order_id: int) -> int:
    order = tickets.get_order(s, caller, order_id)
    if order.workflow_instance_id is None:
        raise CliError(f"ticket {order_id} has not been submitted for approval")
    return order.workflow_instance_id


def _approve(
    kind: str,
    order_id: int,
    uid: str | None,
    tid: int | None,
    data_dir: Path | None,
    database_url: str | None,
    **act: Any,
) -> None:
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        wf = flow.act(s, caller, _workflow_of(s, caller, order_id), flow.Act(kind, **act))
        order = tickets.get_order(s, caller, order_id)
        out.print(f"Ticket {order_id} is {order.status_code} (approval {wf.status})")


CommentOpt = Annotated[str, typer.Option("--comment", help="Shown with the act.")]


@order_app.command("submit")
def order_submit(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Send a ticket for approval (as its committer)."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        wf = flow.submit(s, caller, order_id)
        out.print(
            f"Ticket {order_id}: workflow {wf.workflow_instance_id}, template "
            f"{wf.template_name} (risk {wf.risk}), {wf.status}"
        )


@order_app.command("precheck")
def order_precheck(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    retry: Annotated[bool, typer.Option("--retry", help="Run the precheck again.")] = False,
    skip_row_check: Annotated[
        str | None, typer.Option("--skip-row-check", help="Waive a ROW_CHECK mismatch: why.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Wait until the precheck has run (by a runner).")
    ] = False,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show a data-change ticket's precheck: each step, then each statement."""
    with runtime(data_dir, database_url) as rt:
        with rt.store.session() as s:
            caller = service.caller_for(s, _default_tid(s, tid), uid)
            if retry:
                precheck.retry(s, caller, order_id)
            if skip_row_check is not None:
                precheck.skip_row_check(s, caller, order_id, skip_row_check)
        if wait:
            _await_precheck(rt, caller, order_id)
        with rt.store.session() as s:
            shortfall = _show_precheck(rt, s, caller, order_id)
    if shortfall is not None:
        err.print(f"error: the precheck failed: {shortfall}", markup=False, highlight=False)
        raise typer.Exit(EXIT_FAILED)


PRECHECK_WAIT_SECONDS = 300.0


def _await_precheck(rt: Runtime, caller: Caller, order_id: int) -> None:
    """Until the ticket's precheck has run (or PRECHECK_WAIT_SECONDS passed), saying once
    when no runner seems to be there to run it."""
    deadline = time.monotonic() + PRECHECK_WAIT_SECONDS
    hinted = False
    while time.monotonic() < deadline:
        with rt.store.session() as s:
            order = tickets.get_order(s, caller, order_id)
            if precheck.status(s, order) != "precheck":
                return
            job = tickets.latest_job(s, order_id, "precheck")
            if not hinted and job is not None:
                _hint_runner(s, rt.settings, job.job_id)
                hinted = True
        time.sleep(0.2)


def _show_precheck(rt: Runtime, s: Session, caller: Caller, order_id: int) -> str | None:
    """Print the precheck's state, steps and statements; why it failed, if it did."""
    order = tickets.get_order(s, caller, order_id)
    state = precheck.status(s, order)
    out.print(f"Ticket {order_id}: {state}")
    shortfall = precheck.shortfall(s, order) if state == "precheck_fail" else None
    job = tickets.latest_job(s, order_id, "precheck")
    if state == "precheck" and job is not None:
        _hint_runner(s, rt.settings, job.job_id)
    steps = Table("Step", "Status", "Tip")
    for v in precheck.steps(s, order_id):
        steps.add_row(v.step, v.status, v.tip)
    out.print(steps)
    found = precheck.statements(s, order_id, None, 1, 1000)
    grid = Table("DbId", "#", "Line", "Type", "Tables", "Rows", "How", "Review", "SQL")
    for st in found.items:
        grid.add_row(
            str(st.db_id),
            str(st.number),
            str(st.line),
            st.sql_type,
            st.table_names,
            "" if st.affect_rows is None else str(st.affect_rows),
            st.rows_source,
            st.review_status,
            st.sql_text[:80],
        )
    if found.total:
        out.print(grid)
    return shortfall


@order_app.command("execute")
def order_execute(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    backup: Annotated[bool, typer.Option(help="Back up the rows the change overwrites.")] = False,
    transaction: Annotated[
        bool, typer.Option(help="Each database's statements commit together.")
    ] = False,
    start: Annotated[str | None, typer.Option(help="Start at (UTC, YYYY-MM-DD HH:MM:SS).")] = None,
    end: Annotated[str | None, typer.Option(help="Not started after (UTC).")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show its progress until it ends; exit 1 if it fails.")
    ] = False,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Start an approved data change (who may: the ticket's ExecMode says)."""
    detail: dict[str, Any] = {"backupData": backup, "transaction": transaction}
    detail.update({k: v for k, v in (("startTime", start), ("endTime", end)) if v})
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        job = execution.execute(s, caller, order_id, execution.plan_from(detail))
        out.print(f"Ticket {order_id}: execution {job.job_id} queued")
        if not follow:
            _hint_runner(s, rt.settings, job.job_id)
    if follow:
        with runtime(data_dir, database_url) as rt:
            _follow(rt, tid, uid, order_id)


def _steer(
    order_id: int,
    job: int | None,
    act: str,
    uid: str | None,
    tid: int | None,
    data_dir: Path | None,
    database_url: str | None,
) -> None:
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        how = execution.pause if act == "paused" else execution.restart
        done = how(s, caller, order_id, "SINGLE" if job else "ALL", job)
        out.print(f"Ticket {order_id}: SQL jobs {', '.join(str(j.sql_job_id) for j in done)} {act}")


JobOpt = Annotated[int | None, typer.Option("--job", help="Only this SQL job (JobId).")]


@order_app.command("pause")
def order_pause(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    job: JobOpt = None,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Pause an execution between statements (or chunks)."""
    _steer(order_id, job, "paused", uid, tid, data_dir, database_url)


@order_app.command("restart")
def order_restart(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    job: JobOpt = None,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Go on with a paused execution, or retry a failed one."""
    _steer(order_id, job, "restarted", uid, tid, data_dir, database_url)


@order_app.command("cleanup")
def order_cleanup(
    order_id: Annotated[int, typer.Argument(help="OrderId of a DC_CRON_CLEAR ticket.")],
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A cleanup ticket's schedule and its runs, newest first."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        config = cleanup.config(s, caller, order_id)
        out.print(
            f"cron {config.cron_format}: {config.status or 'never ran'}, {config.call_times} "
            f"runs, next {config.next_call or '-'}, window {config.duration_hours or 'none'} h, "
            f"space reclaimed every {config.optimize_every or '-'} runs ({config.reclaims} so far)"
        )
        runs, _ = cleanup.history(s, caller, order_id, 1, 50)
        table = Table("Created", "Task group", "Status", "Rows deleted")
        for r in runs:
            table.add_row(str(r.run.created_at), str(r.run.job_id or "-"), r.status, str(r.rows))
        out.print(table)


@order_app.command("export")
def order_export(
    order_id: Annotated[int, typer.Argument(help="OrderId of an approved DATA_EXPORT ticket.")],
    file_type: Annotated[str, typer.Option(help="CSV, XLSX, SQL, JSON or TXT.")] = "CSV",
    encoding: Annotated[str, typer.Option(help="UTF8, GBK, GB2312, ISO_8859_1, CP1252…")] = "UTF8",
    start: Annotated[str | None, typer.Option(help="Start at (UTC, YYYY-MM-DD HH:MM:SS).")] = None,
    follow: Annotated[
        bool, typer.Option("--follow", help="Show its progress until it ends; exit 1 if it fails.")
    ] = False,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run an approved export (its committer does)."""
    detail = {"fileType": file_type, "encoding": encoding, "startTime": start}
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        job = exports.execute(s, caller, order_id, exports.plan_from(detail))
        out.print(f"Ticket {order_id}: export {job.job_id} queued")
        if not follow:
            _hint_runner(s, rt.settings, job.job_id)
    if follow:
        with runtime(data_dir, database_url) as rt:
            _follow(rt, tid, uid, order_id)


@order_app.command("exported")
def order_exported(
    order_id: Annotated[int, typer.Argument(help="OrderId of a DATA_EXPORT ticket.")],
    save: Annotated[Path | None, typer.Option("--save", help="Copy the zip here.")] = None,
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """How an export went: its status, rows, file and the columns it masked; exits 1 when
    it failed."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        order = exports.export_ticket(s, caller, order_id, lock=False)
        job, found = exports.latest(s, order)
        status = exports.job_status(s, order)
        out.print(
            f"Ticket {order_id}: {status}"
            + (f" ({exports.failure(job)})" if exports.failure(job) else "")
        )
        if status == "EXPORT_FAIL":
            raise typer.Exit(EXIT_FAILED)  # a script can tell; the line above says why
        if found is None:
            return
        out.print(
            f"{found.rows} rows, {found.file_type} in {found.encoding}, {found.size_bytes} bytes"
        )
        masking = exports.masking(found)
        if not masking.get("traced", True):
            out.print("Every column was masked: the query's columns could not be traced.")
        for m in masking.get("columns", []):
            out.print(f"masked {m['column']} ({m['mask']}) from {', '.join(m['sources'])}")
        if save is not None:
            opened = exports.open_download(
                s, rt.settings.files, caller.user_id, found.job_id, "cli"
            )
            if opened is None:
                raise CliError(f"the file of export {found.job_id} is gone")
            save.write_bytes(opened[0].read_bytes())
            out.print(f"saved to {save}")


@column_app.command("mask")
def column_mask(
    db_id: Annotated[int, typer.Argument(help="DbId.")],
    table: Annotated[str, typer.Argument(help="Table name.")],
    column: Annotated[str, typer.Argument(help="Column name.")],
    mask: Annotated[str, typer.Argument(help="FULL, HASH, LAST4, or NONE to clear.")],
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Flag a column sensitive: exports show it masked."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        if not caller.is_admin:
            raise CliError("only an administrator flags sensitive columns")
        chosen = None if mask.upper() == "NONE" else mask.upper()
        sensitive.set_mask(s, caller.tid, db_id, table, column, chosen, caller.user_id)
        out.print(
            f"{table}.{column}: " + (f"masked {chosen} in exports" if chosen else "not masked")
        )


@column_app.command("list")
def column_list(
    db_id: Annotated[int, typer.Argument(help="DbId.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The database's sensitive columns."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        table = Table("Table", "Column", "Mask", "Set")
        for c in sensitive.listed(s, _default_tid(s, tid), db_id):
            table.add_row(c.table_name, c.column_name, c.mask, f"{c.set_at:%Y-%m-%d %H:%M}")
        out.print(table)


def _announced(found: Mapping[str, Executor]) -> dict[str, Executor]:
    """The executors, each saying when it starts a job and how the job ends (one line each;
    a job that waits or yields says so when it is picked up again)."""
    started: set[int] = set()

    def wrap(executor: Executor) -> Executor:
        def run(work: Work, checkpoint: Checkpoint) -> Step:
            what = f"job {work.job_id}: {work.kind}" + (
                f" of ticket {work.order_id}" if work.order_id else ""
            )
            if work.job_id not in started:
                started.add(work.job_id)
                out.print(f"{what}: started", markup=False, highlight=False)
            step = executor(work, checkpoint)
            if step.failure is not None:
                ended = f"failed: {step.failure}"
            elif step.done:
                ended = "succeeded"
            elif step.paused:
                ended = "paused"
            elif step.wait_seconds > 0:
                ended = f"waits {step.wait_seconds:g} s"
            else:
                return step
            started.discard(work.job_id)
            out.print(f"{what}: {ended}", markup=False, highlight=False)
            return step

        return run

    return {kind: wrap(executor) for kind, executor in found.items()}


@jobs_app.command("run")
def jobs_run(
    follow: Annotated[
        bool, typer.Option(help="Keep running and wait for new work (Ctrl-C stops).")
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Run due background jobs in this process until none is left (or, with --follow, until
    stopped): a worker beside, or instead of, the server's own runner. Says when each job
    starts and how it ends."""
    with runtime(data_dir, database_url) as rt:
        runner = rt.job_runner(threads=0, uploads=True, wrap=_announced)
        ran = 0
        try:
            while True:
                if runner.run_once():
                    ran += 1
                elif follow:
                    time.sleep(runner.idle_seconds)
                else:
                    break
        except KeyboardInterrupt:
            pass
        out.print(f"{ran} job{'' if ran == 1 else 's'} run")


def _simple_act(kind: str, summary: str) -> Any:
    def command(
        order_id: Annotated[int, typer.Argument(help="OrderId.")],
        comment: CommentOpt = "",
        uid: UidOpt = None,
        tid: TidOpt = None,
        data_dir: DataDir = None,
        database_url: DatabaseUrl = None,
    ) -> None:
        _approve(kind, order_id, uid, tid, data_dir, database_url, comment=comment)

    command.__doc__ = summary
    return command


for _name, _kind, _summary in (
    ("approve", "AGREE", "Agree to the ticket's current approval node."),
    ("reject", "REJECT", "Reject the ticket at its current approval node."),
    (
        "withdraw",
        "CANCEL",
        "Take the ticket back from approval (its committer); it returns to new.",
    ),
):
    order_app.command(_name)(_simple_act(_kind, _summary))


@order_app.command("transfer")
def order_transfer(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    to: Annotated[str, typer.Option("--to", help="New approver UserIds, comma-separated.")],
    from_: Annotated[
        int | None,
        typer.Option("--from", help="Approver handing over (admins/DBAs); default: you."),
    ] = None,
    comment: CommentOpt = "",
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Hand the current approval node over to other users."""
    try:
        new = tuple(int(p) for p in to.split(",") if p.strip())
    except ValueError as exc:
        raise CliError("--to takes comma-separated UserIds") from exc
    _approve(
        "TRANSFER",
        order_id,
        uid,
        tid,
        data_dir,
        database_url,
        comment=comment,
        new_approvers=new,
        old_approver=from_,
    )


@order_app.command("add-node")
def order_add_node(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    node_id: Annotated[int, typer.Option("--node", help="NodeId (opendms workflow list).")],
    before: Annotated[bool, typer.Option("--before/--after", help="Where to insert.")] = False,
    comment: CommentOpt = "",
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Insert an approval node before or after the current one."""
    _approve(
        "ADD_APPROVAL_NODE",
        order_id,
        uid,
        tid,
        data_dir,
        database_url,
        comment=comment,
        node_id=node_id,
        node_position=flow.NODE_POSITIONS[0 if before else 1],
    )


@order_app.command("approvals")
def order_approvals(
    order_id: Annotated[int, typer.Argument(help="OrderId.")],
    uid: UidOpt = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The ticket's approval: why this template, its nodes, and every act in order."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        caller = service.caller_for(s, _default_tid(s, tid), uid)
        wf = _workflow_of(s, caller, order_id)
        found = flow.detail(s, caller, wf)
        out.print(
            f"Workflow {wf}: template {found.flow.template_name}, risk {found.flow.risk}, "
            f"{found.flow.status}"
        )
        for reason in found.reasons:
            out.print(f"  - {reason}", markup=False)
        nodes = Table("#", "Node", "Status", "Approvers", "By", "At (UTC)", "Comment")
        for view in found.steps:
            st = view.step
            nodes.add_row(
                str(st.position),
                st.node_name,
                st.status,
                ",".join(map(str, view.approvers)) or "-",
                str(st.operator_id or ""),
                wire_time(st.operated_at) or "",
                st.operate_comment or st.note,
            )
        out.print(nodes)
        trail = Table("At (UTC)", "Act", "By", "For", "Node", "Detail", "Comment", title="Trail")
        for e in flow.events(s, caller, wf):
            trail.add_row(
                wire_time(e.created_at) or "",
                e.action,
                str(e.actor_id or ""),
                str(e.on_behalf_of or ""),
                e.node_name,
                e.detail,
                e.comment,
            )
        out.print(trail)


# ------------------------------------------------------------------ security rules


@rules_app.command("load")
def rules_load(
    file: Annotated[Path, typer.Argument(help="A YAML or JSON rule set.")],
    name: Annotated[str, typer.Option(help="Rule set name ('default': the tenant's default).")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Validate a rule set and put it in force; a bad one changes nothing."""
    source = _read_file(file)
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        row = rule_sets.load(s, _default_tid(s, tid), name, source)
        out.print(f"Rule set {row.name!r} version {row.version} is in force")


@rules_app.command("show")
def rules_show(
    name: Annotated[str, typer.Argument(help="Rule set name.")] = rules.DEFAULT_NAME,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print a rule set as it was loaded (the built-in default if none was)."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        print(rule_sets.get(s, _default_tid(s, tid), name).source, end="")


@rules_app.command("list")
def rules_list(
    name: Annotated[str, typer.Argument(help="Rule set whose levels to show.")] = "default",
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The SQL review rules, their default levels and their levels in a rule set."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        chosen = rule_sets.get(s, _default_tid(s, tid), name).rule_set.review
        grid = Table("Code", "Default", f"In {name!r}", "What it finds")
        for r in review.RULES:
            grid.add_row(r.code, r.level, chosen.get(r.code, r.level), r.summary)
        out.print(grid)


@rules_app.command("sets")
def rules_sets(
    tid: TidOpt = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Rule sets of the tenant and the instances that follow each."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        t = _default_tid(s, tid)
        names = {r.name: r for r in rule_sets.list_names(s, t)}
        users: dict[str, list[str]] = {}
        for inst in catalog.list_instances(s, t, size=10_000).items:
            rule = inst.safe_rule if inst.safe_rule in names else rules.DEFAULT_NAME
            users.setdefault(rule, []).append(f"{inst.instance_id} {inst.alias}")
        grid = Table("Name", "Version", "Updated (UTC)", "Instances")
        if rules.DEFAULT_NAME not in names:
            grid.add_row(rules.DEFAULT_NAME, "built-in", "", ", ".join(users.get("default", [])))
        for name, row in names.items():
            grid.add_row(
                name,
                str(row.version),
                wire_time(row.updated_at) or "",
                ", ".join(users.get(name, [])),
            )
        out.print(grid)


@rules_app.command("assign")
def rules_assign(
    instance_id: Annotated[int, typer.Argument(help="InstanceId.")],
    name: Annotated[str, typer.Argument(help="Rule set name.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make an instance follow a rule set (its SafeRule)."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        inst = rule_sets.assign(s, _default_tid(s, tid), instance_id, name)
        out.print(f"Instance {inst.instance_id} ({inst.alias}) follows rule set {name!r}")


@rules_app.command("test")
def rules_test(
    source: Annotated[str, typer.Argument(help="A loaded rule set's name, or a file.")],
    order_id: Annotated[
        int | None, typer.Option("--order", help="Take the factors from this ticket.")
    ] = None,
    plugin_type: Annotated[str, typer.Option("--type", help="PluginType.")] = "DC_COMMON",
    env: Annotated[str, typer.Option(help="EnvType.")] = "product",
    kinds: Annotated[str, typer.Option(help="Statement kinds, comma-separated.")] = "UPDATE",
    tables: Annotated[str, typer.Option(help="Tables (schema.table), comma-separated.")] = "",
    rows: Annotated[int | None, typer.Option(help="Affected rows (omit: unknown).")] = None,
    export_rows: Annotated[int | None, typer.Option(help="Exported rows.")] = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """What a rule set decides for a ticket, or for factors given as options."""
    path = Path(source)
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        t = _default_tid(s, tid)
        if path.is_file():
            rule_set, name = rule_sets.validate(s, t, _read_file(path)), source
        else:
            rule_set, name = rule_sets.get(s, t, source).rule_set, source
        if order_id is not None:
            order = tickets.get_order(s, service.caller_for(s, t, None), order_id)
            found = ticket_facts.ticket_facts(s, order, ticket_facts.targets_of(s, order))
        else:
            found = rules.Facts(
                plugin_type=plugin_type,
                env_types=frozenset({env}),
                statement_kinds=frozenset(k.strip().upper() for k in kinds.split(",") if k),
                tables=frozenset(x.strip().lower() for x in tables.split(",") if x.strip()),
                affected_rows=rows,
                export_rows=export_rows,
                complete=True,
            )
        decision = rules.evaluate(rule_set, name, found)
        if decision.forbidden:
            out.print("FORBIDDEN: " + "; ".join(decision.forbidden), markup=False)
        out.print(
            f"risk {decision.risk} -> template {decision.template or 'none (no approval)'}",
            markup=False,
        )
        for reason in decision.reasons:
            out.print(f"  - {reason}", markup=False)


# ------------------------------------------------------------------ SQL review


@sql_app.command("review")
def sql_review(
    file: Annotated[Path, typer.Argument(help="A SQL script.")],
    db: Annotated[int, typer.Option("--db", help="DbId to review it against.")],
    plugin_type: Annotated[str, typer.Option("--type", help="Ticket type.")] = "DC_COMMON",
    rule_set: Annotated[
        str | None,
        typer.Option("--rule-set", help="Levels from this rule set (default: the instance's)."),
    ] = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Review a script as a ticket's precheck would; exits 1 when a finding is an ERROR."""
    sql = _read_file(file)
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        findings = review_for_database(s, _default_tid(s, tid), db, sql, plugin_type, rule_set)
    grid = Table("#", "Line", "Level", "Rule", "Finding", title=f"{len(findings)} finding(s)")
    for f in findings:
        grid.add_row(str(f.statement), f"{f.line}:{f.column}", f.level, f.code, f.message)
    out.print(grid)
    if any(f.level == "ERROR" for f in findings):
        raise typer.Exit(1)


# ------------------------------------------------------------------ webhook


@webhook_app.command("set")
def webhook_set(
    url: Annotated[str, typer.Argument(help="Where events are POSTed (http or https).")],
    secret: Annotated[
        str | None, typer.Option(help="Signing secret (default: generated and printed once).")
    ] = None,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set (or replace) the tenant's webhook."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        hook, key = webhooks.configure(s, rt.means.secrets, _default_tid(s, tid), url, secret)
        print(json.dumps({"Url": hook.url, "Secret": key}))


@webhook_app.command("disable")
def webhook_disable(
    tid: TidOpt = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Stop sending events (queued ones are dropped when their turn comes)."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        webhooks.set_enabled(s, _default_tid(s, tid), False)
        out.print("Webhook disabled")


@webhook_app.command("ping")
def webhook_ping(
    tid: TidOpt = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Queue a webhook.ping event, to check the receiver."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        delivery = webhooks.emit(s, _default_tid(s, tid), "webhook.ping", {})
        if delivery is None:
            raise CliError("no enabled webhook: `opendms webhook set URL` first")
        out.print(f"Delivery {delivery.delivery_id} queued")


@webhook_app.command("log")
def webhook_log(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recent deliveries and how each went."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        t = _default_tid(s, tid)
        hook = webhooks.get(s, t)
        grid = Table(
            "Id",
            "Event",
            "State",
            "Attempts",
            "HTTP",
            "Created (UTC)",
            "Error",
            title=f"{hook.url if hook else 'no webhook'}"
            + ("" if hook is None or hook.enabled else " (disabled)"),
        )
        for d in webhooks.deliveries(s, t, limit):
            grid.add_row(
                str(d.delivery_id),
                d.event,
                d.state,
                str(d.attempts),
                str(d.last_status or ""),
                wire_time(d.created_at) or "",
                d.last_error[:80],
            )
        out.print(grid)


# ------------------------------------------------------------------ tenants


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="Tenant name.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a tenant."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        tenant = service.create_tenant(s, name)
        out.print(f"Tid {tenant.tid} ({tenant.name})")


@tenant_app.command("list")
def tenant_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List tenants."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        table = Table("Tid", "Name", "Created (UTC)")
        for t in service.list_tenants(s):
            table.add_row(str(t.tid), t.name, f"{t.created_at:%Y-%m-%d %H:%M:%S}")
        out.print(table)


# ------------------------------------------------------------------ users


@user_app.command("create")
def user_create(
    uid: Annotated[str | None, typer.Option(help="Account Uid (digits); new if omitted.")] = None,
    nick: Annotated[str, typer.Option(help="Nickname.")] = "",
    roles: Annotated[str, typer.Option(help="Comma-separated: USER, DBA, ADMIN, …")] = "USER",
    with_key: Annotated[bool, typer.Option("--with-key", help="Also create a key.")] = False,
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Register a user in a tenant."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        target = _default_tid(s, tid)
        user = service.register_user(
            s, None, target, uid or service.new_uid(), nick_name=nick, roles=roles
        )
        result: dict[str, Any] = {
            "Tid": target,
            "UserId": user.user_id,
            "Uid": user.uid,
            "Roles": user.roles,
        }
        if with_key:
            key, secret = service.create_access_key(s, rt.means.secrets, user.uid, actor=None)
            result |= {"AccessKeyId": key.access_key_id, "AccessKeySecret": secret}
    print(json.dumps(result))


@user_app.command("list")
def user_list(
    tid: TidOpt = None, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List the users of a tenant."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        target = _default_tid(s, tid)
        table = Table("UserId", "Uid", "Nick", "Roles", "State", title=f"Tenant {target}")
        page = service.list_users(s, target, size=10_000)
        for u in page.users:
            table.add_row(str(u.user_id), u.uid, u.nick_name, u.roles, u.state)
        out.print(table)


def _set_state(
    uid: str, state: str, tid: int | None, data_dir: Path | None, url: str | None
) -> None:
    with runtime(data_dir, url) as rt, rt.store.session() as s:
        user = service.set_user_state(s, None, _default_tid(s, tid), uid, state)
        out.print(f"User {user.user_id} (Uid {user.uid}) is now {user.state}")


@user_app.command("disable")
def user_disable(
    uid: Annotated[str, typer.Argument(help="Uid of the user.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Disable a user; their access keys stop working at once."""
    _set_state(uid, "DISABLE", tid, data_dir, database_url)


@user_app.command("enable")
def user_enable(
    uid: Annotated[str, typer.Argument(help="Uid of the user.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Enable a disabled user."""
    _set_state(uid, "NORMAL", tid, data_dir, database_url)


# ------------------------------------------------------------------ access keys


@key_app.command("create")
def key_create(
    uid: Annotated[str, typer.Argument(help="Uid of the account that owns the key.")],
    description: Annotated[str, typer.Option(help="What the key is for.")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an access key; the secret is printed once and stored encrypted."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        key, secret = service.create_access_key(s, rt.means.secrets, uid, description, actor=None)
    print(json.dumps({"AccessKeyId": key.access_key_id, "AccessKeySecret": secret, "Uid": uid}))


@key_app.command("list")
def key_list(
    uid: Annotated[str | None, typer.Option(help="Only this account's keys.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List access keys (never their secrets)."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        table = Table("AccessKeyId", "Uid", "Status", "Created (UTC)", "Description")
        for k in service.list_access_keys(s, uid):
            table.add_row(
                k.access_key_id, k.uid, k.status, f"{k.created_at:%Y-%m-%d %H:%M:%S}", k.description
            )
        out.print(table)


@key_app.command("revoke")
def key_revoke(
    access_key_id: Annotated[str, typer.Argument(help="The key to deactivate.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Deactivate an access key; requests signed with it fail from now on."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        key = service.set_access_key_status(s, access_key_id, active=False, actor=None)
        out.print(f"{key.access_key_id} is now {key.status}")


# ------------------------------------------------------------------ policies


@policy_app.command("attach")
def policy_attach(
    uid: Annotated[str, typer.Argument(help="Uid of the user.")],
    document: Annotated[str, typer.Argument(help="Policy JSON, or @file to read it from.")],
    name: Annotated[str, typer.Option(help="Policy name; attaching again replaces it.")] = "custom",
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Attach a RAM-style policy to a user (explicit Deny wins over any Allow)."""
    if document.startswith("@"):
        document = _read_file(Path(document[1:]))
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        service.attach_policy(s, _default_tid(s, tid), uid, name, document, actor=None)
        out.print(f"Policy {name!r} attached to Uid {uid}")


@policy_app.command("detach")
def policy_detach(
    uid: Annotated[str, typer.Argument(help="Uid of the user.")],
    name: Annotated[str, typer.Argument(help="Policy name.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Detach a policy from a user."""
    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        service.detach_policy(s, _default_tid(s, tid), uid, name, actor=None)
        out.print(f"Policy {name!r} detached from Uid {uid}")


@policy_app.command("show")
def policy_show(
    uid: Annotated[str, typer.Argument(help="Uid of the user.")],
    tid: TidOpt = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show a user's role policies and attached policies."""
    from opendms.identity.policy import ROLE_POLICIES
    from opendms.identity.roles import parse_roles

    with runtime(data_dir, database_url) as rt, rt.store.session() as s:
        user = service.find_user(s, _default_tid(s, tid), uid=service.check_uid(uid))
        shown: dict[str, Any] = {
            f"role:{r.value}": ROLE_POLICIES[r].model_dump() for r in parse_roles(user.roles)
        }
        for name, doc in service.attached_policies(s, user.user_id):
            shown[name] = doc.model_dump()
    print(json.dumps(shown, indent=2))


# ------------------------------------------------------------------ reference


@app.command("actions")
def list_actions(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the DMS API actions this server answers, with their RAM action and access level."""
    table = build_table(actions.ALL)
    rows: list[dict[str, Any]] = [
        {
            "Action": a.name,
            "RamAction": a.ram_action,
            "AccessLevel": a.access.value,
            "Methods": ",".join(sorted(a.methods)),
            "Parameters": [f.alias or n for n, f in a.request.model_fields.items()],
            "Summary": a.summary,
            "Extension": a.extension,
        }
        for a in table.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    grid = Table("Action", "RAM action", "Access", "Parameters", "Summary")
    for r in rows:
        grid.add_row(
            r["Action"], r["RamAction"], r["AccessLevel"], ", ".join(r["Parameters"]), r["Summary"]
        )
    out.print(grid)


@app.command("errors")
def list_errors() -> None:
    """List the business error codes (ErrorCode with Success=false)."""
    grid = Table("ErrorCode", "Meaning")
    for code, text in DESCRIPTIONS.items():
        grid.add_row(code.value, text)
    out.print(grid)


def main() -> None:
    try:
        app()
    except DmsError as exc:
        err.print(f"error: {exc.code.value}: {exc.message}", markup=False, highlight=False)
        sys.exit(EXIT_FAILED)
    except CliError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(exc.exit_code)
    except StoreUnavailable as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(EXIT_NO_STORE)
    except SecretBoxError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(EXIT_FAILED)
    except SQLAlchemyError as exc:
        url = os.environ.get("OPENDMS_DATABASE_URL", "the metadata store")
        err.print(f"error: {describe_failure(url, exc)}", markup=False, highlight=False)
        sys.exit(EXIT_NO_STORE)
    except OSError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        sys.exit(EXIT_FAILED)
