"""Raw TCP servers on 127.0.0.1 for tests of what the server connects to: each connection
is handed to a function that plays the other side (misbehaving as it likes)."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def raw(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A TCP server whose every connection is given to ``handle`` (then closed); its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client went away
            handle(conn)

    def accept() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept; close alone does not
        listener.close()
        thread.join(timeout=5)


def closed_port() -> int:
    """A port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def silent(stop: threading.Event) -> Callable[[socket.socket], None]:
    """Accepts, then says nothing until ``stop``."""

    def handle(_conn: socket.socket) -> None:
        stop.wait(30)

    return handle


def resets(conn: socket.socket) -> None:
    """Reads the request, then resets the connection (RST, not FIN)."""
    conn.recv(65536)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def hangs_up(conn: socket.socket) -> None:
    """Reads the request, then closes without a word."""
    conn.recv(65536)


def garbage(conn: socket.socket) -> None:
    """Another protocol's greeting."""
    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n-ERR unknown command\r\n")
    conn.recv(65536)


def _exactly(conn: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = conn.recv(n - len(data))
        if not more:
            raise ConnectionError("the client went away")
        data += more
    return data


def postgres_asking_cleartext(passwords: list[bytes]) -> Callable[[socket.socket], None]:
    """A fake PostgreSQL server: no TLS, then asks for the password in clear (what a server
    stealing it would do), records it in ``passwords`` and refuses the login."""

    def handle(conn: socket.socket) -> None:
        while True:  # SSLRequest / GSSENCRequest first: answer "not here"
            length, code = struct.unpack("!ii", _exactly(conn, 8))
            if code in (80877103, 80877104):
                conn.sendall(b"N")
                continue
            _exactly(conn, length - 8)  # the startup message: user, database
            break
        conn.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
        _exactly(conn, 1)  # 'p'
        (length,) = struct.unpack("!i", _exactly(conn, 4))
        passwords.append(_exactly(conn, length - 4).rstrip(b"\0"))
        fields = b"SFATAL\0C28P01\0Mpassword authentication failed\0\0"
        conn.sendall(b"E" + struct.pack("!i", 4 + len(fields)) + fields)

    return handle
