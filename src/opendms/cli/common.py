"""What every command shares: the exit codes, the consoles, the options that say where the
data is and who acts (written once, here), opening the runtime, and how a failure becomes
one line and an exit code."""

from __future__ import annotations

import functools
import inspect
import json
import os
import typing
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, ClassVar

import typer
from rich.console import Console
from sqlalchemy import inspect as inspect_store
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from opendms import datadir
from opendms.config import Settings
from opendms.errors import DmsError
from opendms.identity import service as identity
from opendms.identity.caller import Caller
from opendms.identity.secrets import KEY_FILE, SecretBoxError
from opendms.runtime import Runtime
from opendms.store.db import Store, StoreUnavailable, describe_failure

# What a script can tell from the exit code (README "Exit codes"; also `opendms --help`).
EXIT_DONE = 0  # what was asked for happened
EXIT_FAILED = 1  # refused (a DMS error), not found, or the work it waited for failed
EXIT_USAGE = 2  # the command line itself is wrong (Typer/Click's own code)
EXIT_NO_STORE = 3  # no OpenDMS data there, or the metadata store cannot be opened
EXIT_CODES = (
    "Exit codes: 0 done; 1 refused or failed (a DMS error, not found, a failed precheck, "
    "execution or export); 2 usage error; 3 no OpenDMS data, or the metadata store cannot "
    "be opened."
)

out = Console()
err = Console(stderr=True, soft_wrap=True)


class CliError(Exception):
    """A failure to report as one line."""

    exit_code = EXIT_FAILED


class NoStore(CliError):
    """The store a command would read is not there (or cannot be opened)."""

    exit_code = EXIT_NO_STORE


def reported(exc: BaseException) -> tuple[str, int] | None:
    """How a failure is reported: its one line (after ``error: ``) and the exit code; None
    for one that is not ours to report (a bug keeps its traceback)."""
    if isinstance(exc, DmsError):
        return f"{exc.code.value}: {exc.message}", EXIT_FAILED
    if isinstance(exc, CliError):
        return str(exc), exc.exit_code
    if isinstance(exc, StoreUnavailable):
        return str(exc), EXIT_NO_STORE
    if isinstance(exc, SecretBoxError):
        return str(exc), EXIT_FAILED
    if isinstance(exc, SQLAlchemyError):
        url = os.environ.get("OPENDMS_DATABASE_URL", "the metadata store")
        return describe_failure(url, exc), EXIT_NO_STORE
    if isinstance(exc, OSError):
        return str(exc), EXIT_FAILED
    return None


# ------------------------------------------------------------------ output


def note(line: str) -> None:
    """A line on stderr, as it is (a command's --json stdout stays one object)."""
    err.print(line, markup=False, highlight=False)


def print_json(value: Any, *, indent: int | None = None, ascii_only: bool = True) -> None:
    """A command's JSON result on stdout (print, not rich: nothing is wrapped or styled)."""
    print(json.dumps(value, indent=indent, ensure_ascii=ascii_only))


def utc(value: datetime | None) -> str:
    """A stored (UTC) time as the tables show it; empty for none."""
    return f"{value:%Y-%m-%d %H:%M:%S}" if value else ""


def read_file(path: Path) -> str:
    """A text file the user named, or one line saying why it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def read_text_or_file(text: str) -> str:
    """An option's text, or the file it names as ``@path``."""
    return read_file(Path(text[1:])) if text.startswith("@") else text


def user_ids(text: str, option: str) -> list[int]:
    """Comma-separated UserIds, as ``--related``, ``--approvers`` and ``--to`` take them."""
    try:
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise CliError(f"{option} takes comma-separated UserIds") from exc


# ------------------------------------------------------------------ the runtime


def _settings(data_dir: Path | None, database_url: str | None, **extra: Any) -> Settings:
    given: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if data_dir is not None:
        given["data_dir"] = data_dir
    if database_url is not None:
        given["database_url"] = database_url
    try:
        return Settings(**given)
    except ValueError as exc:
        raise CliError(f"invalid settings: {exc}") from exc


def _prepare_data_dir(settings: Settings) -> None:
    """The one place a command makes its data directory ready, before the store is opened:
    private modes (``opendms.datadir``), then a check that it can be written."""
    path = settings.data_dir
    try:
        repair = datadir.prepare(settings)
        probe = path / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise NoStore(f"data directory {path} is not writable: {exc.strerror or exc}") from exc
    if repair:
        note(f"warning: {repair.summary()}")


def _no_data(settings: Settings, why: str) -> NoStore:
    place = "the metadata store" if why == "no tables" else str(settings.data_dir)
    return NoStore(
        f"no OpenDMS data in {place} ({why}): run `opendms init` or `opendms serve` first"
    )


def _check_data(settings: Settings, store: Store | None) -> None:
    """What a command that does not set up would otherwise create: the SQLite store file
    (before ``store`` is opened), the tables of a store elsewhere, and the master key file
    (a new key could read nothing stored)."""
    if store is None:
        if not settings.database_url and not (settings.data_dir / "opendms.db").is_file():
            raise _no_data(settings, "no store")
        if not settings.secret_key and not settings.data_dir.is_dir():
            raise _no_data(settings, "no master key")
        return
    try:
        tables = inspect_store(store.engine).has_table("alembic_version")
    except SQLAlchemyError as exc:
        raise StoreUnavailable(describe_failure(store.url, exc)) from exc
    if not tables:
        raise _no_data(settings, "no tables")
    if not settings.secret_key and not (settings.data_dir / KEY_FILE).is_file():
        raise _no_data(settings, "no master key")


