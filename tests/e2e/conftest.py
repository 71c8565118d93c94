"""End-to-end fixtures: a real ``opendms serve`` process on a free port, driven over HTTP by the
official SDKs (the new Tea SDK with V3 or V1 signing, and the old ``aliyunsdkcore`` one).

Servers are started once per test module (``server``); a module that needs different settings
starts its own with :func:`running_server`. Extra tenants, users, keys and policies are made
with the ``opendms`` CLI against the server's data directory, as an operator would.
"""

from __future__ import annotations

import functools
import http.client
import importlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models
from alibabacloud_dms_enterprise20181101.client import Client as DmsClient
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ClientException,
    ServerException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.acs_exception.exceptions import ServerException as OldServerException
from aliyunsdkcore.client import AcsClient

from tests import sdk_spec
from tests.certs import TlsFiles
from tests.cli_support import opendms
from tests.conftest import mysql_database, pg_database, require_service
from tests.e2e.mariadb_server import CannotStart, MariadbServer, second_mariadb
from tests.signer import Prepared, Signer

ROOT = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
START_TIMEOUT = 30.0
REQUEST_ID = re.compile(r"^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$")

Flavor = Literal["v3", "v1", "old"]
FLAVORS: tuple[Flavor, ...] = ("v3", "v1", "old")
NEW_SDK_FLAVORS: tuple[Flavor, ...] = ("v3", "v1")


def _opendms_bin() -> str:
    for candidate in (ROOT / ".venv" / "bin" / "opendms", Path(sys.executable).parent / "opendms"):
        if candidate.exists():
            return str(candidate)
    raise RuntimeError("the opendms console script is not installed in the venv")


OPENDMS = _opendms_bin()


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test process's environment without any OPENDMS_* knob of the developer's shell
    (a stray OPENDMS_DATABASE_URL would point the server elsewhere), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENDMS_")}
    env.update({"PYTHONUNBUFFERED": "1", "COLUMNS": "200", "NO_COLOR": "1"})
    for name in ("no_proxy", "NO_PROXY"):
        env[name] = _with_loopback(env.get(name, ""))
    env.update(extra or {})
    return env


def _with_loopback(value: str) -> str:
    items = [v for v in value.split(",") if v]
    for host in (LOOPBACK, "localhost"):
        if host not in items:
            items.append(host)
    return ",".join(items)


@pytest.fixture(scope="session", autouse=True)
def _no_proxy_for_loopback() -> Iterator[None]:
    """The SDKs honour HTTP(S)_PROXY; loopback calls must never go through a proxy."""
    saved = {k: os.environ.get(k) for k in ("no_proxy", "NO_PROXY")}
    for name in saved:
        os.environ[name] = _with_loopback(os.environ.get(name, ""))
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# ------------------------------------------------------------------ the server process


@dataclass(frozen=True)
class Creds:
    """An access key and whom it belongs to."""

    tid: int
    uid: str
    access_key_id: str
    access_key_secret: str
    user_id: int | None = None

    def signer(self, server: Server) -> Signer:
        """A raw request signer (tests/signer.py) whose Host header matches the server."""
        return Signer(self.access_key_id, self.access_key_secret, host=server.endpoint)

    @classmethod
    def from_cli(cls, out: str) -> Creds:
        """From what ``opendms user create --with-key`` prints."""
        made = json.loads(out)
        return cls(
            tid=int(made["Tid"]),
            uid=str(made["Uid"]),
            access_key_id=made["AccessKeyId"],
            access_key_secret=made["AccessKeySecret"],
            user_id=int(made["UserId"]),
        )


def refused(resp: Any, code: str, *fragments: str) -> str:
    """A business error through the SDK: HTTP 200 (the SDK did not raise), Success false,
    the code, and a message containing every fragment."""
    assert resp.success is False, resp.to_map()
    assert resp.error_code == code, resp.to_map()
    assert REQUEST_ID.match(resp.request_id)
    message = str(resp.error_message or "")
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


