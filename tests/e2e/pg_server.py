"""A private PostgreSQL server for the tests that stop or restart their metadata store: the
machine's shared server runs other tests side by side, so a test that takes its store away
needs a server of its own.

It is made from scratch in a temporary directory (``initdb``) and run with ``pg_ctl`` on a
free loopback port, user ``postgres`` trusted, no password. PostgreSQL refuses to run as
root: under root, ``initdb`` and ``pg_ctl`` run as the ``postgres`` system user
(``runuser``), in a directory it owns. It serves durably enough for a restart (a fast
shutdown writes a checkpoint) but does not flush to disk (``fsync=off``): a test's store is
thrown away with its directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.e2e.mariadb_server import LOOPBACK, START_SECONDS, CannotStart, free_port

SYSTEM_USER = "postgres"  # who runs the server when this process is root


def _bin_dir() -> Path:
    """Where initdb and pg_ctl are: on PATH, else Debian's newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found is not None and shutil.which("pg_ctl") is not None:
        return Path(found).resolve().parent
    versions = sorted(
        (p for p in Path("/usr/lib/postgresql").glob("*/bin/initdb") if p.parts[-3].isdigit()),
        key=lambda p: int(p.parts[-3]),
    )
    if not versions:
        raise CannotStart("initdb is not installed")
    return versions[-1].parent


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as whoever may run PostgreSQL: this user, or ``postgres`` under root."""
    if os.geteuid() != 0:
        return argv
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    if not Path(runuser).exists():
        raise CannotStart("running as root without runuser: PostgreSQL refuses to run as root")
    _server_user()
    return [runuser, "-u", SYSTEM_USER, "--", *argv]


def _server_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        raise CannotStart(f"running as root and there is no {SYSTEM_USER} user") from None


@dataclass(frozen=True)
class PgServer:
    port: int
    root: Path  # owned by the server's user: its data directory, socket and log
    bin_dir: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def dsn(self, database: str = "postgres") -> str:
        return f"host={LOOPBACK} port={self.port} user=postgres dbname={database}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL OpenDMS takes for ``database`` on this server."""
        return f"postgresql+psycopg://postgres@{LOOPBACK}:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def _pg_ctl(
        self, *args: str, timeout: float = START_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args]
        return subprocess.run(
            _as_server_user(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self) -> None:
        """Start the server and wait until it answers; CannotStart if it does not."""
        done = self._pg_ctl(
            "-l",
            str(self.log),
            "-o",
            f"-p {self.port}",
            "-w",
            "-t",
            str(int(START_SECONDS)),
            "start",
        )
        if done.returncode != 0:
            said = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise CannotStart(f"pg_ctl start failed:\n{done.stdout}{done.stderr}\n{said}")
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    raise CannotStart(f"PostgreSQL did not answer: {exc}") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (clients cut off, a checkpoint written) or
        ``immediate`` (as if it crashed)."""
        done = self._pg_ctl("-m", mode, "-w", "stop")
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop failed:\n{done.stdout}{done.stderr}")


def _configure(data_dir: Path, root: Path) -> None:
    with (data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write(
            "\n# a private test server (its port is given when it starts)\n"
            f"listen_addresses = '{LOOPBACK}'\n"
            f"unix_socket_directories = '{root}'\n"
            "max_connections = 300\n"
            "shared_buffers = 32MB\n"
            "fsync = off\n"
            "synchronous_commit = off\n"
            "full_page_writes = off\n"
        )


@contextmanager
def private_postgres() -> Iterator[PgServer]:
    """A fresh PostgreSQL server on a free loopback port, stopped and removed when the block
    ends. Raises :class:`CannotStart` if it cannot be had."""
    bin_dir = _bin_dir()
    with tempfile.TemporaryDirectory(prefix="opendms-pg-") as tmp:
        root = Path(tmp)
        if os.geteuid() == 0:  # the server's user must own its directory
            owner = _server_user()
            os.chown(root, owner.pw_uid, owner.pw_gid)
        made = subprocess.run(
            _as_server_user(
                [
                    str(bin_dir / "initdb"),
                    "-D",
                    str(root / "data"),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            ),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if made.returncode != 0:
            raise CannotStart(f"initdb failed:\n{made.stdout}{made.stderr}"[-3000:])
        _configure(root / "data", root)
        for attempt in range(3):  # another process may take the free port before it binds
            server = PgServer(free_port(), root, bin_dir)
            try:
                server.start()
            except CannotStart:
                if attempt < 2 and "already in use" in server.log.read_text(errors="replace"):
                    continue
                raise
            try:
                yield server
            finally:
                with suppress(Exception):
                    server.stop("immediate")
            return
