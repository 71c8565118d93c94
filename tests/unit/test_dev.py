"""dev.py, the README's two commands: one install serves both."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def dev(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, Any], list[str]]:
    module = runpy.run_path(str(ROOT / "dev.py"), run_name="dev")
    venv = tmp_path / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").touch()
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    installs: list[str] = []
    ensure = module["ensure_venv"]
    monkeypatch.setitem(ensure.__globals__, "ROOT", tmp_path)
    monkeypatch.setitem(ensure.__globals__, "VENV", venv)
    monkeypatch.setitem(ensure.__globals__, "BIN", venv / "bin")
    monkeypatch.setitem(ensure.__globals__, "run", lambda *cmd, **kw: installs.append(cmd[-1]))
    monkeypatch.setitem(ensure.__globals__, "say", lambda msg: None)
    return module, installs


def test_serve_after_test_installs_nothing_and_a_changed_pyproject_installs_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, installs = dev(tmp_path, monkeypatch)
    module["ensure_venv"]("[dev]")  # dev.py test
    module["ensure_venv"]("")  # dev.py serve
    module["ensure_venv"]("[dev]")
    assert installs == [".[dev]"]
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    module["ensure_venv"]("")
    assert installs == [".[dev]", ".[dev]"]  # what was there is kept


def test_test_after_serve_adds_the_dev_extras_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, installs = dev(tmp_path, monkeypatch)
    module["ensure_venv"]("")
    module["ensure_venv"]("[dev]")
    module["ensure_venv"]("")
    module["ensure_venv"]("[dev]")
    assert installs == [".", ".[dev]"]
