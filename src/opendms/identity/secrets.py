"""Encryption at rest for secrets (access-key secrets, database passwords).

Fernet (AES-128-CBC + HMAC-SHA256) from ``cryptography`` under one master key. The key comes from
``OPENDMS_SECRET_KEY`` (any string; stretched with HKDF) or, in embedded mode, from a file
generated into the data directory on first start, readable by the owner only.
"""

from __future__ import annotations

import base64
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_FILE = "master.key"


class SecretBoxError(Exception):
    """A stored secret cannot be decrypted with the configured master key."""


def _derive(material: bytes) -> bytes:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"opendms secrets v1")
    return base64.urlsafe_b64encode(key.derive(material))


def load_master_key(secret_key: str | None, data_dir: Path) -> bytes:
    """The master key's bytes: from configuration, else the data directory's key file."""
    if secret_key:
        return secret_key.encode()
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()


class SecretBox:
    def __init__(self, master_key: bytes) -> None:
        self._master = master_key
        self._fernet = Fernet(_derive(master_key))
        # Decrypting costs more than the rest of signature checking; a token always decrypts
        # to the same clear text, so a bounded cache is safe.
        self.decrypt = lru_cache(maxsize=4096)(self._decrypt)

    def key_for(self, purpose: str) -> bytes:
        """A key of its own for ``purpose`` (keyed hashes), derived from the master key."""
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
        return hkdf.derive(self._master)

    def encrypt(self, clear: str) -> str:
        return self._fernet.encrypt(clear.encode()).decode()

    def _decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretBoxError(
                "a stored secret does not decrypt with the configured master key "
                "(was OPENDMS_SECRET_KEY or the data directory's master.key changed?)"
            ) from exc