@dataclass
class Server:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes]
    stderr_path: Path
    stdout_path: Path
    init: dict[str, Any]  # the JSON printed by `opendms init --json`
    admin: Creds
    env: dict[str, str]
    tls: TlsFiles | None = None  # served over HTTPS with this certificate

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def scheme(self) -> Literal["http", "https"]:
        """What the SDKs' ``protocol`` says to reach this server."""
        return "https" if self.tls is not None else "http"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context that trusts this server's certificate (None: plain HTTP)."""
        if self.tls is None:
            return None
        return ssl.create_default_context(cafile=str(self.tls.cert))

    def kill_and_restart(self) -> None:
        """SIGKILL the server (no shutdown of any kind), then serve the same data directory
        on the same port again: a crash and a restart."""
        self.kill()
        self.serve_again()

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        self.proc.kill()
        self.proc.wait(timeout=10)

    def serve_again(self) -> None:
        """Serve the same data directory on the same port again (after ``kill``)."""
        with self.stderr_path.open("ab") as err, self.stdout_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [OPENDMS, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)],
                stdout=out,
                stderr=err,
                env=self.env,
                cwd=self.data_dir.parent,
            )
        wait_until_listening(self.proc, self.port, self.stderr_path)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://{self.endpoint}"

    # -- logs

    def log(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def log_line(self, request_id: str, timeout: float = 5.0) -> str:
        """The server's log line for ``request_id`` (``request_id=<id>``); fails if absent."""
        needle = f"request_id={request_id}"
        deadline = time.monotonic() + timeout
        while True:
            for line in self.log().splitlines():
                if needle in line:
                    return line
            if time.monotonic() > deadline:
                tail = "\n".join(self.log().splitlines()[-20:])
                pytest.fail(f"{needle} not in the server log; its tail:\n{tail}")
            time.sleep(0.05)

    # -- the operator's CLI

    def cli(self, *args: str) -> str:
        """``opendms <args> --data-dir DIR``, the operator's CLI on the server's data directory
        (run in this process: tests/cli_support.py); returns stdout, fails the test on a
        non-zero exit."""
        done = opendms(*args, data_dir=self.data_dir, ok=False)
        if done.returncode != 0:
            pytest.fail(
                f"opendms {' '.join(args)} exited {done.returncode}:\n{done.stderr}{done.stdout}"
            )
        return done.stdout

    def create_tenant(self, name: str) -> int:
        out = self.cli("tenant", "create", name)
        found = re.search(r"Tid (\d+)", out)
        assert found, out
        return int(found.group(1))

    def create_user(
        self, roles: str = "USER", *, tid: int | None = None, uid: str | None = None, nick: str = ""
    ) -> Creds:
        """A user with a fresh access key (``opendms user create --with-key``)."""
        args = ["user", "create", "--roles", roles, "--with-key"]
        if tid is not None:
            args += ["--tid", str(tid)]
        if uid is not None:
            args += ["--uid", uid]
        if nick:
            args += ["--nick", nick]
        return Creds.from_cli(self.cli(*args))

    # -- raw HTTP

    def send(self, prepared: Prepared, timeout: float = 60.0) -> httpx.Response:
        """Send a request built by tests/signer.py exactly as prepared, with httpx."""
        with httpx.Client(
            base_url=self.base_url,
            trust_env=False,
            timeout=timeout,
            verify=self.ssl_context() or True,
        ) as http:
            return http.request(
                prepared.method, prepared.url, headers=prepared.headers, content=prepared.body
            )

    def send_raw(self, prepared: Prepared, timeout: float = 120.0) -> httpx.Response:
        """Like :meth:`send`, through ``http.client``: httpx refuses URLs over 64 KiB, and the
        point of some tests is a request line of many MiB. Sends only the prepared headers
        (plus Content-Length) and wraps the answer in an ``httpx.Response``."""
        context = self.ssl_context()
        conn = (
            http.client.HTTPSConnection(LOOPBACK, self.port, timeout=timeout, context=context)
            if context is not None
            else http.client.HTTPConnection(LOOPBACK, self.port, timeout=timeout)
        )
        try:
            conn.putrequest(
                prepared.method, prepared.url, skip_host=True, skip_accept_encoding=True
            )
            for name, value in prepared.headers.items():
                conn.putheader(name, value)
            conn.putheader("content-length", str(len(prepared.body)))
            conn.endheaders(prepared.body or None)
            answer = conn.getresponse()
            return httpx.Response(answer.status, headers=answer.getheaders(), content=answer.read())
        finally:
            conn.close()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, stderr_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"opendms serve exited with {proc.returncode} before listening:\n"
                + stderr_path.read_text(errors="replace")
            )
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(
        f"opendms serve did not listen on {port} within {START_TIMEOUT:.0f}s:\n"
        + stderr_path.read_text(errors="replace")
    )


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


