"""``opendms init`` and ``opendms serve``: the two commands that set up a data directory,
store and administrator where there are none; ``serve --demo`` also registers the demo
target and its DBA."""

from __future__ import annotations

import os
import secrets
import signal
import ssl
import stat
from contextlib import nullcontext
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from opendms.catalog import instances
from opendms.cli.common import CliError, Place, out, print_json, shared_options
from opendms.config import Settings
from opendms.identity import service as identity
from opendms.identity import sessions
from opendms.identity.secrets import SecretBox
from opendms.runtime import Runtime
from opendms.telemetry import logs, metrics

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
TlsCertOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-cert",
        help="Serve HTTPS with this PEM certificate (chain), with --tls-key "
        "(env OPENDMS_TLS_CERT).",
    ),
]
TlsKeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--tls-key",
        help="The certificate's PEM private key, unencrypted and owner-only (chmod 600) "
        "(env OPENDMS_TLS_KEY).",
    ),
]


@shared_options
def init(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    host: HostOpt = None,
    port: PortOpt = None,
    *,
    at: Place,
) -> None:
    """Create the store if missing, the default tenant and an administrator; print a fresh key.
    Its Endpoint is where `opendms serve` with the same settings (--host, --port, or
    OPENDMS_HOST / OPENDMS_PORT) listens."""
    with at.runtime(setup=True, host=host, port=port) as rt, rt.store.session() as s:
        boot = identity.bootstrap_admin(s, rt.means.secrets)
        result = {
            "Tid": boot.tenant.tid,
            "Uid": boot.admin.uid,
            "UserName": boot.admin.nick_name,
            "AccessKeyId": boot.access_key_id,
            "AccessKeySecret": boot.access_key_secret,
            "Endpoint": rt.settings.endpoint,
        }
    if as_json:
        print_json(result)
        return
    print_credentials(result)


def print_credentials(
    result: dict[str, Any], title: str = "OpenDMS administrator (the secret is shown once)"
) -> None:
    table = Table(show_header=False, title=title)
    for k, v in result.items():
        table.add_row(k, str(v))
    out.print(table)


@shared_options
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
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
    *,
    at: Place,
) -> None:
    """Run the DMS API with its job runner (prechecks, executions, exports, uploads): create
    the data directory, store and an administrator on first start. With --tls-cert and
    --tls-key it speaks HTTPS on the same port."""
    import uvicorn

    given = dict(host=host, port=port, workers=workers, tls_cert=tls_cert, tls_key=tls_key)
    check_tls(at.settings(**given))
    with at.runtime(setup=True, **given) as rt:
        settings = rt.settings
        with rt.store.session() as s:
            fresh = not identity.list_tenants(s)
            boot = identity.bootstrap_admin(s, rt.means.secrets) if fresh else None
            password = _console_password(s, boot.admin.uid) if boot is not None else None
        console = f"{'https' if settings.tls_cert else 'http'}://{settings.endpoint}/console/"
        if boot is not None:
            print_credentials(
                {
                    "Tid": boot.tenant.tid,
                    "Uid": boot.admin.uid,
                    "AccessKeyId": boot.access_key_id,
                    "AccessKeySecret": boot.access_key_secret,
                    "Endpoint": settings.endpoint,
                    "Console": console,
                    "Username": boot.admin.nick_name,
                    "Password": password,
                },
                title="OpenDMS administrator (the secret and password are shown once)",
            )
        else:
            out.print(
                f"Endpoint {settings.endpoint}. Use the access key printed at first start, or "
                "`opendms init --json` for a fresh one."
            )
            out.print(
                f"Console {console}. Sign in with the password printed at first start, or set "
                "one with `opendms user password <Uid>`."
            )
        if settings.tls_cert is not None:
            out.print(
                f'HTTPS with {settings.tls_cert}: clients set protocol "https" and trust it '
                "(SSL_CERT_FILE for the SDK, ALIBABA_CLOUD_CA_BUNDLE for the older one)."
            )
        if demo:
            _register_demo(rt)
    os.environ.update(settings.environ())
    # uvicorn stops gracefully on SIGTERM (the lifespan's end: the step a job runner is in
    # finishes and is recorded), then raises the signal again for the handler that was there
    # before it: this one, so that a stop asked for and done exits 0, not killed by it.
    signal.signal(signal.SIGTERM, _stopped)
    # Worker processes share the port: a scrape of /metrics reaches any one of them, and
    # each must answer for all.
    shared = metrics.shared_between_processes() if settings.workers > 1 else nullcontext()
    with shared:
        uvicorn.run(
            "opendms.app:create_app",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            # h11, not httptools: httptools refuses request lines over 64 KiB, and DMS clients
            # put big SQL in the URL. The slack lets the app answer a slightly-too-long line
            # with a JSON 413 instead of the server's plain-text 400.
            http="h11",
            loop="uvloop",
            h11_max_incomplete_event_size=settings.max_request_bytes + 1024 * 1024,
            access_log=False,
            log_config=logs.log_config(settings.log_format),
            timeout_keep_alive=30,
            ssl_certfile=settings.tls_cert,
            ssl_keyfile=settings.tls_key,
        )


