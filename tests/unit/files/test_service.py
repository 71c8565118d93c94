"""Upload jobs through the in-process app, against real HTTP servers on loopback: queued by
the request, fetched by the upload runner; and the signed download route."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from opendms.files.fetch import UNREACHABLE
from opendms.files.service import MAX_IN_FLIGHT, UPLOAD, LinkSigner
from opendms.jobs.runner import Runner, claim
from opendms.store.models import Attachment, Job, UploadJob, utcnow
from tests import local_servers
from tests.conftest import Api
from tests.unit.files import servers
from tests.unit.files.servers import BODY

ALLOW_LOOPBACK = "127.0.0.1/32"


@pytest.fixture
def origin() -> Iterator[str]:
    routes = {
        "/fix.sql": (200, {}, BODY),
        "/moved": (302, {"location": "http://10.0.0.1/fix.sql"}, b""),
    }
    with servers.origin(routes) as found:
        yield found.url


@pytest.fixture
def loopback_api(make_api: Callable[..., Api]) -> Api:
    """The app, allowed to fetch from 127.0.0.1 (where the tests' servers are)."""
    return make_api(upload_hosts=ALLOW_LOOPBACK)


def create(api: Api, url: str, name: str = "fix.sql") -> Any:
    return api.call("CreateUploadFileJob", FileName=name, FileSource="datacorrect", UploadURL=url)


def detail(api: Api, key: str) -> dict[str, Any]:
    got = api.call("GetUserUploadFileJob", JobKey=key).json()
    assert got["Success"], got
    return dict(got["UploadFileJobDetail"])


def _job(api: Api, url: str) -> UploadJob:
    """An upload of ``url``, queued by the request and run to its end."""
    resp = create(api, url).json()
    assert resp["Success"], resp
    api.run_jobs()
    with api.store.session() as s:
        job = s.get(UploadJob, resp["JobKey"])
        assert job is not None
        return job


def test_fetch_stores_content_addressed(loopback_api: Api, origin: str) -> None:
    api = loopback_api
    job = _job(api, f"{origin}/fix.sql")
    assert (job.status, job.file_size) == ("SUCCESS", len(BODY))
    with api.store.session() as s:
        attachment = s.get(Attachment, job.attachment_key)
        assert attachment is not None
        path = api.client.app.means.files.path_for(attachment.sha256)
    assert path.read_bytes() == BODY
    again = _job(api, f"{origin}/fix.sql")  # same content, stored once, new key
    assert again.attachment_key != job.attachment_key
    assert len(list(path.parent.iterdir())) == 1


@pytest.mark.parametrize(
    ("path", "max_bytes", "why"),
    [
        ("/missing", 1 << 20, "HTTP 404"),
        ("/fix.sql", 1024, "larger than 1024 bytes"),
        ("/moved", 1 << 20, "may not fetch from 10.0.0.1"),  # the redirect is checked too
    ],
)
def test_failed_fetches_are_recorded(
    make_api: Callable[..., Api], origin: str, path: str, max_bytes: int, why: str
) -> None:
    api = make_api(upload_hosts=ALLOW_LOOPBACK, upload_max_bytes=max_bytes)
    job = _job(api, origin + path)
    assert job.status == "FAIL"
    assert why in job.status_desc
    assert job.attachment_key is None


def test_loopback_is_refused_by_default_and_allowed_by_upload_hosts(
    make_api: Callable[..., Api], origin: str
) -> None:
    default = make_api()
    refused = create(default, f"{origin}/fix.sql").json()
    assert refused["ErrorCode"] == "TargetHostNotAllowed", refused
    assert "OPENDMS_UPLOAD_HOSTS" in refused["ErrorMessage"]
    # a name is judged once resolved, by the job; what it resolved to is not told
    port = origin.rsplit(":", 1)[1]
    named = _job(default, f"http://localhost:{port}/fix.sql")
    assert (named.status, named.status_desc) == ("FAIL", UNREACHABLE)
    allowed = _job(make_api(upload_hosts=ALLOW_LOOPBACK), f"{origin}/fix.sql")
    assert allowed.status == "SUCCESS"


def test_a_closed_port_and_a_reset_read_the_same(loopback_api: Api) -> None:
    """The job's text must not tell a closed port from one that answered: the server would
    be a port scanner."""
    closed = _job(loopback_api, f"http://127.0.0.1:{local_servers.closed_port()}/x.sql")
    with local_servers.raw(local_servers.resets) as port:
        reset = _job(loopback_api, f"http://127.0.0.1:{port}/x.sql")
    with local_servers.raw(local_servers.hangs_up) as port:
        hung_up = _job(loopback_api, f"http://127.0.0.1:{port}/x.sql")
    assert {j.status for j in (closed, reset, hung_up)} == {"FAIL"}
    assert closed.status_desc == reset.status_desc == hung_up.status_desc == UNREACHABLE


def test_the_request_returns_before_the_fetch_completes(make_api: Callable[..., Api]) -> None:
    """The fetch runs on the upload runner's thread: while the server is still sending, the
    job is read back as running."""
    api = make_api(upload_hosts=ALLOW_LOOPBACK, upload_threads=1)
    started, release = threading.Event(), threading.Event()
    try:
        with local_servers.raw(servers.dribble_then_finish(release, started)) as port:
            resp = create(api, f"http://127.0.0.1:{port}/fix.sql").json()
            assert resp["Success"], resp
            key = resp["JobKey"]
            assert started.wait(30), "the upload runner never connected"
            during = detail(api, key)
            assert during["JobStatus"] == "RUNNING"
            assert "AttachmentKey" not in during
            release.set()
            for _ in range(300):
                after = detail(api, key)
                if after["JobStatus"] not in ("PENDING", "RUNNING"):
                    break
                time.sleep(0.1)
    finally:
        release.set()
    assert (after["JobStatus"], after["FileSize"]) == ("SUCCESS", len(BODY)), after


def test_a_slow_drip_is_ended_by_the_whole_transfer_deadline(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(upload_hosts=ALLOW_LOOPBACK, upload_timeout_seconds=1)
    stop = threading.Event()
    try:
        with local_servers.raw(servers.drip(stop)) as port:
            job = _job(api, f"http://127.0.0.1:{port}/big.sql")
    finally:
        stop.set()
    assert (job.status, job.status_desc) == ("FAIL", "the download took longer than 1 seconds")
    with api.store.session() as s:
        (run,) = s.query(Job).filter(Job.kind == UPLOAD).all()
        assert (run.state, run.order_id) == ("failed", None)


def test_an_upload_survives_a_runner_that_died(loopback_api: Api, origin: str) -> None:
    api = loopback_api
    key = create(api, f"{origin}/fix.sql").json()["JobKey"]
    with api.store.session() as s:  # a runner claims the job, then its process dies
        assert claim(s, "dead", {UPLOAD}, utcnow(), api.app.uploads.lease) is not None
    assert detail(api, key)["JobStatus"] == "PENDING"
    later = Runner(
        api.store,
        api.app.uploads.executors,
        clock=lambda: utcnow() + timedelta(seconds=api.app.uploads.lease.seconds + 1),
    )
    assert later.run_once()
    assert detail(api, key)["JobStatus"] == "SUCCESS"


def test_one_user_has_few_uploads_in_flight(api: Api) -> None:
    for n in range(MAX_IN_FLIGHT):
        assert create(api, f"http://files.example/{n}.sql").json()["Success"]
    busy = create(api, "http://files.example/more.sql").json()
    assert busy["ErrorCode"] == "UploadJobsInFlight", busy
    _, other = api.new_user()
    assert api.call(
        "CreateUploadFileJob",
        other,
        FileName="x.sql",
        FileSource="datacorrect",
        UploadURL="http://files.example/x.sql",
    ).json()["Success"]


def test_download_links(loopback_api: Api, origin: str) -> None:
    api = loopback_api
    job = _job(api, f"{origin}/fix.sql")
    links: LinkSigner = api.client.app.means.links
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
    path = api.client.app.means.files.path_for(got["Sha256"])
    assert path.read_bytes() == body
    # the same body with a byte changed no longer matches the signed hash
    tampered = Prepared("POST", prepared.url, prepared.headers, body.replace(b"7", b"8"))
    assert api.send(tampered).json()["Code"] == "SignatureDoesNotMatch"


def test_upload_file_refuses_v1_whose_signature_leaves_the_body_out(api: Api) -> None:
    resp = api.send(api.admin.v1("UploadFile", {"FileName": "fix.sql"}))
    assert resp.status_code == 400
    assert resp.json()["Code"] == "IncompleteSignature"
