"""``opendms serve --tls-cert --tls-key``: what it refuses, in one line and before anything
listens, and what it hands uvicorn when the pair is good."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives import serialization

from tests.certs import TlsFiles, self_signed
from tests.cli_support import assert_one_line_error, opendms, opendms_process


@pytest.fixture
def pair(tmp_path: Path) -> TlsFiles:
    return self_signed(tmp_path, "server")


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What serve would start uvicorn with; uvicorn itself never runs (nothing listens)."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *_a, **kw: calls.append(kw))
    return calls


def _refused(tmp_path: Path, served: list[dict[str, Any]], *flags: str | Path) -> str:
    """serve with ``flags`` fails with exit 1 and one line, and sets up nothing."""
    data = tmp_path / "data"
    done = opendms("serve", *(str(f) for f in flags), data_dir=data, ok=False)
    assert done.returncode == 1, done.stderr + done.stdout
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert served == []
    assert not data.exists()  # checked before the data directory is made
    return done.stderr


def test_a_certificate_without_a_key_or_a_key_without_a_certificate_is_refused(
    tmp_path: Path, pair: TlsFiles, served: list[dict[str, Any]]
) -> None:
    for flags in (("--tls-cert", pair.cert), ("--tls-key", pair.key)):
        said = _refused(tmp_path, served, *flags)
        assert "--tls-cert and --tls-key" in said and "go together" in said, said


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o644])
def test_a_key_others_may_read_or_write_is_refused_with_the_fix(
    tmp_path: Path, pair: TlsFiles, served: list[dict[str, Any]], mode: int
) -> None:
    pair.key.chmod(mode)
    said = _refused(tmp_path, served, "--tls-cert", pair.cert, "--tls-key", pair.key)
    assert str(pair.key) in said and f"mode {mode:04o}" in said, said
    assert f"chmod 600 {pair.key}" in said, said


def test_a_key_that_is_not_the_certificates_is_refused(
    tmp_path: Path, pair: TlsFiles, served: list[dict[str, Any]]
) -> None:
    other = self_signed(tmp_path, "other")
    said = _refused(tmp_path, served, "--tls-cert", pair.cert, "--tls-key", other.key)
    assert f"TLS key {other.key} does not match the certificate {pair.cert}" in said, said


def test_a_certificate_that_is_not_pem_is_refused(
    tmp_path: Path, pair: TlsFiles, served: list[dict[str, Any]]
) -> None:
    der = tmp_path / "server.der"
    der.write_bytes(pair.cert.read_bytes().replace(b"CERTIFICATE", b"SOMETHING"))
    for bad in (der, pair.key):  # garbled, and a key where the certificate goes
        said = _refused(tmp_path, served, "--tls-cert", bad, "--tls-key", pair.key)
        assert f"TLS certificate {bad} holds no PEM certificate" in said, said


def test_a_key_file_that_holds_no_usable_key_is_refused(
    tmp_path: Path, pair: TlsFiles, served: list[dict[str, Any]]
) -> None:
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    junk.chmod(0o600)
    said = _refused(tmp_path, served, "--tls-cert", pair.cert, "--tls-key", junk)
    assert f"TLS key {junk} holds no PEM private key" in said, said

    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    encrypted.chmod(0o600)
    said = _refused(tmp_path, served, "--tls-cert", pair.cert, "--tls-key", encrypted)
    assert f"TLS key {encrypted} is encrypted" in said, said  # and no password prompt


def test_missing_or_unreadable_files_are_refused(
    tmp_path: Path, pair: TlsFiles, served: list[dict[str, Any]]
) -> None:
    missing = tmp_path / "missing.pem"
    said = _refused(tmp_path, served, "--tls-cert", missing, "--tls-key", pair.key)
    assert f"cannot read TLS certificate {missing}: No such file or directory" in said, said
    said = _refused(tmp_path, served, "--tls-cert", pair.cert, "--tls-key", tmp_path)
    assert f"cannot read TLS key {tmp_path}" in said, said
    if os.geteuid() != 0:  # root reads any file
        pair.key.chmod(0o000)
        said = _refused(tmp_path, served, "--tls-cert", pair.cert, "--tls-key", pair.key)
        assert f"cannot read TLS key {pair.key}: Permission denied" in said, said


def test_a_good_pair_is_handed_to_uvicorn_and_announced(
    tmp_path: Path, pair: TlsFiles, served: list[dict[str, Any]]
) -> None:
    pair.key.chmod(0o400)  # owner read-only is owner-only too
    done = opendms(
        "serve", "--tls-cert", str(pair.cert), "--tls-key", str(pair.key), data_dir=tmp_path / "d"
    )
    (call,) = served
    assert (call["ssl_certfile"], call["ssl_keyfile"]) == (pair.cert, pair.key)
    assert call["host"] == "127.0.0.1"
    assert f"HTTPS with {pair.cert}" in done.stdout and "SSL_CERT_FILE" in done.stdout


def test_plain_http_hands_uvicorn_no_certificate(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    done = opendms("serve", data_dir=tmp_path / "d")
    (call,) = served
    assert (call["ssl_certfile"], call["ssl_keyfile"]) == (None, None)
    assert "HTTPS" not in done.stdout


def test_the_settings_alone_are_checked_and_nothing_listens(tmp_path: Path, pair: TlsFiles) -> None:
    """The real process, told through OPENDMS_TLS_CERT only: it exits at once (a server that
    started would run until the timeout) with one line."""
    done = opendms_process(
        "serve",
        "--port",
        str(_free_port()),
        data_dir=tmp_path / "data",
        env={"OPENDMS_TLS_CERT": str(pair.cert)},
        ok=False,
    )
    assert done.returncode == 1
    assert_one_line_error(done, "go together")
    assert not (tmp_path / "data").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
