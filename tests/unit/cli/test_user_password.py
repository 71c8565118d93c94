"""``opendms user password``: the console password of a user's account, from standard input
when it is not a terminal, or made up and printed once; the account's sessions end."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from opendms.identity import passwords, sessions
from opendms.store.db import Store
from opendms.store.models import Account, utcnow
from tests.cli_support import assert_one_line_error, opendms

PASSWORD = "a long console password"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2 with the least work (in this process): the rules are the same, tests faster."""
    monkeypatch.setattr(passwords, "_hasher", PasswordHasher(1, 8, 1))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An initialised data directory with ann (Uid 4242), a plain user."""
    data = tmp_path / "data"
    opendms("init", "--json", data_dir=data)
    opendms("user", "create", "--uid", "4242", "--nick", "ann", data_dir=data)
    return data


def store_of(data_dir: Path) -> Store:
    return Store(f"sqlite:///{data_dir / 'opendms.db'}")


def signs_in(data_dir: Path, name: str, password: str) -> bool:
    store = store_of(data_dir)
    try:
        with store.session() as s:
            try:
                sessions.sign_in(
                    s, name, password, client_host="127.0.0.1", user_agent="t", now=utcnow()
                )
            except sessions.SignInRefused:
                return False
            return True
    finally:
        store.dispose()


def stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_the_password_comes_from_standard_input(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, PASSWORD + "\n")
    done = opendms("user", "password", "4242", data_dir=data_dir)
    assert "Password set for Uid 4242" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    assert signs_in(data_dir, "ann", PASSWORD)
    assert not signs_in(data_dir, "ann", PASSWORD + "\n")


def test_a_windows_line_ending_is_not_part_of_the_password(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, PASSWORD + "\r\nsecond line is ignored\n")
    opendms("user", "password", "4242", data_dir=data_dir)
    assert signs_in(data_dir, "4242", PASSWORD)


def test_by_nick_name(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stdin(monkeypatch, PASSWORD)  # no newline at all
    assert "Uid 4242" in opendms("user", "password", "ann", data_dir=data_dir).stdout
    assert signs_in(data_dir, "4242", PASSWORD)


def test_generate_prints_a_password_once_and_it_works(data_dir: Path) -> None:
    made = json.loads(opendms("user", "password", "ann", "--generate", data_dir=data_dir).stdout)
    assert (made["Uid"], made["NickName"]) == ("4242", "ann")
    assert len(made["Password"]) >= passwords.MIN_LENGTH
    assert signs_in(data_dir, "ann", made["Password"])
    again = json.loads(opendms("user", "password", "ann", "--generate", data_dir=data_dir).stdout)
    assert again["Password"] != made["Password"]
    assert not signs_in(data_dir, "ann", made["Password"])


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("short\n", "at least 12 characters"),
        ("\n", "at least 12 characters"),
        ("", "at least 12 characters"),
        (" padded password \n", "spaces"),
        ("x" * 300 + "\n", "at most 256"),
    ],
)
def test_a_weak_password_is_refused_and_nothing_changes(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, typed: str, why: str
) -> None:
    stdin(monkeypatch, PASSWORD + "\n")
    opendms("user", "password", "4242", data_dir=data_dir)
    stdin(monkeypatch, typed)
    refused = opendms("user", "password", "4242", data_dir=data_dir, ok=False)
    assert refused.returncode == 1
    assert_one_line_error(refused, why)
    assert signs_in(data_dir, "ann", PASSWORD)  # the old password still works


def test_no_such_user(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("9999", "nobody"):
        stdin(monkeypatch, PASSWORD + "\n")
        refused = opendms("user", "password", name, data_dir=data_dir, ok=False)
        assert refused.returncode == 1
        assert_one_line_error(refused, "UserNotFound")


def test_a_new_password_ends_the_accounts_sessions(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin(monkeypatch, PASSWORD + "\n")
    opendms("user", "password", "4242", data_dir=data_dir)
    store = store_of(data_dir)
    try:
        with store.session() as s:
            opened = sessions.sign_in(
                s, "ann", PASSWORD, client_host="127.0.0.1", user_agent="t", now=utcnow()
            )
        with store.session() as s:
            assert sessions.live(s, opened.token, utcnow()) is not None
        stdin(monkeypatch, "another long password\n")
        said = opendms("user", "password", "4242", data_dir=data_dir).stdout
        assert "console sessions ended" in said
        with store.session() as s:
            assert sessions.live(s, opened.token, utcnow()) is None
            account = s.get(Account, "4242")
            assert account is not None and account.password_hash is not None
            assert account.password_hash.startswith("$argon2id$")
    finally:
        store.dispose()


def test_the_real_command_reads_a_pipe(data_dir: Path) -> None:
    """As an operator's script runs it: ``echo … | opendms user password 4242``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENDMS_")}
    done = subprocess.run(
        [sys.executable, "-m", "opendms", "user", "password", "4242", "--data-dir", str(data_dir)],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert signs_in(data_dir, "ann", PASSWORD)
