"""Telling MySQL, MariaDB and PostgreSQL apart by their first words (targets.detect), against
local sockets that play each part (tests/integration/targets/test_detect_servers.py asks
the real servers)."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable

import pytest

from opendms.targets.base import TargetError
from opendms.targets.detect import UnknownProtocol, detect
from tests.local_servers import closed_port, garbage, postgres_asking_cleartext, raw, silent


def _packet(payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + b"\0" + payload


def greets(version: bytes, *, pieces: int = 1) -> Callable[[socket.socket], None]:
    """A MySQL-like server: its handshake packet (in ``pieces`` writes), then waits."""

    def handle(conn: socket.socket) -> None:
        packet = _packet(b"\x0a" + version + b"\0" + b"\x01\0\0\0" + b"salt1234\0" + b"\xff\xf7")
        step = -(-len(packet) // pieces)
        for start in range(0, len(packet), step):
            conn.sendall(packet[start : start + step])
        conn.recv(1024)

    return handle


def refuses(conn: socket.socket) -> None:
    """MySQL's answer to a host it blocks, in place of the handshake."""
    message = b"Host '10.0.0.9' is blocked because of many connection errors"
    conn.sendall(_packet(b"\xff" + struct.pack("<H", 1129) + message))


def probe(port: int, read_seconds: float = 5) -> str:
    return detect("127.0.0.1", port, connect_seconds=2, read_seconds=read_seconds)


@pytest.mark.parametrize(
    ("version", "engine"),
    [
        (b"8.0.36", "mysql"),
        (b"5.7.44-log", "mysql"),
        (b"5.5.5-10.11.6-MariaDB-0+deb12u1", "mariadb"),
        (b"11.4.2-MariaDB", "mariadb"),
    ],
)
def test_a_server_that_greets_is_mysql_or_mariadb(version: bytes, engine: str) -> None:
    with raw(greets(version)) as port:
        assert probe(port) == engine


def test_a_greeting_in_pieces_is_read_whole() -> None:
    with raw(greets(b"10.6.18-MariaDB", pieces=7)) as port:
        assert probe(port) == "mariadb"


def test_a_server_that_waits_and_answers_the_ssl_request_is_postgresql() -> None:
    with raw(postgres_asking_cleartext([])) as port:  # answers N, then would ask a password
        assert probe(port) == "postgresql"


def test_a_mysql_refusal_says_what_the_server_said() -> None:
    with raw(refuses) as port, pytest.raises(TargetError) as refused:
        probe(port)
    assert not isinstance(refused.value, UnknownProtocol)
    assert "is blocked because of many connection errors" in refused.value.message


@pytest.mark.parametrize(
    "handle",
    [
        garbage,  # speaks first, another protocol
        lambda conn: conn.sendall(_packet(b"\x09old-protocol\0")),  # not protocol 10
        lambda conn: conn.sendall(b"\x05\0\0\x01hello"),  # a packet, but not the first
        lambda conn: conn.sendall(b"\0\0\0"),  # cut short, then closed
        lambda conn: None,  # accepts and hangs up
    ],
    ids=["ssh", "protocol-9", "sequence", "short", "hangs-up"],
)
def test_other_protocols_are_neither(handle: Callable[[socket.socket], None]) -> None:
    with raw(handle) as port, pytest.raises(UnknownProtocol) as neither:
        probe(port)
    assert "neither as MySQL/MariaDB nor as PostgreSQL" in neither.value.message


def test_a_server_that_never_answers_is_neither_within_the_deadline() -> None:
    stop = threading.Event()
    try:
        with raw(silent(stop)) as port, pytest.raises(UnknownProtocol) as neither:
            probe(port, read_seconds=0.5)
        assert "within 0.5 seconds" in neither.value.message
    finally:
        stop.set()


def test_nothing_listening_is_a_connection_failure() -> None:
    with pytest.raises(TargetError) as down:
        probe(closed_port())
    assert not isinstance(down.value, UnknownProtocol)
    assert "Cannot connect to 127.0.0.1:" in down.value.message