@contextmanager
def running_server(
    env: dict[str, str] | None = None, *, tls: TlsFiles | None = None
) -> Iterator[Server]:
    """A fresh data directory, ``opendms init --json``, then ``opendms serve`` on a free port,
    stopped (SIGTERM, then SIGKILL) when the block ends. ``env``: extra OPENDMS_* settings.
    ``tls``: serve HTTPS with this certificate (tests/certs.py), given as OPENDMS_TLS_CERT
    and OPENDMS_TLS_KEY so that a restart keeps it; clients then trust it (``trusting``)."""
    with tempfile.TemporaryDirectory(prefix="opendms-e2e-") as tmp:
        data_dir = Path(tmp) / "data"
        if tls is not None:
            env = {
                **(env or {}),
                "OPENDMS_TLS_CERT": str(tls.cert),
                "OPENDMS_TLS_KEY": str(tls.key),
            }
        child_env = _child_env(env)
        done = opendms("init", "--json", data_dir=data_dir, ok=False)
        if done.returncode != 0:
            pytest.fail(f"opendms init failed ({done.returncode}):\n{done.stderr}{done.stdout}")
        init = json.loads(done.stdout)
        assert set(init) >= {
            "Tid",
            "Uid",
            "UserName",
            "AccessKeyId",
            "AccessKeySecret",
            "Endpoint",
        }, init
        admin = Creds(
            int(init["Tid"]), str(init["Uid"]), init["AccessKeyId"], init["AccessKeySecret"]
        )

        last_error: Exception | None = None
        for attempt in range(3):  # another process may grab the free port before we bind it
            port = free_port()
            stderr_path = Path(tmp) / f"server-{attempt}.stderr.log"
            stdout_path = Path(tmp) / f"server-{attempt}.stdout.log"
            with stderr_path.open("wb") as err, stdout_path.open("wb") as out:
                proc = subprocess.Popen(
                    [OPENDMS, "serve", "--data-dir", str(data_dir), "--port", str(port)],
                    stdout=out,
                    stderr=err,
                    env=child_env,
                    cwd=tmp,
                )
            try:
                wait_until_listening(proc, port, stderr_path)
            except (RuntimeError, TimeoutError) as exc:
                stop_server(proc)
                last_error = exc
                if "address already in use" in str(exc).lower():
                    continue
                pytest.fail(str(exc))
            server = Server(
                data_dir, port, proc, stderr_path, stdout_path, init, admin, child_env, tls
            )
            try:
                yield server
            finally:
                stop_server(server.proc)
            return
        pytest.fail(f"could not start opendms serve: {last_error}")


@pytest.fixture(scope="session")
def other_mariadb() -> Iterator[MariadbServer]:
    """A second MariaDB server of this test session (``tests/e2e/mariadb_server.py``): the
    product stage of a schema design whose dev stage is the shared server. It fails the test
    in CI when it cannot start, and skips it elsewhere."""
    try:
        with second_mariadb() as found:
            yield found
    except CannotStart as exc:
        require_service("A second MariaDB server", str(exc))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    """One server per test module, with default settings and its bootstrap administrator."""
    with running_server() as s:
        yield s


