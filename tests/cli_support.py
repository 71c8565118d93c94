"""Running the command line in tests.

A real ``python -m opendms`` costs seconds to start (mostly imports), so most commands run in
this process through ``opendms.cli.main``, the function ``python -m opendms`` calls: same
argument parsing, same one-line error reporting, same exit codes. ``opendms_process`` runs
the real process, for the checks that the wiring itself works."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import typer.main

from opendms import cli

_built: dict[int, Any] = {}
_get_command = typer.main.get_command


def _get_command_once(typer_instance: typer.Typer) -> Any:
    """Typer rebuilds the click command tree on every call (a quarter of a second here); a
    process builds it once, and so do these tests."""
    key = id(typer_instance)
    if key not in _built:
        _built[key] = _get_command(typer_instance)
    return _built[key]


@contextmanager
def _like_a_shell() -> Iterator[None]:
    """What a user's shell gives the command: no OPENDMS_* settings (the tests' own are put
    back afterwards, and any the command set are taken away), 200 columns, the command tree
    built once; the process umask the command sets (private modes) is put back too."""
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("OPENDMS_")}
    widths = cli.out.width, cli.err.width
    cli.out.width = cli.err.width = 200
    typer.main.get_command = _get_command_once
    umask = os.umask(0o022)
    os.umask(umask)
    try:
        yield
    finally:
        os.umask(umask)
        typer.main.get_command = _get_command
        cli.out.width, cli.err.width = widths
        for k in [k for k in os.environ if k.startswith("OPENDMS_")]:
            del os.environ[k]
        os.environ.update(saved)


def opendms(
    *args: str, data_dir: Path | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """``opendms ARGS [--data-dir DIR]`` through the CLI's entry point, in this process."""
    argv = ["opendms", *args]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    stdout, stderr = io.StringIO(), io.StringIO()
    code: int = 0
    saved = sys.argv
    sys.argv = argv
    try:
        with _like_a_shell(), redirect_stdout(stdout), redirect_stderr(stderr):
            cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    result = subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def opendms_process(
    *args: str, data_dir: Path | None = None, env: dict[str, str] | None = None, ok: bool = True
) -> subprocess.CompletedProcess[str]:
    """``python -m opendms ARGS [--data-dir DIR]`` as a real process."""
    cmd = [sys.executable, "-m", "opendms", *args]
    if data_dir is not None:
        cmd += ["--data-dir", str(data_dir)]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("OPENDMS_")}
    full_env |= {"COLUMNS": "200", **(env or {})}
    result = subprocess.run(
        cmd, capture_output=True, text=True, env=full_env, timeout=60, check=False
    )
    if ok:
        assert result.returncode == 0, result.stderr
    return result


def assert_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    assert fragment in lines[0]


def result_is_one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> bool:
    """assert_one_line_error, usable inside an assert; also checks the exit code."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    assert_one_line_error(result, fragment)
    return True
