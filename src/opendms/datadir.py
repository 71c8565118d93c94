"""The data directory and the other trees OpenDMS owns on disk are its owner's alone.

They hold the metadata store (ticket SQL, the audit trail, nonces), the master key, uploaded
files and exports. Two mechanisms keep them private:

- a process umask of 077, set before anything is created: every file and directory OpenDMS
  or a library on its behalf creates is then 0600 / 0700. SQLite gives its ``-wal`` and
  ``-shm`` files the mode of the database file itself (it fchmods them, whatever the umask),
  so a store file made under this umask, or repaired before it is opened, keeps them private
  too.
- a repair at start, before the store is opened: directories looser than 0700 and files
  looser than 0600 are narrowed, symlinks are neither followed nor changed.

Owned trees: the data directory always; the files directory and the SQLite target directory
when they lie outside it only if OpenDMS created them (it leaves a ``.opendms-owned`` mark in
a directory it makes). A directory an operator made and pointed OpenDMS at keeps the modes
the operator gave it and its contents; what OpenDMS writes there is still private (umask).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from opendms.config import Settings

PRIVATE_UMASK = 0o077
OWNED_MARK = ".opendms-owned"
DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass
class Repair:
    """What a start found too open under the trees it owns."""

    narrowed: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)  # path, why

    def __bool__(self) -> bool:
        return bool(self.narrowed or self.failed)

    def summary(self, most: int = 10) -> str:
        """One line for the operator: what was narrowed, what could not be."""
        parts = []
        if self.narrowed:
            shown = ", ".join(str(p) for p in self.narrowed[:most])
            more = len(self.narrowed) - most
            shown += f" and {more} more" if more > 0 else ""
            count = len(self.narrowed)
            parts.append(f"made {count} paths owner-only (others could read them): {shown}")
        if self.failed:
            shown = ", ".join(f"{p} ({why})" for p, why in self.failed[:most])
            parts.append(f"could not make owner-only: {shown}")
        return "; ".join(parts)


def private_umask() -> None:
    """From now on this process creates files 0600 and directories 0700 (or stricter)."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


def prepare(settings: Settings) -> Repair:
    """Set the private umask, create the data directory, and narrow the modes of everything
    under the trees OpenDMS owns. Raises OSError when the data directory cannot be made."""
    private_umask()
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True)
    repair = Repair()
    for root in owned_trees(settings):
        _narrow_tree(root, repair)
    return repair


def owned_trees(settings: Settings) -> list[Path]:
    """The data directory, and the files and SQLite target directories outside it that
    OpenDMS made (making them now if they are missing), without one inside another."""
    data = settings.data_dir.resolve()
    roots = [data]
    for extra in (settings.files, settings.sqlite_targets):
        where = extra.expanduser().resolve()
        if where.is_relative_to(data) or not _ours(where):
            continue
        roots.append(where)
    return [r for r in roots if not any(r != o and r.is_relative_to(o) for o in roots)]


def _ours(path: Path) -> bool:
    """Whether OpenDMS made ``path``: it carries the mark, or is missing and is made now."""
    try:
        path.mkdir(parents=True)
    except FileExistsError:
        return (path / OWNED_MARK).is_file()
    except OSError:  # not ours to make here; whoever needs it later reports why
        return False
    (path / OWNED_MARK).write_text("made by OpenDMS: its modes are kept owner-only at start\n")
    return True


def _walk(root: Path) -> Iterator[tuple[Path, os.stat_result]]:
    """Every path under ``root`` (itself first) with its lstat; symlinks are not entered."""
    yield root, root.lstat()
    for here, dirs, files in os.walk(root, followlinks=False):
        for name in (*dirs, *files):
            path = Path(here, name)
            try:
                yield path, path.lstat()
            except FileNotFoundError:  # gone meanwhile (a -wal checkpointed away)
                continue


def _narrow_tree(root: Path, repair: Repair) -> None:
    # Parents are narrowed before their children are listed (os.walk is top-down), so once
    # the root is 0700 nobody else can swap a path for a symlink under us.
    for path, st in _walk(root):
        if stat.S_ISDIR(st.st_mode):
            wanted = DIR_MODE
        elif stat.S_ISREG(st.st_mode):
            wanted = FILE_MODE
        else:  # symlinks (not followed), sockets, fifos
            continue
        if not st.st_mode & PRIVATE_UMASK:
            continue
        try:
            path.chmod(wanted)
        except OSError as exc:
            repair.failed.append((path, exc.strerror or type(exc).__name__))
        else:
            repair.narrowed.append(path)