# ------------------------------------------------------------------ clients


@contextmanager
def trusting(cert: Path | None) -> Iterator[None]:
    """``SSL_CERT_FILE=cert`` in this process's environment for the block (nothing for None).

    The new SDK's core (darabonba) verifies with ``ssl.create_default_context()``, which reads
    SSL_CERT_FILE, plus certifi's bundle; it makes that context with the connection pool of a
    host, port and pool size (``Config.max_idle_conns``) and keeps it for the process."""
    if cert is None:
        yield
        return
    saved = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(cert)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = saved


def new_sdk(server: Server, creds: Creds, *, v1: bool = False, secret: str | None = None) -> Any:
    """The new SDK's DMS client: V3 (ACS3-HMAC-SHA256) by default, V1 (HMAC-SHA1) with v1;
    HTTPS when the server speaks it (the caller trusts its certificate: ``trusting``)."""
    cfg = Config(
        access_key_id=creds.access_key_id,
        access_key_secret=secret if secret is not None else creds.access_key_secret,
        endpoint=server.endpoint,
        protocol=server.scheme,
        read_timeout=60_000,
        connect_timeout=5_000,
    )
    if v1:
        cfg.signature_algorithm = "v2"
    return DmsClient(cfg)


def old_sdk(creds: Creds, *, secret: str | None = None, verify: str | None = None) -> AcsClient:
    """The old SDK's client; ``verify``: the CA file it trusts for HTTPS (its own
    ALIBABA_CLOUD_CA_BUNDLE otherwise, else its bundled CAs; it ignores SSL_CERT_FILE)."""
    return AcsClient(
        creds.access_key_id,
        secret if secret is not None else creds.access_key_secret,
        "cn-hangzhou",
        verify=verify,
    )


@dataclass(frozen=True)
class Failure:
    """A gateway error as either SDK generation reports it."""

    status: int
    code: str
    request_id: str
    body: dict[str, Any] | None  # the parsed error body (new SDK only)
    exc: Exception


class Dms:
    """One caller seen through one client flavour.

    ``call`` returns the new SDK's parsed ``<Action>ResponseBody`` model for every flavour: for
    the old SDK the JSON it returns is parsed with the same model, so one set of assertions
    checks that both generations understand the response.
    """

    def __init__(self, server: Server, creds: Creds, flavor: Flavor, secret: str | None = None):
        self.server = server
        self.creds = creds
        self.flavor = flavor
        self.last_raw: dict[str, Any] | None = None
        if flavor == "old":
            tls = server.tls
            self.old: AcsClient = old_sdk(
                creds, secret=secret, verify=str(tls.cert) if tls is not None else None
            )
        else:
            self.sdk = new_sdk(server, creds, v1=flavor == "v1", secret=secret)

    def call(self, action: str, **params: Any) -> Any:
        request = getattr(dms_models, f"{action}Request")(**params)
        if self.flavor == "old":
            raw = self._old_call(action, request.to_map())
            self.last_raw = raw
            return getattr(dms_models, f"{action}ResponseBody")().from_map(raw)
        with trusting(self.server.tls.cert if self.server.tls is not None else None):
            resp = getattr(self.sdk, sdk_spec.method_name(action, options=False))(request)
        assert resp.status_code == 200
        self.last_raw = resp.body.to_map()
        return resp.body

    def _old_call(self, action: str, wire_params: dict[str, Any]) -> dict[str, Any]:
        module = importlib.import_module(
            f"aliyunsdkdms_enterprise.request.v20181101.{action}Request"
        )
        request = getattr(module, f"{action}Request")()
        for name, value in wire_params.items():
            getattr(request, f"set_{name}")(value)
        request.set_endpoint(self.server.endpoint)
        request.set_protocol_type(self.server.scheme)
        body = self.old.do_action_with_exception(request)
        parsed = json.loads(body)
        assert isinstance(parsed, dict)
        return parsed

    def fail(self, action: str, **params: Any) -> Failure:
        """Call ``action`` expecting a gateway error (an exception from either SDK)."""
        try:
            self.call(action, **params)
        except (ClientException, ServerException, ThrottlingException, OldServerException) as exc:
            return failure_of(exc)
        pytest.fail(f"{action} via {self.flavor} succeeded; a gateway error was expected")


