"""Upload jobs against a real HTTP server on loopback, and the signed download route."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from opendms.files import service as files
from opendms.files.service import LinkSigner
from opendms.identity.caller import Caller
from opendms.identity.roles import Role
from opendms.store.models import Attachment, User
from tests.conftest import Api

BODY = b"UPDATE orders SET status = 'paid' WHERE id = 1;\n" * 100


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/fix.sql":
            self.send_response(200)
            self.send_header("content-length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/moved":
            self.send_response(302)
            self.send_header("location", "http://10.0.0.1/fix.sql")
            self.end_headers()
        else:
            self.send_response(404)
            self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def origin() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def _admin(api: Api) -> Caller:
    with api.store.session() as s:
        admin = s.scalars(select(User).where(User.uid == api.admin_uid)).one()
        return Caller("AK", admin.uid, admin.user_id, api.tid, "t", (Role.ADMIN,))


def _job(api: Api, url: str, max_bytes: int = 1 << 20):
    services = api.client.app.services
    with api.store.session() as s:
        return files.create_upload_job(
            s,
            services.files,
            _admin(api),
            url=url,
            file_name="fix.sql",
            source="datacorrect",
            limits=files.UploadLimits(max_bytes, 10),
            targets=services.targets,
        )


def test_fetch_stores_content_addressed(api: Api, origin: str) -> None:
    job = _job(api, f"{origin}/fix.sql")
    assert (job.status, job.file_size) == ("SUCCESS", len(BODY))
    with api.store.session() as s:
        attachment = s.get(Attachment, job.attachment_key)
        assert attachment is not None
        path = api.client.app.services.files.path_for(attachment.sha256)
    assert path.read_bytes() == BODY
    again = _job(api, f"{origin}/fix.sql")  # same content, stored once, new key
    assert again.attachment_key != job.attachment_key
    assert len(list(path.parent.iterdir())) == 1


@pytest.mark.parametrize(
    ("path", "max_bytes", "why"),
    [("/missing", 1 << 20, "404"), ("/fix.sql", 100, "larger than"), ("/moved", 1 << 20, "302")],
)
def test_failed_fetches_are_recorded(
    api: Api, origin: str, path: str, max_bytes: int, why: str
) -> None:
    job = _job(api, origin + path, max_bytes)
    assert job.status == "FAIL"
    assert why in job.status_desc
    assert job.attachment_key is None


def test_download_links(api: Api, origin: str) -> None:
    job = _job(api, f"{origin}/fix.sql")
    links: LinkSigner = api.client.app.services.links
    key = job.attachment_key
    ok = api.client.get(f"/files/{key}?{links.query(key)}")
    assert ok.status_code == 200 and ok.content == BODY
    for query in (
        links.query(key).replace("signature=", "signature=x"),
        links.query(key, now=0),  # long expired
        "expires=9999999999",
        "",
    ):
        resp = api.client.get(f"/files/{key}?{query}")
        assert resp.status_code == 404 and resp.json()["Code"] == "InvalidAction.NotFound"
    other = links.query("att-other")
    assert api.client.get(f"/files/{key}?{other}").status_code == 404


def test_upload_file_takes_a_v3_signed_body(api: Api) -> None:
    import hashlib

    from tests.signer import Prepared

    body = b"DELETE FROM orders WHERE id = 7;\n"
    prepared = api.admin.v3("UploadFile", {"FileName": "fix.sql"}, raw_body=body)
    resp = api.send(prepared)
    assert resp.status_code == 200, resp.text
    got = resp.json()
    assert got["FileSize"] == len(body)
    assert got["Sha256"] == hashlib.sha256(body).hexdigest()
    path = api.client.app.services.files.path_for(got["Sha256"])
    assert path.read_bytes() == body
    # the same body with a byte changed no longer matches the signed hash
    tampered = Prepared("POST", prepared.url, prepared.headers, body.replace(b"7", b"8"))
    assert api.send(tampered).json()["Code"] == "SignatureDoesNotMatch"


def test_upload_file_refuses_v1_whose_signature_leaves_the_body_out(api: Api) -> None:
    resp = api.send(api.admin.v1("UploadFile", {"FileName": "fix.sql"}))
    assert resp.status_code == 400
    assert resp.json()["Code"] == "IncompleteSignature"
