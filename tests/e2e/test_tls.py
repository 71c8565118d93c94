"""``opendms serve --tls-cert --tls-key`` end to end: a self-signed certificate for 127.0.0.1
and localhost, the official SDKs over HTTPS trusting it the way their users would (the new
SDK through SSL_CERT_FILE, the old one through its own CA setting), clients that do not trust
it or do not speak TLS turned away, and download links that say https; behind a proxy on
this machine, links follow the scheme the proxy reports."""

from __future__ import annotations

import http.client
import os
import sqlite3
import ssl
from collections.abc import Iterator
from contextlib import closing
from urllib.parse import urlsplit

import httpx
import pytest
from alibabacloud_dms_enterprise20181101 import models as dms_models
from alibabacloud_dms_enterprise20181101.client import Client as DmsClient
from alibabacloud_tea_openapi.utils_models import Config
from aliyunsdkcore.acs_exception.exceptions import ClientException as OldClientException
from aliyunsdkdms_enterprise.request.v20181101.GetUserActiveTenantRequest import (
    GetUserActiveTenantRequest,
)
from darabonba.exceptions import UnretryableException

from tests.certs import TlsFiles, self_signed
from tests.e2e.conftest import (
    LOOPBACK,
    Creds,
    Dms,
    Server,
    old_sdk,
    running_server,
    trusting,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("server_still_healthy")]

SQL = b"UPDATE notes SET body = 'seen' WHERE id = 1;\n"
VERIFY_FAILED = "CERTIFICATE_VERIFY_FAILED"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(tls: TlsFiles) -> Iterator[Server]:
    with running_server(tls=tls) as s:
        yield s


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No CA setting from the developer's shell: each test says what a client trusts."""
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "ALIBABA_CLOUD_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)


def _sdk(server: Server, *, v1: bool = False, pool: int) -> DmsClient:
    """The new SDK as its user configures it for HTTPS. Its core keeps one connection pool,
    and with it the TLS context made when the pool was (reading SSL_CERT_FILE then), per
    host, port and pool size: a pool size of its own gives a test a context of its own."""
    cfg = Config(
        access_key_id=server.admin.access_key_id,
        access_key_secret=server.admin.access_key_secret,
        endpoint=server.endpoint,
        protocol="https",
        max_idle_conns=pool,
    )
    if v1:
        cfg.signature_algorithm = "v2"
    return DmsClient(cfg)


@pytest.mark.usefixtures("no_ca_env")
def test_the_new_sdk_works_over_https_trusting_the_certificate_through_ssl_cert_file(
    server: Server,
) -> None:
    assert server.tls is not None and server.scheme == "https"
    with trusting(server.tls.cert):
        assert os.environ["SSL_CERT_FILE"] == str(server.tls.cert)
        answers = [
            _sdk(server, v1=v1, pool=91 + v1).get_user_active_tenant(
                dms_models.GetUserActiveTenantRequest()
            )
            for v1 in (False, True)
        ]
    assert "SSL_CERT_FILE" not in os.environ  # put back as it was
    for resp in answers:
        assert resp.status_code == 200
        assert resp.body.success is True and resp.body.tenant.tid == server.admin.tid


@pytest.mark.usefixtures("no_ca_env")
def test_a_client_that_does_not_trust_the_certificate_is_turned_away(server: Server) -> None:
    with pytest.raises(UnretryableException, match=VERIFY_FAILED):
        _sdk(server, pool=93).get_user_active_tenant(dms_models.GetUserActiveTenantRequest())
    with pytest.raises(httpx.ConnectError, match=VERIFY_FAILED):
        httpx.get(server.base_url, trust_env=False, timeout=10)
    with pytest.raises(OldClientException, match=VERIFY_FAILED):
        _old_tenant(server, old_sdk(server.admin))