def failure_of(exc: AlibabaCloudException | OldServerException) -> Failure:
    """A gateway error as either SDK reports it (the old one keeps no body)."""
    if isinstance(exc, OldServerException):
        return Failure(
            int(exc.get_http_status()),
            str(exc.get_error_code()),
            str(exc.get_request_id()),
            None,
            exc,
        )
    data = dict(exc.data or {})
    data.pop("statusCode", None)
    return Failure(int(exc.status_code), str(exc.code), str(exc.request_id), data, exc)


# ------------------------------------------------------------------ assertions


def assert_error_body(
    server: Server, body: dict[str, Any], status: int, code: str, *, logged: bool = True
) -> None:
    """A gateway error body (dms-api.md C.2) whose RequestId the server logged (``logged``)."""
    assert {"RequestId", "HostId", "Code", "Message"} <= set(body), body
    assert body["Code"] == code, body
    assert REQUEST_ID.match(body["RequestId"]), body
    assert body["HostId"] == server.endpoint, body  # the Host the client sent
    assert isinstance(body["Message"], str) and body["Message"], body
    if logged:
        line = server.log_line(body["RequestId"])
        assert f"status={status}" in line, line
        assert f"code={code}" in line, line


def assert_http_error(
    server: Server, resp: httpx.Response, status: int, code: str, *, logged: bool = True
) -> dict[str, Any]:
    """A raw HTTP gateway error: status, JSON content type, the C.2 body, the log line."""
    assert resp.status_code == status, (resp.status_code, resp.text[:500])
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert isinstance(body, dict)
    assert_error_body(server, body, status, code, logged=logged)
    return body


def assert_failure(server: Server, failure: Failure, status: int, code: str) -> None:
    assert (failure.status, failure.code) == (status, code), failure
    assert REQUEST_ID.match(failure.request_id), failure
    if failure.body is not None:
        assert failure.body["RequestId"] == failure.request_id
        assert_error_body(server, failure.body, status, code)
    else:
        line = server.log_line(failure.request_id)
        assert f"code={code}" in line, line


# ------------------------------------------------------------------ helpers for busy modules


def cli_batch(server: Server, commands: list[list[str]]) -> list[str]:
    """:meth:`Server.cli` for each command; each one's stdout."""
    return [server.cli(*command) for command in commands]


@pytest.fixture(scope="module")
def server_still_healthy(server: Server) -> Iterator[None]:
    """After the module, its server still runs and logged no traceback. A module asks for it
    with ``pytestmark``: ``pytest.mark.usefixtures("server_still_healthy")``."""
    yield
    assert server.proc.poll() is None, server.log()[-2000:]
    assert "Traceback" not in server.log(), server.log()[-4000:]


def new_tenants(server: Server, *names: str) -> list[int]:
    """A tenant per name (``opendms tenant create``); their Tids."""
    return [server.create_tenant(name) for name in names]


def new_users(server: Server, specs: Sequence[tuple[str, int | None, str]]) -> list[Creds]:
    """A user with a fresh access key per (roles, tid, nick); tid None: the first tenant."""
    return [server.create_user(roles, tid=tid, nick=nick) for roles, tid, nick in specs]


def base_info(dms: Dms, order_id: int) -> Any:
    """GetOrderBaseInfo's OrderBaseInfo of a ticket."""
    resp = dms.call("GetOrderBaseInfo", order_id=order_id)
    assert resp.success is True, dms.last_raw
    return resp.order_base_info


