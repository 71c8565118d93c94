"""The data directory is its owner's alone: what OpenDMS creates there is 0600 / 0700 (the
store's -wal and -shm included), and looser modes found at start are narrowed, only under
the trees OpenDMS owns."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from opendms import datadir
from opendms.config import Settings
from opendms.files.storage import FileStore
from opendms.identity.secrets import load_master_key
from opendms.store.db import Store
from opendms.targets.demo import ensure_demo_target


@pytest.fixture(autouse=True)
def _umask_back() -> Iterator[None]:
    """prepare() sets the process umask; the other tests of this process keep theirs."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def modes(root: Path) -> dict[str, int]:
    """Every path under ``root`` (itself as ".") and its mode; symlinks left out."""
    found = {".": mode(root)}
    for path in root.rglob("*"):
        if not path.is_symlink():
            found[str(path.relative_to(root))] = mode(path)
    return found


def private(found: dict[str, int], root: Path) -> bool:
    return all(m == (0o700 if (root / p).is_dir() else 0o600) for p, m in found.items())


def test_what_opendms_creates_in_a_fresh_data_dir_is_owner_only(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert not datadir.prepare(settings)
    store = Store(settings.metadata_url)
    try:
        store.migrate()
        with store.session() as s:  # the store is open: its -wal and -shm exist
            s.execute(text("DELETE FROM tenants WHERE 1 = 0"))
            load_master_key(None, settings.data_dir)
            FileStore(settings.files).put([b"attachment"], 1024)
            ensure_demo_target(settings.sqlite_targets, customers=2, orders_each=1)
            (settings.files / "exports").mkdir()
            found = modes(settings.data_dir)
    finally:
        store.dispose()
    assert {"opendms.db-wal", "opendms.db-shm", "master.key", "targets/demo-target.db"} <= set(
        found
    )
    assert private(found, settings.data_dir), found


def test_loose_modes_are_narrowed_at_start_once_and_symlinks_are_not_followed(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    (data / "files" / "ab").mkdir(parents=True)
    for name in ("opendms.db", "opendms.db-wal", "opendms.db-shm", "files/ab/abcd"):
        (data / name).write_bytes(b"x")
        (data / name).chmod(0o644)
    for d in (data, data / "files", data / "files" / "ab"):
        d.chmod(0o755)
    (data / "master.key").write_text("k")
    (data / "master.key").chmod(0o400)  # already owner-only: left as it is
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("not ours")
    elsewhere.chmod(0o644)
    (data / "link").symlink_to(elsewhere)

    repair = datadir.prepare(Settings(data_dir=data))

    assert sorted(str(p.relative_to(data.resolve())) for p in repair.narrowed) == [
        ".",
        "files",
        "files/ab",
        "files/ab/abcd",
        "opendms.db",
        "opendms.db-shm",
        "opendms.db-wal",
    ]
    assert "made 7 paths owner-only" in repair.summary()
    found = modes(data)
    assert found.pop("master.key") == 0o400
    assert private(found, data), found
    assert mode(elsewhere) == 0o644
    assert not datadir.prepare(Settings(data_dir=data))  # nothing left to say


def test_dirs_outside_the_data_dir_are_narrowed_only_when_opendms_made_them(
    tmp_path: Path,
) -> None:
    operators = tmp_path / "operators-targets"
    operators.mkdir(mode=0o755)
    (operators / "app.db").write_bytes(b"x")
    (operators / "app.db").chmod(0o644)
    settings = Settings(
        data_dir=tmp_path / "data",
        files_dir=tmp_path / "made-by-opendms",
        sqlite_target_dir=operators,
    )
    datadir.prepare(settings)
    made = tmp_path / "made-by-opendms"
    assert mode(made) == 0o700 and (made / datadir.OWNED_MARK).is_file()
    (made / "ab").mkdir()
    (made / "ab" / "abcd").write_bytes(b"x")
    for p in (made, made / "ab", made / "ab" / "abcd"):
        p.chmod(0o755)

    repair = datadir.prepare(settings)

    assert {made.resolve(), made.resolve() / "ab", made.resolve() / "ab" / "abcd"} <= set(
        repair.narrowed
    )
    assert private(modes(made), made)
    assert (mode(operators), mode(operators / "app.db")) == (0o755, 0o644)


def test_a_path_that_cannot_be_narrowed_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    (data / "opendms.db").write_bytes(b"x")
    (data / "opendms.db").chmod(0o644)

    def refuse(self: Path, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(Path, "chmod", refuse)
    repair = datadir.prepare(Settings(data_dir=data))
    assert repair.failed == [(data.resolve() / "opendms.db", "Operation not permitted")]
    assert "could not make owner-only" in repair.summary()
    assert "opendms.db (Operation not permitted)" in repair.summary()


def test_the_umask_makes_new_files_private_and_never_loosens_a_stricter_one(
    tmp_path: Path,
) -> None:
    os.umask(0o027)
    datadir.private_umask()
    (tmp_path / "new").write_text("x")
    assert mode(tmp_path / "new") == 0o600
    os.umask(0o277)
    datadir.private_umask()
    assert os.umask(0o022) == 0o277
