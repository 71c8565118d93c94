"""Small servers on 127.0.0.1 for the upload tests: a plain HTTP origin with fixed answers,
and raw sockets that misbehave (drip, reset, say nothing, say garbage)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BODY = b"UPDATE orders SET status = 'paid' WHERE id = 1;\n" * 100

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Origin:
    """An HTTP server answering ``routes`` (path -> status, headers, body); other paths 404.
    ``seen`` collects (path, Host header) of every request."""

    routes: dict[str, Answer]
    port: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def origin(routes: dict[str, Answer] | None = None) -> Iterator[Origin]:
    found = Origin(dict(routes or {"/fix.sql": (200, {}, BODY)}))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found.seen.append((self.path, self.headers.get("host", "")))
            status, headers, body = found.routes.get(self.path, (404, {}, b""))
            self.send_response(status)
            for name, value in {"content-length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def drip(
    stop: threading.Event, every: float = 0.05, most: int = 300
) -> Callable[[socket.socket], None]:
    """A 200 announcing a megabyte, then one byte every ``every`` seconds until ``stop`` or
    ``most`` bytes, then the end of the connection (the transfer never completes)."""

    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
        for _ in range(most):
            if stop.wait(every):
                return
            conn.sendall(b"x")

    return handle


def dribble_then_finish(
    release: threading.Event, started: threading.Event
) -> Callable[[socket.socket], None]:
    """Sends the headers and part of the body, waits for ``release``, then the rest."""

    def handle(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY[:10])
        started.set()
        release.wait(30)
        conn.sendall(BODY[10:])

    return handle
