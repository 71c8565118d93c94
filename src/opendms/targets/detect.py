"""Which engine listens at an address, told by its wire protocol before any login
(SimplyAddInstance takes no InstanceType).

A MySQL or MariaDB server speaks first: a handshake packet whose payload opens with
protocol version 10 and a NUL-terminated version string ("…MariaDB…" on MariaDB); it may
send an error packet instead (too many connections, a blocked host). A PostgreSQL server
waits for the client, and answers an SSLRequest with one byte, ``S`` or ``N``. So the probe
waits a moment for a greeting, and if none comes asks as a PostgreSQL client would.

Nothing is logged in to and no credentials are sent: the probe only tells the protocols
apart. Whoever calls it has checked that the address may be reached at all
(``TargetPolicy``).
"""

from __future__ import annotations

import socket
import struct
import time

from opendms.targets.base import TargetError

# How long a server that speaks first is given to do so before the probe asks as PostgreSQL
# would (within the read deadline): MySQL greets at once unless it resolves the client's name.
GREETING_WAIT = 1.0
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
_MAX_GREETING = 1 << 16


class UnknownProtocol(TargetError):
    """Something answers at the address, but neither as MySQL/MariaDB nor as PostgreSQL."""


def detect(host: str, port: int, *, connect_seconds: float, read_seconds: float) -> str:
    """``mysql``, ``mariadb`` or ``postgresql``: what answers at ``host:port``. Connecting
    takes at most ``connect_seconds``, the answers at most ``read_seconds`` in all.
    Raises :class:`TargetError` (unreachable, or a MySQL server refusing us) or
    :class:`UnknownProtocol`."""
    address = f"{host}:{port}"
    try:
        conn = socket.create_connection((host.strip("[]"), port), timeout=connect_seconds)
    except OSError as exc:
        raise TargetError(f"Cannot connect to {address}: {_reason(exc)}.") from None
    deadline = time.monotonic() + read_seconds
    try:
        first = _receive(conn, min(deadline, time.monotonic() + GREETING_WAIT))
        if first is None:  # silent: a PostgreSQL server waits for the client
            conn.sendall(_SSL_REQUEST)
            first = _receive(conn, deadline)
            if first in (b"S", b"N"):
                return "postgresql"
        if first is None:
            raise UnknownProtocol(
                f"{address} answered neither as MySQL/MariaDB nor as PostgreSQL within "
                f"{read_seconds:g} seconds."
            )
        return _mysql_flavour(conn, first, deadline, address)
    except OSError as exc:
        raise TargetError(f"{address} broke off the connection: {_reason(exc)}.") from None
    finally:
        conn.close()


def _mysql_flavour(conn: socket.socket, data: bytes, deadline: float, address: str) -> str:
    """Read the rest of a MySQL handshake packet begun with ``data``."""
    neither = UnknownProtocol(f"{address} answered neither as MySQL/MariaDB nor as PostgreSQL.")
    while len(data) < 4:
        more = _receive(conn, deadline)
        if not more:
            raise neither
        data += more
    length = int.from_bytes(data[:3], "little")
    if data[3] != 0 or not 2 <= length <= _MAX_GREETING:
        raise neither
    while len(data) < 4 + length:
        more = _receive(conn, deadline)
        if not more:
            raise neither
        data += more
    payload = data[4 : 4 + length]
    if payload[0] == 0xFF:  # an error packet: the server is MySQL, but will not talk to us
        message = payload[3:].decode("utf-8", "replace").strip() or "no reason given"
        raise TargetError(f"The MySQL server at {address} refused the connection: {message}")
    version, nul, _ = payload[1:].partition(b"\0")
    if payload[0] != 10 or not nul or not version:
        raise neither
    return "mariadb" if b"mariadb" in version.lower() else "mysql"


def _receive(conn: socket.socket, deadline: float) -> bytes | None:
    """What the server sends next, waiting until ``deadline``; None when it sent nothing
    by then, b"" when it closed the connection."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    conn.settimeout(left)
    try:
        return conn.recv(4096)
    except TimeoutError:
        return None


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    return exc.strerror or type(exc).__name__
