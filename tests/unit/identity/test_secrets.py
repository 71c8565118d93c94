from __future__ import annotations

import stat
from pathlib import Path

import pytest

from opendms.identity.secrets import KEY_FILE, SecretBox, SecretBoxError, load_master_key


def test_roundtrip_and_ciphertext_hides_the_secret() -> None:
    box = SecretBox(b"k1")
    token = box.encrypt("s3cr3t-value")
    assert "s3cr3t" not in token
    assert box.decrypt(token) == "s3cr3t-value"
    assert box.encrypt("s3cr3t-value") != token  # random IV


def test_wrong_master_key_is_a_clear_error() -> None:
    token = SecretBox(b"k1").encrypt("x")
    with pytest.raises(SecretBoxError, match="master key"):
        SecretBox(b"k2").decrypt(token)


def test_generated_key_file_is_private_and_stable(tmp_path: Path) -> None:
    first = load_master_key(None, tmp_path / "data")
    path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_master_key(None, tmp_path / "data") == first
    assert load_master_key("from-config", tmp_path / "data") == b"from-config"
