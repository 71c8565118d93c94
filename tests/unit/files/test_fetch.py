"""Fetching an upload URL: the address rule on every hop, the pinned connection, the
whole-transfer deadline, and one message for every way a connection can fail."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from opendms.files.addresses import IPAddress, UploadHosts
from opendms.files.fetch import (
    MAX_REDIRECTS,
    UNREACHABLE,
    FetchFailed,
    fetch,
    not_allowed,
    resolve,
)
from opendms.files.storage import TooLarge
from tests import local_servers
from tests.unit.files import servers
from tests.unit.files.servers import BODY

LOOPBACK = UploadHosts("127.0.0.1/32")


def get(
    url: str, hosts: UploadHosts = LOOPBACK, seconds: float = 10, resolver: Any = resolve
) -> bytes:
    body = fetch(url, hosts, max_bytes=1 << 20, timeout_seconds=seconds, resolver=resolver)
    return b"".join(body)


def failure(
    url: str, hosts: UploadHosts = LOOPBACK, seconds: float = 10, resolver: Any = resolve
) -> str:
    with pytest.raises(FetchFailed) as info:
        get(url, hosts, seconds, resolver)
    return info.value.message


@pytest.fixture
def origin() -> Iterator[servers.Origin]:
    with servers.origin() as found:
        yield found


def test_loopback_is_refused_by_default_and_allowed_by_upload_hosts(
    origin: servers.Origin,
) -> None:
    url = f"{origin.url}/fix.sql"
    assert failure(url, UploadHosts("")) == not_allowed("127.0.0.1")
    assert origin.seen == []  # refused before connecting
    assert get(url, UploadHosts("127.0.0.1/32")) == BODY
    assert get(url, UploadHosts("localhost,127.0.0.0/8")) == BODY


def test_a_name_is_judged_by_its_address_and_the_answer_stays_in_the_log(
    origin: servers.Origin,
) -> None:
    url = f"http://localhost:{origin.port}/fix.sql"
    with pytest.raises(FetchFailed) as info:
        get(url, UploadHosts(""))
    # which internal names exist is not for the user to learn; the server's log says it
    assert info.value.message == UNREACHABLE
    assert "loopback" in info.value.detail
    assert get(url, UploadHosts("localhost")) == BODY


def test_odd_spellings_of_loopback_are_caught(origin: servers.Origin) -> None:
    for host in ("2130706433", "0x7f.1", "127.1", "[::ffff:127.0.0.1]"):
        with pytest.raises(FetchFailed):
            get(f"http://{host}:{origin.port}/fix.sql", UploadHosts(""))
    assert origin.seen == []


def test_redirects_are_followed_under_the_same_rule(origin: servers.Origin) -> None:
    with servers.origin({"/real.sql": (200, {}, BODY)}) as other:
        origin.routes["/hop"] = (302, {"location": f"{other.url}/real.sql"}, b"")
        origin.routes["/relative"] = (301, {"location": "/fix.sql"}, b"")
        origin.routes["/private"] = (307, {"location": "http://10.0.0.1/fix.sql"}, b"")
        origin.routes["/metadata"] = (
            302,
            {"location": "http://[::ffff:169.254.169.254]/latest/meta-data/"},
            b"",
        )
        origin.routes["/file"] = (302, {"location": "file:///etc/passwd"}, b"")
        origin.routes["/loop"] = (302, {"location": "/loop"}, b"")
        assert get(f"{origin.url}/hop") == BODY
        assert get(f"{origin.url}/relative") == BODY
        assert failure(f"{origin.url}/private") == not_allowed("10.0.0.1")
        assert failure(f"{origin.url}/metadata") == not_allowed("::ffff:169.254.169.254")
        assert "not http(s)" in failure(f"{origin.url}/file")
        assert f"more than {MAX_REDIRECTS}" in failure(f"{origin.url}/loop")
        assert origin.seen.count(("/loop", f"127.0.0.1:{origin.port}")) == MAX_REDIRECTS + 1


class Resolver:
    """A DNS that answers each name from a list, one answer per question."""

    def __init__(self, *answers: str) -> None:
        self.answers = [ipaddress.ip_address(a) for a in answers]
        self.asked: list[str] = []

    def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.asked.append(host)
        if not self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [self.answers.pop(0)]


def test_the_connection_goes_to_the_address_that_was_checked(origin: servers.Origin) -> None:
    # The name is resolved once; were it resolved again (by the HTTP client, to connect) the
    # second answer would lead nowhere.
    dns = Resolver("127.0.0.1", "10.0.0.1")
    url = f"http://files.test:{origin.port}/fix.sql"
    assert get(url, resolver=dns) == BODY
    assert dns.asked == ["files.test"]
    assert origin.seen == [("/fix.sql", f"files.test:{origin.port}")]


def test_each_hop_is_resolved_and_checked_again(origin: servers.Origin) -> None:
    # rebinding between hops: the name that passed on the first hop points inside on the next
    origin.routes["/next"] = (302, {"location": "/fix.sql"}, b"")
    dns = Resolver("127.0.0.1", "192.168.0.10")
    with pytest.raises(FetchFailed) as info:
        get(f"http://files.test:{origin.port}/next", resolver=dns)
    assert info.value.message == UNREACHABLE
    assert "192.168.0.10" in info.value.detail
    assert dns.asked == ["files.test", "files.test"]
    assert [path for path, _ in origin.seen] == ["/next"]


def test_every_connection_failure_reads_the_same() -> None:
    stop = threading.Event()
    messages = {}
    try:
        messages["closed"] = failure(f"http://127.0.0.1:{local_servers.closed_port()}/x", seconds=1)
        with local_servers.raw(local_servers.resets) as port:
            messages["reset"] = failure(f"http://127.0.0.1:{port}/x", seconds=1)
        with local_servers.raw(local_servers.hangs_up) as port:
            messages["disconnected"] = failure(f"http://127.0.0.1:{port}/x", seconds=1)
        with local_servers.raw(local_servers.garbage) as port:
            messages["garbage"] = failure(f"http://127.0.0.1:{port}/x", seconds=1)
            messages["tls"] = failure(f"https://127.0.0.1:{port}/x", seconds=1)
        with local_servers.raw(local_servers.silent(stop)) as port:
            messages["silent"] = failure(f"http://127.0.0.1:{port}/x", seconds=0.5)
        messages["no such name"] = failure("http://files.test/x", resolver=Resolver(), seconds=1)
    finally:
        stop.set()
    assert set(messages.values()) == {UNREACHABLE}, messages


def test_the_deadline_covers_the_whole_body() -> None:
    """A server that drips one byte at a time is cut off by the deadline of the whole
    transfer, not only between chunks."""
    stop = threading.Event()
    try:
        with local_servers.raw(servers.drip(stop)) as port:
            reason = failure(f"http://127.0.0.1:{port}/big.sql", seconds=0.5)
    finally:
        stop.set()
    assert reason == "the download took longer than 0.5 seconds"


def test_answers_that_are_not_the_file(origin: servers.Origin) -> None:
    origin.routes["/short"] = (200, {"content-length": str(len(BODY) + 10)}, BODY)
    origin.routes["/nowhere"] = (302, {}, b"")
    assert failure(f"{origin.url}/missing.sql") == "the server answered HTTP 404"
    assert "without a Location" in failure(f"{origin.url}/nowhere")
    assert failure(f"{origin.url}/short") == "the connection broke during the download"
    with pytest.raises(TooLarge):
        b"".join(fetch(f"{origin.url}/fix.sql", LOOPBACK, max_bytes=100, timeout_seconds=5))


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "gopher://127.0.0.1/", "http:///x", "http://a b/", "ftp://x/"]
)
def test_only_http_urls(url: str) -> None:
    assert failure(url) == "UploadURL must be an http(s) URL."