def register_instance(
    dms: Dms, dba: Creds, *, engine: str, port: int, user: str, sid: str = "", alias: str = ""
) -> int:
    """The test MariaDB or PostgreSQL server (``sid``: the PostgreSQL database to connect to)
    registered with RegisterInstance in the dev environment, ``dba`` its DBA; its InstanceId.
    The alias defaults to ``<engine>-<sid or port>``."""
    resp = dms.call(
        "RegisterInstance",
        instance_alias=alias or f"{engine}-{sid or port}",
        instance_source="VPC_IDC",
        network_type="VPC",
        env_type="dev",
        safe_rule="default",
        query_timeout=60,
        export_timeout=600,
        dba_uid=dba.user_id,
        host="127.0.0.1",
        port=port,
        sid=sid or None,
        instance_type=engine,
        database_user=user,
        database_password="",
    )
    assert resp.success, dms.last_raw
    got = dms.call("GetInstance", host="127.0.0.1", port=port, sid=sid or None)
    assert got.success, dms.last_raw
    return int(got.instance.instance_id)


def file_change(
    dms: Dms, db_id: int, sql: str, rows: int = 1, comment: str = "fix", **param: Any
) -> int:
    """A DC_COMMON ticket filed with CreateDataCorrectOrder; its OrderId. ``param``: more
    of its Param (RollbackSQL, ExecMode…)."""
    request = dms_models.CreateDataCorrectOrderRequestParam().from_map(
        {
            "DbItemList": [{"DbId": db_id, "Logic": False}],
            "EstimateAffectRows": rows,
            "SqlType": "TEXT",
            "ExecSQL": sql,
            **param,
        }
    )
    resp = dms.call("CreateDataCorrectOrder", param=request, comment=comment)
    assert resp.success is True, dms.last_raw
    (order_id,) = resp.create_order_result
    assert isinstance(order_id, int) and order_id > 0
    return order_id


def grant_correct(admin: Dms, user_id: int, *db_ids: int, perms: str = "CORRECT") -> None:
    """``perms`` (CORRECT: what a committer's precheck asks for) on each database."""
    for db_id in db_ids:
        resp = admin.call(
            "GrantUserPermission",
            user_id=str(user_id),
            ds_type="DATABASE",
            db_id=str(db_id),
            logic=False,
            perm_types=perms,
            expire_date="2099-01-01 00:00:00",
        )
        assert resp.success is True, admin.last_raw


def file_export(dms: Dms, db_id: int, sql: str, rows: int) -> int:
    """A DATA_EXPORT ticket of ``sql`` stating ``rows``, filed with CreateDataExportOrder;
    its OrderId."""
    param = dms_models.CreateDataExportOrderRequestPluginParam().from_map(
        {
            "DbId": db_id,
            "Logic": False,
            "ExeSQL": sql,
            "Classify": "e2e",
            "AffectRows": rows,
            "IgnoreAffectRows": False,
        }
    )
    made = dms.call("CreateDataExportOrder", plugin_param=param, comment="export")
    assert made.success is True, dms.last_raw
    (order_id,) = made.create_order_result.create_order_result
    return int(order_id)


def export_status(dms: Dms, order_id: int) -> str:
    """An export ticket's JobStatus (GetDataExportOrderDetail)."""
    resp = dms.call("GetDataExportOrderDetail", order_id=order_id)
    assert resp.success is True, dms.last_raw
    return str(resp.data_export_order_detail.key_info.job_status)


def export_settled(dms: Dms, order_id: int, *passing: str, timeout: float = 180.0) -> str:
    """The export status once it is no longer one of ``passing``."""
    return str(
        wait_for(
            f"ticket {order_id} to leave {passing}",
            lambda: s if (s := export_status(dms, order_id)) not in passing else None,
            timeout=timeout,
        )
    )


def prechecked(dms: Dms, order_id: int, timeout: float = 60.0) -> Any:
    """GetDataCorrectOrderDetail once the server's runner finished the ticket's precheck."""
    deadline = time.monotonic() + timeout
    while True:
        resp = dms.call("GetDataCorrectOrderDetail", order_id=order_id)
        assert resp.success is True, dms.last_raw
        detail = resp.data_correct_order_detail
        if detail.status not in ("new", "precheck"):
            return detail
        assert time.monotonic() < deadline, f"precheck of {order_id} still {detail.status}"
        time.sleep(0.1)