@contextmanager
def runtime(
    data_dir: Path | None, database_url: str | None, *, setup: bool = False, **extra: Any
) -> Iterator[Runtime]:
    """The settings, store and means of one command. Only ``setup`` commands (init, serve)
    create a data directory, store and master key; any other one on a place without them
    says so and creates nothing."""
    settings = _settings(data_dir, database_url, **extra)
    if not setup:
        _check_data(settings, None)
    _prepare_data_dir(settings)
    store = Store(settings.metadata_url)
    try:
        if not setup:
            _check_data(settings, store)
        store.migrate()
        rt = Runtime.from_settings(settings, store)
        try:
            yield rt
        finally:
            rt.close()  # the messages of jobs this command queued go before it exits
    finally:
        store.dispose()


# ------------------------------------------------------------------ the shared options

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (env OPENDMS_DATA_DIR, default ~/.opendms)."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option("--database-url", help="Metadata store URL (env OPENDMS_DATABASE_URL)."),
]
TidOpt = Annotated[int | None, typer.Option("--tid", help="Tenant id; default: the first one.")]
UidOpt = Annotated[
    str | None,
    typer.Option(
        "--as", "--uid", help="Act as this user: a Uid or a nick name (default: an ADMIN)."
    ),
]

# arguments and options of several commands about one ticket
OrderArg = Annotated[int, typer.Argument(help="OrderId.")]
StartOpt = Annotated[str | None, typer.Option(help="Start at (UTC, YYYY-MM-DD HH:MM:SS).")]


@dataclass(frozen=True)
class Place:
    """Where a command's data is: ``--data-dir`` and ``--database-url``."""

    OPTIONS: ClassVar[tuple[tuple[str, Any], ...]] = (
        ("data_dir", DataDir),
        ("database_url", DatabaseUrl),
    )

    data_dir: Path | None = None
    database_url: str | None = None

    def settings(self, **extra: Any) -> Settings:
        """The settings a command would run with, before it touches the data directory."""
        return _settings(self.data_dir, self.database_url, **extra)

    def runtime(self, *, setup: bool = False, **extra: Any) -> AbstractContextManager[Runtime]:
        return runtime(self.data_dir, self.database_url, setup=setup, **extra)

    @contextmanager
    def session(self) -> Iterator[tuple[Runtime, Session]]:
        """The runtime and one metadata transaction (committed when the command ends well)."""
        with self.runtime() as rt, rt.store.session() as s:
            yield rt, s


@dataclass(frozen=True)
class InTenant(Place):
    """A place and a tenant: ``--tid`` (default: the first tenant)."""

    OPTIONS = (("tid", TidOpt), *Place.OPTIONS)

    tid: int | None = None

    def tenant(self, s: Session) -> int:
        if self.tid is not None:
            return identity.get_tenant(s, self.tid).tid
        tenants = identity.list_tenants(s)
        if not tenants:
            raise CliError("no tenant yet: run `opendms init` first")
        return tenants[0].tid


@dataclass(frozen=True)
class AsUser(InTenant):
    """A tenant and who acts in it: ``--as``/``--uid`` (default: an administrator)."""

    OPTIONS = (("uid", UidOpt), *InTenant.OPTIONS)

    uid: str | None = None

    def caller(self, s: Session) -> Caller:
        return identity.caller_for(s, self.tenant(s), self.uid)

    @contextmanager
    def acting(self) -> Iterator[tuple[Runtime, Session, Caller]]:
        """The runtime, one metadata transaction and the user the command acts as."""
        with self.session() as (rt, s):
            yield rt, s, self.caller(s)


def shared_options(command: Callable[..., None]) -> Callable[..., None]:
    """A command whose last (keyword-only) parameter is a Place, InTenant or AsUser, as
    Typer sees it: that parameter becomes the options it stands for (after the command's
    own, in the order ``--as``, ``--tid``, ``--data-dir``, ``--database-url``), and is built
    from them when the command runs."""
    hints = typing.get_type_hints(command, include_extras=True)
    *own, last = inspect.signature(command).parameters.values()
    kind = hints.get(last.name)
    if not (isinstance(kind, type) and issubclass(kind, Place)):
        raise TypeError(f"{command.__name__}: the last parameter is not a Place")
    names = [name for name, _ in kind.OPTIONS]
    if clash := sorted(set(names) & {p.name for p in own}):
        raise TypeError(f"{command.__name__}: {', '.join(clash)} is a shared option")
    shown = [p.replace(annotation=hints[p.name]) for p in own] + [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None, annotation=a)
        for name, a in kind.OPTIONS
    ]

    @functools.wraps(command)
    def run(**given: Any) -> None:
        where = kind(**{name: given.pop(name) for name in names})
        command(**given, **{last.name: where})

    run.__signature__ = inspect.Signature(shown, return_annotation=None)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in shown} | {"return": None}
    return run