@pytest.mark.usefixtures("no_ca_env")
def test_the_old_sdk_trusts_the_certificate_through_its_own_setting_not_ssl_cert_file(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server.tls is not None
    cert = str(server.tls.cert)
    # aliyun-python-sdk-core verifies against its own bundled CAs: SSL_CERT_FILE is not read
    with trusting(server.tls.cert), pytest.raises(OldClientException, match=VERIFY_FAILED):
        _old_tenant(server, old_sdk(server.admin))
    # ... but ALIBABA_CLOUD_CA_BUNDLE is, and so is AcsClient(verify=...)
    monkeypatch.setenv("ALIBABA_CLOUD_CA_BUNDLE", cert)
    assert b'"Success":true' in _old_tenant(server, old_sdk(server.admin))
    monkeypatch.delenv("ALIBABA_CLOUD_CA_BUNDLE")
    assert b'"Success":true' in _old_tenant(server, old_sdk(server.admin, verify=cert))
    # the e2e helper's old flavour does the latter
    assert Dms(server, server.admin, "old").call("GetUserActiveTenant").success is True


def _old_tenant(server: Server, client: object) -> bytes:
    request = GetUserActiveTenantRequest()
    request.set_endpoint(server.endpoint)
    request.set_protocol_type("https")
    answer = client.do_action_with_exception(request)  # type: ignore[attr-defined]
    assert isinstance(answer, bytes)
    return answer


def test_plain_http_on_the_tls_port_gets_no_answer_and_harms_nothing(server: Server) -> None:
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{server.endpoint}/", trust_env=False, timeout=10)
    plain = http.client.HTTPConnection(LOOPBACK, server.port, timeout=10)
    with closing(plain), pytest.raises((OSError, http.client.HTTPException)):
        plain.request("GET", "/?Action=GetUserActiveTenant")
        plain.getresponse()
    assert server.proc.poll() is None
    signer = server.admin.signer(server)
    for resp in (  # the same port, over TLS: httpx, and http.client (big request lines)
        server.send(signer.v3("GetUserActiveTenant")),
        server.send_raw(signer.v1("GetUserActiveTenant")),
    ):
        assert resp.status_code == 200 and resp.json()["Success"] is True, resp.text


@pytest.mark.usefixtures("no_ca_env")
def test_download_links_say_https_and_work_over_it(server: Server) -> None:
    dms = Dms(server, server.admin, "v3")
    _, link = _attachment_link(server, dms, server.create_user("DBA"))
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc) == ("https", server.endpoint), link
    got = httpx.get(link, trust_env=False, timeout=30, verify=_trust(server))
    assert got.status_code == 200, got.text
    assert got.content == SQL


def test_behind_a_proxy_on_this_machine_links_follow_the_scheme_it_reports() -> None:
    """A reverse proxy on 127.0.0.1 that ends TLS says so in X-Forwarded-Proto (the README's
    nginx example), and the server, speaking plain HTTP, hands out https links."""
    with running_server() as plain:
        dms = Dms(plain, plain.admin, "v3")
        order_id, link = _attachment_link(plain, dms, plain.create_user("DBA"))
        assert link.startswith(f"http://{plain.endpoint}/files/"), link
        ask = plain.admin.signer(plain).v3("GetOrderAttachmentFile", {"OrderId": str(order_id)})
        ask.headers["x-forwarded-proto"] = "https"
        resp = plain.send(ask)
        assert resp.status_code == 200, resp.text
        proxied = resp.json()["FileUrl"]
        # the same file; its expiry (and so its signature) is of the second each was made in
        where, _, query = proxied.partition("?")
        assert where == "https" + link.partition("?")[0].removeprefix("http"), (proxied, link)
        assert "expires=" in query and "signature=" in query, proxied


# ------------------------------------------------------------------ helpers


def _trust(server: Server) -> ssl.SSLContext:
    context = server.ssl_context()
    assert context is not None
    return context


def _attachment_link(server: Server, dms: Dms, dba: Creds) -> tuple[int, str]:
    """A SQLite target added with AddInstance, a ticket whose SQL is an uploaded attachment
    (UploadFile, V3 over the body), and GetOrderAttachmentFile's link to it: (OrderId, link)."""
    targets = server.data_dir / "targets"
    targets.mkdir(mode=0o700, exist_ok=True)
    path = targets / "notes.db"
    with closing(sqlite3.connect(path)) as db, db:
        db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        db.execute("INSERT INTO notes VALUES (1, 'new')")
    path.chmod(0o600)
    added = dms.call(
        "AddInstance",
        instance_alias="notes",
        instance_source="VPC_IDC",
        network_type="VPC",
        env_type="dev",
        safe_rule="default",
        query_timeout=60,
        export_timeout=600,
        dba_id=dba.user_id,
        host=str(path),
        port=0,
        instance_type="sqlite",
        database_user="",
        database_password="",
    )
    assert added.success is True, dms.last_raw
    got = dms.call("GetInstance", host=str(path), port=0)
    assert got.success is True, dms.last_raw
    dbs = dms.call("ListDatabases", instance_id=str(got.instance.instance_id), page_size=10)
    (database,) = dbs.database_list.database

    upload = server.admin.signer(server).v3("UploadFile", {"FileName": "fix.sql"}, raw_body=SQL)
    uploaded = server.send(upload)
    assert uploaded.status_code == 200, uploaded.text
    key = uploaded.json()["AttachmentKey"]
    param = dms_models.CreateDataCorrectOrderRequestParam().from_map(
        {
            "DbItemList": [{"DbId": int(database.database_id), "Logic": False}],
            "EstimateAffectRows": 1,
            "SqlType": "ATTACHMENT",
            "AttachmentName": key,
        }
    )
    made = dms.call("CreateDataCorrectOrder", param=param, comment="tls", attachment_key=key)
    assert made.success is True, dms.last_raw
    (order_id,) = made.create_order_result
    link = dms.call("GetOrderAttachmentFile", order_id=order_id).file_url
    assert link, dms.last_raw
    return int(order_id), str(link)
