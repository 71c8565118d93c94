"""Fetching an upload job's URL (``CreateUploadFileJob``), on a job runner's thread.

Each hop (the URL, then at most ``MAX_REDIRECTS`` redirects) resolves its host once, checks
every address against ``OPENDMS_UPLOAD_HOSTS`` (``files.addresses``) and connects to the
checked address itself: the HTTP client never resolves the name again, so a DNS answer that
changes between the check and the connection (rebinding) cannot move it. TLS still checks
the certificate against the host name. One deadline covers the whole fetch, resolving,
connecting, every hop and every byte of the body; each socket wait is cut to what is left
of it, so a server that drips one byte at a time is stopped on time, not at the next chunk.

Failures before the server answered (no such name, refused, reset, timed out, a bad
certificate) all read "could not fetch the URL": the text must not tell a closed port from
a filtered one, or the server becomes a port scanner. The server's log has the details.

The standard library's ``http.client`` rather than httpx: pinning the address in httpx
means replacing httpcore's network backend under ``httpx.HTTPTransport`` (not a public
option), while an ``http.client`` connection only needs its ``connect`` overridden, and its
socket takes a new timeout before each read.
"""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any
from urllib.parse import urljoin, urlsplit

from opendms.files.addresses import UploadHosts, parse_address
from opendms.files.storage import TooLarge
from opendms.hostlist import IPAddress

log = logging.getLogger("opendms.files")

MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
UNREACHABLE = "could not fetch the URL"
CHUNK = 1 << 16

Resolver = Callable[[str, int], list[IPAddress]]