@contextmanager
def target_database(
    engine: str, *setup: str
) -> Iterator[tuple[str, Callable[[str], Any], dict[str, Any]]]:
    """A fresh MariaDB or PostgreSQL database with ``setup`` run in it; (its name, a query
    function, the AddInstance parameters that reach it)."""
    if engine == "mariadb":
        with mysql_database() as (name, conn):

            def query(sql: str) -> Any:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    return cur.fetchall()

            for statement in setup:
                query(statement)
            yield name, query, {"instance_type": "mariadb", "port": 3306, "database_user": "root"}
    else:
        with pg_database() as (name, conn):

            def query(sql: str) -> Any:
                cur = conn.execute(sql)
                return cur.fetchall() if cur.description else []

            for statement in setup:
                query(statement)
            yield (
                name,
                query,
                {
                    "instance_type": "postgresql",
                    "port": 5432,
                    "database_user": "postgres",
                    "sid": name,
                },
            )


def wait_for(
    what: str, check: Callable[[], Any], timeout: float = 120.0, every: float = 0.05
) -> Any:
    """Poll ``check`` every ``every`` seconds until it returns something truthy; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f}s waiting for {what}"
        time.sleep(every)


def register_target(
    server: Server, admin: Dms, name: str, where: dict[str, Any], alias: str, *ticket_types: str
) -> int:
    """Database ``name`` (of ``target_database``) as an instance registered by ``admin``, its
    DBA, with a rule set under which tickets of ``ticket_types`` need no approval: its DbId.
    The rule set ("free") is the tenant's one: registering another target puts its own in
    force, so a test with several targets names every type it files on each."""
    path = server.data_dir.parent / f"{alias}.rules.yaml"
    path.write_text(
        "templates: {LOW: DBA, MIDDLE: DBA, HIGH: DBA, HIGHEST: DBA}\n"
        "rules:\n"
        f"  - name: {', '.join(ticket_types)} tickets need no approval here\n"
        f"    when: {{ticket_types: [{', '.join(ticket_types)}]}}\n"
        "    risk: NONE\n",
        encoding="utf-8",
    )
    cli_batch(server, [["rules", "load", str(path), "--name", "free"]])
    me = admin.call("GetUser", uid=server.admin.uid)
    assert me.success is True, admin.last_raw
    added = admin.call(
        "AddInstance",
        instance_alias=alias,
        instance_source="VPC_IDC",
        network_type="VPC",
        env_type="product",
        safe_rule="free",
        query_timeout=60,
        export_timeout=600,
        dba_id=int(me.user.user_id),
        host="127.0.0.1",
        database_password="",
        **where,
    )
    assert added.success is True, admin.last_raw
    return database_id(admin, name, where["port"])


def database_id(admin: Dms, name: str, port: int) -> int:
    """The DbId of the test database: schema ``name`` on MariaDB, ``name``.public on
    PostgreSQL."""
    inst = admin.call("GetInstance", host="127.0.0.1", port=port)
    assert inst.success is True, admin.last_raw
    found = admin.call("ListDatabases", instance_id=str(inst.instance.instance_id), page_size=1000)
    assert found.success is True, admin.last_raw
    ids = [
        int(d.database_id)
        for d in found.database_list.database
        if name in (d.schema_name, d.catalog_name) and d.schema_name in (name, "public")
    ]
    assert len(ids) == 1, admin.last_raw
    return ids[0]


class _QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# What a server needs to fetch uploads from ``serving``: loopback is no public address.
SERVING_UPLOADS = {"OPENDMS_UPLOAD_HOSTS": "127.0.0.1"}


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """A loopback http.server serving ``directory`` (what CreateUploadFileJob fetches, on a
    server started with ``SERVING_UPLOADS``); its base URL. Any path not in it is a 404."""
    httpd = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietFiles, directory=str(directory))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