def check_tls(settings: Settings) -> None:
    """The certificate and key ``serve`` would speak HTTPS with, loaded as uvicorn will load
    them, so that a mistake is one line and no listening socket (uvicorn's own failure is a
    traceback). A private key others may read is refused, as ssh refuses one."""
    cert, key = settings.tls_cert, settings.tls_key
    if cert is None and key is None:
        return
    if cert is None or key is None:
        raise CliError(
            "--tls-cert and --tls-key (OPENDMS_TLS_CERT, OPENDMS_TLS_KEY) go together: give "
            "both to serve HTTPS, or neither for plain HTTP"
        )
    _readable(cert, "certificate")
    _readable(key, "key")
    mode = stat.S_IMODE(key.stat().st_mode)
    if mode & 0o077:
        raise CliError(
            f"TLS key {key} may be read or written by others (mode {mode:04o}): "
            f"run `chmod 600 {key}`"
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=cert)
    except ssl.SSLError as exc:
        raise CliError(f"TLS certificate {cert} holds no PEM certificate ({exc})") from exc
    try:
        # A password callback, or OpenSSL would prompt on the terminal for an encrypted key.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        raise CliError(_key_problem(cert, key)) from exc


def _readable(path: Path, what: str) -> None:
    try:
        path.open("rb").close()
    except OSError as exc:
        raise CliError(f"cannot read TLS {what} {path}: {exc.strerror or exc}") from exc


def _key_problem(cert: Path, key: Path) -> str:
    """Why a key that ssl refused beside a good certificate is wrong: OpenSSL's own reasons
    differ from version to version, so the key is read on its own."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        load_pem_private_key(key.read_bytes(), password=None)
    except TypeError:
        return f"TLS key {key} is encrypted: serve needs it unencrypted (owner-only instead)"
    except (ValueError, UnsupportedAlgorithm):
        return f"TLS key {key} holds no PEM private key"
    return f"TLS key {key} does not match the certificate {cert}"


def _stopped(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


DEMO_DBA = "demo-dba"


def _register_demo(rt: Runtime) -> None:
    """The demo target, and the people a first ticket needs: the administrator files it, and
    ``demo-dba``, the target's DBA, approves it (nobody approves their own ticket)."""
    from opendms.targets.demo import ensure_demo_target

    path = ensure_demo_target(rt.settings.sqlite_targets)
    with rt.store.session() as s:
        boot_tid = identity.list_tenants(s)[0].tid
        dba_id, dba_uid, secret = _demo_dba(s, rt.means.secrets, boot_tid)
        inst = instances.ensure_registered(
            s,
            rt.means.secrets,
            rt.means.targets,
            boot_tid,
            instances.InstanceSpec(
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
        print_credentials(
            {
                "Uid": dba_uid,
                "Nick": DEMO_DBA,
                "AccessKeyId": secret[0],
                "AccessKeySecret": secret[1],
                "Username": DEMO_DBA,
                "Password": secret[2],
            },
            title=f"{DEMO_DBA}, the demo target's DBA (the secret and password are shown once)",
        )


def _demo_dba(s: Session, box: SecretBox, tid: int) -> tuple[int, str, tuple[str, str, str] | None]:
    """The demo's DBA (UserId, Uid), made with an access key and a console password
    (returned) on the first start."""
    found = identity.user_by_nick(s, tid, DEMO_DBA)
    if found is not None:
        return found.user_id, found.uid, None
    user = identity.register_user(s, None, tid, identity.new_uid(), nick_name=DEMO_DBA, roles="DBA")
    key, secret = identity.create_access_key(s, box, user.uid, actor=None)
    return user.user_id, user.uid, (key.access_key_id, secret, _console_password(s, user.uid))


def _console_password(s: Session, uid: str) -> str:
    """A made-up password for the web console, set on the account and shown once."""
    password = secrets.token_urlsafe(15)
    sessions.set_password(s, uid, password)
    return password