class FetchFailed(Exception):
    """The fetch failed; ``message`` is for the user, ``detail`` for the server's log."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail or message


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.end = clock() + seconds

    def left(self) -> float:
        """Seconds left; TimeoutError (an OSError, like any socket wait's) once none are."""
        left = self.end - self.clock()
        if left <= 0:
            raise TimeoutError(f"the deadline of {self.seconds:g} s passed")
        return left


@dataclass(frozen=True)
class Hop:
    url: str
    scheme: str
    host: str  # lower-case; IPv6 without brackets; IDN as ASCII
    port: int
    target: str  # path and query, what the request line asks for


def parse_url(url: str) -> Hop:
    """``url`` if it is an http(s) URL with a host; FetchFailed otherwise."""
    bad = FetchFailed("UploadURL must be an http(s) URL.")
    if any(c <= " " or c == "\x7f" for c in url):
        raise bad
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise bad
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
        host = parts.hostname.encode("idna").decode("ascii")
    except (ValueError, UnicodeError):
        raise bad from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Hop(url, parts.scheme.lower(), host, port, target)


def not_allowed(host: str) -> str:
    return f"This server may not fetch from {host} (OPENDMS_UPLOAD_HOSTS)."


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to, in the resolver's order."""
    found: list[IPAddress] = []
    for *_, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        address = parse_address(str(sockaddr[0]))
        if address is not None and address not in found:
            found.append(address)
    return found


def _resolve_within(resolver: Resolver, hop: Hop, deadline: Deadline) -> list[IPAddress]:
    """The resolver's answer, given up on when the deadline passes (``getaddrinfo`` takes no
    timeout, so it runs on a thread of its own and is left to finish there)."""
    literal = parse_address(hop.host)
    if literal is not None:
        return [literal]
    answer: list[list[IPAddress] | BaseException] = []

    def ask() -> None:
        try:
            answer.append(resolver(hop.host, hop.port))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            answer.append(exc)

    worker = threading.Thread(target=ask, name="opendms-resolve", daemon=True)
    worker.start()
    worker.join(deadline.left())
    if not answer:
        raise TimeoutError(f"resolving {hop.host} took too long")
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return answer[0]


def _open(address: IPAddress, port: int, timeout: float) -> socket.socket:
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((str(address), port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


@cache
def _tls() -> ssl.SSLContext:
    return ssl.create_default_context()


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to ``address``, whatever its host name resolves to now."""

    def __init__(self, hop: Hop, address: IPAddress, timeout: float) -> None:
        super().__init__(hop.host, hop.port, timeout=timeout)
        self.address = address
        self.connect_seconds = timeout
        self.pinned: socket.socket | None = None  # kept: http.client drops ``sock`` early

    def connect(self) -> None:
        self.sock = self.pinned = _open(self.address, self.port, self.connect_seconds)


class _PinnedTls(_Pinned):
    def connect(self) -> None:
        raw = _open(self.address, self.port, self.connect_seconds)
        try:
            self.sock = self.pinned = _tls().wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


def _ask(hop: Hop, address: IPAddress, deadline: Deadline) -> tuple[_Pinned, Any]:
    kind = _PinnedTls if hop.scheme == "https" else _Pinned
    conn = kind(hop, address, deadline.left())
    try:
        conn.connect()
        assert conn.pinned is not None
        conn.pinned.settimeout(deadline.left())
        conn.request(
            "GET",
            hop.target,
            headers={"User-Agent": "OpenDMS", "Accept": "*/*", "Connection": "close"},
        )
        return conn, conn.getresponse()
    except BaseException:
        conn.close()
        raise


def _body(conn: _Pinned, resp: Any, deadline: Deadline, declared: int | None) -> Iterator[bytes]:
    size = 0
    sock = conn.pinned
    assert sock is not None
    while True:
        try:
            sock.settimeout(deadline.left())
            chunk = resp.read1(CHUNK)
        except (OSError, http.client.HTTPException) as exc:
            if deadline.end <= deadline.clock():
                raise FetchFailed(
                    f"the download took longer than {deadline.seconds:g} seconds"
                ) from exc
            raise FetchFailed("the connection broke during the download", repr(exc)) from exc
        if not chunk:
            break
        size += len(chunk)
        yield chunk
    if declared is not None and size != declared:
        raise FetchFailed(
            "the connection broke during the download",
            f"{size} of the {declared} bytes announced arrived",
        )


def _declared_length(resp: Any, max_bytes: int) -> int | None:
    declared = resp.getheader("content-length", "") or ""
    if not (declared.isascii() and declared.isdigit()):
        return None
    if int(declared) > max_bytes:
        raise TooLarge(f"the file is larger than {max_bytes} bytes")
    return int(declared)


def fetch(
    url: str,
    hosts: UploadHosts,
    *,
    max_bytes: int,
    timeout_seconds: float,
    resolver: Resolver = resolve,
) -> Generator[bytes, None, None]:
    """The body of ``url`` (a 200 answer, after redirects), in chunks as they arrive.
    FetchFailed (or TooLarge, when the server announces more than ``max_bytes``) says why
    not; the caller stops reading at ``max_bytes`` itself."""
    deadline = Deadline(timeout_seconds)
    hop = parse_url(url)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            addresses = _resolve_within(resolver, hop, deadline)
        except (OSError, UnicodeError) as exc:
            raise FetchFailed(UNREACHABLE, f"resolving {hop.host}: {exc!r}") from exc
        refusal = hosts.refusal(hop.host, addresses)
        if refusal is not None:
            # A name's answer stays in the log: the refusal would tell a user which internal
            # names exist. An address they typed (or a redirect named) hides nothing.
            shown = not_allowed(hop.host) if parse_address(hop.host) is not None else UNREACHABLE
            raise FetchFailed(shown, refusal)
        if not addresses:
            raise FetchFailed(UNREACHABLE, f"{hop.host} has no address")
        try:
            conn, resp = _ask(hop, addresses[0], deadline)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise FetchFailed(UNREACHABLE, f"{hop.host} at {addresses[0]}: {exc!r}") from exc
        try:
            if resp.status in REDIRECTS:
                location = resp.getheader("location")
                if not location:
                    raise FetchFailed(f"the server answered HTTP {resp.status} without a Location")
                try:
                    hop = parse_url(urljoin(hop.url, location))
                except FetchFailed:
                    raise FetchFailed(
                        "the server redirected to a URL that is not http(s)"
                    ) from None
                log.info("upload fetch: %s redirects to %s", url, hop.url)
                url = hop.url
                continue
            if resp.status != 200:
                raise FetchFailed(f"the server answered HTTP {resp.status}")
            yield from _body(conn, resp, deadline, _declared_length(resp, max_bytes))
            return
        finally:
            resp.close()
            conn.close()
    raise FetchFailed(f"the server redirected more than {MAX_REDIRECTS} times")
